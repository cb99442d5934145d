"""Multi-scale mel discriminator (HSM-TSS sec. III-E2, after UniAudio), replacing TF-Codec's
single-scale frequency-domain discriminator.

One sub-discriminator per mel resolution (default: STFT 512 / 1024 / 2048 samples, hop a quarter,
64 / 80 / 128 mels at 16 kHz). Each takes the log-mel spectrogram [B, 1, frames, mels] through a
stack of 2-D convolutions (kernel 3 x 9 in time x mel, stride 2 along mel, LeakyReLU 0.2, weight
norm) and a final 3 x 3 conv to one logit channel. ``forward`` returns, per scale, the list of
feature maps with the logits last (for LSGAN and feature matching).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from .losses import mel


class MelSubDiscriminator(nn.Module):
    """wave [B, T] -> [feature maps ..., logits [B, 1, frames', mels']]."""

    def __init__(self, n_fft: int, n_mels: int, channels: int, layers: int) -> None:
        super().__init__()
        self.n_fft, self.n_mels = n_fft, n_mels
        convs, width = [], 1
        for i in range(layers):
            out = channels * min(2**i, 4)
            convs.append(weight_norm(nn.Conv2d(width, out, (3, 9), (1, 2 if i else 1), (1, 4))))
            width = out
        self.convs = nn.ModuleList(convs)
        self.post = weight_norm(nn.Conv2d(width, 1, (3, 3), 1, 1))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, wave: Tensor) -> list[Tensor]:
        x = torch.log(mel(wave, self.n_fft, self.n_mels).clamp_min(1e-5)).transpose(1, 2).unsqueeze(1)
        features = []
        for conv in self.convs:
            x = self.act(conv(x))
            features.append(x)
        features.append(self.post(x))
        return features


class MultiScaleMelDiscriminator(nn.Module):
    """wave float [B, T] at 16 kHz -> one list of feature maps (logits last) per mel scale."""

    def __init__(self, ffts: list[int], mels: list[int], channels: int = 32, layers: int = 4) -> None:
        super().__init__()
        if len(ffts) != len(mels):
            raise ValueError("disc_ffts and disc_mels need the same number of entries")
        self.scales = nn.ModuleList(MelSubDiscriminator(n, m, channels, layers) for n, m in zip(ffts, mels))

    def forward(self, wave: Tensor) -> list[list[Tensor]]:
        return [scale(wave) for scale in self.scales]


def lsgan_discriminator_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """Mean over scales of E[(D(x) - 1)^2] + E[D(G(z))^2] (TF-Codec's 'MSE' adversarial loss)."""
    terms = [(r[-1] - 1).square().mean() + f[-1].square().mean() for r, f in zip(real, fake)]
    return torch.stack(terms).mean()


def lsgan_generator_loss(fake: list[list[Tensor]]) -> Tensor:
    return torch.stack([(f[-1] - 1).square().mean() for f in fake]).mean()


def feature_matching_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """Mean L1 between the discriminator's feature maps of real (detached) and generated audio."""
    terms = [(fr.detach() - ff).abs().mean() for r, f in zip(real, fake) for fr, ff in zip(r[:-1], f[:-1])]
    return torch.stack(terms).mean()
