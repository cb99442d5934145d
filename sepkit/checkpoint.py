"""sepkit's checkpoint format, saved atomically and loaded with ``weights_only=True``.

A checkpoint is a ``torch.save`` of::

    {
      "recipe": {...},                 # the resolved recipe, plain containers
      "state_dict": {name: Tensor},    # the pipeline's stored components
      "sepkit_version": "0.1.0",
      "plugins": {distribution: version},   # providers of the recipe's components
    }

Training checkpoints add optimizer/scheduler state under extra keys; loading
ignores keys it does not know.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sepkit.atomic import atomic_path
from sepkit.errors import SepkitError

FORMAT_KEYS = ("recipe", "state_dict", "sepkit_version", "plugins")


class NotASepkitCheckpoint(SepkitError):
    """A readable torch file that is not in sepkit's format (e.g. an official release of a published model)."""


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file and a rename: readers never see half a file."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(path: str | os.PathLike, recipe: dict, state_dict: Mapping, plugins: dict, **extra: Any) -> None:
    """Write a sepkit checkpoint atomically. ``extra`` keys (optimizer state, step) are stored beside."""
    import sepkit

    payload = {
        "recipe": recipe,
        "state_dict": dict(state_dict),
        "sepkit_version": sepkit.__version__,
        "plugins": dict(plugins),
        **extra,
    }
    atomic_save(payload, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a sepkit checkpoint with ``torch.load(weights_only=True)``; check its keys and plugins."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise SepkitError(f"checkpoint {path} not found; give the path of a .ckpt/.pt file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "Weights only load failed" in str(exc):
            reason = "it holds Python objects other than tensors and plain containers"
        else:
            first_line = (str(exc).strip().splitlines() or [""])[0]
            reason = f"not a torch.save file: {type(exc).__name__}: {first_line}"
        raise NotASepkitCheckpoint(
            f"checkpoint {path} could not be read safely ({reason}); sepkit loads checkpoints with "
            "weights_only=True, so save tensors and plain containers (sepkit's own format does)"
        ) from None
    if not isinstance(payload, dict) or "state_dict" not in payload or "sepkit_version" not in payload:
        raise NotASepkitCheckpoint(
            f"checkpoint {path} is not a sepkit checkpoint (expected keys {', '.join(FORMAT_KEYS)}); "
            "an official checkpoint of a published model loads through the recipe's components"
        )
    check_plugins_installed(payload.get("plugins") or {}, str(path))
    return payload


def check_plugins_installed(plugins: Mapping[str, str], where: str) -> None:
    """Raise naming the distribution to install if a checkpoint's plugin provider is missing."""
    from sepkit.plugins import installed_distributions

    have = installed_distributions()
    missing = [f"{dist}=={ver}" if ver else dist for dist, ver in plugins.items() if dist not in have]
    if missing:
        raise SepkitError(
            f"{where} was made with plugins that are not installed: {', '.join(missing)}; "
            f"install them (pip install {' '.join(missing)}) and retry"
        )


def load_state_dict_checked(module, state_dict: Mapping, where: str) -> None:
    """Load ``state_dict`` into ``module`` strictly; list missing, unexpected and mis-shaped keys on error."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    misshaped = [
        f"{k} (checkpoint {tuple(state_dict[k].shape)}, model {tuple(own[k].shape)})"
        for k in own
        if k in state_dict and hasattr(state_dict[k], "shape") and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    problems = [
        _listing("missing keys", missing),
        _listing("unexpected keys", unexpected),
        _listing("mis-shaped keys", misshaped),
    ]
    problems = [p for p in problems if p]
    if problems:
        raise SepkitError(
            f"{where} does not match the model: {'; '.join(problems)}. "
            "Use the recipe the checkpoint was trained with (sepkit recipe show), or convert the checkpoint"
        )
    module.load_state_dict(state_dict, strict=True)


def _listing(label: str, keys: list[str], limit: int = 10) -> str:
    if not keys:
        return ""
    shown = ", ".join(keys[:limit])
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{len(keys)} {label}: {shown}{more}"
