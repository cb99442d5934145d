"""``SourceTagger``: a small multi-label classifier over a corpus's tags on log-mel (the offline captioner's ears).

    wave float [B, T] at sample_rate (16 kHz for sepkit-mini)
    log-mel: torchaudio MelSpectrogram (n_fft, hop, n_mels), log(mel + 1e-6)  [B, 1, frames, n_mels]
    batch norm over mel bins, then len(channels) blocks: (3x3 conv, BN, ReLU) x 2 + 2x2 average pooling
    mean over frequency -> [B, C, frames']; mean + max over the valid time steps -> [B, C]
    linear -> logits [B, len(tags)]   (sigmoid: per-tag presence probabilities)

Trained by the ``tagger`` system (``system.py``); read by the ``tagger-captioner``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepkit.config import positive
from sepkit.errors import SepkitError


@dataclass
class TaggerConfig:
    """Architecture and tag vocabulary of a ``SourceTagger`` (the keys of ``train.system`` for ``tagger``)."""

    tags: list[str] = field(default_factory=list)  # empty: every tag of the training clip manifest, sorted
    sample_rate: int = positive(16000)
    n_fft: int = positive(512)
    hop_length: int = positive(160)
    n_mels: int = positive(64)
    channels: list[int] = positive(default_factory=lambda: [32, 64, 128])


class SourceTagger(nn.Module):
    """wave [B, T] at ``config.sample_rate``, lengths [B] -> logits float [B, len(config.tags)]."""

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        import torchaudio

        if not config.tags:
            raise SepkitError("the tagger needs its tag vocabulary (tags: [...]); none was given")
        if not config.channels:
            raise SepkitError("tagger: channels must list at least one block width")
        self.config = config
        self.tags = list(config.tags)
        self.hop_length = config.hop_length
        self.mel = torchaudio.transforms.MelSpectrogram(
            config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length, n_mels=config.n_mels
        )
        self.bn0 = nn.BatchNorm2d(config.n_mels)
        blocks, width = [], 1
        for c in config.channels:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(width, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                    nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                )
            )  # fmt: skip
            width = c
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(width, len(self.tags))

    def forward(self, wave: Tensor, lengths: Tensor) -> Tensor:
        with torch.autocast(device_type=wave.device.type, enabled=False):
            x = torch.log(self.mel(wave.float()) + 1e-6).transpose(1, 2)[:, None]  # [B, 1, frames, mels]
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        frames = lengths.to(x.device) // self.hop_length + 1
        for block in self.blocks:
            x = block(x)
            if x.shape[2] >= 2 and x.shape[3] >= 2:
                x = F.avg_pool2d(x, 2)
                frames = (frames // 2).clamp_min(1)
        x = x.mean(dim=3)  # [B, C, frames']
        valid = torch.arange(x.shape[2], device=x.device)[None] < frames[:, None]
        mean = (x * valid[:, None]).sum(-1) / valid.sum(-1, keepdim=True).clamp_min(1)
        peak = x.masked_fill(~valid[:, None], float("-inf")).amax(-1)
        return self.head(mean + peak)
