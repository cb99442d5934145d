"""sepkit's checkpoint format, saved atomically and loaded with ``weights_only=True``.

A checkpoint is a ``torch.save`` of::

    {
      "recipe": {...},                 # the resolved recipe, plain containers
      "state_dict": {name: Tensor},    # the pipeline's stored components
      "sepkit_version": "0.1.0",
      "plugins": {distribution: version},   # providers of the recipe's components
      "format": 1,                     # the payload layout's version (absent in old files: 1)
    }

Training checkpoints add optimizer/scheduler state under extra keys; loading
ignores keys it does not know. ``recipe`` and ``plugins`` may be missing or None.

What a file is comes from its first bytes (``checkpoint_file_kind``): a torch.save zip,
a legacy torch pickle, a safetensors file, or none of these. Every unusable file is a
``SepkitError`` (the CLI's exit 2) with a one-line message naming the file, the problem
and the fix; ``NotASepkitCheckpoint`` is kept for readable weight files in another layout
(official releases of published models), which the recipe's components may load.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Optional

from sepkit.atomic import atomic_path
from sepkit.errors import SepkitError
from sepkit.hub import local_file

FORMAT_KEYS = ("recipe", "state_dict", "sepkit_version", "plugins")
# The layout of the payload: save_checkpoint writes it as "format"; a checkpoint without the key (written
# before it existed) is format 1. Raise it when the layout changes so that an older sepkit refuses the file.
CHECKPOINT_FORMAT = 1
FileKind = Literal["zip", "pickle", "safetensors", "unknown"]
RESAVE = "re-save it in sepkit's format (the .ckpt files sepkit train writes, or sepkit.checkpoint.save_checkpoint)"
SAFETENSORS_MAX_HEADER = 100_000_000  # the safetensors library's own limit
# What torch's weights-only unpickler says when a file holds Python objects it will not build
# (as opposed to a corrupt pickle): the detail quoted in our message.
_REFUSAL = re.compile(
    r"Unsupported global: GLOBAL \S+"
    r"|Trying to load unsupported GLOBAL \S+ whose module \S+ is blocked"
    r"|Can only (?:create new object|build) [^\n]*?but got [^\n]*"
    r"|Trying to call reduce for unrecognized function [^\n]*"
    r"|\S+ must be imported to load [^\n]*"
    r"|Cannot use ``weights_only=True`` with TorchScript archives"
)


class NotASepkitCheckpoint(SepkitError):
    """A readable weights file that is not in sepkit's format (e.g. an official release of a published model)."""


class PickledObjectsRefused(NotASepkitCheckpoint):
    """A torch.save file holding Python objects that ``torch.load(weights_only=True)`` will not build."""


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
        "format": CHECKPOINT_FORMAT,
    }
    atomic_save(payload, path)


def checkpoint_file_kind(path: str | os.PathLike) -> FileKind:
    """What the file at ``path`` is, from its first bytes (its name is not trusted).

    - ``"zip"``: a zip archive (``PK\\x03\\x04``), torch.save's default format;
    - ``"pickle"``: a pickle of protocol 2 to 5 (``\\x80`` and the protocol number), which is how
      torch's legacy format (``_use_new_zipfile_serialization=False``, its magic number first) starts;
      torch's oldest tar format is counted here too;
    - ``"safetensors"``: an 8-byte little-endian header length (at most the library's 100 MB limit)
      followed by a JSON header starting with ``{``; the file may still be corrupt;
    - ``"unknown"``: none of these (random bytes, an empty file, audio, text, ...).

    ``path`` may be an ``hf://OWNER/REPO/FILE`` reference (``sepkit.hub``): the cached file is read.
    """
    path = local_file(path, "checkpoint")
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 10 and head[8:9] == b"{" and 2 <= struct.unpack("<Q", head[:8])[0] <= SAFETENSORS_MAX_HEADER:
        return "safetensors"
    if head[257:262] == b"ustar":
        return "pickle"
    return "unknown"


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a sepkit checkpoint with ``torch.load(weights_only=True)``; check its structure and plugins.

    Raises ``SepkitError`` for a missing, unreadable, corrupt or malformed file, and
    ``NotASepkitCheckpoint`` for a readable weights file in another layout (a safetensors file, a
    torch file without sepkit's keys, or one whose pickled objects ``weights_only`` refuses), which
    callers offer to the recipe's components. ``path`` may be an ``hf://OWNER/REPO/FILE`` reference
    (``sepkit.hub``): the file is taken from the Hugging Face cache, downloaded once if needed.
    """
    path = Path(local_file(path, "checkpoint"))
    if not path.is_file():
        raise SepkitError(f"checkpoint {path} not found; give the path of a .ckpt/.pt file")
    kind = _file_kind(path, "checkpoint")
    if kind == "unknown":
        raise _unknown_file(path, "checkpoint")
    if kind == "safetensors":
        count = len(_safetensors_names(path, "checkpoint"))
        raise NotASepkitCheckpoint(
            f"checkpoint {path} is a safetensors file of {count} tensor{'' if count == 1 else 's'}, not a sepkit "
            "checkpoint (sepkit saves .ckpt files with torch.save); an official checkpoint of a published model "
            "loads through the recipe's components"
        )
    payload = _torch_load(path, kind, "checkpoint")
    if not isinstance(payload, Mapping) or "state_dict" not in payload or "sepkit_version" not in payload:
        raise NotASepkitCheckpoint(
            f"checkpoint {path} is not a sepkit checkpoint (expected keys {', '.join(FORMAT_KEYS)}); "
            "an official checkpoint of a published model loads through the recipe's components"
        )
    check_format_readable(payload, f"checkpoint {path}")  # a newer sepkit's file: say so, name the file
    problems = payload_problems(payload)
    if problems:
        raise SepkitError(f"checkpoint {path} is a malformed sepkit checkpoint: {'; '.join(problems)}; {RESAVE}")
    check_plugins_installed(payload.get("plugins") or {}, str(path))
    return payload


def read_weights_file(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """The content of a torch.save file (``weights_only=True``) or of a safetensors file (a flat dict of tensors).

    For components reading official weights: the file's kind decides how it is read, and every
    failure is a one-line ``SepkitError`` starting with ``{what} {path}`` (``PickledObjectsRefused``
    when ``weights_only`` refuses the file's objects, with advice for trusted files only). ``path`` may be
    an ``hf://OWNER/REPO/FILE`` reference (``sepkit.hub``): the file is taken from the Hugging Face cache.
    """
    path = Path(local_file(path, what))
    if not path.is_file():
        raise SepkitError(f"{what} {path} not found")
    kind = _file_kind(path, what)
    if kind == "unknown":
        raise _unknown_file(path, what)
    if kind == "safetensors":
        return _load_safetensors(path, what)
    return _torch_load(path, kind, what)


def payload_problems(payload: Mapping) -> list[str]:
    """What is wrong with a sepkit payload's structure: ``state_dict`` must map str to tensors,
    ``recipe`` be a mapping and ``plugins`` map distribution names to version strings (both may be None).

    A payload of a newer ``format`` than this sepkit reads raises ``SepkitError`` ("upgrade sepkit")
    before anything else is checked: its layout may differ in ways this code cannot judge.
    """
    import torch

    check_format_readable(payload)
    problems = []
    fmt = payload.get("format", 1)
    if not _is_format_number(fmt):
        problems.append(f"its format is {_short(repr(fmt))}, not a positive integer")
    state_dict, recipe, plugins = payload["state_dict"], payload.get("recipe"), payload.get("plugins")
    if not isinstance(state_dict, Mapping):
        problems.append(f"its state_dict is a {type(state_dict).__name__}, not a mapping of names to tensors")
    else:
        keys = [f"{_short(k)} ({type(k).__name__})" for k in state_dict if not isinstance(k, str)]
        values = [f"{_short(k)} ({type(v).__name__})" for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
        problems += [_listing("state_dict keys are not strings", keys, 5),
                     _listing("state_dict values are not tensors", values, 5)]  # fmt: skip
    if recipe is not None and not isinstance(recipe, Mapping):
        problems.append(f"its recipe is a {type(recipe).__name__}, not a mapping")
    if plugins is not None and not isinstance(plugins, Mapping):
        problems.append(f"its plugins is a {type(plugins).__name__}, not a mapping of distributions to versions")
    elif plugins:
        bad = [f"{_short(repr(k))}: {_short(repr(v))}" for k, v in plugins.items() if not _plugin_entry_ok(k, v)]
        problems.append(_listing("plugins entries are not distribution: version strings", bad, 5))
    return [p for p in problems if p]


def check_format_readable(payload: Mapping, where: str = "this checkpoint") -> None:
    """Raise ``SepkitError`` if ``payload`` records a checkpoint ``format`` newer than ``CHECKPOINT_FORMAT``.

    A payload without ``format`` is format 1 (written before the key existed); a ``format`` that is not a
    positive integer is left to ``payload_problems``. ``where`` starts the message ("checkpoint PATH").
    """
    fmt = payload.get("format", 1)
    if _is_format_number(fmt) and fmt > CHECKPOINT_FORMAT:
        import sepkit

        written_by = payload.get("sepkit_version")
        writer = f"sepkit {written_by}" if isinstance(written_by, str) and written_by else "a newer sepkit"
        raise SepkitError(
            f"{where} was written by {writer} (format {fmt}); this sepkit is {sepkit.__version__} "
            f"(reads format <= {CHECKPOINT_FORMAT}): upgrade sepkit (pip install --upgrade sepkit)"
        )


def _is_format_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _plugin_entry_ok(dist: Any, version: Any) -> bool:
    """A ``plugins`` entry is a distribution name and its version (a string, or None if unknown)."""
    return isinstance(dist, str) and (version is None or isinstance(version, str))


def _file_kind(path: Path, what: str) -> FileKind:
    """``checkpoint_file_kind``, with an unreadable file (permissions, I/O) as a ``SepkitError``."""
    try:
        return checkpoint_file_kind(path)
    except OSError as exc:
        raise SepkitError(f"{what} {path} could not be read ({type(exc).__name__}: {exc.strerror or exc})") from None


def _unknown_file(path: Path, what: str) -> SepkitError:
    """The error for a file whose first bytes are neither zip, pickle nor safetensors."""
    named = " (its name says .safetensors but its bytes do not)" if path.suffix == ".safetensors" else ""
    return SepkitError(
        f"{what} {path} could not be read: not a checkpoint file: neither a torch.save zip, a legacy pickle "
        f"nor safetensors{named}; pass the .ckpt that sepkit train wrote, or the model's official weights file"
    )


def _torch_load(path: Path, kind: FileKind, what: str) -> Any:
    """``torch.load(weights_only=True)`` of a zip or pickle file; one-line errors that say which failure it is."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for unreadable files; each becomes a user error
        refused = _REFUSAL.search(str(exc))
        if refused:
            raise PickledObjectsRefused(
                f"{what} {path} holds pickled Python objects that torch.load(weights_only=True) refuses "
                f"({_short(refused.group(0), 160)}); sepkit loads checkpoints with weights_only=True, so save "
                "tensors and plain containers (sepkit's own format does); only if the file comes from a source "
                "you trust, load it once with torch.load(..., weights_only=False) and torch.save its tensors alone"
            ) from None
        container = "a zip archive" if kind == "zip" else "a pickle"
        raise SepkitError(
            f"{what} {path} could not be read: {container} that torch.load cannot read, so a corrupt or truncated "
            f"torch.save file or none at all ({_torch_error_detail(exc)}); save it again or download it again"
        ) from None


def _torch_error_detail(exc: Exception) -> str:
    """``Type: first line`` of a torch.load error, the unpickler's own words when torch wraps them."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return _short(f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": "), 160)


def _safetensors_names(path: Path, what: str) -> list[str]:
    """The tensor names of a safetensors file, after checking its header and data layout (no tensor is read).

    Checks the header by hand (length, JSON object, every tensor's data within the file and the data
    section fully used), then with the safetensors library if it is installed; ``SepkitError``
    "corrupt safetensors file (reason)" on the first problem.
    """
    reason = _safetensors_layout_problem(path)
    if reason is None:
        try:
            from safetensors import safe_open
        except ImportError:
            safe_open = None
        if safe_open is not None:
            try:
                with safe_open(str(path), framework="pt", device="cpu") as f:
                    return list(f.keys())
            except Exception as exc:  # the library's SafetensorError and friends
                reason = _short(f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}", 160)
    if reason is not None:
        raise SepkitError(f"{what} {path} is a corrupt safetensors file ({reason}); save it again or download it again")
    return [k for k in _safetensors_header(path) if k != "__metadata__"]


def _safetensors_header(path: Path) -> dict:
    """The JSON header of a safetensors file (its layout already checked)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length))


def _safetensors_layout_problem(path: Path) -> str | None:
    """Why the safetensors file at ``path`` is corrupt, from its header alone; None if its layout holds."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > size - 8:
            return f"header length {length} exceeds the file's {size - 8} bytes after it; truncated file"
        raw = f.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        return _short(f"its header is not valid JSON: {exc}")
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return f"tensor {_short(name)} has no valid data_offsets"
        if not 0 <= offsets[0] <= offsets[1]:
            return f"tensor {_short(name)} has data_offsets {offsets}"
        end = max(end, offsets[1])
    data = size - 8 - length
    if end != data:
        return f"its tensors need {end} bytes of data but the file holds {data}; truncated or padded file"
    return None


def _load_safetensors(path: Path, what: str) -> dict:
    """All tensors of a safetensors file on the CPU; ``SepkitError`` if corrupt or the library is missing."""
    _safetensors_names(path, what)  # a corrupt file is named as such before the library reads it
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise SepkitError(
            f"{what} {path} is a safetensors file, and reading it needs the safetensors package: "
            "pip install safetensors"
        ) from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # e.g. a dtype this torch does not know
        first = (str(exc).strip().splitlines() or [""])[0]
        raise SepkitError(
            f"{what} {path} is a corrupt safetensors file ({_short(f'{type(exc).__name__}: {first}', 160)}); "
            "save it again or download it again"
        ) from None


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


DEFAULT_ADVICE = "Use the recipe the checkpoint was trained with (sepkit recipe show), or convert the checkpoint"


def load_state_dict_checked(
    module,
    state_dict: Mapping,
    where: str,
    file_key: Optional[Callable[[str], str]] = None,
    advice: str = DEFAULT_ADVICE,
) -> None:
    """Load ``state_dict`` into ``module`` strictly; ``SepkitError`` listing (at most ten of each) the keys
    that are not strings, values that are not tensors, and missing, unexpected and mis-shaped keys.

    ``file_key``: how the file spells a module key (an official layout's loader renames its keys to the
    module's; the error then names missing and unexpected keys as the file has them). ``advice``: the
    sentence after the list (what to do about it)."""
    import torch

    spelled = file_key or (lambda key: key)

    if not isinstance(state_dict, Mapping):
        raise SepkitError(
            f"{where} does not match the model: its state dict is a {type(state_dict).__name__}, "
            "not a mapping of parameter names to tensors; pass a checkpoint of this model's weights "
            "(sepkit train writes them as .ckpt files)"
        )
    own = module.state_dict()
    tensors = {k for k, v in own.items() if isinstance(v, torch.Tensor)}  # not a module's extra state
    given = {k for k in state_dict if isinstance(k, str)}
    not_str = [f"{_short(k)} ({type(k).__name__})" for k in state_dict if not isinstance(k, str)]
    not_tensor = [
        f"{k} ({type(state_dict[k]).__name__})"
        for k in own
        if k in tensors and k in given and not isinstance(state_dict[k], torch.Tensor)
    ]
    missing = [spelled(k) for k in own if k not in given]
    unexpected = [_short(spelled(k)) for k in given if k not in own]
    comparable = [k for k in own if k in tensors and k in given and isinstance(state_dict[k], torch.Tensor)]
    misshaped = [
        f"{k} (checkpoint {tuple(state_dict[k].shape)}, model {tuple(own[k].shape)})"
        for k in comparable
        if tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    problems = [
        _listing("keys are not strings", not_str),
        _listing("values are not tensors", not_tensor),
        _listing("missing keys", missing),
        _listing("unexpected keys", unexpected),
        _listing("mis-shaped keys", misshaped),
    ]
    problems = [p for p in problems if p]
    if problems:
        raise SepkitError(f"{where} does not match the model: {'; '.join(problems)}. {advice}")
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # e.g. a value torch cannot copy into the parameter
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = _short(" ".join(lines[:2]), 300)
        raise SepkitError(
            f"{where} could not be loaded into the model ({detail}); use the recipe the checkpoint was trained "
            "with (sepkit recipe show), or convert the checkpoint"
        ) from None


def _listing(label: str, keys: list[str], limit: int = 10) -> str:
    """``"N label: a, b, ... and M more"`` with at most ``limit`` items; "" for no keys."""
    if not keys:
        return ""
    shown = ", ".join(keys[:limit])
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{len(keys)} {label}: {shown}{more}"


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` of a non-string (a string as it is), cut to ``limit`` characters and kept on one line."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
