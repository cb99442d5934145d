"""Running a checked ``BenchmarkPlan``: separate, score and cache every example of every system, then write results.

Systems run one after another (one model in memory at a time). A system's examples
are cut into fixed batches of ``batch_size`` examples in test-set order; a batch whose
examples are all cached is skipped, any other batch is recomputed whole, so a resumed
run computes exactly the same batches as an uninterrupted one (deterministic to the
bit on the same machine). An example that fails (its audio cannot be read, the model
or a metric raises) is recorded with its error and the run goes on; failures are
cached too, and ``retry_failed`` recomputes them.

Unless ``plan.reference_rows`` is False, the rows that need no model (``references``) go
through the same cache, batches and scoring: the oracle rows each system declares, computed
right after the system while its model is in memory, then Mixture, Mixture x 0.5 and Silence.

Outputs, written only at the end and each atomically: ``results.json`` (every
per-example score), ``results.csv``, ``results.md`` and ``report.html`` (+ ``report/``).
They name recipes, checkpoints and the test set by repository-relative paths
(``sepkit.paths.display_path``), so committed results do not carry the absolute path
of the machine that ran them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torchaudio.functional as AF

from sepkit.benchmark.bootstrap import SETTINGS as BOOTSTRAP
from sepkit.benchmark.bootstrap import compare_rows
from sepkit.benchmark.cache import SystemCache, write_json
from sepkit.benchmark.html import ReportExample, write_report
from sepkit.benchmark.inference import separate_batch
from sepkit.benchmark.plan import BenchmarkPlan, Example
from sepkit.benchmark.references import Reference, oracle_row, reference_rows
from sepkit.benchmark.systems import System
from sepkit.benchmark.tables import csv_text, markdown_page, summarise, write_text
from sepkit.benchmark.testsets import safe_name
from sepkit.data.manifest import ClipCache, instruction_target, instruction_target_text, render_mixture
from sepkit.errors import SepkitError
from sepkit.paths import display_path, display_words
from sepkit.waveforms import fit_length

RESULT_FILES = ("results.json", "results.csv", "results.md", "report.html")
REFERENCE_BATCH_SIZE = 8  # examples per call of a reference row's output (without --batch-size)


def _error_text(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    return message if isinstance(exc, SepkitError) else f"{type(exc).__name__}: {message}"


def _finite_or_none(value: float) -> Optional[float]:
    return value if np.isfinite(value) else None


class ClipCaches:
    """One ``ClipCache`` per sample rate, reading clips relative to the manifest's folder."""

    def __init__(self, manifest_dir: Path) -> None:
        self.manifest_dir = manifest_dir
        self.caches: dict[int, ClipCache] = {}

    def render(self, example: Example) -> tuple[np.ndarray, np.ndarray, int]:
        """(mixture [samples], target [samples], sample rate) of the example, at the manifest's rate."""
        rate = int(example.record.sample_rate)
        cache = self.caches.setdefault(rate, ClipCache(rate, base_dir=self.manifest_dir))
        mixture, sources = render_mixture(example.record, cache)
        return mixture.astype(np.float32), instruction_target(example.record, sources, example.instruction_index), rate


class RowRun:
    """Computes, caches and collects the per-example entries of one row group (a system or a reference row).

    Subclasses give ``estimate_group``: the estimates of examples that share a sample rate.
    """

    def __init__(self, plan: BenchmarkPlan, label: str, folder: Path, clips: ClipCaches,
                 log: Callable[[str], None], batch_size: int, shown: bool) -> None:  # fmt: skip
        self.plan = plan
        self.label = label
        self.clips = clips
        self.log = log
        self.batch_size = batch_size
        self.cache = SystemCache(folder)
        self.report_keys = set(plan.report_keys) if shown else set()
        self.entries: dict[str, dict] = {}  # key -> entry, after ``run``
        self.stats: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        """What the cache folder's system.json records."""
        raise NotImplementedError

    def estimate_group(self, examples: list[Example], audio: dict[str, tuple], rate: int) -> list[torch.Tensor]:
        """Estimates float32 [samples] at ``rate`` of ``examples`` (all at ``rate``), in order."""
        raise NotImplementedError

    def starting(self, pending: int) -> None:
        """Called before ``pending`` batches are computed (none are cached)."""

    # --- examples ----------------------------------------------------------------------
    def cached_entry(self, example: Example) -> Optional[dict]:
        entry = self.cache.read_entry(example.key, example.record_sha256, self.plan.metrics_key)
        if entry is None or (entry["error"] is not None and self.plan.retry_failed):
            return None
        shown = example.key in self.report_keys
        if entry["error"] is None and shown and not self.cache.audio_path(example.key).is_file():
            return None  # a report example needs its estimate's audio
        return entry

    def _estimate(self, examples: list[Example], audio: dict[str, tuple]) -> dict[str, Any]:
        """key -> estimate float32 [samples] or the exception; one call per sample rate."""
        out: dict[str, Any] = {}
        by_rate: dict[int, list[Example]] = {}
        for example in examples:
            by_rate.setdefault(audio[example.key][2], []).append(example)
        for rate, group in by_rate.items():
            try:
                out.update({e.key: est for e, est in zip(group, self.estimate_group(group, audio, rate))})
            except Exception as exc:
                if len(group) == 1:
                    out[group[0].key] = exc
                    continue
                for example in group:  # find the example that fails; the others are still scored
                    out.update(self._estimate([example], audio))
        return out

    def _score(
        self, estimate: torch.Tensor, mixture: np.ndarray, target: np.ndarray, rate: int, target_text: str
    ) -> dict:
        est, mix, tgt = estimate[None].float(), torch.from_numpy(mixture)[None], torch.from_numpy(target)[None]
        scores = {}
        with torch.no_grad():
            for name, metric in self.plan.metrics.items():
                extra = {"texts": [target_text]} if getattr(metric, "needs_text", False) else {}
                value = float(metric.score(est, tgt, rate, mix if metric.needs_mixture else None, **extra)[0])
                scores[name] = _finite_or_none(value)
        return scores

    def compute_batch(self, batch: list[Example]) -> dict[str, dict]:
        """Estimate, score and cache ``batch``; returns key -> entry."""
        audio, errors = {}, {}
        for example in batch:
            try:
                audio[example.key] = self.clips.render(example)
            except Exception as exc:
                errors[example.key] = exc
        renderable = [e for e in batch if e.key in audio]
        estimates = self._estimate(renderable, audio) if renderable else {}
        entries = {}
        for example in batch:
            scores = None
            error = errors.get(example.key)
            estimate = estimates.get(example.key)
            if error is None and isinstance(estimate, BaseException):
                error = estimate
            if error is None:
                mixture, target, rate = audio[example.key]
                try:
                    target_text = instruction_target_text(example.record, example.instruction_index)
                    scores = self._score(estimate, mixture, target, rate, target_text)
                    if example.key in self.report_keys:
                        self.cache.write_estimate(example.key, estimate.numpy(), rate)
                except Exception as exc:
                    error, scores = exc, None
            entry = {
                "id": example.record.id,
                "index": example.instruction_index,
                "task": example.task,
                "text": example.text,
                "record_sha256": example.record_sha256,
                "metrics_key": self.plan.metrics_key,
                "scores": scores,
                "error": None if error is None else _error_text(error),
            }
            self.cache.write_entry(example.key, entry)
            entries[example.key] = entry
        return entries

    def run(self, progress: bool) -> tuple[dict[str, dict], dict]:
        """-> (key -> entry for every example, stats {computed, cached, failed, seconds}); kept as ``entries``
        and ``stats``."""
        from tqdm.auto import tqdm

        start = time.perf_counter()
        self.cache.write_description(self.describe())
        size = self.batch_size
        examples = self.plan.examples
        batches = [examples[i : i + size] for i in range(0, len(examples), size)]
        entries, pending = {}, []
        for batch in batches:
            cached = [self.cached_entry(e) for e in batch]
            if all(entry is not None for entry in cached):
                entries.update({e.key: entry for e, entry in zip(batch, cached)})
            else:
                pending.append(batch)
        cached_count = len(entries)
        if pending:
            self.starting(len(pending))
        bar = tqdm(
            total=len(examples), initial=cached_count, desc=self.label, unit="example",
            disable=not progress, file=sys.stderr, dynamic_ncols=True,
        )  # fmt: skip
        try:
            torch.manual_seed(0)
            for batch in pending:
                entries.update(self.compute_batch(batch))
                bar.update(len(batch))
        finally:
            bar.close()
        failed = sum(1 for entry in entries.values() if entry["error"] is not None)
        stats = {
            "computed": len(examples) - cached_count,
            "cached": cached_count,
            "failed": failed,
            "seconds": time.perf_counter() - start,
        }
        self.entries, self.stats = entries, stats
        return entries, stats


class SystemRun(RowRun):
    """A system's row group: its pipeline separates each example with the example's instruction."""

    def __init__(self, plan: BenchmarkPlan, system: System, clips: ClipCaches, log: Callable[[str], None]) -> None:
        from sepkit.device import resolve_device

        recipe_settings = system.recipe.inference
        self.system = system
        self.inference = {
            "device": str(resolve_device(plan.device or recipe_settings.device)),
            "dtype": recipe_settings.dtype,
            "batch_size": plan.batch_size or recipe_settings.batch_size,
        }
        self.fingerprint = system.fingerprint(self.inference)
        folder = plan.out / "cache" / f"{safe_name(system.label)}-{self.fingerprint[:12]}"
        super().__init__(plan, system.label, folder, clips, log, self.inference["batch_size"], shown=True)
        self.pipeline = None
        self.complexity_figures: dict[str, Any] = {}  # after ``complexity``

    def describe(self) -> dict[str, Any]:
        return {"label": self.system.label, **self.system.describe(), **self.inference}

    def starting(self, pending: int) -> None:
        if self.system.checkpoint is None:
            self.log(f"note: {self.system.label} has no checkpoint; scoring untrained weights")

    # --- complexity ------------------------------------------------------------------
    def complexity(self) -> dict[str, Any]:
        """`sepkit complexity` figures for this system's recipe, measured once and cached."""
        cached = self.cache.read_complexity(self.plan.complexity_seconds)
        if cached is not None:
            self.complexity_figures = cached
            return cached
        from sepkit.complexity import measure_complexity

        self.log(f"{self.system.label}: measuring complexity ({self.plan.complexity_seconds:g} s of audio)")
        try:
            result = measure_complexity(self.system.recipe, seconds=self.plan.complexity_seconds, memory=False)
        except SepkitError:
            raise
        except Exception as exc:  # recorded; the table shows '-' and the run goes on
            result = {"seconds": float(self.plan.complexity_seconds), "error": _error_text(exc)}
        self.cache.write_complexity(result)
        self.complexity_figures = result
        return result

    # --- the model -------------------------------------------------------------------
    def _pipeline(self):
        if self.pipeline is None:
            from sepkit.pipeline import build_pipeline

            checkpoint = str(self.system.checkpoint) if self.system.checkpoint else None
            self.pipeline = build_pipeline(self.system.recipe, checkpoint=checkpoint)
            self.pipeline.eval()
        return self.pipeline

    def oracles(self) -> list[Reference]:
        """The oracle rows this system's components declare (builds the pipeline if the run did not).

        A system whose pipeline cannot be built (its examples record the error) or whose components fail to
        declare their oracles gets none, said in the log; the run goes on.
        """
        try:
            return [oracle_row(oracle, self.system.label) for oracle in self._pipeline().oracles()]
        except Exception as exc:
            self.log(f"{self.system.label}: no oracle rows ({_error_text(exc)})")
            return []

    def release(self) -> None:
        """Drop the model (one in memory at a time)."""
        self.pipeline = None

    def estimate_group(self, examples: list[Example], audio: dict[str, tuple], rate: int) -> list[torch.Tensor]:
        return separate_batch(
            self._pipeline(),
            [torch.from_numpy(audio[e.key][0]) for e in examples],
            rate,
            [e.text for e in examples],
            device=self.plan.device,
            batch_size=self.plan.batch_size,
        )


class ReferenceRun(RowRun):
    """A reference or oracle row group: ``reference.output`` of each example's mixture and target."""

    def __init__(self, plan: BenchmarkPlan, reference: Reference, clips: ClipCaches,
                 log: Callable[[str], None]) -> None:  # fmt: skip
        self.reference = reference
        folder = plan.out / "cache" / f"{safe_name(reference.name)}-{reference.fingerprint[:12]}"
        batch_size = plan.batch_size or REFERENCE_BATCH_SIZE
        super().__init__(plan, reference.label, folder, clips, log, batch_size, shown=reference.shown)

    def describe(self) -> dict[str, Any]:
        return self.reference.describe()

    def estimate_group(self, examples: list[Example], audio: dict[str, tuple], rate: int) -> list[torch.Tensor]:
        work_rate = self.reference.sample_rate or rate
        device = self.reference.device
        rows = []
        for example in examples:
            mixture, target = (torch.from_numpy(audio[example.key][i]) for i in (0, 1))
            if work_rate != rate:
                mixture, target = (AF.resample(w, rate, work_rate) for w in (mixture, target))
            rows.append((mixture, target))
        lengths = torch.tensor([m.shape[-1] for m, _ in rows])
        width = int(lengths.max())
        mixtures = torch.stack([fit_length(m, width) for m, _ in rows]).to(device)
        targets = torch.stack([fit_length(t, width) for _, t in rows]).to(device)
        with torch.inference_mode():
            batch = self.reference.output(mixtures, targets, lengths.to(device)).float().cpu()
        estimates = []
        for example, row, length in zip(examples, batch, lengths.tolist()):
            estimate = row[:length]
            if work_rate != rate:
                estimate = AF.resample(estimate, work_rate, rate)
            estimates.append(fit_length(estimate, audio[example.key][0].shape[-1]).clone())
        return estimates


def _report_examples(plan: BenchmarkPlan, clips: ClipCaches, runs: list[RowRun]) -> list:
    examples = []
    for example in plan.examples:
        if example.key not in plan.report_keys:
            continue
        try:
            mixture, target, rate = clips.render(example)
        except Exception:
            continue  # its rendering failed: the error is in every system's entry
        item = ReportExample(example.key, example.record.id, example.task, example.text, rate, mixture, target)
        for run in runs:
            entry = run.entries[example.key]
            item.scores[run.label] = entry["scores"]
            item.errors[run.label] = entry["error"]
            path = run.cache.audio_path(example.key)
            if entry["error"] is None and path.is_file():
                from sepkit.audio import read_audio

                item.estimates[run.label] = read_audio(path)[0][0]
            else:
                item.estimates[run.label] = None
        examples.append(item)
    return examples


def _run_rows(
    plan: BenchmarkPlan, clips: ClipCaches, log: Callable[[str], None], progress: bool
) -> tuple[list[SystemRun], list[ReferenceRun], list[ReferenceRun]]:
    """-> (system runs, oracle runs, reference runs), each run with its ``entries`` and ``stats``.

    Each system's oracle rows are computed while its model is in memory; an oracle already declared by
    an earlier system (same fingerprint) is not computed again; its ``declared_by`` lists both systems.
    """
    systems: list[SystemRun] = []
    oracles: dict[str, ReferenceRun] = {}
    for system in plan.systems:
        run = SystemRun(plan, system, clips, log)
        run.complexity()
        run.run(progress)
        systems.append(run)
        for reference in run.oracles() if plan.reference_rows else []:
            known = oracles.get(reference.fingerprint)
            if known is not None:
                known.reference.declared_by.append(system.label)
                continue
            if reference.label in {run.label for run in oracles.values()}:  # same words, other weights or config
                reference.setting = f"{reference.setting}, {reference.fingerprint[:6]}".lstrip(", ")
            oracles[reference.fingerprint] = ReferenceRun(plan, reference, clips, log)
            oracles[reference.fingerprint].run(progress)
        run.release()
    references = [ReferenceRun(plan, r, clips, log) for r in reference_rows()] if plan.reference_rows else []
    for reference_run in references:
        reference_run.run(progress)
    return systems, list(oracles.values()), references


def run_benchmark(plan: BenchmarkPlan, progress: bool = True, log: Optional[Callable[[str], None]] = None) -> dict:
    """Run every system and reference row, write the result files under ``plan.out``; returns the results
    (results.json's content) plus "stats" per row group (timings; not written, they differ between runs)."""
    import sepkit

    log = log or (lambda message: print(f"sepkit: {message}", file=sys.stderr))
    clips = ClipCaches(plan.testset.path.parent)
    systems, oracles, references = _run_rows(plan, clips, log, progress)
    runs: list[RowRun] = [*systems, *oracles, *references]
    results: dict[str, Any] = {
        "sepkit_version": sepkit.__version__,
        "command": plan.command,
        "testset": _public_testset(plan),
        "instructions": plan.instructions,
        "metrics": [
            {"name": name, "higher_is_better": bool(metric.higher_is_better), "config": plan.metric_configs[name]}
            for name, metric in plan.metrics.items()
        ],
        "spectral_preprocessing": plan.spectral_preprocessing(),
        "complexity_seconds": plan.complexity_seconds,
        "systems": [_public_system(run) for run in systems],
        "references": [run.describe() for run in (*oracles, *references)],
        "bootstrap": dict(BOOTSTRAP),
        "report_examples": list(plan.report_keys),
    }
    results["examples"] = [
        {"system": run.label, "key": example.key, **_public(run.entries[example.key])}
        for run in runs
        for example in plan.examples
    ]
    results["rows"] = summarise(results)
    results["significance"] = compare_rows(results)
    out = plan.out
    write_json(out / "results.json", results)
    write_text(out / "results.csv", csv_text(results["rows"]))
    write_text(out / "results.md", markdown_page(results))
    shown = [run for run in runs if run.report_keys]
    write_report(out / "report.html", results, _report_examples(plan, clips, shown))
    return {**results, "stats": {run.label: run.stats for run in runs}}


def _public_testset(plan: BenchmarkPlan) -> dict[str, Any]:
    """The test set's description for the result files (its path repository-relative)."""
    described = plan.testset.describe()
    path = described["path"]
    if path == str(plan.testset.path):  # a manifest given by its path (a named set's is repository-relative already)
        path = display_path(path)
    return {**described, "path": path, "evaluated": len({e.record.id for e in plan.examples})}


def _public_system(run: SystemRun) -> dict[str, Any]:
    """A system's description for the result files: recipe, checkpoint and command-line spec with
    repository-relative paths, inference settings, fingerprint and complexity figures."""
    described = run.system.describe()
    complexity = dict(run.complexity_figures)
    if complexity.get("recipe"):  # figures cached by an earlier run may hold an absolute path
        complexity["recipe"] = display_path(complexity["recipe"])
    return {
        **described,
        "spec": " ".join(display_words(described["spec"].split(" "))),
        "recipe": display_path(described["recipe"]),
        "checkpoint": display_path(described["checkpoint"]),
        "inference": run.inference,
        "fingerprint": run.fingerprint,
        "complexity": complexity,
    }


def _public(entry: dict) -> dict:
    """An entry without its cache bookkeeping."""
    return {k: v for k, v in entry.items() if k not in ("record_sha256", "metrics_key")}
