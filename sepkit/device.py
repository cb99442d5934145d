"""Choosing a device and an autocast dtype from recipe or command-line strings."""

from __future__ import annotations

import contextlib

import torch

from sepkit.errors import SepkitError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" -> cuda if available else cpu; "cpu"; "cuda" / "cuda:N" (error if no GPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SepkitError(f"device {name!r} asked for, but torch sees no CUDA GPU here; use --device cpu or auto")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise SepkitError(f"unknown device {name!r}; use auto, cpu or cuda")


def resolve_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise SepkitError(f"unknown dtype {name!r}; use one of {', '.join(DTYPES)}") from None


def autocast(device: torch.device, dtype: torch.dtype):
    """torch.autocast for ``device`` at ``dtype``; a no-op context for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
