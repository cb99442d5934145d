"""Writing files atomically: to a temporary file beside the target, then a rename.

Readers never see half a file, and a failed write leaves any previous file in
place and no temporary behind. The result gets the usual permissions (0666
minus the umask), not ``mkstemp``'s private 0600.

Operating-system errors (permission denied, not a directory, no space left on
device, file name too long, read-only file system, ...) become a ``SepkitError``
that names the output, the reason in words and the fix::

    cannot write out/violin.wav: permission denied; choose a folder you can write to

``check_writable`` finds the same problems before any work is done.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sepkit.errors import SepkitError

# errno -> (the reason in words, the fix).
_SPACE = "free some space or choose another disk"
_WRITE_ERRORS: dict[int, tuple[str, str]] = {
    errno.EACCES: ("permission denied", "choose a folder you can write to"),
    errno.EPERM: ("permission denied", "choose a folder you can write to"),
    errno.ENOTDIR: ("not a directory", "choose an output path whose folders are folders, not files"),
    errno.EISDIR: ("it is a folder", "give a file name, not a folder"),
    errno.ENOSPC: ("no space left on device", _SPACE),
    errno.EDQUOT: ("disk quota exceeded", _SPACE),
    errno.EFBIG: ("file too large for this file system", "choose another disk or a smaller output"),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter name"),
    errno.EROFS: ("read-only file system", "choose a folder on a writable disk"),
    errno.ELOOP: ("too many levels of symbolic links", "choose a path without a symbolic-link loop"),
    errno.EIO: ("input/output error", "check the disk or choose another one"),
}
# Errors that can only come from writing the data (a body's OSError with them is about the output,
# whatever file name it carries).
_DATA_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def write_error(path: str | os.PathLike, exc: OSError, detail: str = "") -> SepkitError:
    """The ``SepkitError`` for ``exc`` raised while writing ``path``: the reason in words, then the fix."""
    reason, fix = _WRITE_ERRORS.get(exc.errno, (None, "check the output path"))
    if reason is None:
        reason = (os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__).lower()
    if detail:
        reason = f"{reason} ({detail})"
    return SepkitError(f"cannot write {path}: {reason}; {fix}")


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` (``path`` itself included) that exists and is not a folder, if any."""
    for part in (path, *path.parents):
        if os.path.lexists(part):
            return None if os.path.isdir(part) else part
    return None


def _not_a_directory(path: Path, blocker: Path) -> SepkitError:
    what = "a broken link" if os.path.islink(blocker) and not os.path.exists(blocker) else "a file"
    return write_error(path, OSError(errno.ENOTDIR, ""), f"{blocker} is {what}")


def _temporary_name(path: Path) -> tuple[str, str]:
    """(prefix, suffix) for a temporary file beside ``path``, never much longer than ``path``'s own name."""
    suffix = path.suffix if 0 < len(path.suffix) <= 16 else ".tmp"
    return f".{path.stem[:32]}.", suffix


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    OS errors of creating the folder or the temporary file, of renaming it, and OS errors of the
    body that concern the output (no space left, ...) raise ``SepkitError`` (see ``write_error``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix, suffix = _temporary_name(path)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        blocker = _file_in_the_way(path.parent)
        if blocker is not None and exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.ENOENT):
            raise _not_a_directory(path, blocker) from exc
        raise write_error(path, exc) from exc
    tmp = Path(tmp)
    try:
        try:
            yield tmp
        except OSError as exc:
            # Only OS errors about the output become SepkitError: another file the body reads is not ours.
            if exc.errno in _WRITE_ERRORS and (
                exc.errno in _DATA_ERRNOS or exc.filename is None or exc.filename in (str(tmp), tmp)
            ):
                raise write_error(path, exc) from exc
            raise
        try:
            os.chmod(tmp, 0o666 & ~_umask())
            if os.path.isdir(path):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
            os.replace(tmp, path)
        except OSError as exc:
            raise write_error(path, exc) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike) -> None:
    """Raise ``SepkitError`` unless a file can be written at ``path``; create nothing that remains.

    For the CLI to call before the model loads. Checks, with the wording ``atomic_path`` uses:
    ``path`` is not an existing folder; no part of its folder is a file (or a broken link); every
    name is short enough; and the nearest existing folder lets us create a file, tried for real with
    a temporary file that is removed at once (``os.access`` alone is wrong for root, ACLs and
    read-only mounts).
    """
    path = Path(path)
    # The nearest existing folder; every part below it will be created. (os.path's tests: pathlib's
    # raise for a name too long.)
    existing = path.parent
    missing: list[str] = [path.name]
    while not os.path.exists(existing) and existing != existing.parent:
        missing.append(existing.name)
        existing = existing.parent
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
        path_max = os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    if any(len(os.fsencode(name)) > name_max for name in missing) or (
        len(os.fsencode(os.path.abspath(path))) >= path_max
    ):
        raise write_error(path, OSError(errno.ENAMETOOLONG, ""))
    if os.path.isdir(path):
        raise write_error(path, IsADirectoryError(errno.EISDIR, ""))
    blocker = _file_in_the_way(path.parent)
    if blocker is not None:
        raise _not_a_directory(path, blocker)
    probe_error: OSError | None = None
    try:
        fd, probe = tempfile.mkstemp(prefix=".sepkit-check-", suffix=".tmp", dir=existing)
    except OSError as exc:
        probe_error = exc
    else:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)
    if probe_error is None and not _access(existing):
        probe_error = PermissionError(errno.EACCES, "")
    if probe_error is not None:
        raise write_error(path, probe_error) from probe_error


def _access(folder: Path) -> bool:
    """``os.access`` for writing into ``folder``, with the effective ids where the platform allows."""
    effective = os.access in os.supports_effective_ids
    return os.access(folder, os.W_OK | os.X_OK, effective_ids=effective)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
