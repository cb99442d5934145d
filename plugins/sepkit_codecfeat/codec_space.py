"""The codec embedding space both ``codec-latents`` components work in, and which codecs have one.

A codec (any registered ``codec``, named by a ``codec: {name: ..., <its keys>}`` sub-section) gives
``codec-latents`` its frame embeddings when

1. its ``encode`` returns ``CodecFrames.latents`` float [B, F, G * c] at its ``frame_rate``: for
   each code frame, the code vectors of its G codebook groups concatenated group by group
   (group g in channels g * c ... (g + 1) * c - 1), and
2. it exposes those codebooks: a tensor attribute ``codebooks`` float [G, K, c] (G =
   ``num_codebooks``, K = ``codebook_size``) on the codec itself or on one of its submodules.

Then the nearest code of each group (``nearest_codes``, Euclidean) turns embeddings back into codes
the codec decodes, and for the codec's own latents it gives back the codec's own codes.
``tfcodec`` has both (its group vector quantiser). EnCodec's residual quantiser (``encodec``,
``audiocraft-encodec``) returns the *sum* of its codebooks' vectors, which a nearest code per group
cannot undo, and ``mulaw`` has neither latents nor codebooks: those are refused with a
``SepkitError`` naming what is missing.

The codec is frozen (no gradients, always in eval mode). Its weights come from its own section
(e.g. ``checkpoint:``) and are part of the component's state dict as ``codec.*``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sepkit.errors import SepkitError
from sepkit.interfaces import Codec
from sepkit.registry import Registry

REPRESENTATION = "codec_latents"
CODEBOOKS_ATTRIBUTE = "codebooks"


def codebook_owner(codec: Codec, who: str) -> str:
    """Name of the codec's submodule holding ``codebooks`` [G, K, c] ("" = the codec itself).

    Raises ``SepkitError`` if the codec has no such tensor (see the module docstring).
    """
    groups, size = int(codec.num_codebooks), int(codec.codebook_size)
    for name, module in codec.named_modules():  # the codec itself first
        books = getattr(module, CODEBOOKS_ATTRIBUTE, None)
        if isinstance(books, Tensor) and books.dim() == 3 and tuple(books.shape[:2]) == (groups, size):
            return name
    raise SepkitError(
        f"{who}: codec {type(codec).__name__} exposes no per-group codebooks: codec-latents needs a tensor "
        f"attribute '{CODEBOOKS_ATTRIBUTE}' [num_codebooks={groups}, codebook_size={size}, code_dim] on the codec or "
        "one of its modules, and encode() returning latents [batch, frames, num_codebooks * code_dim] (the chosen "
        "code vectors, group by group). tfcodec has both; residual quantisers (encodec, audiocraft-encodec) sum "
        "their codebooks' vectors and mulaw has no latents, so they cannot be used"
    )


def nearest_codes(frames: Tensor, codebooks: Tensor) -> Tensor:
    """frames float [B, F, G * c], codebooks float [G, K, c] -> codes long [B, G, F].

    Per frame and group, the index of the nearest code vector (Euclidean, computed in float32).
    """
    b, f, _ = frames.shape
    groups, _, c = codebooks.shape
    x = frames.float().reshape(b, f, groups, c)
    books = codebooks.float()
    distances = (
        x.pow(2).sum(-1, keepdim=True) - 2 * torch.einsum("bfgc,gkc->bfgk", x, books) + books.pow(2).sum(-1)[None, None]
    )
    return distances.argmin(-1).permute(0, 2, 1)


class CodecSpace:
    """Mixin of the two ``codec-latents`` components: holds the frozen ``codec`` and finds its codebooks.

    Call ``attach_codec`` in ``__init__`` (after ``Component.__init__``). Attributes: ``codec``,
    ``latent_dim`` (G * c, the embedding width), ``codebooks`` (float [G, K, c], looked up on each
    access so that it follows the codec across devices).
    """

    codec: Codec
    latent_dim: int

    def attach_codec(self, registry: Registry, section: Any, where: str, who: str) -> None:
        """Build ``section`` (``{name: tfcodec, ...}``) frozen from ``registry`` and find its codebooks."""
        self.codec = registry.build_frozen("codec", section, where=where, role=Codec)
        self._codebook_owner = codebook_owner(self.codec, f"{who} ({where}: {section['name']!r})")
        groups, _, code_dim = self.codebooks.shape
        self.latent_dim = int(groups * code_dim)

    @property
    def codebooks(self) -> Tensor:
        return getattr(self.codec.get_submodule(self._codebook_owner), CODEBOOKS_ATTRIBUTE)

    def train(self, mode: bool = True):
        super().train(mode)
        self.codec.eval()  # frozen: no dropout, no batch statistics or codebook updates
        return self
