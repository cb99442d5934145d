"""``GlobalSeparator`` (registered as ``hsm-global``): HSM-TSS's global-semantic separation H1 (sec. III-C).

A 6-layer NAR transformer (width 768, 8 heads, FFN 4x, pre-norm) predicts the target's global
feature G_hat [B, C_g] (Q-Audio space) from one sequence::

    [ W_g G_mix | W_t T_cap ... | W_t T_task ... | o ]   ->  transformer  ->  W_out h_o = G_hat
       1 token    caption tokens   task word pieces   1 learnable output token

G_mix [B, C_g] is the mixture's global feature, ``AudioFeatures.pooled`` of the audio encoder
(``qaudio`` puts the Q-Audio feature there). The query arrives as caption tokens followed by the
task word's vocabulary embeddings (``sepkit.task_tokens``: the pipeline and the ``hsm`` system
append them); padded query tokens are masked out of the attention. W_g, W_t, W_out are linear
projections C_g -> D, C_t -> D, D -> C_g.

Used inside ``hsm-local`` (its ``global_stage:`` sub-section), or alone as a separator whose
output is G_hat as a one-frame AudioFeatures (``frames`` [B, 1, C_g], ``pooled`` G_hat).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from sepkit.config import fraction, positive
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, Separator, TextEmbedding

from .transformer import NARTransformer, block_parameters

REPRESENTATION = "audiomae_patches"  # what the qaudio / audiomae audio encoders produce
GLOBAL_REPRESENTATION = "hsm_global"  # G_hat as a one-frame AudioFeatures


@dataclass
class GlobalStageConfig:
    global_dim: int = positive(768)  # C_g: width of G_mix (mixture.pooled) and of G_hat
    # C_t: width of the caption and task tokens (the pipeline fills it from the text encoder)
    query_dim: int = positive(768)
    # frame width of the mixture features (checked by the pipeline; this stage reads pooled)
    input_dim: int = positive(768)
    hidden: int = positive(768)  # D
    depth: int = positive(6)
    heads: int = positive(8)
    ffn_ratio: float = positive(4.0)
    dropout: float = fraction(0.1)
    consumes: str = REPRESENTATION  # the audio encoder's representation (its pooled must be G_mix)
    checkpoint: Optional[str] = None  # a sepkit checkpoint: an hsm run's best.ckpt (separator.global_stage.*)


class GlobalSeparator(Separator):
    """H1: G_mix [B, C_g] + query tokens [B, M, C_t] -> G_hat [B, C_g] (see the module docstring)."""

    Config = GlobalStageConfig
    produces = GLOBAL_REPRESENTATION
    tasks = ("extract", "remove")
    task_tokens = True

    def __init__(self, config: GlobalStageConfig) -> None:
        super().__init__(config)
        for key in ("global_dim", "query_dim", "input_dim", "hidden", "depth", "heads"):
            if getattr(config, key) < 1:
                raise SepkitError(f"separator hsm-global: {key} must be at least 1, got {getattr(config, key)}")
        if config.hidden % config.heads:
            raise SepkitError(
                f"separator hsm-global: hidden ({config.hidden}) must be divisible by heads ({config.heads})"
            )
        self.consumes = config.consumes
        self.input_dim = config.input_dim
        self.query_dim = config.query_dim
        self.global_dim = config.global_dim
        self.output_dim = config.global_dim
        d = config.hidden
        self.global_in = nn.Linear(config.global_dim, d)  # W_g: G_mix -> D
        self.text_in = nn.Linear(config.query_dim, d)  # W_t: caption and task tokens -> D
        self.output_token = nn.Parameter(torch.zeros(1, 1, d))  # o
        nn.init.normal_(self.output_token, std=0.02)
        self.transformer = NARTransformer(d, config.depth, config.heads, config.ffn_ratio, config.dropout)
        self.global_out = nn.Linear(d, config.global_dim)  # W_out: h_o -> G_hat
        if config.checkpoint:
            self.load_weights(config.checkpoint)

    @staticmethod
    def parameter_count(config: GlobalStageConfig) -> int:
        """Parameters of a stage built with ``config`` (the formula the tests check against the module)."""
        d, cg, ct = config.hidden, config.global_dim, config.query_dim
        return (
            config.depth * block_parameters(d, config.ffn_ratio)
            + 2 * d  # final LayerNorm
            + (cg * d + d)  # W_g
            + (ct * d + d)  # W_t
            + d  # output token
            + (d * cg + cg)  # W_out
        )

    def load_weights(self, path: str) -> None:
        """Load from a sepkit checkpoint: ``separator.global_stage.*`` (hsm-local) or ``separator.*`` (hsm-global)."""
        from .weights import load_stage_weights

        load_stage_weights(self, path, "separator hsm-global", prefix="global_stage.")

    def mixture_global(self, mixture: AudioFeatures) -> Tensor:
        """G_mix [B, C_g]: ``mixture.pooled``, checked."""
        pooled = mixture.pooled
        if pooled is None or pooled.dim() != 2 or pooled.shape[-1] != self.global_dim:
            got = None if pooled is None else tuple(pooled.shape)
            raise SepkitError(
                f"separator hsm-global needs the mixture's global feature G_mix in AudioFeatures.pooled "
                f"[batch, {self.global_dim}], got {got}; use an audio encoder that provides it (qaudio, part: audio) "
                f"or set global_dim to its pooled width"
            )
        return pooled

    def predict(self, g_mix: Tensor, query: TextEmbedding) -> Tensor:
        """g_mix: [B, C_g]; query: tokens [B, M, C_t] with mask [B, M] -> G_hat [B, C_g]."""
        if query.tokens.shape[-1] != self.query_dim:
            raise SepkitError(
                f"separator hsm-global: query tokens have width {query.tokens.shape[-1]}, query_dim is {self.query_dim}"
            )
        b = g_mix.shape[0]
        mask = query.mask.to(g_mix.device)
        sequence = torch.cat(
            [self.global_in(g_mix)[:, None], self.text_in(query.tokens), self.output_token.expand(b, -1, -1)], dim=1
        )
        one = torch.ones(b, 1, dtype=torch.bool, device=g_mix.device)
        keep = torch.cat([one, mask, one], dim=1)
        hidden = self.transformer(sequence, keep)
        return self.global_out(hidden[:, -1])

    def separate(self, mixture: AudioFeatures, query: TextEmbedding, tasks: Tensor) -> AudioFeatures:
        """G_hat as one frame: frames [B, 1, C_g], lengths 1, pooled G_hat [B, C_g]."""
        g_hat = self.predict(self.mixture_global(mixture), query)
        b = g_hat.shape[0]
        seconds = mixture.frames.shape[1] / mixture.frame_rate  # one frame for the whole clip
        lengths = torch.ones(b, dtype=torch.long, device=g_hat.device)
        return AudioFeatures(frames=g_hat[:, None], lengths=lengths, frame_rate=1.0 / seconds, pooled=g_hat)
