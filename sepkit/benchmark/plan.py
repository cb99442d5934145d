"""Checking a benchmark's inputs before anything runs or is written: ``prepare_benchmark`` -> ``BenchmarkPlan``.

Every user error (unknown recipe or metric, missing checkpoint or test set, bad
instruction type or option, an output path that is a file) raises ``SepkitError``
here, so a bad command leaves no output folder behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sepkit.benchmark.systems import System, load_systems
from sepkit.benchmark.testsets import TestSet, load_testset, record_fingerprint, safe_name
from sepkit.data.manifest import MixtureRecord
from sepkit.errors import SepkitError
from sepkit.scoring import DEFAULT_METRICS

DEFAULT_REPORT_EXAMPLES = 4
DEFAULT_COMPLEXITY_SECONDS = 10.0


@dataclass(frozen=True)
class Example:
    """One instruction of one mixture: the unit that is separated, scored and cached."""

    key: str  # "<mixture id>.<instruction index>", file-name safe
    record: MixtureRecord
    instruction_index: int
    record_sha256: str

    @property
    def task(self) -> str:
        return self.record.instructions[self.instruction_index].task

    @property
    def text(self) -> str:
        return self.record.instructions[self.instruction_index].text


@dataclass
class BenchmarkPlan:
    """Everything a run needs, checked. ``metrics``: built metric components by name."""

    systems: list[System]
    testset: TestSet
    metrics: dict[str, Any]
    instructions: list[str]
    examples: list[Example]
    report_keys: list[str]  # examples shown in report.html
    out: Path
    limit: Optional[int] = None
    batch_size: Optional[int] = None
    device: Optional[str] = None
    complexity_seconds: float = DEFAULT_COMPLEXITY_SECONDS
    retry_failed: bool = False
    command: Optional[str] = None
    metric_configs: dict[str, dict] = field(default_factory=dict)
    reference_rows: bool = True  # Mixture, Mixture x 0.5, Silence and the systems' oracle rows

    @property
    def metrics_key(self) -> str:
        """sha256 of the metric names and configurations: cached scores are reused only if it matches."""
        return hashlib.sha256(json.dumps(self.metric_configs, sort_keys=True, default=str).encode()).hexdigest()

    def spectral_preprocessing(self) -> Optional[str]:
        """The sentence every table states about LSD/PSNR preprocessing (None without those metrics)."""
        spectral = [name for name in ("lsd", "psnr") if name in self.metrics]
        if not spectral:
            return None
        states = {name: bool(self.metric_configs[name].get("audioldm_preprocess")) for name in spectral}
        names = " and ".join(n.upper() for n in spectral)
        if all(states.values()):
            return (
                f"{names}: with audioldm-eval 0.0.3's preprocessing (both clips mean-removed and peak-normalised, "
                "the first 1120 samples of the estimate trimmed)."
            )
        if not any(states.values()):
            return (
                f"{names}: on the waveforms as separated, without audioldm-eval's preprocessing (no mean removal, "
                "peak normalisation or 1120-sample trim; --option lsd.audioldm_preprocess=true turns it on)."
            )
        return "; ".join(
            f"{n.upper()}: {'with' if on else 'without'} audioldm-eval 0.0.3's preprocessing (mean removal, "
            "peak normalisation, 1120-sample trim of the estimate)"
            for n, on in states.items()
        ) + "."


def split_list(values: Optional[list[str]]) -> list[str]:
    """['sdr,si_sdr', 'lsd'] -> ['sdr', 'si_sdr', 'lsd'] (space- or comma-separated on the command line)."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def build_metrics(names: list[str], options: dict[str, dict], registry) -> tuple[dict[str, Any], dict[str, dict]]:
    """(metric components by name, their configurations); set-level metrics are refused."""
    unused = sorted(set(options) - set(names))
    if unused:
        raise SepkitError(f"--option given for metrics not asked for: {', '.join(unused)}; add them to --metrics")
    if len(set(names)) != len(names):
        raise SepkitError(f"--metrics names a metric twice: {' '.join(names)}")
    built, configs = {}, {}
    for name in names:
        cls = registry.load_class("metric", name)
        if callable(getattr(cls, "accumulate", None)) and callable(getattr(cls, "compute", None)):
            raise SepkitError(
                f"metric {name!r} is computed over a whole set, not per example; sepkit benchmark scores "
                "per-example metrics (see sepkit plugins --kind metric); leave it out of --metrics"
            )
        metric = registry.build("metric", {**options.get(name, {}), "name": name}, where=f"metric {name}")
        built[name] = metric
        config = metric.config
        configs[name] = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(vars(config))
    return built, configs


def select_examples(testset: TestSet, instructions: list[str], limit: Optional[int]) -> list[Example]:
    """The first ``limit`` mixtures' instructions of the asked types, mixture by mixture."""
    records = testset.records[:limit] if limit else testset.records
    examples = []
    for record in records:
        fingerprint = record_fingerprint(record)
        for index, instruction in enumerate(record.instructions):
            if instruction.task in instructions:
                examples.append(Example(f"{safe_name(record.id)}.{index}", record, index, fingerprint))
    return examples


def pick_report_keys(examples: list[Example], count: int) -> list[str]:
    """Every instruction of ``count`` mixtures spread evenly over the evaluated ones (always the same)."""
    ids = list(dict.fromkeys(e.record.id for e in examples))
    if count <= 0 or not ids:
        return []
    if count >= len(ids):
        chosen = set(ids)
    else:
        step = (len(ids) - 1) / max(1, count - 1)
        chosen = {ids[round(i * step)] for i in range(count)}
    return [e.key for e in examples if e.record.id in chosen]


def prepare_benchmark(
    systems: list[str],
    testset: str,
    out: str | Path,
    metrics: Optional[list[str]] = None,
    options: Optional[dict[str, dict]] = None,
    instructions: Optional[list[str]] = None,
    limit: Optional[int] = None,
    batch_size: Optional[int] = None,
    device: Optional[str] = None,
    labels: Optional[list[str]] = None,
    report_examples: int = DEFAULT_REPORT_EXAMPLES,
    complexity_seconds: float = DEFAULT_COMPLEXITY_SECONDS,
    retry_failed: bool = False,
    command: Optional[str] = None,
    reference_rows: bool = True,
    registry=None,
) -> BenchmarkPlan:
    """Check every input and return the plan; raises SepkitError naming the problem and its fix."""
    from sepkit.plugins import get_registry

    registry = registry or get_registry()
    if not systems:
        raise SepkitError("name at least one system: RECIPE or RECIPE@CHECKPOINT")
    if limit is not None and limit < 1:
        raise SepkitError(f"--limit must be at least 1, got {limit}")
    if batch_size is not None and batch_size < 1:
        raise SepkitError(f"--batch-size must be at least 1, got {batch_size}")
    if report_examples < 0:
        raise SepkitError(f"--report-examples must be 0 or more, got {report_examples}")
    if not complexity_seconds > 0:
        raise SepkitError(f"--complexity-seconds must be positive, got {complexity_seconds}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SepkitError(f"--out {out} is a file; give a folder for the results")
    if device is not None:
        from sepkit.device import resolve_device

        resolve_device(device)
    metric_names = split_list(metrics) or list(DEFAULT_METRICS)
    built, configs = build_metrics(metric_names, options or {}, registry)
    loaded_systems = load_systems(list(systems), registry, labels)
    if reference_rows:
        from sepkit.benchmark.references import reference_rows as references

        taken = {r.name for r in references()} & {s.label for s in loaded_systems}
        if taken:
            raise SepkitError(
                f"system label {sorted(taken)[0]!r} is the name of a reference row; give another --label "
                "(or --no-reference-rows)"
            )
    loaded_testset = load_testset(testset)
    available = loaded_testset.instruction_types
    asked = split_list(instructions) or available
    for task in asked:
        if task not in ("extract", "remove"):
            raise SepkitError(f"--instructions {task!r}: use extract, remove or extract,remove")
        if task not in available:
            raise SepkitError(
                f"test set {testset} has no {task!r} instructions (it has: {', '.join(available)}); "
                f"use --instructions {','.join(available)}"
            )
    asked = list(dict.fromkeys(asked))
    examples = select_examples(loaded_testset, asked, limit)
    return BenchmarkPlan(
        systems=loaded_systems,
        testset=loaded_testset,
        metrics=built,
        instructions=asked,
        examples=examples,
        report_keys=pick_report_keys(examples, report_examples),
        out=out,
        limit=limit,
        batch_size=batch_size,
        device=device,
        complexity_seconds=float(complexity_seconds),
        retry_failed=retry_failed,
        command=command,
        metric_configs={name: configs[name] for name in metric_names},
        reference_rows=reference_rows,
    )
