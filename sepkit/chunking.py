"""Splitting long rows into overlapping chunks and stitching them back (overlap-add, linear cross-fade).

Memory is bounded by the chunk length whatever the input length. A row of
``length`` samples is cut at ``0, hop, 2*hop, ...`` with ``hop = chunk - overlap``;
the last chunk may be shorter. Each chunk is weighted by a ramp over its overlaps
and the sum is divided by the summed weights, so a constant signal passes unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Chunk:
    """Samples ``[start, start + length)`` of row ``row``."""

    row: int
    start: int
    length: int


def plan_chunks(row_lengths: list[int], chunk: int, overlap: int) -> list[Chunk]:
    """Chunks covering every row; a row no longer than ``chunk`` is one chunk."""
    if chunk <= 2 * overlap:
        raise ValueError(f"chunk ({chunk}) must exceed twice the overlap ({overlap})")
    hop = chunk - overlap
    chunks = []
    for row, length in enumerate(row_lengths):
        start = 0
        while True:
            chunks.append(Chunk(row, start, min(chunk, length - start)))
            if start + chunk >= length:
                break
            start += hop
    return chunks


def gather_chunks(rows: list[Tensor], chunks: list[Chunk]) -> tuple[Tensor, Tensor]:
    """rows: list of [samples] -> (batch [len(chunks), max_len] zero-padded, lengths long [len(chunks)])."""
    width = max(c.length for c in chunks)
    batch = rows[0].new_zeros(len(chunks), width)
    for i, c in enumerate(chunks):
        batch[i, : c.length] = rows[c.row][c.start : c.start + c.length]
    lengths = torch.tensor([c.length for c in chunks], dtype=torch.long)
    return batch, lengths


def _ramp_weights(c: Chunk, row_length: int, overlap: int, device) -> Tensor:
    w = torch.ones(c.length, device=device)
    if overlap == 0:
        return w
    ramp = (torch.arange(overlap, device=device, dtype=torch.float32) + 0.5) / overlap
    if c.start > 0:
        n = min(overlap, c.length)
        w[:n] = ramp[:n]
    if c.start + c.length < row_length:
        n = min(overlap, c.length)
        w[c.length - n :] = torch.minimum(w[c.length - n :], ramp.flip(0)[overlap - n :])
    return w


def overlap_add(outputs: Tensor, chunks: list[Chunk], row_lengths: list[int], overlap: int) -> list[Tensor]:
    """outputs: [len(chunks), >= chunk length] -> list of rows [row_length], cross-faded."""
    device = outputs.device
    acc = [torch.zeros(n, device=device) for n in row_lengths]
    norm = [torch.zeros(n, device=device) for n in row_lengths]
    for i, c in enumerate(chunks):
        w = _ramp_weights(c, row_lengths[c.row], overlap, device)
        acc[c.row][c.start : c.start + c.length] += outputs[i, : c.length].float() * w
        norm[c.row][c.start : c.start + c.length] += w
    return [a / n.clamp_min(1e-8) for a, n in zip(acc, norm)]
