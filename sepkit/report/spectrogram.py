"""Log-magnitude spectrogram images written as PNG with numpy and zlib only.

``spectrogram_image(wave, sample_rate)`` -> uint8 RGB [height, width, 3] (low
frequencies at the bottom, a perceptually ordered colour map, -80 dB floor);
``write_png(path, image)`` writes it atomically. Several spectrograms of the
same clip (mixture, target, estimates) share one dB range when given
``reference_db`` so that they can be compared by eye.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

# Anchor colours of a dark-to-bright map (close to matplotlib's "magma"), interpolated linearly.
_ANCHORS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39],
     [252, 253, 191]],
    dtype=np.float64,
)  # fmt: skip


def colour_map(values: np.ndarray) -> np.ndarray:
    """values in [0, 1] (any shape) -> uint8 RGB (shape + [3])."""
    x = np.clip(values, 0, 1) * (len(_ANCHORS) - 1)
    low = np.floor(x).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (x - low)[..., None]
    return (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).round().astype(np.uint8)


def log_spectrogram_db(wave: np.ndarray, sample_rate: int, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """wave float [samples] (mono) -> power in dB [bins, frames] (Hann window, centred)."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    padded = np.pad(wave, n_fft // 2)
    if padded.size < n_fft:
        padded = np.pad(padded, (0, n_fft - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * np.hanning(n_fft + 1)[:-1]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return 10 * np.log10(power.T + 1e-10)


def spectrogram_image(
    wave: np.ndarray, sample_rate: int, reference_db: float | None = None, floor_db: float = 80.0, height: int = 256
) -> np.ndarray:
    """uint8 RGB [height, frames, 3]; dB relative to ``reference_db`` (default: this clip's maximum)."""
    db = log_spectrogram_db(wave, sample_rate)
    top = db.max() if reference_db is None else reference_db
    scaled = (db - (top - floor_db)) / floor_db
    rows = np.linspace(0, scaled.shape[0] - 1, height).round().astype(int)
    return colour_map(scaled[rows][::-1])


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write uint8 RGB [height, width, 3] as a PNG file (atomically)."""
    from sepkit.atomic import atomic_path

    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width, _ = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(png)
