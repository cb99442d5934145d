"""Batched separation of many mixtures, each with its own instruction.

``pipeline.separate`` applies one query to a batch of waves; a test set has a
different instruction per mixture. ``separate_batch`` parses each instruction with
the pipeline's parser and runs every single-instruction example through
``pipeline.chunked_forward`` (the chunking and overlap-add ``pipeline.separate`` uses) in shared
batches of ``batch_size`` chunks, each chunk with its own description and task. Compound
instructions ("extract the A and remove the B") go through ``pipeline.separate`` one example
at a time.
"""

from __future__ import annotations

from typing import Optional

import torch
import torchaudio.functional as AF
from torch import Tensor

from sepkit.device import autocast, resolve_device, resolve_dtype
from sepkit.waveforms import fit_length


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
            estimates = pipeline.chunked_forward(
                rows,
                [parsed[i][0].description for i in simple],
                [parsed[i][0].task for i in simple],
                max(1, batch_size or pipeline.settings.batch_size),
            )
        for i, estimate in zip(simple, estimates):
            estimate = estimate.float().cpu()
            if sample_rate != pipeline.sample_rate:
                estimate = AF.resample(estimate, pipeline.sample_rate, sample_rate)
            outputs[i] = fit_length(estimate, mixtures[i].shape[-1])
    return outputs
