"""CD: the conditional denoiser of adversarial consistent training (Hybrid-Sep Fig. 3, Algorithm 1).

The ASM's stack without TEACA, on a noisy target, conditioned on the ASM's feature maps::

    noisy wave [B, T] -> BandSTFT -> [B, 8, frames, bins]
    conditions: each of the ASM's last four TRCNN outputs [B, C_i, frames, bins_i] -> its own
        Linear(C_i, cond_channels) ("dedicated linear" projections) -> nearest-upsampled along frequency
        to ``bins`` -> concatenated on channels [B, 4 * cond_channels, frames, bins]
    x = concat(spec, conditions) -> TRCNNStack (no TEACA) -> [B, 8, frames, bins] -> iSTFT, PQMF synthesis -> [B, T]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .bandstft import BandSTFT
from .stack import TRCNNStack


class ConditionalDenoiser(nn.Module):
    def __init__(self, band_stft: BandSTFT, stack_args: dict, condition_channels: Sequence[int], cond_channels: int):
        super().__init__()
        self.band_stft = band_stft
        self.projections = nn.ModuleList(nn.Linear(c, cond_channels) for c in condition_channels)
        in_channels = band_stft.channels + cond_channels * len(condition_channels)
        self.stack = TRCNNStack(in_channels, teaca_embed_dim=None, **stack_args)

    def forward(self, noisy: Tensor, maps: list[Tensor]) -> Tensor:
        """noisy [B, T], maps: the ASM's last four TRCNN outputs -> denoised [B, T]."""
        spec = self.band_stft(noisy)
        conditions = []
        for proj, m in zip(self.projections, maps):
            c = proj(m.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            conditions.append(F.interpolate(c, size=spec.shape[2:], mode="nearest").to(spec.dtype))
        out, _ = self.stack(torch.cat([spec, *conditions], dim=1))
        return self.band_stft.inverse(out, noisy.shape[-1])
