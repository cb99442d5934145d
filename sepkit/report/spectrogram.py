"""Log-magnitude spectrogram pictures, drawn and written as PNG by matplotlib (Agg, imported when used).

``write_spectrogram(path, wave, sample_rate)`` writes a small picture (default 300 x 160
pixels, the size ``report.html`` shows it at, so pages stay light): low frequencies at the
bottom, 0 Hz to the Nyquist frequency, time left to right, matplotlib's "magma" colour map
over an 80 dB range below ``reference_db``. Several spectrograms of the same clip (mixture,
target, estimates) share one dB range when given the same ``reference_db`` (e.g. the
mixture's ``log_spectrogram_db(...).max()``), so that they can be compared by eye.

``spectrogram_image`` gives the same picture as an array (one column per STFT frame) and
``write_png`` writes such an array unscaled, for callers that compose their own pictures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from sepkit.atomic import atomic_path

COLOUR_MAP = "magma"  # dark to bright, perceptually ordered
FLOOR_DB = 80.0
PICTURE_SIZE = (300, 160)  # width, height in pixels (report.html shows them at this size)
DPI = 100


def colour_map(values: np.ndarray) -> np.ndarray:
    """values in [0, 1] (any shape) -> uint8 RGB (shape + [3]) through matplotlib's ``COLOUR_MAP``."""
    import matplotlib

    rgba = matplotlib.colormaps[COLOUR_MAP](np.clip(np.asarray(values, dtype=np.float64), 0, 1), bytes=True)
    return np.ascontiguousarray(rgba[..., :3])


def log_spectrogram_db(wave: np.ndarray, sample_rate: int, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """wave float [samples] (mono, at ``sample_rate`` Hz) -> power in dB [n_fft // 2 + 1 bins, frames]
    (Hann window, centred frames every ``hop`` samples; bin k is k * sample_rate / n_fft Hz)."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    padded = np.pad(wave, n_fft // 2)
    if padded.size < n_fft:
        padded = np.pad(padded, (0, n_fft - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * np.hanning(n_fft + 1)[:-1]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return 10 * np.log10(power.T + 1e-10)


def _scaled(wave: np.ndarray, sample_rate: int, reference_db: Optional[float], floor_db: float) -> np.ndarray:
    """[bins, frames] in [0, 1]: 0 at ``floor_db`` below ``reference_db`` (default: the clip's maximum), 1 at it."""
    db = log_spectrogram_db(wave, sample_rate)
    top = db.max() if reference_db is None else reference_db
    return np.clip((db - (top - floor_db)) / floor_db, 0, 1)


def spectrogram_image(
    wave: np.ndarray, sample_rate: int, reference_db: float | None = None, floor_db: float = FLOOR_DB,
    height: int = 256,
) -> np.ndarray:  # fmt: skip
    """uint8 RGB [height, frames, 3], row 0 the Nyquist frequency; dB relative to ``reference_db``
    (default: this clip's maximum)."""
    scaled = _scaled(wave, sample_rate, reference_db, floor_db)
    rows = np.linspace(0, scaled.shape[0] - 1, height).round().astype(int)
    return colour_map(scaled[rows][::-1])


def _save(figure, path: str | Path) -> None:
    """Render a matplotlib ``Figure`` with the Agg canvas and write it as PNG (atomically), at its own pixel size.

    A picture of at most 256 colours (a colour-mapped image without axes) is stored with a palette, one
    byte per pixel, through Pillow (matplotlib's own PNG writer): about half the size of RGBA.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    colours, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    if len(colours) <= 256:
        image = Image.fromarray(index.reshape(rgb.shape[:2]).astype(np.uint8))
        image.putpalette(colours.astype(np.uint8).tobytes())  # "L" -> "P"
    else:
        image = Image.fromarray(np.ascontiguousarray(rgb))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=True)


def write_spectrogram(
    path: str | Path, wave: np.ndarray, sample_rate: int, reference_db: float | None = None,
    floor_db: float = FLOOR_DB, size: tuple[int, int] = PICTURE_SIZE,
) -> None:  # fmt: skip
    """Write the log spectrogram of ``wave`` (float [samples] at ``sample_rate`` Hz) as a PNG of ``size``
    (width, height) pixels, without axes: 0 Hz at the bottom, ``sample_rate / 2`` at the top."""
    from matplotlib.figure import Figure

    width, height = size
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(
        _scaled(wave, sample_rate, reference_db, floor_db), origin="lower", aspect="auto", cmap=COLOUR_MAP,
        vmin=0.0, vmax=1.0, interpolation="antialiased", interpolation_stage="data",
    )  # fmt: skip
    axes.set_axis_off()
    _save(figure, path)


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write uint8 RGB [height, width, 3] as a PNG of exactly that many pixels (atomically, via matplotlib)."""
    import matplotlib.image

    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"write_png needs uint8 RGB [height, width, 3], got shape {tuple(image.shape)}")
    with atomic_path(path) as tmp:
        matplotlib.image.imsave(tmp, image, format="png")
