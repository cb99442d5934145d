"""The systems of a benchmark: ``RECIPE[@CHECKPOINT]`` arguments, checked before anything runs.

``RECIPE`` is a recipe file or a bundled recipe name (``mini/audiosep``); ``@CHECKPOINT``
is a sepkit checkpoint or an official release that a component of the recipe loads
(``SeparationPipeline.load``), as a path or an ``hf://OWNER/REPO/FILE`` reference (``sepkit.hub``).
Without it the recipe's own ``checkpoint:`` is used, and without that the weights are untrained.
Recipe overrides (``key.path=value``) after a system change that system only:
``mini/audiosep inference.batch_size=2``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sepkit.errors import SepkitError
from sepkit.paths import display_path
from sepkit.recipe import Recipe


@dataclass
class System:
    """One row group of the table: a recipe and the weights it runs with."""

    spec: str  # as given on the command line
    label: str  # its name in tables and the report
    recipe: Recipe
    checkpoint: Optional[Path | str]  # None: untrained weights; a str is an hf://OWNER/REPO/FILE reference
    checkpoint_sha256: Optional[str]
    # "model.decoder.codec.checkpoint" -> sha256 of each component weights file the recipe names
    component_checkpoints: dict[str, str] = field(default_factory=dict)

    def fingerprint(self, inference: dict) -> str:
        """sha256 of what decides this system's outputs: resolved recipe, weights (the pipeline
        checkpoint and every component ``checkpoint:`` file), inference settings. A retrained
        component file at the same path therefore gets a fresh cache."""
        payload = {
            "recipe": self.recipe.to_container(),
            "checkpoint": self.checkpoint_sha256,
            "inference": inference,
        }
        if self.component_checkpoints:
            payload["component_checkpoints"] = self.component_checkpoints
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def describe(self) -> dict:
        return {
            "label": self.label,
            "spec": self.spec,
            "recipe": self.recipe.source,
            "name": self.recipe.config.get("name"),
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "checkpoint_sha256": self.checkpoint_sha256,
            "trained": self.checkpoint is not None,
        }


def split_spec(spec: str) -> tuple[str, Optional[str]]:
    """'mini/audiosep@runs/x/best.ckpt' -> ('mini/audiosep', 'runs/x/best.ckpt'); an existing file is a recipe."""
    if Path(spec).is_file() or "@" not in spec:
        return spec, None
    recipe, _, checkpoint = spec.partition("@")
    if not recipe or not checkpoint:
        raise SepkitError(f"system {spec!r}: use RECIPE or RECIPE@CHECKPOINT, e.g. mini/audiosep@runs/x/best.ckpt")
    return recipe, checkpoint


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def component_checkpoints(tree, where: str = "model") -> dict[str, str]:
    """Dotted key -> sha256 of every ``checkpoint:`` value under ``tree`` that is an existing file or an
    ``hf://OWNER/REPO/FILE`` reference (its file in the Hugging Face cache, fetched now if need be)."""
    from sepkit.hub import is_hub_reference, resolve_file

    found: dict[str, str] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{where}.{key}"
            if key == "checkpoint" and is_hub_reference(value):
                found[path] = _sha256(resolve_file(value, path))
            elif key == "checkpoint" and isinstance(value, str) and Path(value).expanduser().is_file():
                found[path] = _sha256(Path(value).expanduser())
            else:
                found.update(component_checkpoints(value, path))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found.update(component_checkpoints(value, f"{where}.{index}"))
    return found


def group_system_words(words: list[str]) -> list[tuple[str, list[str]]]:
    """['mini/audiosep', 'inference.batch_size=2', 'tiny/stft_mask'] -> [(system, its overrides), ...].

    An override changes the system named before it, so one recipe can appear twice with different
    settings (an ablation) in one table.
    """
    from sepkit.recipe import is_override

    groups: list[tuple[str, list[str]]] = []
    for word in words:
        if is_override(word):
            if not groups:
                raise SepkitError(
                    f"override {word!r} comes before any system; write it after the system it changes "
                    "(sepkit benchmark mini/audiosep model.separator.hidden=64 --testset ...)"
                )
            groups[-1][1].append(word)
        else:
            groups.append((word, []))
    return groups


def load_system(spec: str, registry, overrides: Optional[list[str]] = None) -> System:
    """Read the recipe (with ``overrides``), check its component names and that the checkpoint exists.

    Nothing is built.
    """
    from sepkit.hub import is_hub_reference, local_file
    from sepkit.recipe import check_component_names, load_recipe

    recipe_arg, checkpoint_arg = split_spec(spec)
    recipe = load_recipe(recipe_arg, list(overrides or []))
    if overrides:
        spec = " ".join([spec, *overrides])
    check_component_names(recipe, registry)
    if checkpoint_arg:
        checkpoint = checkpoint_arg if is_hub_reference(checkpoint_arg) else Path(checkpoint_arg)
    else:
        checkpoint = recipe.checkpoint_path()
    where = f"system {spec!r}" if checkpoint_arg else f"{recipe.source}: checkpoint:"
    # an hf:// reference stays the string it is (Path would fold its '//'); its file in the cache is hashed
    local = local_file(checkpoint, f"system {spec!r}: checkpoint" if checkpoint_arg else where)
    if local is not None and not local.is_file():
        raise SepkitError(f"{where}: checkpoint {local} not found; give the path of a .ckpt/.pt file")
    return System(
        spec=spec,
        label=str(recipe.config.get("name") or Path(recipe.source).stem),
        recipe=recipe,
        checkpoint=checkpoint,
        checkpoint_sha256=_sha256(local) if local else None,
        component_checkpoints=component_checkpoints(recipe.to_container().get("model")),
    )


def load_systems(specs: list[str], registry, labels: Optional[list[str]] = None) -> list[System]:
    """Every system checked; labels from ``labels`` or the recipes' names, made unique.

    ``specs`` are the command line's words: RECIPE[@CHECKPOINT], each optionally followed by
    recipe overrides (``key.path=value``) that apply to it.
    """
    systems = [load_system(spec, registry, overrides) for spec, overrides in group_system_words(list(specs))]
    if labels:
        if len(labels) != len(systems):
            raise SepkitError(f"--label given {len(labels)} times for {len(systems)} systems; give one per system")
        for system, label in zip(systems, labels):
            system.label = label
    names = [s.label for s in systems]
    for system in systems:
        if names.count(system.label) > 1 and " " in system.spec:
            system.label = f"{system.label} ({system.spec.partition(' ')[2]})"
    names = [s.label for s in systems]
    for system in systems:
        if names.count(system.label) > 1 and system.checkpoint is not None:
            system.label = f"{system.label}@{display_path(system.checkpoint)}"  # no machine paths in tables
    names = [s.label for s in systems]
    for i, system in enumerate(systems):
        if names.count(system.label) > 1:
            system.label = f"{system.label} #{i + 1}"
    return systems
