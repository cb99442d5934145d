"""TRCNN: temporal recurrent convolutional module (Hybrid-Sep Table 1).

One module = a 2-D convolution (Conv2d in the encoder half, ConvTranspose2d in the decoder half)
that changes the channel count and strides the frequency axis, then GELU, then a BiLSTM along time
at every frequency bin (hidden size ``lstm_hidden``; its 2 * hidden outputs are projected back to
the channels and added).

x [B, C_in, T, F] -> [B, C_out, T, F / stride] (Conv2d) or [B, C_out, T, F * stride] (ConvTranspose2d).

``activation=False`` drops the GELU (*ours*, the stack's ``linear_output``): the last module's convolution
then outputs signed values, as real and imaginary parts of a spectrogram or a mask are.

Table 1 lists (1, 1) kernels with stride 2; a 1 x 1 kernel with stride 2 would skip every other bin,
so the kernel here spans the stride along frequency: (1, stride) (*ours*).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class TRCNN(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        lstm_hidden: int,
        transpose: bool,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.activation = activation
        conv = nn.ConvTranspose2d if transpose else nn.Conv2d
        self.conv = conv(in_channels, out_channels, kernel_size=(1, stride), stride=(1, stride))
        self.lstm = nn.LSTM(out_channels, lstm_hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * lstm_hidden, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)  # [B, C, T, F']
        if self.activation:
            x = F.gelu(x)
        b, c, t, f = x.shape
        seq = x.permute(0, 3, 2, 1).reshape(b * f, t, c)  # one sequence per (row, bin)
        h, _ = self.lstm(seq)
        h = self.proj(h).reshape(b, f, t, c).permute(0, 3, 2, 1)
        return x + h
