"""The interleaved TRCNN / FA / TEACA stack shared by the ASM and the conditional denoiser (Hybrid-Sep Fig. 3).

x [B, C_in, T, F] -> (out [B, channels[-1], T, F], maps: the outputs of the last four TRCNN modules).

Module i is a TRCNN (Conv2d for the first half, ConvTranspose2d for the second) with ``channels[i]`` outputs
and frequency stride ``strides[i]``; an FA module follows the TRCNNs listed in ``fa_after``; with a target
embedding width (``teaca_embed_dim``) a TEACA module follows every TRCNN but the last. *Ours*: the output of
encoder module j is added to the output of the decoder module at the same resolution (U-Net skips); the paper
does not say whether the stack has skips. ``linear_output`` (*ours*): the last TRCNN without its GELU, so
the stack's output (spectrogram or mask, real and imaginary parts) is not bounded below by GELU's -0.17 and
its sign does not rest on the last BiLSTM alone (2 hidden units at full size).
Full size (Table 1): channels 48, 96, 192, 384, 192, 96, 48, 8,
BiLSTM hidden 12, 24, 48, 96, 48, 24, 12, 2, four FA modules (kernel 9), TEACA 64-d with 8 heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from torch import Tensor, nn

from .fa import FrequencyAttention
from .teaca import TEACA
from .trcnn import TRCNN


class TRCNNStack(nn.Module):
    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        strides: Sequence[int],
        lstm_hidden: Sequence[int],
        fa_after: Sequence[int],
        fa_kernel: int = 9,
        fa_heads: int = 8,
        teaca_embed_dim: Optional[int] = None,
        teaca_dim: int = 64,
        teaca_heads: int = 8,
        linear_output: bool = False,
    ) -> None:
        super().__init__()
        n = len(channels)
        if n % 2 or len(strides) != n or len(lstm_hidden) != n:
            raise ValueError(
                f"channels ({len(channels)}), strides ({len(strides)}) and lstm_hidden ({len(lstm_hidden)}) need the "
                "same even number of entries (Conv2d for the first half, ConvTranspose2d for the second)"
            )
        self.half = n // 2
        self.trcnn = nn.ModuleList()
        width = in_channels
        for i, (c, s, h) in enumerate(zip(channels, strides, lstm_hidden)):
            last = i == n - 1
            self.trcnn.append(TRCNN(width, c, s, h, transpose=i >= self.half, activation=not (last and linear_output)))
            width = c
        self.fa = nn.ModuleDict(
            {str(i): FrequencyAttention(channels[i], fa_heads, fa_kernel) for i in fa_after if 0 <= i < n}
        )
        self.teaca = None
        if teaca_embed_dim:
            self.teaca = nn.ModuleList(TEACA(c, teaca_embed_dim, teaca_dim, teaca_heads) for c in channels[:-1])
        self.channels = list(channels)
        self.down = 1
        for s in strides[: self.half]:
            self.down *= s

    def forward(self, x: Tensor, embedding: Optional[Tensor] = None) -> tuple[Tensor, list[Tensor]]:
        skips, outputs = [], []
        for i, module in enumerate(self.trcnn):
            x = module(x)
            if i < self.half:
                skips.append(x)
            else:
                j = 2 * self.half - 2 - i  # the encoder output at this resolution
                if 0 <= j < len(skips) and skips[j].shape == x.shape:
                    x = x + skips[j]
            if str(i) in self.fa:
                x = self.fa[str(i)](x)
            if self.teaca is not None and i < len(self.teaca):
                x = self.teaca[i](x, embedding)
            outputs.append(x)
        return x, outputs[-4:]
