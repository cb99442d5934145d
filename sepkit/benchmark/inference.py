"""Batched separation of many mixtures, each with its own instruction.

``pipeline.separate`` applies one query to a batch of waves; a test set has a
different instruction per mixture. ``separate_batch`` parses each instruction with
the pipeline's parser and runs every single-instruction example through
``pipeline.forward`` in shared batches of ``batch_size`` chunks (each chunk with its
own description and task), with the same resampling, chunking and overlap-add as
``pipeline.separate``. Compound instructions ("extract the A and remove the B") go
through ``pipeline.separate`` one example at a time.
"""

from __future__ import annotations

from typing import Optional

import torch
import torchaudio.functional as AF
from torch import Tensor

from sepkit.chunking import gather_chunks, overlap_add, plan_chunks
from sepkit.device import autocast, resolve_device, resolve_dtype
from sepkit.instructions import TASKS


def _fit_length(wave: Tensor, length: int) -> Tensor:
    """Trim or zero-pad the last axis to ``length``."""
    if wave.shape[-1] >= length:
        return wave[..., :length]
    return torch.nn.functional.pad(wave, (0, length - wave.shape[-1]))


def chunked_forward(
    pipeline, rows: list[Tensor], descriptions: list[str], tasks: list[str], batch_size: int
) -> list[Tensor]:
    """rows: float [samples] at ``pipeline.sample_rate``, one description and task each -> estimates, same shapes.

    Only chunks of equal length share a forward pass, so no chunk is zero-padded and each estimate
    equals what ``pipeline.separate`` gives for that row alone (up to float rounding).
    """
    settings = pipeline.settings
    chunk = max(1, int(round(settings.chunk_seconds * pipeline.sample_rate)))
    overlap = int(round(settings.overlap_seconds * pipeline.sample_rate))
    lengths = [r.shape[-1] for r in rows]
    chunks = plan_chunks(lengths, chunk, overlap)
    by_length: dict[int, list[int]] = {}
    for index, c in enumerate(chunks):
        by_length.setdefault(c.length, []).append(index)
    groups = [g[s : s + batch_size] for g in by_length.values() for s in range(0, len(g), batch_size)]
    outputs: list[Tensor] = [None] * len(chunks)
    for group in groups:
        part = [chunks[i] for i in group]
        batch, batch_lengths = gather_chunks(rows, part)
        batch_lengths = batch_lengths.to(batch.device)
        task_ids = torch.tensor([TASKS.index(tasks[c.row]) for c in part], dtype=torch.long, device=batch.device)
        estimate = pipeline.forward(batch, batch_lengths, [descriptions[c.row] for c in part], task_ids)
        estimate = estimate * (torch.arange(batch.shape[-1], device=batch.device)[None] < batch_lengths[:, None])
        estimate = _fit_length(estimate.float(), chunk if len(chunks) > 1 else batch.shape[-1])
        for i, row in zip(group, estimate):
            outputs[i] = row[None]
    width = max(o.shape[-1] for o in outputs)
    stacked = torch.cat([_fit_length(o, width) for o in outputs])
    return overlap_add(stacked, chunks, lengths, overlap)


def separate_batch(
    pipeline,
    mixtures: list[Tensor],
    sample_rate: int,
    queries: list[str],
    device: Optional[str] = None,
    dtype: Optional[str] = None,
    batch_size: Optional[int] = None,
) -> list[Tensor]:
    """mixtures: mono float [samples] at ``sample_rate``; queries: one instruction text each.

    Returns float32 [samples] estimates at ``sample_rate`` on the CPU, in the order given.
    ``batch_size``: chunks per forward pass (default: the recipe's ``inference.batch_size``).
    """
    parsed = [pipeline.instruction_parser.parse(q) for q in queries]
    outputs: list[Optional[Tensor]] = [None] * len(mixtures)
    simple = [i for i, instructions in enumerate(parsed) if len(instructions) == 1]
    for i, instructions in enumerate(parsed):
        if len(instructions) != 1:
            (estimate,) = pipeline.separate([mixtures[i][None]], [sample_rate], queries[i], device=device, dtype=dtype)
            outputs[i] = estimate[0].float().cpu()
    if simple:
        dev = resolve_device(device or pipeline.settings.device)
        amp = resolve_dtype(dtype or pipeline.settings.dtype)
        pipeline.to(dev).eval()
        rows = []
        for i in simple:
            wave = torch.as_tensor(mixtures[i], dtype=torch.float32)
            if sample_rate != pipeline.sample_rate:
                wave = AF.resample(wave, sample_rate, pipeline.sample_rate)
            rows.append(wave.to(dev))
        with torch.inference_mode(), autocast(dev, amp):
            estimates = chunked_forward(
                pipeline,
                rows,
                [parsed[i][0].description for i in simple],
                [parsed[i][0].task for i in simple],
                max(1, batch_size or pipeline.settings.batch_size),
            )
        for i, estimate in zip(simple, estimates):
            estimate = estimate.float().cpu()
            if sample_rate != pipeline.sample_rate:
                estimate = AF.resample(estimate, pipeline.sample_rate, sample_rate)
            outputs[i] = _fit_length(estimate, mixtures[i].shape[-1])
    return outputs
