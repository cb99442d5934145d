"""Paths as committed results show them: repository-relative, never the absolute path of the machine that ran.

``display_path("/work/main/recipes/mini/audiosep.yaml")`` run from anywhere inside the
checkout ``/work/main`` gives ``"recipes/mini/audiosep.yaml"``. The repository is the
nearest folder at or above the current working directory that holds ``.git`` (or, in a
tree without one, such as an unpacked source archive, ``setup.cfg``). A path outside it
is shown relative to the working directory if it is inside that, as ``~/...`` if it is
under the home folder, and unchanged otherwise.
``display_words`` applies the same to the path words of a command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

ROOT_MARKERS = (".git", "setup.cfg")  # in order of preference: a plugin folder's setup.cfg inside a checkout is no root
# an absolute or home path at the start of a word or after "@" (RECIPE@CHECKPOINT) or "=" (--out=DIR, key=PATH)
_PATH_IN_WORD = re.compile(r"(?:^|(?<=[@=]))(?:/|~/)[^@=]*")


def find_repository_root(start: str | os.PathLike | None = None) -> Optional[Path]:
    """The nearest folder at or above ``start`` (default: the working directory) holding ``.git``, else
    the nearest holding ``setup.cfg``; None if there is neither."""
    folder = Path(os.path.abspath(start if start is not None else os.getcwd()))
    for marker in ROOT_MARKERS:
        for candidate in (folder, *folder.parents):
            if (candidate / marker).exists():
                return candidate
    return None


def _relative(path: Path, base: Path) -> Optional[str]:
    """``path`` relative to ``base`` (POSIX separators) if it lies inside it, also through symlinks."""
    for p, b in ((path, base), (path.resolve(), base.resolve())):
        try:
            return p.relative_to(b).as_posix() or "."
        except ValueError:
            continue
    return None


def display_path(path: str | os.PathLike | None) -> Optional[str]:
    """How a committed result names ``path`` (a file or folder; it need not exist); None stays None.

    Repository-relative if inside the working directory's repository, else working-directory-relative
    if inside the working directory, else ``~/...`` under the home folder, else unchanged. Texts that
    are not local paths (``hf://...``, ``<recipe>``) are returned unchanged.
    """
    if path is None:
        return None
    text = os.fspath(path)
    if not text or "://" in text or text.startswith("<"):
        return text
    full = Path(os.path.abspath(os.path.expanduser(text)))
    cwd = Path(os.getcwd())
    for base in (find_repository_root(cwd), cwd):
        if base is not None and base != base.parent:  # never relative to the filesystem root
            relative = _relative(full, base)
            if relative is not None:
                return relative
    if not (os.path.isabs(text) or text.startswith("~")):
        return Path(text).as_posix()  # relative already (outside the working directory, e.g. ../x)
    home_folder = Path.home()
    home = _relative(full, home_folder) if home_folder != home_folder.parent else None
    if home is not None:
        return "~" if home == "." else f"~/{home}"
    return text


def display_words(words: Iterable[str]) -> list[str]:
    """Command-line words with every absolute or ``~/`` path in them through ``display_path``.

    ``["/work/main/x.yaml@/work/main/runs/a.ckpt", "--out=/work/main/out", "-n", "3"]`` from inside
    ``/work/main`` -> ``["x.yaml@runs/a.ckpt", "--out=out", "-n", "3"]``. Other words are kept as they are.
    """
    return [_PATH_IN_WORD.sub(lambda match: display_path(match.group(0)) or "", word) for word in words]
