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


def native_bf16(device: torch.device) -> bool:
    """Whether bfloat16 matmuls and convolutions run natively on ``device``: a CUDA GPU that supports
    bf16, or a CPU with AVX512-BF16 or AMX tiles. On other CPUs autocast emulates bf16, which costs far
    more than it saves (a 1024 x 1024 matmul on one AVX2 core: 88 GFLOP/s in fp32, 1 GFLOP/s in bf16)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
        return any(bool(check()) for check in checks if check is not None)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``train.precision`` -> the one a run uses on ``device``: "auto" is "bf16" where ``native_bf16``,
    else "fp32" (fp16 is never chosen for you: it needs loss scaling and overflows more easily);
    "fp32", "bf16" and "fp16" are kept as asked, even where bf16 is emulated (``bf16_emulated_note``)."""
    from sepkit.train.config import PRECISION_CHOICES

    if precision not in PRECISION_CHOICES:
        raise SepkitError(f"train.precision={precision!r}; allowed: {', '.join(PRECISION_CHOICES)}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def bf16_emulated_note(precision: str, device: torch.device) -> str | None:
    """A line for the run's log when ``precision`` asks for bf16 on a device that only emulates it."""
    if precision != "bf16" or native_bf16(device):
        return None
    return (
        f"warning: train.precision=bf16 on a {device.type} without native bf16 (no AVX512-BF16 or AMX): autocast "
        "emulates it, tens of times slower than fp32 here; use train.precision=auto (bf16 where it is native) or fp32"
    )


def autocast(device: torch.device, dtype: torch.dtype):
    """torch.autocast for ``device`` at ``dtype``; a no-op context for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
