"""Multi-scale STFT discriminator (EnCodec's MS-STFT-D, which X-Codec and Hybrid-Sep reuse) and LSGAN losses.

One sub-discriminator per STFT resolution (default n_fft 1024, 2048, 512; hop n_fft / 4; Hann; normalised;
not centred). Each takes the complex spectrogram as 2 channels [B, 2, frames, bins] through weight-normed
Conv2d layers: (3, 9) from 2 to ``filters``; three (3, 9) convs with frequency stride 2 and time dilation
1, 2, 4; a (3, 3) conv; LeakyReLU 0.2 after each; then a (3, 3) conv to one logit channel.
``forward`` returns, per scale, its feature maps with the logits last.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm


class STFTSubDiscriminator(nn.Module):
    """wave [B, T] -> [feature maps ..., logits [B, 1, frames, bins']]."""

    def __init__(self, n_fft: int, filters: int = 32, max_filters: int = 1024, dilations: Sequence[int] = (1, 2, 4)):
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        convs = [weight_norm(nn.Conv2d(2, filters, (3, 9), padding=(1, 4)))]
        width = filters
        for i, d in enumerate(dilations):
            out = min(filters * 2 ** (i + 1), max_filters)
            convs.append(weight_norm(nn.Conv2d(width, out, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4))))
            width = out
        out = min(filters * 2 ** (len(dilations) + 1), max_filters)
        convs.append(weight_norm(nn.Conv2d(width, out, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(convs)
        self.post = weight_norm(nn.Conv2d(out, 1, (3, 3), padding=(1, 1)))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, wave: Tensor) -> list[Tensor]:
        if wave.shape[-1] < self.n_fft:
            wave = nn.functional.pad(wave, (0, self.n_fft - wave.shape[-1]))
        spec = torch.stft(
            wave.float(), self.n_fft, self.hop, window=self.window, center=False, normalized=True, return_complex=True
        )
        x = torch.view_as_real(spec).permute(0, 3, 2, 1)  # [B, 2, frames, bins]
        features = []
        for conv in self.convs:
            x = self.act(conv(x))
            features.append(x)
        features.append(self.post(x))
        return features


class MultiScaleSTFTDiscriminator(nn.Module):
    """wave float [B, T] -> one list of feature maps (logits last) per STFT scale."""

    def __init__(self, n_ffts: Sequence[int] = (1024, 2048, 512), filters: int = 32) -> None:
        super().__init__()
        self.scales = nn.ModuleList(STFTSubDiscriminator(n, filters) for n in n_ffts)

    def forward(self, wave: Tensor) -> list[list[Tensor]]:
        return [scale(wave) for scale in self.scales]


def discriminator_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """LSGAN, Algorithm 1: mean over scales of 1/2 (E[(D(x) - 1)^2] + E[D(G(z))^2])."""
    terms = [0.5 * ((r[-1] - 1).square().mean() + f[-1].square().mean()) for r, f in zip(real, fake)]
    return torch.stack(terms).mean()


def generator_loss(fake: list[list[Tensor]]) -> Tensor:
    """LSGAN, Algorithm 1: mean over scales of E[(D(G(z)) - 1)^2]."""
    return torch.stack([(f[-1] - 1).square().mean() for f in fake]).mean()
