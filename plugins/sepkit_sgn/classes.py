"""Text queries -> SGN class tokens: the nearest class name in a text encoder's embedding space.

SGN separates by category: its queries are class names. A free-text query ("a violin playing a
melody", "the cello") is mapped to one class by cosine similarity between the pipeline's pooled
query embedding [B, D] and the pooled embeddings of the class names [C, D] (each name put into
``template``, e.g. "{}" or "the sound of a {}"), computed once when the separator is built by the
text encoder named in the separator's ``class_text_encoder`` section (normally the pipeline's own,
``${model.text_encoder}``). The argmax wins; there is no "none of these" class.

The class-name encoder is built with torch seeded to 0, so random-weight encoders give the same
class embeddings on every build; but matching is only meaningful when both encoders carry the same
(pretrained) weights, e.g. ``minilm``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from sepkit.errors import SepkitError
from sepkit.registry import Registry


def class_name_embeddings(
    registry: Registry, section: dict[str, Any], names: list[str], template: str, query_dim: int
) -> Tensor:
    """Unit-norm pooled embeddings float [C, query_dim] of ``template.format(name)`` for each class name."""
    if not section or not isinstance(section.get("name"), str):
        raise SepkitError(
            "sgn: class_text_encoder must be a text encoder section with a 'name' (the pipeline's own: "
            "class_text_encoder: ${model.text_encoder}); it embeds the class names that text queries are matched to"
        )
    if "{}" not in template:
        raise SepkitError(f"sgn: class_template {template!r} needs a '{{}}' where the class name goes")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = registry.build_frozen("text_encoder", dict(section), where="model.separator.class_text_encoder")
    if encoder.embed_dim != query_dim:
        raise SepkitError(
            f"sgn: class_text_encoder {section['name']!r} gives {encoder.embed_dim}-d embeddings but the query is "
            f"{query_dim}-d; use the pipeline's text encoder (class_text_encoder: ${{model.text_encoder}})"
        )
    with torch.no_grad():
        pooled = encoder.encode_text([template.format(name) for name in names]).pooled.float()
    return F.normalize(pooled, dim=-1)


def nearest_class(query: Tensor, class_embeddings: Tensor) -> Tensor:
    """query pooled float [B, D], class embeddings unit-norm [C, D] -> long [B], argmax of the cosines."""
    return (F.normalize(query.float(), dim=-1) @ class_embeddings.to(query.device).T).argmax(-1)
