"""Component registry: one table per kind, lazy ``"module:Class"`` targets.

Plugins fill the registry from their ``sepkit_register(registry)`` hook::

    registry.register("separator", "mask-net", "sepkit_masknet.separator:MaskNetSeparator",
                      summary="FiLM-conditioned magnitude-mask separator on STFT frames")

Nothing is imported until a component is built. A recipe line
``separator: {name: mask-net, hidden: 256}`` builds the class named by the
entry's target with its ``Config`` dataclass filled from the other keys;
``sepkit plugins`` prints the target, so a reader goes from recipe to class in
two steps.

A component that builds sub-components of its own (a stage inside a separator, a frozen encoder
inside a metric) declares a ``registry`` keyword in ``__init__``; ``build`` then passes itself::

    class LocalSeparator(Separator):
        def __init__(self, config, registry):
            self.global_stage = registry.build("separator", config.global_stage, where="...")

so the registry a program or a test builds with is the one used all the way down.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, is_dataclass
from typing import Any, Optional

from sepkit.errors import SepkitError

KINDS = (
    "text_encoder",
    "audio_encoder",
    "separator",
    "decoder",
    "codec",
    "instruction_parser",
    "metric",
    "system",
    "captioner",
    "source_parser",
)

RESERVED_KEYS = ("name", "freeze", "in_checkpoint")
"""Recipe keys of a component section that belong to the pipeline, not the component's Config."""


class DuplicateComponent(SepkitError):
    """Two plugins register the same (kind, name): fatal, since a recipe naming it would be ambiguous."""


@dataclass(frozen=True)
class Entry:
    """One registered component."""

    kind: str
    name: str
    target: str  # "package.module:ClassName"
    summary: str
    provider: str  # distribution that registered it
    version: str  # that distribution's version
    example: str = ""  # a YAML snippet of config keys that builds a small instance (used by contract tests)
    unavailable: str = ""  # why it cannot be built here (a placeholder that fails with a clear message)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "target": self.target,
            "provider": self.provider,
            "version": self.version,
            "summary": self.summary,
        }


class Registry:
    """Tables of components per kind. New kinds may be added with ``add_kind``."""

    def __init__(self, kinds: tuple[str, ...] = KINDS) -> None:
        self._tables: dict[str, dict[str, Entry]] = {kind: {} for kind in kinds}
        self._provider: tuple[str, str] = ("unknown", "")

    # --- filling -----------------------------------------------------------------
    def set_provider(self, distribution: str, version: str) -> None:
        """Attribute the following ``register`` calls to ``distribution``. Called by the plugin loader."""
        self._provider = (distribution, version)

    def snapshot(self) -> dict[str, dict[str, Entry]]:
        """A copy of the tables, to undo a plugin's partial registration with ``restore``."""
        return {kind: dict(table) for kind, table in self._tables.items()}

    def restore(self, snapshot: dict[str, dict[str, Entry]]) -> None:
        self._tables = {kind: dict(table) for kind, table in snapshot.items()}

    def add_kind(self, kind: str) -> None:
        self._tables.setdefault(kind, {})

    def register(
        self, kind: str, name: str, target: str, summary: str = "", example: str = "", unavailable: str = ""
    ) -> None:
        """Register ``name`` of ``kind`` as the lazily imported class ``target`` ("module:Class").

        ``example``: YAML config keys of a small instance, for contract tests. ``unavailable``: set for a
        placeholder whose construction fails here with a clear message (the contract checks that it does).
        """
        if kind not in self._tables:
            raise SepkitError(
                f"plugin {self._provider[0]!r} registers {name!r} under unknown kind {kind!r}; "
                f"known kinds: {', '.join(self._tables)} (a plugin may add one with registry.add_kind)"
            )
        if ":" not in target:
            raise SepkitError(
                f"plugin {self._provider[0]!r}: target {target!r} of {kind} {name!r} must look like 'module:Class'"
            )
        table = self._tables[kind]
        if name in table:
            other = table[name]
            raise DuplicateComponent(
                f"{kind} {name!r} is registered twice: by {other.provider} ({other.target}) and by "
                f"{self._provider[0]} ({target}); uninstall one of them or rename the component"
            )
        table[name] = Entry(kind, name, target, summary, self._provider[0], self._provider[1], example, unavailable)

    # --- reading -----------------------------------------------------------------
    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._tables)

    def entries(self, kind: Optional[str] = None) -> list[Entry]:
        kinds = [kind] if kind else list(self._tables)
        for k in kinds:
            self._check_kind(k)
        return [e for k in kinds for e in sorted(self._tables[k].values(), key=lambda e: e.name)]

    def get(self, kind: str, name: str) -> Entry:
        self._check_kind(kind)
        table = self._tables[kind]
        if name not in table:
            known = ", ".join(sorted(table)) or "none installed"
            raise SepkitError(
                f"unknown {kind} {name!r}; installed: {known}. Install the plugin that provides it "
                f"or run 'sepkit plugins --kind {kind}'"
            )
        return table[name]

    def load_class(self, kind: str, name: str) -> type:
        entry = self.get(kind, name)
        module_name, _, attr = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # plugin code runs on import: any failure is the plugin's
            raise SepkitError(
                f"{kind} {name!r} from {entry.provider} could not be imported ({entry.target}): "
                f"{type(exc).__name__}: {exc}; reinstall or fix '{entry.provider}'"
            ) from exc
        try:
            return getattr(module, attr)
        except AttributeError:
            raise SepkitError(f"{kind} {name!r} from {entry.provider}: {entry.target} does not exist") from None

    def _check_kind(self, kind: str) -> None:
        if kind not in self._tables:
            raise SepkitError(f"unknown component kind {kind!r}; known kinds: {', '.join(self._tables)}")

    # --- building ----------------------------------------------------------------
    def build(self, kind: str, section: Any, where: str = "", **defaults: Any):
        """Build a component from its recipe section ``{name: ..., <Config keys>}``.

        ``where`` is the section's path in the recipe (e.g. "model.separator"), used in errors.
        ``defaults`` fill Config fields the recipe leaves unset (the pipeline's handshake of
        upstream dimensions); a value the recipe does set wins.
        """
        from sepkit.config import component_config

        where = where or kind
        name, options = split_section(section, where)
        cls = self.load_class(kind, name)
        config = component_config(cls, options, where=where, component=f"{kind} {name!r}", defaults=defaults)
        return cls(config, registry=self) if builds_components(cls) else cls(config)

    def build_frozen(self, kind: str, section: Any, where: str = "", role: Optional[type] = None, **defaults: Any):
        """``build``, then frozen (``requires_grad_(False)``) and in eval mode: a sub-component used as a fixed
        feature extractor (a codec inside a decoder, an audio encoder inside a metric). With ``role`` (e.g.
        ``sepkit.interfaces.Codec``) a component of another class is a SepkitError naming ``where``."""
        module = self.build(kind, section, where, **defaults)
        if role is not None and not isinstance(module, role):
            name = split_section(section, where or kind)[0]
            raise SepkitError(f"{where or kind}: {name!r} built a {type(module).__name__}, not a {role.__name__}")
        module.requires_grad_(False)
        return module.eval()


def builds_components(cls: type) -> bool:
    """True if ``cls.__init__`` takes a ``registry`` keyword: it builds sub-components through it."""
    return "registry" in inspect.signature(cls.__init__).parameters


def split_section(section: Any, where: str) -> tuple[str, dict]:
    """``{name: x, freeze: .., a: 1}`` -> ("x", {"a": 1}); reserved pipeline keys are dropped."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(section, str):
        return section, {}
    if isinstance(section, DictConfig):
        section = OmegaConf.to_container(section, resolve=True)
    if not isinstance(section, dict) or not isinstance(section.get("name"), str):
        raise SepkitError(
            f"{where}: expected a mapping with a 'name' key naming a registered component, got {section!r}"
        )
    options = {k: v for k, v in section.items() if k not in RESERVED_KEYS}
    return section["name"], options


def config_class(cls: type) -> type:
    config = getattr(cls, "Config", None)
    if config is None or not is_dataclass(config):
        raise SepkitError(f"{cls.__module__}.{cls.__qualname__} has no Config dataclass; every component needs one")
    return config
