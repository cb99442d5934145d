"""``LocalSeparator`` (registered as ``hsm-local``): HSM-TSS's local-semantic separation H2 (sec. III-D).

A 12-layer NAR transformer (width 768, 8 heads, FFN 4x, pre-norm) maps the mixture's AudioMAE
patch tokens S_mix [B, N, C_s] (N = 512 at full size, time-major 64 x 8) to the target's, with
the conditioning as extra tokens of the same self-attention sequence (in-context conditioning)::

    [ W_in S_mix + P (N tokens) | W_g G (1 token) | W_t T_cap ... | W_t T_task ... ]
        -> transformer -> W_out on the N patch positions = S_hat [B, N, C_s]

P is a learnable position embedding per patch. G [B, C_g] is the global feature: with a
``global_stage: {name: hsm-global, ...}`` sub-section, the prediction G_hat of that stage from
the mixture's ``AudioFeatures.pooled`` (G_mix, the Q-Audio feature the ``qaudio`` audio encoder
adds); without one (the paper's Ours_local) there is no G token. Training feeds the ground
truth G_tgt instead through ``separate_with_global``. Patch tokens past ``lengths`` and padded
query tokens are masked out of the attention, and the output is zero past ``lengths``.

Full size: 87.8 M parameters, 132.1 M with the 44.3 M global stage (``parameter_count``;
the paper's Table X gives 129.9 M for the two stages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor, nn

from sepkit.config import fraction, positive
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, Separator, TextEmbedding
from sepkit.registry import Registry

from .global_stage import REPRESENTATION, GlobalSeparator, GlobalStageConfig
from .transformer import NARTransformer, block_parameters, padding_keep

GLOBAL_STAGE = "hsm-global"


@dataclass
class LocalStageConfig:
    input_dim: int = positive(768)  # C_s: patch token width (the pipeline fills it from the audio encoder)
    query_dim: int = positive(768)  # C_t: caption and task token width (the pipeline fills it from the text encoder)
    global_dim: int = positive(768)  # C_g: width of G (the global stage's input and output)
    hidden: int = positive(768)  # D
    depth: int = positive(12)
    heads: int = positive(8)
    ffn_ratio: float = positive(4.0)
    dropout: float = fraction(0.1)
    num_patches: int = positive(512)  # N: learnable position embeddings (AudioMAE: 64 x 8 = 512 for 10.24 s)
    representation: str = REPRESENTATION  # consumed and produced (the CLAP-patch ablation changes it)
    global_stage: Optional[dict[str, Any]] = None  # {name: hsm-global, <its keys>}; absent = Ours_local (no G)
    checkpoint: Optional[str] = None  # a sepkit checkpoint: an hsm run's best.ckpt (separator.*)


class LocalSeparator(Separator):
    """H2 (with H1 inside if ``global_stage`` is set): S_mix [B, N, C_s] + query -> S_hat [B, N, C_s]."""

    Config = LocalStageConfig
    tasks = ("extract", "remove")
    task_tokens = True

    def __init__(self, config: LocalStageConfig, registry: Registry) -> None:
        """``registry`` builds the ``global_stage`` sub-section (``Registry.build`` passes itself)."""
        super().__init__(config)
        for key in ("input_dim", "query_dim", "global_dim", "hidden", "depth", "heads", "num_patches"):
            if getattr(config, key) < 1:
                raise SepkitError(f"separator hsm-local: {key} must be at least 1, got {getattr(config, key)}")
        if config.hidden % config.heads:
            raise SepkitError(
                f"separator hsm-local: hidden ({config.hidden}) must be divisible by heads ({config.heads})"
            )
        self.consumes = self.produces = config.representation
        self.input_dim = self.output_dim = config.input_dim
        self.query_dim = config.query_dim
        self.global_dim = config.global_dim
        self.global_stage = self._build_global_stage(config, registry) if config.global_stage is not None else None
        d = config.hidden
        self.patch_in = nn.Linear(config.input_dim, d)  # W_in
        self.position = nn.Parameter(torch.zeros(1, config.num_patches, d))  # P
        nn.init.normal_(self.position, std=0.02)
        self.global_in = nn.Linear(config.global_dim, d) if self.global_stage is not None else None  # W_g
        self.text_in = nn.Linear(config.query_dim, d)  # W_t
        self.transformer = NARTransformer(d, config.depth, config.heads, config.ffn_ratio, config.dropout)
        self.patch_out = nn.Linear(d, config.input_dim)  # W_out
        if config.checkpoint:
            self.load_weights(config.checkpoint)

    def _build_global_stage(self, config: LocalStageConfig, registry: Registry) -> GlobalSeparator:
        """The ``global_stage`` sub-section through the registry, with this stage's widths as defaults."""
        section = {"name": GLOBAL_STAGE, **dict(config.global_stage)}
        where = "model.separator.global_stage"
        stage = registry.build(
            "separator",
            section,
            where=where,
            global_dim=config.global_dim,
            query_dim=config.query_dim,
            input_dim=config.input_dim,
            consumes=config.representation,
        )
        if not isinstance(stage, GlobalSeparator):
            raise SepkitError(f"{where}: name must be {GLOBAL_STAGE!r}, got {section['name']!r}")
        for key in ("global_dim", "query_dim"):
            if getattr(stage, key) != getattr(config, key):
                raise SepkitError(
                    f"{where}.{key} is {getattr(stage, key)} but hsm-local has {key} {getattr(config, key)}; "
                    f"drop it from the sub-section (it inherits hsm-local's)"
                )
        return stage

    @staticmethod
    def parameter_count(config: LocalStageConfig, with_global: bool = True) -> int:
        """Parameters of the local stage built with ``config`` (plus its global stage if ``with_global``).

        The formula the tests check against the module: blocks + final LayerNorm + W_in + P + W_g
        (only with a global stage) + W_t + W_out.
        """
        d, cs, cg, ct = config.hidden, config.input_dim, config.global_dim, config.query_dim
        has_global = config.global_stage is not None
        local = (
            config.depth * block_parameters(d, config.ffn_ratio)
            + 2 * d
            + (cs * d + d)
            + config.num_patches * d
            + ((cg * d + d) if has_global else 0)
            + (ct * d + d)
            + (d * cs + cs)
        )
        if not (has_global and with_global):
            return local
        stage_keys = {k: v for k, v in config.global_stage.items() if k != "name"}
        stage = GlobalStageConfig(**{"global_dim": cg, "query_dim": ct, "input_dim": cs, **stage_keys})
        return local + GlobalSeparator.parameter_count(stage)

    def load_weights(self, path: str) -> None:
        """Load every ``separator.*`` key of a sepkit checkpoint (the global stage's own ``checkpoint:`` wins)."""
        from .weights import load_stage_weights

        load_stage_weights(self, path, "separator hsm-local")
        if self.global_stage is not None and self.global_stage.config.checkpoint:
            self.global_stage.load_weights(self.global_stage.config.checkpoint)

    def local_parameters(self) -> list[nn.Parameter]:
        """The parameters of the local stage alone (everything but ``global_stage``)."""
        own = {id(p) for p in self.global_stage.parameters()} if self.global_stage is not None else set()
        return [p for p in self.parameters() if id(p) not in own]

    # --- separation ----------------------------------------------------------------------
    def predict_global(self, mixture: AudioFeatures, query: TextEmbedding) -> Tensor:
        """G_hat [B, C_g] from the mixture's pooled G_mix and the query (needs a global stage)."""
        if self.global_stage is None:
            raise SepkitError("separator hsm-local has no global_stage; add 'global_stage: {name: hsm-global}'")
        return self.global_stage.predict(self.global_stage.mixture_global(mixture), query)

    def separate(self, mixture: AudioFeatures, query: TextEmbedding, tasks: Tensor) -> AudioFeatures:
        """mixture: frames [B, N, C_s]; query [B, M, C_t] (task tokens appended) -> S_hat [B, N, C_s].

        ``tasks`` is carried by the query's task tokens; ``pooled`` of the result is the G used.
        """
        g = self.predict_global(mixture, query) if self.global_stage is not None else None
        return self.separate_with_global(mixture, query, g)

    def separate_with_global(
        self, mixture: AudioFeatures, query: TextEmbedding, global_feature: Optional[Tensor]
    ) -> AudioFeatures:
        """The local stage alone, conditioned on an explicit G [B, C_g] (G_tgt in training; None for Ours_local)."""
        frames = mixture.frames
        if frames.dim() != 3 or frames.shape[-1] != self.input_dim:
            raise SepkitError(
                f"separator hsm-local expects patch tokens [batch, N, {self.input_dim}], got {tuple(frames.shape)}"
            )
        n = frames.shape[1]
        if n > self.config.num_patches:
            raise SepkitError(
                f"separator hsm-local: {n} patch tokens but num_patches is {self.config.num_patches}; "
                "set num_patches to the audio encoder's token count (512 for AudioMAE over 10.24 s)"
            )
        if query.tokens.shape[-1] != self.query_dim:
            raise SepkitError(
                f"separator hsm-local: query tokens have width {query.tokens.shape[-1]}, query_dim is {self.query_dim}"
            )
        if global_feature is None and self.global_in is not None:
            raise SepkitError("separator hsm-local has a global stage: give it a global feature G [batch, global_dim]")
        if global_feature is not None and self.global_in is None:
            raise SepkitError(
                "separator hsm-local has no global stage (Ours_local), so it takes no global feature; "
                "add 'global_stage: {name: hsm-global}' to condition it on one"
            )
        lengths = mixture.lengths.to(frames.device)
        b = frames.shape[0]
        parts = [self.patch_in(frames) + self.position[:, :n]]
        keeps = [padding_keep(lengths, n)]
        if global_feature is not None:
            parts.append(self.global_in(global_feature)[:, None])
            keeps.append(torch.ones(b, 1, dtype=torch.bool, device=frames.device))
        parts.append(self.text_in(query.tokens.to(frames.device)))
        keeps.append(query.mask.to(frames.device))
        hidden = self.transformer(torch.cat(parts, dim=1), torch.cat(keeps, dim=1))
        out = self.patch_out(hidden[:, :n]) * keeps[0][..., None]
        return AudioFeatures(frames=out, lengths=mixture.lengths, frame_rate=mixture.frame_rate, pooled=global_feature)
