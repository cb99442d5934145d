"""ASM: the audio separation model of Hybrid-Sep's stage 2.

mixture wave [B, T] at sr, target embedding [B, E], BEATs tokens [B, steps, 8 * 768] (or None) ->
(estimate wave [B, T], maps: the last four TRCNN outputs, the conditions of the denoiser)::

    spec = BandSTFT(PQMF 4 bands)(wave)                        [B, 8, frames, bins]   (real/imag per band)
    ssl  = Linear(8 * 768, ssl_channels * bins)(BEATs steps)   -> [B, ssl_channels, steps, bins]
           linearly interpolated along time to the STFT frames (*ours*: how the frame-wise features
           are brought to the spectrogram grid)
    x    = concat(spec, ssl) on channels                        [B, 8 + ssl_channels, frames, bins]
    out, maps = TRCNNStack(x, embedding)                        [B, 8, frames, bins]  (with TEACA)
    (output "mask": out = spec * M, M the stack's output read as a complex ratio mask per band and bin)
    wave = PQMF synthesis(iSTFT per band(out))                  [B, T]

``output``: "spectrum" (the paper's reading: the stack predicts the target's sub-band spectrograms) or "mask"
(*ours*: the stack predicts a complex ratio mask that multiplies the mixture's sub-band spectrograms, so an
untrained network starts near the mixture instead of near silence, and a band's detail comes from the mixture
rather than through the stack's bottleneck; mini/hybrid_sep.yaml says why the mini recipe uses it).

``input_compression`` c < 1 (*ours*; 1, the paper's reading, feeds the raw spectrograms): the stack reads
``compress(spec, c) = spec * |spec|^(c - 1)`` (per band and bin, phase kept, magnitude |X|^c), so that quiet and
loud bins reach the first convolution at comparable scales; the mask still multiplies the raw ``spec``.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .bandstft import BandSTFT
from .stack import TRCNNStack

OUTPUTS = ("spectrum", "mask")


class AudioSeparationModel(nn.Module):
    def __init__(
        self,
        band_stft: BandSTFT,
        stack_args: dict,
        embed_dim: int,
        ssl_dim: int,
        ssl_channels: int,
        output: str = "spectrum",
        input_compression: float = 1.0,
    ) -> None:
        super().__init__()
        self.input_compression = float(input_compression)
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        self.output = output
        self.band_stft = band_stft
        bins = band_stft.bins
        self.ssl_channels = ssl_channels if ssl_dim else 0
        self.ssl = nn.Linear(ssl_dim, ssl_channels * bins) if ssl_dim else None
        in_channels = band_stft.channels + self.ssl_channels
        self.stack = TRCNNStack(in_channels, teaca_embed_dim=embed_dim, **stack_args)
        if stack_args["channels"][-1] != band_stft.channels:
            raise ValueError(f"the last TRCNN must output {band_stft.channels} channels (real/imag of each band)")

    def forward(self, wave: Tensor, embedding: Tensor, ssl: Optional[Tensor]) -> tuple[Tensor, list[Tensor]]:
        spec = self.band_stft(wave)
        x = spec if self.input_compression == 1.0 else compress(spec, self.input_compression)
        if self.ssl is not None:
            if ssl is None:
                raise ValueError("this ASM was built with BEATs features; pass them")
            b, steps, _ = ssl.shape
            s = self.ssl(ssl).reshape(b, steps, self.ssl_channels, -1).permute(0, 2, 1, 3)  # [B, C, steps, bins]
            s = F.interpolate(s, size=(spec.shape[2], spec.shape[3]), mode="bilinear", align_corners=False)
            x = torch.cat([x, s.to(spec.dtype)], dim=1)
        out, maps = self.stack(x, embedding)
        if self.output == "mask":
            out = complex_multiply(spec, out.to(spec.dtype))
        return self.band_stft.inverse(out, wave.shape[-1]), maps


def compress(spec: Tensor, exponent: float, eps: float = 1e-8) -> Tensor:
    """spec [B, 2M, frames, bins] as (real, imag) channel pairs per band -> spec * |spec|^(exponent - 1), same layout:
    each bin's phase kept, its magnitude raised to ``exponent``."""
    b, c, t, f = spec.shape
    s = spec.reshape(b, c // 2, 2, t, f)
    magnitude = s.square().sum(2, keepdim=True).add(eps).sqrt()
    return (s * magnitude.pow(exponent - 1.0)).reshape(b, c, t, f)


def complex_multiply(spec: Tensor, mask: Tensor) -> Tensor:
    """spec, mask [B, 2M, frames, bins] as (real, imag) channel pairs per band -> their complex product, same layout."""
    b, c, t, f = spec.shape
    s = spec.reshape(b, c // 2, 2, t, f)
    m = mask.reshape(b, c // 2, 2, t, f)
    real = s[:, :, 0] * m[:, :, 0] - s[:, :, 1] * m[:, :, 1]
    imag = s[:, :, 0] * m[:, :, 1] + s[:, :, 1] * m[:, :, 0]
    return torch.stack([real, imag], dim=2).reshape(b, c, t, f)
