"""Recipes: omegaconf YAML files that assemble a system from registered components.

A recipe names components only through the registry (no ``_target_``, no
imports). Layout::

    extends: base.yaml            # optional, one level, path relative to this file
    name: stft-mask
    description: ...
    checkpoint: null              # default weights, path relative to this file
    model:
      text_encoder: {name: minilm}
      audio_encoder: {name: stft, n_fft: 1024, hop_length: 256}
      separator: {name: mask-net, hidden: 256}
      decoder: {name: istft, n_fft: ${model.audio_encoder.n_fft}, hop_length: 256}
      instruction_parser: {name: rules}
    inference: {device: auto, dtype: float32, chunk_seconds: 30.0, overlap_seconds: 1.0, batch_size: 4}
    train: {...}                  # read by the training engine
    data: {...}

With ``extends``, sections merge key by key, except where the recipe names a different
component than its base (``text_encoder: {name: flan-t5}`` over a qaudio text encoder): then the
base's section is dropped, so a swap is one line. Relative ``checkpoint:`` paths of components
that exist beside the recipe are read from there (``_resolve_weight_paths``).

Command-line overrides are omegaconf dotlists: ``model.separator.hidden=128``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from sepkit.config import non_negative, positive, range_problems
from sepkit.errors import SepkitError

TOP_LEVEL_KEYS = ("extends", "name", "description", "checkpoint", "model", "inference", "train", "data", "eval")
TEXT_KEYS = ("name", "description", "checkpoint")  # top-level keys whose value is text (or null)
MODEL_KINDS = ("text_encoder", "audio_encoder", "separator", "decoder", "codec", "instruction_parser")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "bfloat16", "float16")
RECIPES_PACKAGE = "sepkit_recipes"  # the resources package holding the bundled recipes (recipes/ in a checkout)


@dataclass
class InferenceSettings:
    """``inference:`` section. Chunks bound memory on long inputs (overlap-add with a linear cross-fade)."""

    device: str = "auto"
    dtype: str = "float32"
    chunk_seconds: float = positive(30.0)
    overlap_seconds: float = non_negative(1.0)
    batch_size: int = positive(4)


@dataclass
class Recipe:
    """A loaded, merged, validated recipe. ``config`` is the omegaconf DictConfig; ``source`` its file."""

    config: Any
    source: str = "<recipe>"
    base_dir: Optional[Path] = None
    inference: InferenceSettings = field(default_factory=InferenceSettings)

    def section(self, kind: str) -> Any:
        return self.config.model.get(kind) if self.config.get("model") is not None else None

    def to_container(self) -> dict:
        from omegaconf import OmegaConf

        return OmegaConf.to_container(self.config, resolve=True)

    def to_yaml(self) -> str:
        from omegaconf import OmegaConf

        return OmegaConf.to_yaml(self.config, resolve=True)

    def checkpoint_path(self) -> Optional[Path | str]:
        """The recipe's ``checkpoint:``: a Path (relative ones beside the recipe), or an ``hf://`` reference
        as the string it is (``sepkit.hub`` resolves it when loading), or None."""
        from sepkit.hub import is_hub_reference

        ckpt = self.config.get("checkpoint")
        if not ckpt:
            return None
        if is_hub_reference(ckpt):
            return str(ckpt)
        path = Path(ckpt)
        return path if path.is_absolute() or self.base_dir is None else self.base_dir / path


def recipes_dir() -> Path:
    """The bundled recipes and the weights they ship with: the ``sepkit_recipes`` resources package.

    Found through ``importlib.resources``: in a source checkout (``pip install -e .``) this is the
    repository's ``recipes/`` folder, in an installed wheel ``site-packages/sepkit_recipes``.
    Recipes name their shipped weights by paths relative to themselves, so the folder must be a real
    one (an unpacked install), not a zip archive.
    """
    try:
        root = resources.files(RECIPES_PACKAGE)
    except ModuleNotFoundError:
        raise SepkitError(
            f"the bundled recipes ({RECIPES_PACKAGE}) are not installed; reinstall sepkit "
            "(pip install sepkit, or pip install -e . in a checkout)"
        ) from None
    if not isinstance(root, Path):
        raise SepkitError(
            f"the bundled recipes ({RECIPES_PACKAGE}) are inside an archive ({root}); install sepkit "
            "unpacked (pip install sepkit) so the recipes and their weights are files"
        )
    return root


def bundled_recipe_names() -> list[str]:
    """Names of the bundled recipes, sorted: "audiosep", "mini/audiosep", "tiny/stft_mask", ...

    Training records next to a recipe (``mini/audiosep.train/run1-recipe.resolved.yaml``) are not recipes
    to offer: folders whose name ends in ``.train`` are left out.
    """
    root = recipes_dir()
    names = (p.relative_to(root) for p in root.rglob("*.yaml"))
    return sorted(p.with_suffix("").as_posix() for p in names if not any(d.endswith(".train") for d in p.parts[:-1]))


def find_recipe(name_or_path: str) -> Path:
    """A recipe file from a path, or a bundled recipe's name ("mini/audiosep", "tiny/stft_mask").

    A path that exists wins over a bundled recipe of the same name.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    root = recipes_dir()
    for candidate in (root / name_or_path, root / f"{name_or_path}.yaml"):
        if candidate.is_file():
            return candidate
    raise SepkitError(
        f"recipe {name_or_path!r} not found: give a YAML file or a bundled recipe "
        f"({', '.join(bundled_recipe_names())})"
    )


def _read_yaml(path: Path) -> Any:
    from omegaconf import DictConfig, OmegaConf

    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SepkitError(f"{path}: not valid YAML ({reason}); fix the file") from None
    if not isinstance(cfg, DictConfig):
        raise SepkitError(f"{path}: a recipe must be a YAML mapping with a 'model' section")
    return cfg


def load_recipe(name_or_path: str, overrides: list[str] = ()) -> Recipe:
    """Read a recipe, merge its ``extends`` base and the dotlist ``overrides``, and validate it."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = find_recipe(name_or_path)
    cfg = _read_yaml(path)
    base_path = None
    if "extends" in cfg and cfg.extends:
        base_path = (path.parent / str(cfg.extends)).resolve()
        if not base_path.is_file():
            raise SepkitError(f"{path}: extends: {cfg.extends!r} not found (looked for {base_path})")
        base = _read_yaml(base_path)
        if base.get("extends"):
            raise SepkitError(
                f"{path}: extends {base_path.name}, which itself extends {base.extends!r}; "
                "recipes allow one level of extends, so merge the chain into one base"
            )
        _drop_swapped_components(base, cfg)
        try:
            cfg = OmegaConf.merge(base, cfg)
        except OmegaConfBaseException as exc:
            where = _clash(OmegaConf.to_container(base), OmegaConf.to_container(cfg)) or "?"
            raise SepkitError(
                f"{path}: '{where}' does not fit {base_path.name}, which it extends ({_first_line(exc)}); "
                "give a mapping where the base has a mapping and a list where it has a list"
            ) from None
    cfg = _apply_overrides(cfg, list(overrides), path)
    if "extends" in cfg:
        del cfg["extends"]
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        raise SepkitError(f"{path}: cannot resolve interpolation: {str(exc).splitlines()[0]}") from None
    folders = [path.parent] + ([base_path.parent] if base_path is not None else [])
    _resolve_weight_paths(cfg, folders)  # the recipe's own checkpoint: too, so an extending recipe elsewhere finds it
    return Recipe(config=cfg, source=str(path), base_dir=path.parent, inference=_validate(cfg, str(path)))


def _shown(item: str) -> str:
    """An override as quoted in a one-line message: 'as typed', or escaped if it has control characters."""
    return f"'{item}'" if item.isprintable() else repr(item)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _apply_overrides(cfg: Any, overrides: list[str], path: Path) -> Any:
    """``cfg`` with the dotlist ``overrides`` merged in; a SepkitError names the item that does not fit."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    check_overrides(overrides)
    override_cfg = OmegaConf.create()
    for item in overrides:
        try:
            override_cfg.merge_with_dotlist([item])
        except Exception as exc:  # omegaconf's dotlist parser raises several types for text it cannot read
            raise SepkitError(f"bad override {_shown(item)}: {_first_line(exc)}; write key.path=value") from None
    try:
        return OmegaConf.merge(cfg, override_cfg)
    except OmegaConfBaseException as exc:
        culprit = next((item for item in overrides if not _merges(cfg, item)), None)
        named = f"override {_shown(culprit)}" if culprit else f"overrides {overrides}"
        raise SepkitError(
            f"{path}: {named} does not fit the recipe ({_first_line(exc)}); a section takes a mapping "
            "or key.path.sub=value items, a list takes a list"
        ) from None


def _clash(base: Any, child: Any, prefix: str = "") -> Optional[str]:
    """The first key path whose value in ``child`` cannot be merged over ``base`` (plain containers)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not (isinstance(base, dict) and isinstance(child, dict)):
        return None
    for key, new in child.items():
        if key not in base:
            continue
        old, path = base[key], f"{prefix}{key}"
        if isinstance(old, dict) and isinstance(new, dict):
            found = _clash(old, new, f"{path}.")
            if found:
                return found
            continue
        try:
            OmegaConf.merge({key: old}, {key: new})
        except OmegaConfBaseException:
            return path
    return None


def _merges(cfg: Any, item: str) -> bool:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))
    except OmegaConfBaseException:
        return False
    return True


OVERRIDE_WORD = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*=")


def is_override(word: str) -> bool:
    """'model.separator.hidden=64' is a dotlist override; 'mini/audiosep' and 'r.yaml@x=1.ckpt' are not."""
    return bool(OVERRIDE_WORD.match(word)) and not Path(word).exists()


def check_overrides(overrides: list[str]) -> None:
    """Refuse dotlist items omegaconf would misread: no '=' (it sets null), an empty key or part, spaces."""
    for item in overrides:
        if not isinstance(item, str):
            raise SepkitError(f"override {item!r} is not text; write key.path=value")
        key, equals, _ = item.partition("=")
        shown = _shown(item)
        if not equals:
            raise SepkitError(f"override {shown} has no '='; write key.path=value")
        if not key.strip():
            raise SepkitError(f"override {shown} has no key before '='; write key.path=value")
        if any(ch.isspace() for ch in key):
            raise SepkitError(f"override {shown}: the key {_shown(key)} contains spaces; write key.path=value")
        if "" in key.split("."):
            raise SepkitError(f"override {shown}: the key {_shown(key)} has an empty part; write key.path=value")


ROLE_KEYS = ("freeze", "in_checkpoint")  # settings of the pipeline role, not of the component


def _drop_swapped_components(base: Any, child: Any) -> None:
    """Where ``child`` names a different component than ``base`` (any depth), drop the base's section.

    Swapping a component is a one-line change: ``text_encoder: {name: flan-t5}`` over a base whose
    text encoder is ``qaudio`` starts from flan-t5's defaults instead of inheriting qaudio's keys.
    The role's own settings (``ROLE_KEYS``: freeze, in_checkpoint) are kept unless the recipe sets them.
    Sections with the same ``name`` merge key by key as usual.
    """
    from omegaconf import OmegaConf

    if not (OmegaConf.is_dict(base) and OmegaConf.is_dict(child)):
        return
    for key in list(child.keys()):
        if key not in base or not (_literal_dict(base, key) and _literal_dict(child, key)):
            continue  # interpolations and missing values are read after the merge, not here
        old, new = _literal(base[key], "name"), _literal(child[key], "name")
        if isinstance(old, str) and isinstance(new, str) and old != new:
            raw = OmegaConf.to_container(base[key], resolve=False)
            kept = {k: raw[k] for k in ROLE_KEYS if k in raw and k not in child[key]}
            base[key] = kept  # the role's settings (freeze, in_checkpoint) stay; the old component's keys go
        else:
            _drop_swapped_components(base[key], child[key])


def _literal(node: Any, key: Any) -> Any:
    """``node[key]`` as written (None if absent, missing or an interpolation, which is only resolved later)."""
    from omegaconf import OmegaConf

    if key not in node or OmegaConf.is_missing(node, key) or OmegaConf.is_interpolation(node, key):
        return None
    return node[key]


def _literal_dict(node: Any, key: Any) -> bool:
    from omegaconf import OmegaConf

    return OmegaConf.is_dict(_literal(node, key))


WEIGHT_PATH_KEYS = ("checkpoint",)


def _resolve_weight_paths(node: Any, folders: list[Path]) -> None:
    """Make relative ``checkpoint:`` paths (the recipe's own and its components', at any depth) point beside the recipe.

    A relative path that exists next to the recipe file (or its ``extends`` base) becomes that absolute
    path, so a recipe can ship with its weights and run from any folder; other relative paths are left
    as written (relative to the working directory, e.g. ``runs/...`` from the repository root), and so are
    ``hf://OWNER/REPO/FILE`` references (resolved through the hub cache when the weights are read).
    """
    from omegaconf import OmegaConf

    from sepkit.hub import is_hub_reference

    if node is None or not OmegaConf.is_dict(node):
        return
    for key in list(node.keys()):
        if OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        if OmegaConf.is_dict(value):
            _resolve_weight_paths(value, folders)
        elif (
            key in WEIGHT_PATH_KEYS
            and isinstance(value, str)
            and value
            and not is_hub_reference(value)
            and not Path(value).is_absolute()
        ):
            for folder in folders:
                candidate = folder / value
                if candidate.exists():
                    node[key] = str(candidate.resolve())
                    break


def _validate(cfg: Any, source: str) -> InferenceSettings:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    for key in cfg:
        if key not in TOP_LEVEL_KEYS:
            raise SepkitError(f"{source}: unknown top-level key {key!r}; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    for key in TEXT_KEYS:
        value = cfg.get(key)
        if value is not None and not isinstance(value, str):
            raise SepkitError(f"{source}: '{key}' must be text or null, got {value!r}; fix the recipe")
    model = cfg.get("model")
    if model is None or not OmegaConf.is_dict(model):
        raise SepkitError(f"{source}: needs a 'model' mapping with components ({', '.join(MODEL_KINDS)})")
    for kind in model:
        if kind not in MODEL_KINDS:
            raise SepkitError(f"{source}: unknown key 'model.{kind}'; allowed: {', '.join(MODEL_KINDS)}")
        if OmegaConf.is_missing(model, kind):
            raise SepkitError(f"{source}: 'model.{kind}' is not set (???); give it, e.g. model.{kind}.name=...")
        section = model[kind]
        if section is None:
            continue
        if not OmegaConf.is_dict(section) or not isinstance(section.get("name"), str):
            raise SepkitError(f"{source}: 'model.{kind}' needs a 'name' naming a registered {kind}")
        for key in ROLE_KEYS:
            if section.get(key) is not None and not isinstance(section.get(key), bool):
                raise SepkitError(
                    f"{source}: 'model.{kind}.{key}' must be true or false, got {section.get(key)!r}; fix the recipe"
                )
    inference = cfg.get("inference")
    if inference is not None and not OmegaConf.is_dict(inference):
        allowed = ", ".join(InferenceSettings.__dataclass_fields__)
        raise SepkitError(f"{source}: 'inference' must be a mapping (keys: {allowed}), got {inference!r}")
    try:
        settings = OmegaConf.merge(OmegaConf.structured(InferenceSettings), inference or {})
        problem = next(range_problems(settings), None)
        if problem is not None:
            raise SepkitError(f"{source}: bad value for 'inference.{problem[0]}': {problem[1]}; fix the recipe")
        settings = OmegaConf.to_object(settings)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "?")
        allowed = ", ".join(InferenceSettings.__dataclass_fields__)
        raise SepkitError(
            f"{source}: bad 'inference.{key}': {str(exc).splitlines()[0]} (allowed keys: {allowed})"
        ) from None
    if settings.device not in DEVICES:
        raise SepkitError(f"{source}: inference.device={settings.device!r}; allowed: {', '.join(DEVICES)}")
    if settings.dtype not in DTYPES:
        raise SepkitError(f"{source}: inference.dtype={settings.dtype!r}; allowed: {', '.join(DTYPES)}")
    if not settings.overlap_seconds * 2 < settings.chunk_seconds:
        raise SepkitError(f"{source}: need chunk_seconds > 2 * overlap_seconds >= 0 in 'inference'")
    return settings


def check_component_names(recipe: Recipe, registry) -> None:
    """Every component the recipe names is registered (without importing anything)."""
    for kind in MODEL_KINDS:
        section = recipe.section(kind)
        if section is not None:
            try:
                registry.get(kind, section.name)
            except SepkitError as exc:
                raise SepkitError(f"{recipe.source}: model.{kind}.name: {exc}") from None


def resolve_components(recipe: Recipe, registry) -> Any:
    """The recipe with every component section validated and completed with its Config defaults.

    Imports each component's module (to read its Config), builds nothing. Values the
    pipeline fills at build time from upstream components stay "???".
    """
    from omegaconf import OmegaConf

    from sepkit.config import component_config
    from sepkit.registry import RESERVED_KEYS, split_section

    check_component_names(recipe, registry)
    config = OmegaConf.create(recipe.to_container())
    for kind in MODEL_KINDS:
        section = recipe.section(kind)
        if section is None:
            continue
        name, options = split_section(section, f"model.{kind}")
        cls = registry.load_class(kind, name)
        try:
            full = component_config(
                cls, options, where=f"model.{kind}", component=f"{kind} {name!r}", allow_missing=True
            )
        except SepkitError as exc:
            raise SepkitError(f"{recipe.source}: {exc}") from None
        reserved = {k: section[k] for k in RESERVED_KEYS if k in section}
        config.model[kind] = {**reserved, **full}
    return config
