"""The HSM-TSS oracle ladder on mini-hsm_tss (issue 15): which stage of the chain loses the quality.

Each rung replaces one quantity the mini HSM-TSS chain predicts by its ground truth (README.md):

1. ``codec``: the codec round trip of the target, ``codec.decode(codec.encode(target))`` (the
   ``Oracle codec round trip`` row of ``sepkit benchmark``, ``sepkit.oracles.codec_round_trip``);
2. ``ar_clean``: codec-ar generating, free running, from the frozen Q-Audio audio encoder's frames
   of the clean target (what the separator's output S_hat stands in for at inference);
3. ``local_gt``: the local stage conditioned on the ground-truth global feature G_tgt (the audio
   encoder's pooled feature of the target, ``hsm-local``'s ``separate_with_global``), then codec-ar;
4. ``chain``: the whole chain, G predicted by the global stage (HSM-TSS as ``sepkit separate`` runs it);
5. ``ours_local``: the Ours_local recipe (no global stage), as it runs at inference.

Rungs 2-5 decode through ``decoder.decode`` itself (the recipe's sampling settings); the codes it
generates are recorded on the way (``recording_codes``). Rungs 3-5 run ``SeparationPipeline.forward``
(text encoding, task tokens, audio encoding, separation, decoding, resampling) on the description each
pipeline's instruction parser reads from the instruction text (as ``sepkit benchmark`` does), rung 3 with the
separator's ``separate`` swapped for ``separate_with_global(..., G_tgt)`` (``global_feature_given``).
Reference rows Mixture, Mixture x 0.5 and Silence are ``sepkit.benchmark.references.reference_rows``.
Every row is scored like ``sepkit benchmark`` scores it (the metric plugins si_sdri, sdri, lsd, psnr,
one example at a time at the test set's rate), plus the output's RMS relative to the target's (dB) and,
for the codec-based rungs, the generated codes against the codec's codes of the target
(``ladder_tokens``: accuracy per example; usage and entropy per group, pooled over the set).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hsm_ladder/run.py --recipe mini/hsm_tss \\
        --ours-local mini/hsm_tss_ours_local --mixtures data/mixes/hsm_tss_test.jsonl --limit 40 \\
        --out benchmarks/hsm_ladder --device cpu

Writes ``results.json`` (every per-example score, the row summaries with 95 % bootstrap intervals,
token statistics, the weights' sha256), ``results.md`` and ``ladder.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torchaudio.functional as AF
from torch import Tensor

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script, this folder is on the path already
    sys.path.insert(0, str(HERE))

from ladder_levels import LEVEL_NAMES, level_summary, lsd_by_level  # noqa: E402
from ladder_report import write_figure, write_markdown  # noqa: E402
from ladder_tokens import CodeHistogram, token_accuracy  # noqa: E402

from sepkit.errors import SepkitError  # noqa: E402
from sepkit.waveforms import fit_length  # noqa: E402

METRICS = ("si_sdri", "sdri", "lsd", "psnr")  # metric plugins, built from the registry as sepkit benchmark does
RMS_FLOOR = 1e-10  # RMS floor: silence is about -200 dB below a target at -20 dBFS instead of -inf
TASKS = ("extract", "remove")
FIGURE_MIXTURES = 2


@dataclass(frozen=True)
class Row:
    key: str
    label: str  # in tables
    short: str  # in the figure
    description: str
    generated: bool  # its codes are generated (token accuracy, usage, entropy against the target's codes)
    rung: Optional[int] = None  # None: a reference row


RUNGS = (
    Row(
        "codec",
        "1 Codec round trip",
        "1 codec round trip",
        "the target encoded and decoded by the chain's codec: the ceiling of every codec-based system",
        False,
        1,
    ),
    Row(
        "ar_clean",
        "2 codec-ar on the clean target's features",
        "2 codec-ar | S_tgt",
        "codec-ar generating free "
        "running from the audio encoder's frames of the clean target (what the separator should output)",
        True,
        2,
    ),
    Row(
        "local_gt",
        "3 Local stage given G_tgt",
        "3 local | G_tgt",
        "the local stage conditioned on the target's ground-truth global feature G_tgt, then codec-ar",
        True,
        3,
    ),
    Row(
        "chain",
        "4 HSM-TSS (G predicted)",
        "4 HSM-TSS",
        "the whole chain as at inference: the global stage's G_hat, the local stage, codec-ar",
        True,
        4,
    ),
    Row(
        "ours_local",
        "5 Ours_local (no global stage)",
        "5 Ours_local",
        "the Ours_local recipe as at inference (local stage on caption and task tokens only, codec-ar)",
        True,
        5,
    ),
)


# --- the recorded decode path ---------------------------------------------------------------------
@contextmanager
def recording_codes(decoder) -> Iterator[list[Tensor]]:
    """While open, every ``decoder.generate_codes`` call appends its codes long [B, G, T] (on the CPU) to
    the yielded list; ``decoder.decode`` runs unchanged (the instance attribute shadows the method)."""
    recorded: list[Tensor] = []
    original = decoder.generate_codes

    def generate_codes(features):
        codes = original(features)
        recorded.append(codes.detach().cpu())
        return codes

    decoder.generate_codes = generate_codes
    try:
        yield recorded
    finally:
        del decoder.generate_codes


@contextmanager
def global_feature_given(separator, global_feature: Tensor) -> Iterator[None]:
    """While open, ``separator.separate(features, query, tasks)`` is ``separate_with_global(features, query,
    global_feature)``: hsm-local's local stage on the given G [B, C_g] (rows in the pipeline batch's order)."""

    def separate(features, query, tasks):
        if features.frames.shape[0] != global_feature.shape[0]:
            raise SepkitError(f"{features.frames.shape[0]} rows but G for {global_feature.shape[0]}")
        return separator.separate_with_global(features, query, global_feature.to(features.frames.device))

    separator.separate = separate
    try:
        yield
    finally:
        del separator.separate


def _resample(wave: Tensor, source: int, target: int) -> Tensor:
    return wave if int(source) == int(target) else AF.resample(wave, int(source), int(target))


def rms_db(estimate: Tensor, target: Tensor) -> Tensor:
    """float [B]: 20 log10(RMS(estimate) / RMS(target)) per row, each RMS floored at ``RMS_FLOOR``."""
    rms = [w.double().pow(2).mean(-1).sqrt().clamp_min(RMS_FLOOR) for w in (estimate, target)]
    return 20 * torch.log10(rms[0] / rms[1])


def parse_instructions(pipeline, examples: list) -> tuple[list[str], list[str]]:
    """(the description ``pipeline``'s instruction parser reads from each example's text, as ``sepkit separate``
    and ``sepkit benchmark`` pass it to the text encoder; the keys of examples whose text parses as anything but
    one instruction of its task, e.g. a caption with "and" split in two: these get the manifest's description)."""
    descriptions, compound = [], []
    for example in examples:
        parsed = pipeline.instruction_parser.parse(example.text)
        if len(parsed) == 1 and parsed[0].task == example.task:
            descriptions.append(parsed[0].description)
        else:
            descriptions.append(example.description)
            compound.append(example.key)
    return descriptions, compound


# --- the ladder -------------------------------------------------------------------------------------
@dataclass
class BatchOutput:
    """What every rung gave for a batch of E examples (waves at the test set's rate)."""

    waves: dict[str, Tensor]  # row key -> float [E, T]
    codes: dict[str, Tensor]  # codec-based rung key -> long [E, G, S] (rung 1: the target's codes)
    target_codes: Tensor  # long [E, G, S'], the codec's codes of each example's target
    frames: Tensor  # long [E]: the target's valid codec frames (as codec-ar's training targets count them)


class Ladder:
    """The chain and Ours_local pipelines (built, in eval mode) and the rungs' outputs for a batch."""

    def __init__(self, chain, ours_local, device: torch.device) -> None:
        from sepkit.oracles import codec_round_trip

        separator, decoder = chain.separator, chain.decoder
        if getattr(separator, "global_stage", None) is None or not hasattr(separator, "separate_with_global"):
            raise SepkitError(
                f"--recipe: the ladder needs hsm-local with a global_stage as model.separator, got "
                f"{type(separator).__name__}; give the HSM-TSS chain's recipe (mini/hsm_tss)"
            )
        for flag, pipeline in (("--recipe", chain), ("--ours-local", ours_local)):
            if not hasattr(pipeline.decoder, "generate_codes") or not hasattr(pipeline.decoder, "codec"):
                raise SepkitError(
                    f"{flag}: the ladder needs codec-ar as model.decoder, got {type(pipeline.decoder).__name__}"
                )
        if getattr(ours_local.separator, "global_stage", "absent") is not None:
            raise SepkitError("--ours-local: give the Ours_local recipe (hsm-local without global_stage)")
        self.chain, self.ours_local, self.device = chain, ours_local, device
        self.codec = decoder.codec
        self.round_trip = codec_round_trip(self.codec)
        self.rate = int(chain.sample_rate)
        for flag, pipeline in (("--recipe", chain), ("--ours-local", ours_local)):
            if int(pipeline.sample_rate) != self.rate:
                raise SepkitError(f"{flag}: works at {pipeline.sample_rate} Hz, the chain at {self.rate} Hz")

    def check_length(self, samples: int) -> None:
        """Every mixture must fit one inference chunk of both pipelines (``forward`` runs unchunked)."""
        for flag, pipeline in (("--recipe", self.chain), ("--ours-local", self.ours_local)):
            chunk = int(round(pipeline.settings.chunk_seconds * pipeline.sample_rate))
            if samples > chunk or samples < pipeline.min_samples:
                raise SepkitError(
                    f"{flag}: mixtures of {samples} samples at {pipeline.sample_rate} Hz, but the ladder runs each "
                    f"as one chunk of at most inference.chunk_seconds={pipeline.settings.chunk_seconds:g} s "
                    f"and at least {pipeline.min_samples} samples; use a test set of shorter clips"
                )

    def _amp(self, pipeline):
        from sepkit.device import autocast, resolve_dtype

        return autocast(self.device, resolve_dtype(pipeline.settings.dtype))

    def _target_codes(self, targets: Tensor, lengths: Tensor, features) -> tuple[Tensor, Tensor]:
        """As codec-ar's training system computes its targets (in float32): (codes long [U, G, S], valid
        frames long [U] = min(the codec's valid frames, the frames the features' duration covers))."""
        rate_out = int(self.codec.sample_rate)
        wave = _resample(targets.float(), self.rate, rate_out)
        codec_lengths = torch.div(lengths * rate_out + self.rate - 1, self.rate, rounding_mode="floor")
        frames = self.codec.encode(wave, codec_lengths)
        covered = self.chain.decoder.acoustic_steps(features).to(frames.codes.device)
        valid = torch.minimum(frames.lengths.long(), covered).clamp(1, frames.codes.shape[-1])
        return frames.codes.long().cpu(), valid.cpu()

    def _decoded(self, pipeline, wave: Tensor, samples: int) -> Tensor:
        return fit_length(_resample(wave.float(), pipeline.decoder.sample_rate, self.rate), samples).cpu()

    @torch.inference_mode()
    def run(
        self,
        mixtures: Tensor,
        targets: Tensor,
        unique_of: Tensor,
        descriptions: list[str],
        ours_descriptions: list[str],
        tasks: list[str],
    ) -> BatchOutput:
        """mixtures float [E, T] (one per example), targets float [U, T] (the distinct targets), unique_of long [E]
        (each example's target row), at ``self.rate``; the descriptions of the examples for the chain's and
        Ours_local's text encoders (``parse_instructions``); tasks "extract" | "remove"."""
        dev = self.device
        e, samples = mixtures.shape
        u = targets.shape[0]
        mixtures, targets = mixtures.to(dev), targets.to(dev)
        lengths_e = torch.full((e,), samples, dtype=torch.long, device=dev)
        lengths_u = torch.full((u,), samples, dtype=torch.long, device=dev)
        task_ids = torch.tensor([TASKS.index(t) for t in tasks], dtype=torch.long, device=dev)
        chain, ours = self.chain, self.ours_local
        waves, codes = {}, {}

        # the target's side: rungs 1 and 2, G_tgt, the codec's codes of the target (float32 as in training)
        features = chain.audio_encoder.encode_audio(targets, lengths_u)  # S_tgt frames, G_tgt pooled
        target_codes, frames = self._target_codes(targets, lengths_u, features)
        rate_codec = int(self.codec.sample_rate)
        at_codec = _resample(targets, self.rate, rate_codec)
        round_trip = self.round_trip.output(  # (mixture, target, lengths): the round trip reads only the target
            at_codec,
            at_codec,
            torch.full((u,), round(samples * rate_codec / self.rate), dtype=torch.long, device=dev),
        )
        waves["codec"] = fit_length(_resample(round_trip.float(), rate_codec, self.rate), samples).cpu()[unique_of]
        codes["codec"] = target_codes[unique_of]
        num = round(samples * chain.decoder.sample_rate / self.rate)
        with self._amp(chain), recording_codes(chain.decoder) as recorded:
            wave = chain.decoder.decode(features, num_samples=num)
        waves["ar_clean"] = self._decoded(chain, wave, samples)[unique_of]
        codes["ar_clean"] = torch.cat(recorded)[unique_of]

        # the mixture's side: rungs 3-5 through the pipelines' own forward pass
        g_tgt = features.pooled[unique_of.to(dev)]
        with self._amp(chain), global_feature_given(chain.separator, g_tgt), recording_codes(chain.decoder) as rec:
            waves["local_gt"] = chain.forward(mixtures, lengths_e, descriptions, task_ids).float().cpu()
        codes["local_gt"] = torch.cat(rec)
        with self._amp(chain), recording_codes(chain.decoder) as rec:
            waves["chain"] = chain.forward(mixtures, lengths_e, descriptions, task_ids).float().cpu()
        codes["chain"] = torch.cat(rec)
        with self._amp(ours), recording_codes(ours.decoder) as rec:
            waves["ours_local"] = ours.forward(mixtures, lengths_e, ours_descriptions, task_ids).float().cpu()
        codes["ours_local"] = torch.cat(rec)
        for key, value in codes.items():
            if value.shape[0] != e:
                raise SepkitError(f"rung {key}: {value.shape[0]} code rows recorded for {e} examples")
        return BatchOutput(waves, codes, target_codes[unique_of], frames[unique_of])


# --- the test set ---------------------------------------------------------------------------------
@dataclass
class Example:
    record: Any  # sepkit.data.manifest.MixtureRecord
    index: int  # of its instruction
    task: str
    text: str
    description: str  # the manifest's (what training conditioned on)

    @property
    def key(self) -> str:
        return f"{self.record.id}/{self.index}"


def examples_of(records: list) -> list[Example]:
    """Every instruction of every record, in manifest order (hsm_tss: extract then remove per mixture)."""
    out = []
    for record in records:
        for index, instruction in enumerate(record.instructions):
            if instruction.task not in TASKS:
                raise SepkitError(f"mixture {record.id}: task {instruction.task!r}; the ladder runs extract/remove")
            out.append(Example(record, index, instruction.task, instruction.text, instruction.description))
    return out


class Renderer:
    """Mixture and sources of a record at its own rate (clips read relative to the manifest's folder)."""

    def __init__(self, manifest: Path) -> None:
        self.caches: dict[int, Any] = {}
        self.manifest_dir = manifest.parent

    def render(self, record) -> tuple[np.ndarray, np.ndarray, int]:
        """(mixture float32 [T], sources float32 [S, T], sample rate) at the record's own rate."""
        from sepkit.data.manifest import ClipCache, render_mixture

        rate = int(record.sample_rate)
        cache = self.caches.setdefault(rate, ClipCache(rate, base_dir=self.manifest_dir))
        mixture, sources = render_mixture(record, cache)
        return mixture.astype(np.float32), sources, rate


def render_batch(renderer: Renderer, records: list) -> tuple[list[Example], list[Tensor], list[Tensor], Tensor, int]:
    """-> (examples, one mixture float [T] per example, the distinct targets float [T], long [E] each example's
    target row, the sample rate); a batch's mixtures must share their length and sample rate."""
    from sepkit.data.manifest import instruction_target

    examples = examples_of(records)
    mixtures, targets, unique, unique_of, rates = [], [], {}, [], set()
    for record in records:
        mixture, sources, rate = renderer.render(record)
        rates.add(rate)
        for example in (e for e in examples if e.record is record):
            mixtures.append(torch.from_numpy(mixture))
            key = (record.id, tuple(record.instructions[example.index].target))
            if key not in unique:
                unique[key] = len(targets)
                target = instruction_target(record, sources, example.index)
                targets.append(torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32)))
            unique_of.append(unique[key])
    if len({m.shape[-1] for m in mixtures}) != 1 or len(rates) != 1:
        raise SepkitError("the ladder batches mixtures of one length and sample rate; this manifest mixes them")
    return examples, mixtures, targets, torch.tensor(unique_of), rates.pop()


# --- scoring and summaries ------------------------------------------------------------------------
def build_metrics() -> dict[str, Any]:
    from sepkit.plugins import get_registry

    registry = get_registry()
    return {name: registry.build("metric", {"name": name}, where=f"metric {name}") for name in METRICS}


def score(metrics: dict, estimate: Tensor, target: Tensor, mixture: Tensor, rate: int) -> dict[str, Optional[float]]:
    """One example (float [T] each, at ``rate``), as ``sepkit benchmark`` scores it; non-finite -> None."""
    est, tgt, mix = estimate[None].float(), target[None].float(), mixture[None].float()
    out = {}
    for name, metric in metrics.items():
        value = float(metric.score(est, tgt, rate, mix if metric.needs_mixture else None)[0])
        out[name] = value if math.isfinite(value) else None
    out["rms_db"] = float(rms_db(est, tgt)[0])
    return out


def entry(row: str, example: Example, scores: dict, lsd_levels: dict) -> dict:
    """One per-example record of results.json (``lsd_levels``: ``ladder_levels.lsd_by_level``)."""
    e = example
    return {
        "row": row,
        "key": e.key,
        "id": e.record.id,
        "task": e.task,
        "text": e.text,
        "scores": scores,
        "lsd_levels": lsd_levels,
    }


def summarise_levels(examples: list[dict], rows: list[str]) -> dict:
    """Per task and row, ``ladder_levels.level_summary`` of the row's examples."""
    out = {"bins": list(LEVEL_NAMES)}
    for task in TASKS:
        out[task] = {}
        for row in rows:
            mine = [e for e in examples if e["row"] == row and e["task"] == task]
            if mine:
                out[task][row] = level_summary(mine)
    return out


def summarise_rows(examples: list[dict], rows: list[str]) -> list[dict]:
    """Per row and task: n and, per score, the mean and 95 % bootstrap interval over finite values."""
    from sepkit.benchmark.bootstrap import interval

    out = []
    for task in TASKS:
        for row in rows:
            mine = [e for e in examples if e["row"] == row and e["task"] == task]
            if not mine:
                continue
            names = sorted({k for e in mine for k in e["scores"]})
            summary = {"row": row, "task": task, "n": len(mine), "mean": {}, "ci": {}}
            for name in names:
                values = [e["scores"][name] for e in mine if e["scores"].get(name) is not None]
                values = [v for v in values if math.isfinite(v)]
                summary["mean"][name] = float(np.mean(values)) if values else None
                summary["ci"][name] = interval(values) if values else None
            out.append(summary)
    return out


def paired(examples: list[dict], pairs: list[tuple[str, str]], names: tuple[str, ...]) -> list[dict]:
    """Paired bootstrap of row a - row b per task and score, on the examples both scored."""
    from sepkit.benchmark.bootstrap import paired_difference

    index = {(e["row"], e["task"], e["key"]): e["scores"] for e in examples}
    out = []
    for task in TASKS:
        for a, b in pairs:
            for name in names:
                keys = [k for (r, t, k) in index if r == a and t == task]
                both = [
                    (index[(a, task, k)][name], index[(b, task, k)][name])
                    for k in keys
                    if (b, task, k) in index
                    and index[(a, task, k)].get(name) is not None
                    and index[(b, task, k)].get(name) is not None
                ]
                if both:
                    result = paired_difference([x for x, _ in both], [y for _, y in both])
                    out.append({"task": task, "a": a, "b": b, "metric": name, **result})
    return out


# --- the run ----------------------------------------------------------------------------------------
def load(spec: str, flag: str):
    """(System, built pipeline in eval mode) of a recipe name or file, with its own checkpoint."""
    from sepkit.benchmark.systems import load_system
    from sepkit.pipeline import build_pipeline
    from sepkit.plugins import get_registry

    system = load_system(spec, get_registry())
    if system.checkpoint is None:
        raise SepkitError(f"{flag} {spec}: the recipe names no checkpoint; the ladder measures trained weights")
    pipeline = build_pipeline(system.recipe, checkpoint=str(system.checkpoint))
    return system, pipeline.eval()


def describe_system(system, pipeline) -> dict:
    from sepkit.paths import display_path

    decoder = pipeline.decoder.config
    return {
        "spec": system.spec,
        "name": system.recipe.config.get("name"),
        "recipe": display_path(system.recipe.source),
        "checkpoint": display_path(str(system.checkpoint)),
        "checkpoint_sha256": system.checkpoint_sha256,
        "component_checkpoints": system.component_checkpoints,
        "decoding": {
            "sampling": decoder.sampling,
            "temperature": decoder.temperature,
            "top_k": decoder.top_k,
            "seed": decoder.seed,
        },
        "inference_dtype": pipeline.settings.dtype,
    }


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="mini/hsm_tss", help="the HSM-TSS chain (hsm-local with global_stage)")
    parser.add_argument("--ours-local", default="mini/hsm_tss_ours_local", help="the Ours_local recipe")
    parser.add_argument("--mixtures", default="data/mixes/hsm_tss_test.jsonl", help="mixture manifest (JSONL)")
    parser.add_argument("--limit", type=int, default=None, help="the first N mixtures (default: all)")
    parser.add_argument("--out", default="benchmarks/hsm_ladder", help="folder for results.json/.md, ladder.png")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--batch-size", type=int, default=8, help="mixtures per forward pass")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def run(args: argparse.Namespace, argv: list[str]) -> dict:
    import hashlib

    from tqdm import tqdm

    import sepkit
    from sepkit.benchmark.bootstrap import SETTINGS as BOOTSTRAP
    from sepkit.benchmark.cache import write_json
    from sepkit.benchmark.references import reference_rows
    from sepkit.data.manifest import read_mixtures
    from sepkit.device import resolve_device
    from sepkit.paths import display_path, display_words

    start, cpu_start = time.perf_counter(), time.process_time()
    manifest = Path(args.mixtures)
    if not manifest.is_file():
        raise SepkitError(f"--mixtures {args.mixtures}: no such file; run `make mini-data` from the repository root")
    records = read_mixtures(manifest)[: args.limit]
    device = resolve_device(args.device)
    chain_system, chain = load(args.recipe, "--recipe")
    ours_system, ours = load(args.ours_local, "--ours-local")
    chain.to(device)
    ours.to(device)
    ladder = Ladder(chain, ours, device)
    metrics = build_metrics()
    references = reference_rows()
    renderer = Renderer(manifest)
    codec = ladder.codec
    groups, size = int(codec.num_codebooks), int(codec.codebook_size)
    generated = {(r.key, t): CodeHistogram(groups, size) for r in RUNGS if r.generated for t in TASKS}
    target_hist = {t: CodeHistogram(groups, size) for t in TASKS}
    figure_ids = [r.id for r in records[:FIGURE_MIXTURES]]
    figure: dict[str, Any] = {}
    entries: list[dict] = []
    compound: dict[str, list[str]] = {"chain": [], "ours_local": []}  # example keys given the manifest's description
    torch.manual_seed(0)

    bar = tqdm(total=len(records), desc="ladder", unit="mixture", disable=args.no_progress, dynamic_ncols=True)
    for first in range(0, len(records), args.batch_size):
        batch = records[first : first + args.batch_size]
        examples, mixtures, targets, unique_of, rate = render_batch(renderer, batch)
        mix, tgt = (_resample(torch.stack(w), rate, ladder.rate) for w in (mixtures, targets))
        ladder.check_length(mix.shape[-1])
        (described, split), (ours_described, ours_split) = (parse_instructions(p, examples) for p in (chain, ours))
        compound["chain"] += split
        compound["ours_local"] += ours_split
        out = ladder.run(mix, tgt, unique_of, described, ours_described, [e.task for e in examples])
        tgt_rows, mix_rows = torch.stack(targets)[unique_of], torch.stack(mixtures)
        with torch.no_grad():
            reference_waves = {
                r.name: r.output(mix_rows, tgt_rows, torch.full((len(examples),), mix_rows.shape[-1]))
                for r in references
            }
        for i, example in enumerate(examples):
            frames = int(out.frames[i])
            target_hist[example.task].add(out.target_codes[i, :, :frames].numpy())
            waves = {}
            for row in RUNGS:
                wave = fit_length(_resample(out.waves[row.key][i], ladder.rate, rate), mix_rows.shape[-1])
                waves[row.key] = wave
                scores = score(metrics, wave, tgt_rows[i], mix_rows[i], rate)
                if row.generated:
                    code = out.codes[row.key][i]
                    used = min(frames, code.shape[-1])
                    scores["token_accuracy"] = token_accuracy(code.numpy(), out.target_codes[i].numpy(), used)
                    generated[(row.key, example.task)].add(code[:, :used].numpy())
                entries.append(entry(row.key, example, scores, lsd_by_level(wave, tgt_rows[i], rate)))
            for reference in references:
                wave = reference_waves[reference.name][i]
                waves[reference.name] = wave
                scores = score(metrics, wave, tgt_rows[i], mix_rows[i], rate)
                entries.append(entry(reference.name, example, scores, lsd_by_level(wave, tgt_rows[i], rate)))
            if example.record.id in figure_ids:
                figure[example.key] = {
                    "id": example.record.id,
                    "task": example.task,
                    "text": example.text,
                    "rate": rate,
                    "mixture": mix_rows[i].numpy(),
                    "target": tgt_rows[i].numpy(),
                    "rows": {k: w.numpy() for k, w in waves.items()},
                }
        bar.update(len(batch))
    bar.close()

    row_keys = [r.key for r in RUNGS] + [r.name for r in references]
    pairs = [(a.key, b.key) for a, b in zip(RUNGS, RUNGS[1:])] + [(r.key, "Mixture") for r in RUNGS]
    pairs += [(r.key, "Mixture x 0.5") for r in RUNGS]
    tokens = {
        task: {
            "target": target_hist[task].summary(),
            **{key: hist.summary() for (key, t), hist in generated.items() if t == task},
        }
        for task in TASKS
    }
    results = {
        "sepkit_version": sepkit.__version__,
        "command": " ".join(["python", display_path(__file__), *display_words(argv)]),
        "mixtures": {
            "path": display_path(manifest),
            "sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
            "evaluated": len(records),
            "examples": len(entries) // len(row_keys),
        },
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "seconds": {"wall": round(time.perf_counter() - start, 1), "cpu": round(time.process_time() - cpu_start, 1)},
        "systems": {"chain": describe_system(chain_system, chain), "ours_local": describe_system(ours_system, ours)},
        "codec": {
            "num_groups": groups,
            "codebook_size": size,
            "frame_rate": float(codec.frame_rate),
            "sample_rate": int(codec.sample_rate),
        },
        "rows": [{"key": r.key, "label": r.label, "rung": r.rung, "description": r.description} for r in RUNGS]
        + [{"key": r.name, "label": r.name, "rung": None, "description": r.description} for r in references],
        "metrics": {
            **{name: {"higher_is_better": bool(m.higher_is_better)} for name, m in metrics.items()},
            "rms_db": {"higher_is_better": None, "what": "20 log10(RMS(output) / RMS(target)); 0 dB = as loud"},
            "token_accuracy": {
                "higher_is_better": True,
                "what": "fraction of generated codes equal to the codec's "
                "codes of the target, over the target's valid frames and all groups",
            },
        },
        "bootstrap": dict(BOOTSTRAP),
        "summary": summarise_rows(entries, row_keys),
        "paired": paired(entries, pairs, ("lsd", "psnr", "si_sdri")),
        "lsd_levels": summarise_levels(entries, row_keys),
        "tokens": tokens,
        "figure_examples": sorted(figure),
        "compound_parses": {
            "what": "examples whose instruction text the pipeline's parser splits into several instructions (a "
            "caption with 'and'): rungs 3-5 use the manifest's description for them (sepkit benchmark separates "
            "them as compound instructions, so its scores of these examples differ)",
            **compound,
        },
        "examples": entries,
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "results.json", results)
    write_markdown(out_dir / "results.md", results)
    write_figure(out_dir / "ladder.png", figure, [(r.key, r.short) for r in RUNGS])
    return results


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        results = run(args, argv)
    except SepkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = results["seconds"]
    print(
        f"wrote {args.out}/results.json, results.md, ladder.png ({results['mixtures']['evaluated']} mixtures, "
        f"{seconds['wall']:.0f} s wall, {seconds['cpu']:.0f} s CPU)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
