"""``SGNSeparator`` (registered as ``sgn``): the Semantic Grouping Network (Mo & Tian 2024, arXiv 2407.03736).

Learnable class tokens aggregate category-wise source features from the mixture and guide a
decoder that separates every category in one pass (one mask per class token)::

    X = mixture frames, complex [B, T, bins]             (stft: n_fft 1022, hop 256 at 11025 Hz -> 512 bins)
    S = log1p(|X|) [B, 1, T, bins], zero-padded to T', F' multiples of 2^depth
    h_1..h_L = UNetEncoder(S)                            (unet.py; h_L [B, C_L, T'/2^L, F'/2^L])
    f_p = Linear(h_L) as P = (T'/2^L)(F'/2^L) patch tokens [B, P, D]
    c, f = ClassTokenTransformer([class tokens; f_p])    (grouping.py)
    g = CategoryAwareGrouping(c, f)                      [B, C, D], category-wise source features
    E = UNetDecoder(h_L, h_1..h_{L-1})                   [B, K, T', F'] audio feature channels
    M_i = sigmoid(<W g_i, E> + b)                        [B, C, T, bins], a ratio mask per class token
    Y_i = M_i · X                                        (mixture phase)
    p_i = Linear(g_i)                                    [B, C] presence logits (``presence_head: true`` only)

``separate_all`` returns every class's masks (any number of sources, no retraining).
``separate`` serves sepkit's text queries: the pipeline's pooled query embedding picks one class
(``classes.py``: cosine with the class names' embeddings) and its Y is returned. Two ways to train:
system ``separation`` (single-target loss through the class token the query picks) or system
``sgn`` (``system.py``: SGN's own objective on batches that carry every source, the all-sources
loss through each present class's mask plus the class tokens' presence classification, which
needs ``presence_head: true``). The head is off by default so checkpoints without it (the shipped
``recipes/mini/sgn.ckpt``) load strictly; ``class_outputs`` gives masks and presence logits.

Sizes (``recipes/sgn.yaml``): the summary of the paper gives none; the defaults follow Sound of
Pixels, which SGN's MUSIC setup builds on (7-level U-Net, 64..512 channels, K = 32), with D = 512,
3 transformer layers of 8 heads (guesses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import MISSING
from torch import Tensor, nn
from torch.nn import functional as F

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, Separator, TextEmbedding
from sepkit.oracles import IdealRatioMaskOracle
from sepkit.registry import Registry

from .classes import class_name_embeddings, nearest_class
from .grouping import CategoryAwareGrouping, ClassTokenTransformer
from .unet import UNetDecoder, UNetEncoder

SOP_MULTIPLIERS = (1, 2, 4, 8, 8, 8, 8)
CONDITIONINGS = ("class_tokens", "query")  # Sound of Pixels' U-Net: 64, 128, 256, 512, 512, 512, 512


class SGNSeparator(IdealRatioMaskOracle, Separator):
    """mixture complex [B, T, input_dim] + query pooled [B, query_dim] -> queried class, complex [B, T, input_dim]."""

    @dataclass
    class Config:
        input_dim: int = positive(MISSING)  # STFT bins; set by the pipeline from the audio encoder
        query_dim: int = positive(MISSING)  # text embedding width; set by the pipeline from the text encoder
        class_names: list[str] = MISSING  # one learnable class token per name (e.g. MUSIC's 11 instruments)
        class_text_encoder: dict[str, Any] = field(default_factory=dict)  # embeds the names: ${model.text_encoder}
        class_template: str = "{}"  # text embedded for each class name
        base_channels: int = positive(64)  # first U-Net level (Sound of Pixels: 64)
        channel_multipliers: list[int] = positive(default_factory=lambda: list(SOP_MULTIPLIERS))  # one per level
        mask_channels: int = positive(32)  # K, decoder feature channels per time-frequency bin (Sound of Pixels: 32)
        embed_dim: int = positive(512)  # D, class tokens and patch features (guess)
        num_layers: int = positive(3)  # transformer layers over [class tokens; patches] (guess)
        num_heads: int = positive(8)
        grouping_temperature: float = positive(0.1)  # softmax temperature of the patch-to-class assignment (guess)
        presence_head: bool = False  # a Linear(D, 1) on each g_i: class presence logits (training system sgn)
        # class_tokens: SGN (one learnable token per class, the query picks a class's mask); query: the paper's
        # ablation, the same network with one token made from the query embedding instead of class tokens
        conditioning: str = "class_tokens"

    consumes = "complex_stft"
    produces = "complex_stft"
    tasks = ("extract",)

    def __init__(self, config: Config, registry: Registry) -> None:
        """``registry`` builds ``class_text_encoder``, which embeds the class names."""
        super().__init__(config)
        names = list(config.class_names)
        if not names or len(set(names)) != len(names):
            raise SepkitError(f"sgn: class_names must be a non-empty list of distinct names, got {names}")
        multipliers = list(config.channel_multipliers)
        if not multipliers or min(multipliers) < 1 or config.base_channels < 1:
            raise SepkitError(f"sgn: channel_multipliers (one per U-Net level) and base_channels must be positive, "
                              f"got {multipliers} and {config.base_channels}")  # fmt: skip
        if config.embed_dim % config.num_heads:
            raise SepkitError(f"sgn: embed_dim {config.embed_dim} must be divisible by num_heads {config.num_heads}")
        self.input_dim = self.output_dim = config.input_dim
        self.query_dim = config.query_dim
        self.class_names = tuple(names)
        self.depth = len(multipliers)
        channels = [config.base_channels * m for m in multipliers]
        self.encoder = UNetEncoder(channels)
        self.patch_projection = nn.Linear(channels[-1], config.embed_dim)
        if config.conditioning not in CONDITIONINGS:
            raise SepkitError(
                f"sgn: conditioning must be one of {', '.join(CONDITIONINGS)}, got {config.conditioning!r}"
            )
        by_query = config.conditioning == "query"
        if by_query and config.presence_head:
            raise SepkitError(
                "sgn: presence_head needs class tokens; with conditioning: query set presence_head: false"
            )
        self.tokens = ClassTokenTransformer(
            0 if by_query else len(names), config.embed_dim, config.num_layers, config.num_heads
        )
        self.query_token = nn.Linear(config.query_dim, config.embed_dim) if by_query else None
        self.grouping = CategoryAwareGrouping(config.embed_dim, config.grouping_temperature)
        self.decoder = UNetDecoder(channels, config.mask_channels)
        self.mask_projection = nn.Linear(config.embed_dim, config.mask_channels)
        self.mask_bias = nn.Parameter(torch.zeros(()))
        self.presence = nn.Linear(config.embed_dim, 1) if config.presence_head else None
        embeddings = class_name_embeddings(
            registry, config.class_text_encoder, names, config.class_template, config.query_dim
        )
        self.register_buffer("class_embeddings", embeddings, persistent=False)

    # --- the network ------------------------------------------------------------------
    def class_masks(self, magnitude: Tensor, lengths: Tensor) -> Tensor:
        """magnitude float [B, T, bins], valid frames long [B] -> masks float [B, C, T, bins] in (0, 1)."""
        return self.class_outputs(magnitude, lengths)[0]

    def class_outputs(
        self, magnitude: Tensor, lengths: Tensor, tokens: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """magnitude float [B, T, bins], valid frames long [B] -> (masks float [B, C, T, bins] in (0, 1),
        presence logits float [B, C] of each class being in the mixture, or None without ``presence_head``).

        ``tokens`` [B, C', D] replace the class tokens (``conditioning: query``: C' = 1, from the query)."""
        batch, frames, bins = magnitude.shape
        unit = 2**self.depth
        x = torch.log1p(magnitude)[:, None]
        x = F.pad(x, (0, -bins % unit, 0, -frames % unit))
        skips = self.encoder(x)
        bottleneck = skips[-1]  # [B, C_L, T'', F'']
        t_cells, f_cells = bottleneck.shape[2], bottleneck.shape[3]
        patches = self.patch_projection(bottleneck.permute(0, 2, 3, 1).reshape(batch, t_cells * f_cells, -1))
        valid_t = torch.arange(t_cells, device=x.device)[None] * unit < lengths.to(x.device)[:, None]  # [B, T'']
        valid = valid_t[:, :, None].expand(-1, -1, f_cells).reshape(batch, -1)
        tokens, patches = self.tokens(patches, valid, tokens)
        groups, _ = self.grouping(tokens, patches, valid)  # [B, C, D]
        features = self.decoder(bottleneck, skips[:-1])[:, :, :frames, :bins]  # [B, K, T, bins]
        logits = torch.einsum("bck,bktf->bctf", self.mask_projection(groups), features) + self.mask_bias
        presence = None if self.presence is None else self.presence(groups)[..., 0].float()
        return torch.sigmoid(logits.float()), presence

    def _check(self, mixture: AudioFeatures) -> Tensor:
        frames = mixture.frames
        if frames.dim() != 3 or frames.shape[-1] != self.input_dim or not frames.is_complex():
            raise SepkitError(
                f"sgn expects complex STFT frames [batch, frames, {self.input_dim}], "
                f"got {frames.dtype}{tuple(frames.shape)}"
            )
        return frames.to(torch.complex64)

    def separate_all(self, mixture: AudioFeatures) -> Tensor:
        """Every class in one pass: complex [B, C, T, bins], class i's estimate at ``[:, i]``."""
        if self.query_token is not None:
            raise SepkitError("sgn: separate_all needs class tokens; this separator has conditioning: query")
        frames = self._check(mixture)
        masks = self.class_masks(frames.abs().to(self.patch_projection.weight.dtype), mixture.lengths)
        return masks * frames[:, None]

    def query_classes(self, query: TextEmbedding) -> Tensor:
        """long [B]: the class each query names (nearest class name by cosine of pooled embeddings)."""
        return nearest_class(query.pooled, self.class_embeddings)

    def separate(self, mixture: AudioFeatures, query: TextEmbedding, tasks: Tensor) -> AudioFeatures:
        frames = self._check(mixture)
        if self.query_token is not None:  # the ablation: one token from the query, its mask
            token = self.query_token(query.pooled.to(self.query_token.weight.dtype))[:, None]
            magnitude = frames.abs().to(self.patch_projection.weight.dtype)
            mask = self.class_outputs(magnitude, mixture.lengths, token)[0][:, 0]
            return AudioFeatures(frames=mask * frames, lengths=mixture.lengths, frame_rate=mixture.frame_rate)
        masks = self.class_masks(frames.abs().to(self.patch_projection.weight.dtype), mixture.lengths)
        chosen = self.query_classes(query).to(masks.device)
        mask = masks[torch.arange(masks.shape[0], device=masks.device), chosen]
        return AudioFeatures(frames=mask * frames, lengths=mixture.lengths, frame_rate=mixture.frame_rate)
