"""``FiLMGRUMaskSeparator``: a FiLM-conditioned bidirectional GRU that masks the mixture's STFT magnitude.

    q      = sum_n softmax_n(w . tokens_n) tokens_n   [B, query_dim]     attention pooling over valid tokens only
    x      = Linear(log1p |X|)                         [B, F, hidden]
    x      = x * (1 + scale(q)) + shift(q)             FiLM: the query scales and shifts every frame
    h      = BiGRU(x), packed by ``lengths``           [B, F, 2 * hidden] each row sees its valid frames only
    mask   = sigmoid(Linear(h))                        [B, F, bins]       in [0, 1]
    target = mask * X                                  complex [B, F, bins], the mixture's phase, zero past lengths

It consumes and produces ``complex_stft`` frames (sepkit's ``stft`` audio encoder and ``istft`` decoder) at
any frame rate, and handles "extract"; the pipeline turns "remove" into the mixture minus the extraction.
With ``hidden: 16`` on 129 bins it has about 10k parameters.

Padding: a batch is zero-padded to its longest row (``AudioFeatures.lengths``) and its longest query
(``TextEmbedding.mask``). The pooling gives padded tokens zero weight and the GRU is packed, so its backward
direction starts at each row's last valid frame: a row's output does not depend on what it is batched with,
which sepkit's separator contract checks (``test_batch_padding_does_not_change_output``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sepkit.config import positive
from sepkit.interfaces import AudioFeatures, Separator, TextEmbedding
from sepkit.oracles import IdealRatioMaskOracle


def masked_attention_pool(tokens: Tensor, mask: Tensor, scores: Tensor) -> Tensor:
    """tokens [B, N, D], mask bool [B, N], scores [B, N] -> [B, D]: softmax-weighted sum over valid tokens only."""
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1) * mask  # a row without valid tokens pools to zero
    return torch.einsum("bn,bnd->bd", weights, tokens)


class FiLMGRUMaskSeparator(IdealRatioMaskOracle, Separator):
    """mixture complex [B, F, bins] + query tokens [B, N, query_dim] (mask [B, N]) -> target complex [B, F, bins]."""

    @dataclass
    class Config:
        input_dim: int = positive(MISSING)  # STFT bins; set by the pipeline from the audio encoder
        query_dim: int = positive(MISSING)  # text embedding width; set by the pipeline from the text encoder
        hidden: int = positive(16)  # GRU width per direction

    consumes = "complex_stft"
    produces = "complex_stft"
    tasks = ("extract",)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.input_dim = self.output_dim = config.input_dim
        self.query_dim = config.query_dim
        self.token_score = nn.Linear(config.query_dim, 1)
        self.film = nn.Linear(config.query_dim, 2 * config.hidden)
        self.proj_in = nn.Linear(config.input_dim, config.hidden)
        self.gru = nn.GRU(config.hidden, config.hidden, batch_first=True, bidirectional=True)
        self.proj_out = nn.Linear(2 * config.hidden, config.input_dim)

    def query_vector(self, query: TextEmbedding) -> Tensor:
        """query tokens [B, N, query_dim], mask [B, N] -> [B, query_dim]."""
        tokens = query.tokens.to(self.proj_in.weight.dtype)
        return masked_attention_pool(tokens, query.mask.bool(), self.token_score(tokens).squeeze(-1))

    def mask(self, magnitude: Tensor, lengths: Tensor, query: Tensor) -> Tensor:
        """magnitude [B, F, bins], lengths long [B], query [B, query_dim] -> mask [B, F, bins] in [0, 1]."""
        scale, shift = self.film(query).unsqueeze(1).chunk(2, dim=-1)
        x = self.proj_in(torch.log1p(magnitude)) * (1 + scale) + shift
        valid = lengths.clamp(1, x.shape[1]).cpu()  # pack_padded_sequence wants lengths >= 1 on the CPU
        packed = pack_padded_sequence(x, valid, batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])
        return torch.sigmoid(self.proj_out(h))

    def separate(self, mixture: AudioFeatures, query: TextEmbedding, tasks: Tensor) -> AudioFeatures:
        frames = mixture.frames
        magnitude = frames.abs().to(self.proj_in.weight.dtype)
        mask = self.mask(magnitude, mixture.lengths, self.query_vector(query))
        lengths = mixture.lengths.to(frames.device)
        valid = torch.arange(frames.shape[1], device=frames.device)[None, :] < lengths[:, None]
        target = frames * (mask.float() * valid[..., None])
        return AudioFeatures(frames=target, lengths=mixture.lengths, frame_rate=mixture.frame_rate)
