"""Reading and writing audio files with soundfile (wav, flac, ogg, ...).

``read_audio`` returns ``float32 [channels, samples]`` and the file's sample rate,
and rejects files that are missing, empty, not audio, or hold NaN/inf samples.
``write_audio`` writes through a temporary file and a rename, so a failed run
never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sepkit.atomic import atomic_path
from sepkit.errors import SepkitError


def audio_extensions() -> set[str]:
    """Lower-case file suffixes soundfile can read here (".wav", ".flac", ".ogg", ...)."""
    import soundfile

    extensions = {f".{fmt.lower()}" for fmt in soundfile.available_formats()}
    return extensions | {".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".mp3"}


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved_fd: int | None = None


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send what C code writes to file descriptor 2 to /dev/null for the duration.

    libsndfile tries libmpg123 on bytes it does not recognise, and libmpg123 prints notes and
    warnings ("Illegal Audio-MPEG-Header ...", "You got a bad ID3 tag here") straight to fd 2,
    which would break the CLI's one-line error. Nested and concurrent uses share one redirection
    (counted under a lock), so fd 2 is restored exactly once, when the last one ends.
    """
    global _quiet_depth, _quiet_saved_fd
    with _quiet_lock:
        if _quiet_depth == 0:
            try:
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):
                pass
            try:
                saved = os.dup(2)
            except OSError:  # no fd 2 at all: nothing to protect
                saved = None
            if saved is not None:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 2)
                os.close(null)
            _quiet_saved_fd = saved
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved_fd is not None:
                os.dup2(_quiet_saved_fd, 2)
                os.close(_quiet_saved_fd)
                _quiet_saved_fd = None


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read ``path`` -> (wave float32 [channels, samples], sample_rate). Raises SepkitError on bad input."""
    import soundfile

    path = Path(path)
    if not path.exists():
        raise SepkitError(f"input {path} does not exist; check the path")
    if path.is_dir():
        raise SepkitError(f"input {path} is a folder where an audio file was expected")
    if path.stat().st_size == 0:
        raise SepkitError(f"input {path} is an empty file (0 bytes); give a non-empty audio file")
    try:
        with _quiet_stderr():
            data, sample_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SepkitError(f"input {path} is not readable audio ({reason}); give a wav, flac or ogg file") from None
    if data.shape[0] == 0:
        raise SepkitError(f"input {path} holds no samples (0 frames); give a non-empty audio file")
    finite = np.isfinite(data)
    if not finite.all():
        bad = int((~finite).sum())
        first = int(np.argmin(finite.all(axis=1)))
        raise SepkitError(
            f"input {path} has {bad} NaN or infinite samples (first at {first / sample_rate:.3f} s); "
            "repair or re-export the file"
        )
    return np.ascontiguousarray(data.T), int(sample_rate)


def output_format(path: str | os.PathLike) -> str:
    """The soundfile format for an output path from its suffix ("WAV", "FLAC", "OGG", ...); raises if unknown."""
    import soundfile

    suffix = Path(path).suffix.lstrip(".").upper()
    fmt = {"": "WAV", "OGA": "OGG", "AIF": "AIFF"}.get(suffix, suffix)
    if fmt not in soundfile.available_formats():
        raise SepkitError(f"cannot write {path}: unknown audio format {Path(path).suffix!r}; use .wav, .flac or .ogg")
    return fmt


def write_audio(path: str | os.PathLike, wave: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write ``wave`` float [channels, samples] atomically; the format follows the file suffix.

    Raises ``SepkitError`` for NaN/inf samples, an unknown suffix, a format that cannot hold the
    audio, and OS write errors (permission denied, no space left on device, ...: see
    ``sepkit.atomic.write_error``); a failed write leaves any previous ``path`` as it was.
    """
    import soundfile

    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 1:
        wave = wave[None]
    if not np.isfinite(wave).all():
        raise SepkitError(f"refusing to write {path}: the output holds NaN or infinite samples (a model error)")
    fmt = output_format(path)
    if subtype is not None and not soundfile.check_format(fmt, subtype):
        subtype = None
    frames = np.ascontiguousarray(wave.T)
    # libsndfile's Vorbis encoder crashes (segfault) beyond these instead of refusing them.
    if fmt == "OGG" and sample_rate > _OGG_MAX_RATE:
        raise _unwritable_format(path, fmt, sample_rate, frames.shape[1], f"Vorbis takes at most {_OGG_MAX_RATE} Hz")
    if fmt == "OGG" and frames.shape[1] > _OGG_MAX_CHANNELS:
        raise _unwritable_format(
            path, fmt, sample_rate, frames.shape[1], f"Vorbis takes at most {_OGG_MAX_CHANNELS} channels"
        )
    if fmt == "SD2":  # its header goes to a resource fork, which a file written through Python cannot have
        raise SepkitError(f"cannot write {path}: SD2 keeps its header in a separate resource fork; write .wav instead")
    with atomic_path(path) as tmp:
        # libsndfile reports a failed write(2) only as "System error." (no errno: ENOSPC and EACCES look
        # alike), and its OGG encoder ignores failed writes altogether, so a full disk gave a truncated
        # .ogg and no error. So soundfile writes through a Python file object of ours: Python raises
        # OSError with the errno, _RecordingFile keeps it, and it is raised once soundfile returns
        # (atomic_path turns it into "cannot write OUT: no space left on device; ...").
        with open(tmp, "w+b") as raw:
            sink = _RecordingFile(raw)
            try:
                with soundfile.SoundFile(
                    sink, "w", samplerate=int(sample_rate), channels=frames.shape[1], format=fmt, subtype=subtype
                ) as out:
                    # In blocks: one libsndfile call with minutes of audio overflows the stack of its
                    # Vorbis encoder (a segfault; python-soundfile issues 233, 396).
                    for start in range(0, len(frames), _WRITE_BLOCK):
                        out.write(frames[start : start + _WRITE_BLOCK])
                        if sink.error is not None:
                            break
            except Exception as exc:
                if sink.error is not None:  # the OS error behind soundfile's, with its errno
                    raise sink.error from None
                if isinstance(exc, getattr(soundfile, "LibsndfileError", ())):
                    reason = (getattr(exc, "error_string", "") or type(exc).__name__).strip().rstrip(".")
                    reason = re.sub(r"^(?:error\s*:\s*)", "", reason, flags=re.IGNORECASE)
                    raise _unwritable_format(path, fmt, sample_rate, frames.shape[1], reason.lower()) from exc
                raise
            if sink.error is not None:
                raise sink.error


# Frames per libsndfile write call (see write_audio).
_WRITE_BLOCK = 1 << 16
_OGG_MAX_RATE = 200_000
_OGG_MAX_CHANNELS = 255


def _unwritable_format(path, fmt: str, sample_rate: int, channels: int, reason: str) -> SepkitError:
    fix = "write .wav instead" if fmt != "WAV" else "write fewer channels per file"
    return SepkitError(
        f"cannot write {path}: {fmt} cannot hold {channels}-channel audio at {sample_rate} Hz ({reason}); {fix}"
    )


class _RecordingFile:
    """A binary file for soundfile's virtual I/O that keeps the first ``OSError`` instead of raising it.

    soundfile calls these methods from C callbacks, where an exception would only be printed; so
    after the first error nothing more is written, libsndfile is told that nothing was, and the
    error waits in ``error`` for ``write_audio`` to raise.
    """

    def __init__(self, file) -> None:
        self.file = file
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        if self.error is not None:
            return 0
        try:
            written = self.file.write(data)
        except OSError as exc:
            self.error = exc
            return 0
        return len(data) if written is None else written

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        try:
            return self.file.seek(offset, whence)
        except OSError as exc:
            self.error = self.error or exc
            return -1

    def tell(self) -> int:
        try:
            return self.file.tell()
        except OSError as exc:
            self.error = self.error or exc
            return -1

    def read(self, size: int = -1) -> bytes:
        try:
            return self.file.read(size)
        except OSError as exc:
            self.error = self.error or exc
            return b""


def audio_subtype(path: str | os.PathLike) -> str | None:
    """The soundfile subtype of an existing file ("PCM_16", "FLOAT", ...), to write outputs alike."""
    import soundfile

    try:
        with _quiet_stderr():
            return soundfile.info(str(path)).subtype
    except Exception:
        return None


def list_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Every audio file under ``folder`` (recursively, following links to folders), sorted.

    Raises ``SepkitError`` if there is none, or if ``folder`` or any folder under it cannot be
    read: a skipped folder would silently leave its files unprocessed. A folder reached twice
    (a symbolic-link loop, or two links to one folder) is listed once.
    """
    folder = Path(folder)
    extensions = audio_extensions()
    unreadable: list[OSError] = []
    seen: set[tuple[int, int]] = set()
    files: list[Path] = []
    for root, dirs, names in os.walk(folder, onerror=unreadable.append, followlinks=True):
        try:
            status = os.stat(root)
        except OSError as exc:
            unreadable.append(exc)
            dirs[:] = []
            continue
        if (status.st_dev, status.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((status.st_dev, status.st_ino))
        dirs.sort()  # so that, of two links to one folder, the first in order is the one listed
        files.extend(
            path
            for path in (Path(root, name) for name in names)
            if path.suffix.lower() in extensions and path.is_file()
        )
    if unreadable:
        raise _unreadable_folders(folder, unreadable)
    if not files:
        raise SepkitError(f"folder {folder} holds no audio files ({', '.join(sorted(extensions)[:6])}, ...)")
    return sorted(files)


def _unreadable_folders(folder: Path, errors: list[OSError]) -> SepkitError:
    """'folder X/sub cannot be read (permission denied); ...' for the folders ``os.walk`` could not list."""
    if len(errors) == 1 and Path(errors[0].filename or folder) == folder and errors[0].errno == errno.ENOENT:
        return SepkitError(f"folder {folder} does not exist; check the path")
    named = []
    for exc in errors:
        reason = (os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__).lower()
        named.append((exc.filename if exc.filename is not None else folder, reason))
    shown = ", ".join(f"{name} ({reason})" for name, reason in named[:3])
    if len(named) > 3:
        shown += f" and {len(named) - 3} more"
    permissions = all(exc.errno in (errno.EACCES, errno.EPERM) for exc in errors)
    if len(named) == 1:
        name, reason = named[0]
        fix = "fix its permissions" if permissions else "repair or remove it"
        return SepkitError(f"folder {name} cannot be read ({reason}); {fix} or give another folder")
    fix = "fix their permissions" if permissions else "repair or remove them"
    return SepkitError(f"folders {shown} cannot be read; {fix} or give another folder")
