"""Token statistics of the HSM-TSS oracle ladder (numpy only): accuracy, codebook usage and entropy of codes.

A codec frame holds one code per codebook group; one example's codes are an int array [G, T]
(G groups, T frames, values in [0, K) for a codebook of K codes). The ladder compares the codes a
rung generated with the codec's codes of the target:

- ``token_accuracy``: the fraction of equal codes over the first ``frames`` frames and all groups
  (the frames both sequences cover: the target's valid codec frames, cut to the frames generated);
- ``CodeHistogram``: code counts per group pooled over a set of examples, giving per group the
  codebook usage (distinct codes used / K) and the entropy of the code distribution in bits
  (0 for a group that always emits one code, log2 K = 8 bits for 256 codes used uniformly).
"""

from __future__ import annotations

import numpy as np


def token_accuracy(generated: np.ndarray, target: np.ndarray, frames: int) -> float:
    """generated, target: int [G, T1], [G, T2] -> fraction of equal codes over frames [0, frames) and all G groups.

    ``frames`` must be at least 1 and at most min(T1, T2); the group counts must agree.
    """
    generated, target = np.asarray(generated), np.asarray(target)
    if generated.ndim != 2 or target.ndim != 2 or generated.shape[0] != target.shape[0]:
        raise ValueError(f"codes must be [groups, frames] with equal groups, got {generated.shape} and {target.shape}")
    if not 1 <= frames <= min(generated.shape[1], target.shape[1]):
        raise ValueError(f"frames={frames} outside [1, {min(generated.shape[1], target.shape[1])}]")
    return float((generated[:, :frames] == target[:, :frames]).mean())


class CodeHistogram:
    """Per-group code counts int [G, K], pooled over every example ``add``-ed."""

    def __init__(self, num_groups: int, codebook_size: int) -> None:
        if num_groups < 1 or codebook_size < 1:
            raise ValueError(f"need at least one group and one code, got {num_groups} x {codebook_size}")
        self.counts = np.zeros((num_groups, codebook_size), dtype=np.int64)

    @property
    def codebook_size(self) -> int:
        return self.counts.shape[1]

    def add(self, codes: np.ndarray) -> None:
        """codes: int [G, T], values in [0, K)."""
        codes = np.asarray(codes)
        groups, size = self.counts.shape
        if codes.ndim != 2 or codes.shape[0] != groups:
            raise ValueError(f"codes must be [{groups}, frames], got {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= size):
            raise ValueError(f"codes must lie in [0, {size}), got [{codes.min()}, {codes.max()}]")
        for g in range(groups):
            self.counts[g] += np.bincount(codes[g], minlength=size)

    def usage(self) -> np.ndarray:
        """float [G]: distinct codes used / K per group."""
        return (self.counts > 0).sum(axis=1) / self.codebook_size

    def entropy_bits(self) -> np.ndarray:
        """float [G]: entropy of each group's code distribution in bits (0 for a group with no codes)."""
        totals = self.counts.sum(axis=1, keepdims=True)
        p = self.counts / np.maximum(totals, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
        return terms.sum(axis=1)

    def summary(self) -> dict:
        """JSON-ready: frames counted, usage and entropy per group and their means over groups."""
        usage, entropy = self.usage(), self.entropy_bits()
        return {
            "frames": int(self.counts[0].sum()),
            "usage": [round(float(u), 6) for u in usage],
            "entropy_bits": [round(float(h), 6) for h in entropy],
            "mean_usage": float(usage.mean()),
            "mean_entropy_bits": float(entropy.mean()),
        }
