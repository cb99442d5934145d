"""Scoring a separation pipeline on a frozen mixture manifest, per instruction task.

``evaluate_mixtures(pipeline, mixtures, cache, metrics)`` renders every mixture of
the manifest, runs each of its instructions through ``pipeline.separate`` (the
same path as ``sepkit separate``: parsing, chunking, removal handling), and
scores the estimate against the instruction's target with registered metrics
(improvement metrics get the mixture). Returns per-example rows and the mean of
each metric per task ("extract", "remove") and overall.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Optional

import numpy as np
import torch

from sepkit.data.manifest import (
    ClipCache,
    MixtureRecord,
    instruction_target,
    instruction_target_text,
    render_mixture,
)

DEFAULT_METRICS = ("si_sdr", "si_sdri", "sdr", "sdri")


def evaluate_mixtures(
    pipeline,
    mixtures: list[MixtureRecord],
    cache: ClipCache,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    registry=None,
    limit: Optional[int] = None,
    progress: bool = True,
) -> dict:
    """-> {"rows": [{id, task, text, <metric>: value}], "mean": {task: {metric: mean}}, "count": {task: n}}."""
    from sepkit.plugins import get_registry

    registry = registry or get_registry()
    scorers = {name: registry.build("metric", {"name": name}, where=f"metric {name}") for name in metrics}
    records = mixtures[:limit] if limit else mixtures
    if progress:
        from tqdm.auto import tqdm

        records = tqdm(records, desc="evaluating", unit="mixture")
    rows = []
    for record in records:
        mixture, sources = render_mixture(record, cache)
        mix = torch.from_numpy(mixture)[None]
        for index, instruction in enumerate(record.instructions):
            (estimate,) = pipeline.separate([mix], [cache.sample_rate], instruction.text)
            target = torch.from_numpy(instruction_target(record, sources, index))[None]
            row = {"id": record.id, "task": instruction.task, "text": instruction.text}
            for name, scorer in scorers.items():
                extra = {"texts": [instruction_target_text(record, index)]} if scorer.needs_text else {}
                row[name] = float(scorer.score(estimate, target, cache.sample_rate, mix, **extra)[0])
            rows.append(row)
    by_task = defaultdict(list)
    for row in rows:
        by_task[row["task"]].append(row)
        by_task["all"].append(row)
    mean = {task: {m: float(np.mean([r[m] for r in items])) for m in metrics} for task, items in by_task.items()}
    return {"rows": rows, "mean": mean, "count": {task: len(items) for task, items in by_task.items()}}
