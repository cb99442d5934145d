"""Where a row's LSD comes from: the ``lsd`` metric's per-frame distances grouped by the target frame's level.

The ``lsd`` metric plugin (audioldm-eval's definition, ``sepkit_metrics.spectral``) averages, over STFT frames,
the RMS over bins of the log10 power ratio between target and estimate. A frame's level here is its mean
power over bins, in dB relative to the loudest frame of the same target, binned at ``LEVEL_EDGES``. Per
example this module keeps, for each level bin, the number of frames and the sum of their frame distances,
so that over a set of equally long examples

    LSD (the mean over examples) = sum over bins of the bin's contribution, contribution = frame-distance sum
    over the set's frames of that bin / all frames of the set,

and a row that loses to another on LSD shows in which frames: where the target is loud, or where it is
quiet (a noise floor, silence between notes). Frames of an all-silent target (no level to refer to) fall in
the lowest bin.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

# dB relative to the target's loudest frame: silent / very quiet, quiet, moderate, loud, loudest
LEVEL_EDGES = (-math.inf, -60.0, -40.0, -20.0, -10.0, math.inf)
LEVEL_NAMES = ("< -60 dB", "-60 to -40 dB", "-40 to -20 dB", "-20 to -10 dB", ">= -10 dB")


def lsd_frames(estimate: Tensor, target: Tensor, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """estimate, target float [T] at ``rate`` -> (frame distances [F], target frame levels in dB re the
    loudest frame [F]), on the ``lsd`` metric's STFT and its floors."""
    from sepkit_metrics.spectral import lsd_frame_distances, lsd_stft_magnitude

    distances = lsd_frame_distances(estimate[None].float(), target[None].float(), rate)[0]
    reference = lsd_stft_magnitude(target[None].float(), rate)[0]
    power = 10 * torch.log10((reference**2).mean(-1) + 1e-20)
    levels = power - power.max() if float(power.max()) > -200 else torch.full_like(power, -math.inf)
    return distances.numpy(), levels.numpy()


def lsd_by_level(estimate: Tensor, target: Tensor, rate: int) -> dict[str, list]:
    """One example's ``{"frames": [count per bin], "sums": [frame-distance sum per bin]}`` (bins: LEVEL_NAMES)."""
    distances, levels = lsd_frames(estimate, target, rate)
    bins = np.clip(np.digitize(levels, LEVEL_EDGES[1:-1], right=False), 0, len(LEVEL_NAMES) - 1)
    frames = np.bincount(bins, minlength=len(LEVEL_NAMES))
    sums = np.bincount(bins, weights=distances, minlength=len(LEVEL_NAMES))
    return {"frames": [int(n) for n in frames], "sums": [float(s) for s in sums]}


def level_summary(examples: list[dict]) -> dict[str, list[float]]:
    """Per bin over ``examples`` (each with "lsd_levels" as ``lsd_by_level`` gives): ``share`` of the frames,
    ``mean`` frame distance (None for an empty bin) and ``contribution`` to the set's LSD."""
    frames = np.sum([e["lsd_levels"]["frames"] for e in examples], axis=0).astype(float)
    sums = np.sum([e["lsd_levels"]["sums"] for e in examples], axis=0)
    total = frames.sum()
    return {
        "share": [float(n / total) for n in frames],
        "mean": [float(s / n) if n else None for s, n in zip(sums, frames)],
        "contribution": [float(s / total) for s in sums],
    }


__all__ = ["LEVEL_EDGES", "LEVEL_NAMES", "level_summary", "lsd_by_level", "lsd_frames"]
