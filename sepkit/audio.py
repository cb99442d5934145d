"""Reading and writing audio files with soundfile (wav, flac, ogg, ...).

``read_audio`` returns ``float32 [channels, samples]`` and the file's sample rate,
and rejects files that are missing, empty, not audio, or hold NaN/inf samples.
``write_audio`` writes through a temporary file and a rename, so a failed run
never leaves a half-written output.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sepkit.atomic import atomic_path
from sepkit.errors import SepkitError


def audio_extensions() -> set[str]:
    """Lower-case file suffixes soundfile can read here (".wav", ".flac", ".ogg", ...)."""
    import soundfile

    extensions = {f".{fmt.lower()}" for fmt in soundfile.available_formats()}
    return extensions | {".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".mp3"}


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
    """Write ``wave`` float [channels, samples] atomically; the format follows the file suffix."""
    import soundfile

    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 1:
        wave = wave[None]
    if not np.isfinite(wave).all():
        raise SepkitError(f"refusing to write {path}: the output holds NaN or infinite samples (a model error)")
    fmt = output_format(path)
    if subtype is not None and not soundfile.check_format(fmt, subtype):
        subtype = None
    with atomic_path(path) as tmp:
        soundfile.write(tmp, wave.T, sample_rate, format=fmt, subtype=subtype)


def audio_subtype(path: str | os.PathLike) -> str | None:
    """The soundfile subtype of an existing file ("PCM_16", "FLOAT", ...), to write outputs alike."""
    import soundfile

    try:
        return soundfile.info(str(path)).subtype
    except Exception:
        return None


def list_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Every audio file under ``folder`` (recursively), sorted; raises if there is none."""
    folder = Path(folder)
    extensions = audio_extensions()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
    if not files:
        raise SepkitError(f"folder {folder} holds no audio files ({', '.join(sorted(extensions)[:6])}, ...)")
    return files
