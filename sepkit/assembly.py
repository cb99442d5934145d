"""Assembling a separation pipeline's components from a recipe: the one place that does it.

    components = build_components(recipe, registry)   # every section checked, then built in order
    check_compatible(components)                      # connected components agree on what flows between them
    stored_kinds(recipe)                              # which of them a checkpoint stores
    component_state(components, stored)               # {"separator.<key>": tensor, ...}

``SeparationPipeline.from_recipe`` (inference, benchmarks, ``evaluate``, the ``separation`` training
system) and training systems that build part of a pipeline (HSM-TSS's stages build the encoders and
the separator, no decoder) all go through these functions, so a recipe gives the same components,
the same handshake of sizes and the same checkpoint layout everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from sepkit.errors import SepkitError

PIPELINE_KINDS = ("text_encoder", "audio_encoder", "separator", "decoder")
"""The kinds of a separation pipeline, in build order (each may take sizes from the ones before it)."""


def handshake(kind: str, built: dict[str, nn.Module]) -> dict[str, Any]:
    """Config defaults ``kind`` takes from the components already ``built`` (a recipe value wins).

    separator: ``input_dim`` = audio encoder's ``output_dim``, ``query_dim`` = text encoder's ``embed_dim``,
    ``sample_rate`` = audio encoder's; decoder: ``input_dim`` = separator's ``output_dim``, ``sample_rate``
    = audio encoder's.
    """
    text, audio, sep = built.get("text_encoder"), built.get("audio_encoder"), built.get("separator")
    if kind == "separator":
        out = {}
        if audio is not None:
            out.update(input_dim=audio.output_dim, sample_rate=audio.sample_rate)
        if text is not None:
            out["query_dim"] = text.embed_dim
        return out
    if kind == "decoder":
        out = {"input_dim": sep.output_dim} if sep is not None else {}
        if audio is not None:
            out["sample_rate"] = audio.sample_rate
        return out
    return {}


def build_components(recipe: Any, registry: Any, kinds: Sequence[str] = PIPELINE_KINDS) -> dict[str, nn.Module]:
    """Build ``model.<kind>`` for each of ``kinds`` (in ``PIPELINE_KINDS`` order) from ``registry``.

    Every section's component name and keys are checked before any component is built (a typo in the
    decoder fails before a large encoder loads); each section's values are validated once, by the build
    (``Registry.build``), with the sizes handed down from upstream. Frozen sections (``freeze: true``)
    come back with ``requires_grad`` off; each module gets ``registry_name`` (its recipe name, for messages).
    """
    for kind in kinds:
        if recipe.section(kind) is None:
            raise SepkitError(f"{recipe.source}: this recipe needs 'model.{kind}'")
    check_sections(recipe, registry, kinds)
    built: dict[str, nn.Module] = {}
    for kind in (k for k in PIPELINE_KINDS if k in kinds):
        section = recipe.section(kind)
        try:
            module = registry.build(kind, section, where=f"model.{kind}", **handshake(kind, built))
        except SepkitError as exc:
            raise SepkitError(f"{recipe.source}: {exc}") from None
        module.registry_name = section.name
        if bool(section.get("freeze", False)):
            module.requires_grad_(False)
        built[kind] = module
    return built


def check_sections(recipe: Any, registry: Any, kinds: Sequence[str] = PIPELINE_KINDS) -> None:
    """Each ``model.<kind>`` section of ``kinds`` names a registered component and only keys of its Config."""
    from sepkit.config import check_config_keys
    from sepkit.registry import split_section

    for kind in kinds:
        where = f"model.{kind}"
        try:
            name, options = split_section(recipe.section(kind), where)
            check_config_keys(registry.load_class(kind, name), options, where, f"{kind} {name!r}")
        except SepkitError as exc:
            raise SepkitError(f"{recipe.source}: {exc}") from None


def stored_kinds(recipe: Any, kinds: Sequence[str] = PIPELINE_KINDS) -> list[str]:
    """The kinds whose weights a checkpoint stores: trained ones, unless ``in_checkpoint: false``; frozen
    pretrained ones only with ``in_checkpoint: true`` (otherwise they are rebuilt from their own source)."""
    out = []
    for kind in kinds:
        section = recipe.section(kind)
        if section is None:
            continue
        frozen = bool(section.get("freeze", False))
        if bool(section.get("in_checkpoint", not frozen)):
            out.append(kind)
    return out


def component_state(components: dict[str, nn.Module], kinds: Sequence[str]) -> dict[str, Tensor]:
    """``{"<kind>.<key>": tensor}`` of the ``kinds`` among ``components``: the layout of sepkit checkpoints."""
    return {f"{kind}.{key}": value for kind in kinds for key, value in components[kind].state_dict().items()}


def plugin_versions(recipe: Any, registry: Any, kinds: Sequence[str] = (*PIPELINE_KINDS, "instruction_parser")):
    """{distribution: version} of the plugins providing the components ``recipe`` names among ``kinds``."""
    out = {}
    for kind in kinds:
        section = recipe.section(kind)
        if section is not None:
            entry = registry.get(kind, section.name)
            out[entry.provider] = entry.version
    return out


def _label(kind: str, module: nn.Module) -> str:
    return f"{kind} {getattr(module, 'registry_name', type(module).__name__)!r}"


COMPATIBILITY = (
    # (consumer kind, its attribute, producer kind, its attribute)
    ("separator", "consumes", "audio_encoder", "representation"),
    ("separator", "input_dim", "audio_encoder", "output_dim"),
    ("separator", "query_dim", "text_encoder", "embed_dim"),
    ("decoder", "consumes", "separator", "produces"),
    ("decoder", "input_dim", "separator", "output_dim"),
    ("decoder", "frame_rate", "audio_encoder", "frame_rate"),
)


def check_compatible(components: dict[str, nn.Module]) -> None:
    """Raise naming both components and both values if two connected ``components`` disagree.

    Only the pairs whose two kinds are both present are checked (a training system may build a part).
    """
    for a_kind, a_attr, b_kind, b_attr in COMPATIBILITY:
        if a_kind not in components or b_kind not in components:
            continue
        a, b = components[a_kind], components[b_kind]
        va, vb = getattr(a, a_attr), getattr(b, b_attr)
        same = abs(va - vb) < 1e-6 if isinstance(va, float) or isinstance(vb, float) else va == vb
        if not same:
            raise SepkitError(
                f"{_label(a_kind, a)} has {a_attr}={va!r} but {_label(b_kind, b)} "
                f"has {b_attr}={vb!r}; make them agree in the recipe"
            )


__all__ = [
    "PIPELINE_KINDS",
    "build_components",
    "check_sections",
    "check_compatible",
    "component_state",
    "handshake",
    "plugin_versions",
    "stored_kinds",
]
