"""Loading Hugging Face models and tokenizers from local folders, with errors that name the fix.

Plugins call ``local_dir`` on a recipe key's path and ``load_local`` around
``from_pretrained(folder, local_files_only=True)``. ``local_dir`` also takes a hub name
(``hf://FacebookAI/roberta-base`` or a bare ``google/flan-t5-base`` that is not a local path): it is
resolved to its snapshot folder in the Hugging Face cache by ``sepkit.hub.resolve_folder``
(downloaded once, ``HF_HUB_OFFLINE=1`` honoured); ``from_pretrained`` itself never downloads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sepkit.errors import SepkitError


def local_dir(path: str, key: str, component: str, example: str) -> Path:
    """``path`` as a folder, or a SepkitError saying ``key`` must be a local copy like ``example``.

    A hub name (``hf://OWNER/REPO[/SUBFOLDER][@REVISION]``, or ``OWNER/REPO`` where no such local path
    exists) becomes the cached snapshot folder of that repository (``sepkit.hub.resolve_folder``).
    """
    from sepkit.hub import is_hub_reference, looks_like_repo_id, resolve_folder

    if is_hub_reference(path):
        return resolve_folder(path, f"{component}: {key}")
    if looks_like_repo_id(path):
        try:
            return resolve_folder(path, f"{component}: {key}")
        except SepkitError as exc:
            raise SepkitError(
                f"{exc}; or, if {path!r} is meant as a local folder: it does not exist (e.g. {example})"
            ) from None
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise SepkitError(
            f"{component}: {key} {folder} is not a directory; give a local copy of the model in the Hugging Face "
            f"layout (e.g. {example}), or its hub name (hf://OWNER/REPO)"
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
