"""Bootstrap intervals over examples (numpy only): a row's interval and the paired difference of two rows.

Percentile bootstrap of the mean: ``RESAMPLES`` (1000) resamples of the examples with replacement,
drawn by ``numpy.random.default_rng(SEED)`` (seed 0), the same draws for every row and metric with the
same number of examples, so results.json is reproducible to the bit; the 95 % interval is the 2.5th and
97.5th percentiles of the resampled means. Only finite scores count (a non-finite one is stored as null).

Paired: two rows of the same instruction are compared on the examples both scored, through the
per-example differences ``a_i - b_i`` resampled the same way; the difference is significant at 95 %
when its interval excludes 0. Fewer than ``MIN_PAIRED`` common examples give no interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Optional

import numpy as np

RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
MIN_PAIRED = 2

SETTINGS = {
    "method": "percentile bootstrap of the mean over examples (finite scores only)",
    "resamples": RESAMPLES,
    "seed": SEED,
    "confidence": CONFIDENCE,
    "significant": "the interval of the paired difference (a - b, same examples) excludes 0",
}


@lru_cache(maxsize=8)
def _draws(n: int, resamples: int, seed: int) -> np.ndarray:
    """int [resamples, n]: example indices drawn with replacement (read-only, shared)."""
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    draws.flags.writeable = False
    return draws


def interval(values: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED,
             confidence: float = CONFIDENCE) -> Optional[list[float]]:  # fmt: skip
    """[low, high] of the mean of ``values`` (finite floats), or None without values."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return None
    means = data[_draws(data.size, resamples, seed)].mean(axis=1)
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return [float(low), float(high)]


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """{n, difference (mean of a - b), ci [low, high] or None, significant}; ``a``, ``b`` paired, finite."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    ci = interval(diff) if diff.size >= MIN_PAIRED else None
    return {
        "n": int(diff.size),
        "difference": float(diff.mean()) if diff.size else None,
        "ci": ci,
        "significant": ci is not None and (ci[0] > 0 or ci[1] < 0),
    }


def finite(value: Optional[float]) -> bool:
    return value is not None and math.isfinite(value)


def scores_by_key(examples: list[dict], label: str, task: str, metric: str) -> dict[str, float]:
    """{example key: finite score} of row ``label`` for ``task``."""
    return {
        e["key"]: e["scores"][metric]
        for e in examples
        if e["system"] == label and e["task"] == task and e["error"] is None and finite(e["scores"].get(metric))
    }


def compare_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pair of rows of the same instruction, every metric: the paired difference "a" minus "b".

    Rows in table order (systems, then oracle rows, then the reference rows), "a" the earlier one.
    """
    metrics = [m["name"] for m in results["metrics"]]
    examples = results["examples"]
    out = []
    for task in results["instructions"]:
        labels = [r["system"] for r in results["rows"] if r["instruction"] == task]
        scores = {(label, m): scores_by_key(examples, label, task, m) for label in labels for m in metrics}
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                for metric in metrics:
                    mine, theirs = scores[(a, metric)], scores[(b, metric)]
                    keys = [k for k in mine if k in theirs]
                    paired = paired_difference([mine[k] for k in keys], [theirs[k] for k in keys])
                    out.append({"instruction": task, "a": a, "b": b, "metric": metric, **paired})
    return out
