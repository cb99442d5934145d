"""Loading plugins from the ``sepkit.plugins`` entry points into a ``Registry``.

Entry points are loaded one at a time. A plugin that fails to import or to
register is reported as a warning naming its distribution and skipped, so one
broken plugin does not break the CLI. Environment switches:

- ``SEPKIT_STRICT_PLUGINS=1``: a broken plugin is a fatal ``SepkitError``.
- ``SEPKIT_DISABLE_PLUGIN_AUTOLOAD=1``: load only the built-in plugins (those
  the ``sepkit`` distribution itself lists).
"""

from __future__ import annotations

import os
import warnings
from importlib.metadata import EntryPoint, entry_points
from typing import Optional

import pluggy

from sepkit import hookspecs
from sepkit.errors import SepkitError
from sepkit.registry import DuplicateComponent, Registry

BUILTIN_DISTRIBUTION = "sepkit"

_registry: Optional[Registry] = None


class PluginWarning(UserWarning):
    """A plugin could not be loaded and was skipped."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _distribution(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("unknown", "")
    return (dist.metadata["Name"], dist.version)


def _skip_or_raise(ep: EntryPoint, dist: str, version: str, stage: str, exc: BaseException) -> None:
    problem = f"sepkit plugin {ep.name!r} from {dist} {version} failed to {stage}: {type(exc).__name__}: {exc}"
    if _flag("SEPKIT_STRICT_PLUGINS"):
        raise SepkitError(f"{problem} (fix, reinstall or uninstall '{dist}'; SEPKIT_STRICT_PLUGINS=1 is set)") from exc
    warnings.warn(
        f"{problem}; it was skipped (fix, reinstall or uninstall '{dist}'; SEPKIT_STRICT_PLUGINS=1 makes this fatal)",
        PluginWarning,
        stacklevel=3,
    )


def plugin_entry_points() -> list[EntryPoint]:
    """The ``sepkit.plugins`` entry points to load, built-ins first, after the autoload switch."""
    eps = list(entry_points(group=hookspecs.ENTRY_POINT_GROUP))
    if _flag("SEPKIT_DISABLE_PLUGIN_AUTOLOAD"):
        eps = [ep for ep in eps if _distribution(ep)[0] == BUILTIN_DISTRIBUTION]
    return sorted(eps, key=lambda ep: (_distribution(ep)[0] != BUILTIN_DISTRIBUTION, _distribution(ep)[0], ep.name))


def load_registry(extra_plugins: tuple = ()) -> Registry:
    """A fresh Registry filled by every installed plugin (and ``extra_plugins`` modules, for tests)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    seen: dict[str, str] = {}
    for ep in plugin_entry_points():
        dist, version = _distribution(ep)
        if ep.name in seen and seen[ep.name] != dist:
            raise SepkitError(
                f"two plugins share the entry-point name {ep.name!r}: {seen[ep.name]} and {dist}; "
                "uninstall one of them or rename its entry point"
            )
        seen[ep.name] = dist
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must not break sepkit
            _skip_or_raise(ep, dist, version, "import", exc)
            continue
        if pm.is_registered(module):
            continue
        _register_one(pm, registry, module, ep.name, dist, version, ep)
    for module in extra_plugins:
        _register_one(pm, registry, module, module.__name__, "extra", "", None)
    return registry


def _register_one(pm, registry, module, name, dist, version, ep) -> None:
    """Register one plugin module and run its hook; a failing plugin leaves no trace in the registry."""
    pm.register(module, name=name)
    try:
        pm.check_pending()  # a misspelled hookimpl (e.g. sepkit_regster) is an error, not silence
    except pluggy.PluginValidationError as exc:
        pm.unregister(module)
        if ep is None:
            raise
        _skip_or_raise(ep, dist, version, "load (unknown hook)", exc)
        return
    registry.set_provider(dist, version)
    snapshot = registry.snapshot()
    try:
        for impl in pm.hook.sepkit_register.get_hookimpls():
            if impl.plugin is module:
                impl.function(registry=registry)
    except DuplicateComponent:
        raise  # which of the two a recipe means is ambiguous: the user must uninstall or rename one
    except Exception as exc:  # incl. an unknown kind or a malformed target: this plugin's fault alone
        registry.restore(snapshot)
        pm.unregister(module)
        if ep is None:
            raise
        _skip_or_raise(ep, dist, version, "register its components", exc)
    finally:
        registry.set_provider("unknown", "")


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = load_registry()
    return _registry


def reset_registry() -> None:
    """Forget the cached registry (tests that install or break plugins use this)."""
    global _registry
    _registry = None


def installed_distributions() -> dict[str, str]:
    """{distribution: version} of every distribution providing sepkit plugins."""
    return {d: v for d, v in (_distribution(ep) for ep in plugin_entry_points())}
