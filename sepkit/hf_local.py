"""Loading Hugging Face models and tokenizers from local folders, with errors that name the fix.

Nothing is downloaded: plugins call ``local_dir`` on a recipe key's path and ``load_local`` around
``from_pretrained(folder, local_files_only=True)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sepkit.errors import SepkitError


def local_dir(path: str, key: str, component: str, example: str) -> Path:
    """``path`` as a folder, or a SepkitError saying ``key`` must be a local copy like ``example``."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise SepkitError(
            f"{component}: {key} {folder} is not a directory; give a local copy of the model in the Hugging Face "
            f"layout (e.g. {example})"
        )
    return folder


def load_local(load: Callable[[str], Any], folder: Path, component: str, what: str) -> Any:
    """``load(str(folder))``; OSError/ValueError become "no usable WHAT in FOLDER: <first line>"."""
    try:
        return load(str(folder))
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise SepkitError(f"{component}: no usable {what} in {folder}: {first}") from None


__all__ = ["load_local", "local_dir"]
