"""Validating a component's recipe keys against its ``Config`` dataclass.

omegaconf's structured configs check types and reject unknown keys; this module
turns its errors into messages that name the full recipe path, the component and
the allowed keys.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sepkit.errors import SepkitError


def component_config(
    cls: type, options: dict, where: str, component: str, defaults: dict | None = None, allow_missing: bool = False
) -> Any:
    """Fill ``cls.Config`` from ``options`` (recipe keys) and ``defaults``; return the dataclass instance.

    Raises SepkitError naming ``where.<key>`` for an unknown key, a wrong type or a missing value.
    With ``allow_missing`` (showing a recipe), returns a plain dict in which unset values stay "???".
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from sepkit.registry import config_class

    config_cls = config_class(cls)
    allowed = [f.name for f in dataclasses.fields(config_cls)]
    for key in options:
        if key not in allowed:
            raise SepkitError(
                f"unknown key '{where}.{key}' for {component}; allowed keys: {', '.join(allowed) or '(none)'}"
            )
    merged_defaults = {k: v for k, v in (defaults or {}).items() if k in allowed and k not in options}
    try:
        cfg = OmegaConf.structured(config_cls)
        cfg = OmegaConf.merge(cfg, merged_defaults, options)
        if allow_missing:
            return OmegaConf.to_container(cfg)
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise SepkitError(f"{component} needs a value for '{where}.{missing[0]}'; set it in the recipe")
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        reason = str(exc).splitlines()[0]
        raise SepkitError(f"bad value for '{where}.{key}' of {component}: {reason}") from None


def config_to_dict(config: Any) -> dict:
    """A component's Config dataclass instance -> plain dict (for recipes and checkpoints)."""
    return dataclasses.asdict(config)
