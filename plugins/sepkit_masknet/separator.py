"""``MaskNetSeparator``: predicts a [0, 1] magnitude mask from the mixture and the query.

    x = Linear(log1p |X|)                      [B, F, hidden]
    for each block: x = x + GELU(FiLM(Norm(Conv1d_time(x)), query))
    mask = sigmoid(Linear(x))                  [B, F, bins]
    target = mask * X                          (the mixture's phase is kept)

The query conditions every block through FiLM (scale and shift from the pooled
text embedding). It handles "extract"; the pipeline turns "remove" into the
mixture minus the extracted source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from omegaconf import MISSING
from torch import Tensor, nn

from sepkit.config import positive, require
from sepkit.interfaces import AudioFeatures, Separator, TextEmbedding
from sepkit.oracles import IdealRatioMaskOracle


class FiLMConvBlock(nn.Module):
    """[B, hidden, F] -> same; a time convolution, LayerNorm, FiLM from the query, GELU, residual."""

    def __init__(self, hidden: int, query_dim: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(hidden, hidden, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(hidden)
        self.film = nn.Linear(query_dim, 2 * hidden)

    def forward(self, x: Tensor, query: Tensor) -> Tensor:
        y = self.norm(self.conv(x.transpose(1, 2)).transpose(1, 2))
        scale, shift = self.film(query).unsqueeze(1).chunk(2, dim=-1)
        return x + nn.functional.gelu(y * (1 + scale) + shift)


class MaskNetSeparator(IdealRatioMaskOracle, Separator):
    """mixture complex [B, F, bins] + query pooled [B, query_dim] -> target complex [B, F, bins]."""

    @dataclass
    class Config:
        input_dim: int = positive(MISSING)  # STFT bins; set by the pipeline from the audio encoder
        query_dim: int = positive(MISSING)  # text embedding width; set by the pipeline from the text encoder
        hidden: int = positive(256)
        layers: int = positive(4)
        kernel_size: int = positive(5)

        def __post_init__(self) -> None:
            require(
                self.kernel_size % 2 == 1,
                "kernel_size",
                f"must be odd (the time convolution keeps the number of frames), got {self.kernel_size}",
            )

    consumes = "complex_stft"
    produces = "complex_stft"
    tasks = ("extract",)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.input_dim = self.output_dim = config.input_dim
        self.query_dim = config.query_dim
        self.proj_in = nn.Linear(config.input_dim, config.hidden)
        self.blocks = nn.ModuleList(
            FiLMConvBlock(config.hidden, config.query_dim, config.kernel_size) for _ in range(config.layers)
        )
        self.proj_out = nn.Linear(config.hidden, config.input_dim)

    def mask(self, mixture: Tensor, query: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """mixture complex [B, F, bins], query [B, query_dim], valid frames long [B] -> mask float [B, F, bins]
        in [0, 1]. Hidden frames past ``lengths`` are zeroed before every convolution, so an example's mask does
        not depend on the padding it is batched with."""
        valid = None
        if lengths is not None:
            valid = (torch.arange(mixture.shape[1], device=mixture.device)[None] < lengths[:, None].to(mixture.device))
            valid = valid[..., None]
        x = self.proj_in(torch.log1p(mixture.abs()))
        for block in self.blocks:
            x = block(x if valid is None else x * valid, query)
        return torch.sigmoid(self.proj_out(x))

    def separate(self, mixture: AudioFeatures, query: TextEmbedding, tasks: Tensor) -> AudioFeatures:
        mask = self.mask(mixture.frames, query.pooled.to(self.proj_in.weight.dtype), mixture.lengths)
        frames = mixture.frames * mask.float()
        return AudioFeatures(frames=frames, lengths=mixture.lengths, frame_rate=mixture.frame_rate)
