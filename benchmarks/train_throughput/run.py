"""Training throughput of the mini recipes: the code before issue 14 against today's, in fp32, bf16 and as shipped.

    .venv/bin/python benchmarks/train_throughput/run.py [NAME ...] [--steps 40] [--window 5] [--repeats 2]
        [--before COMMIT] [--out benchmarks/train_throughput] [--merge] [--from-json]

Four configurations per recipe, measured in one run:

- ``before``: the code and recipes of commit ``--before`` (default: the last commit before the
  throughput issue's work), checked out into a temporary git worktree and run with this venv's
  Python (``PYTHONPATH`` = the worktree), recipe as it was then (fp32); the issue's "today";
- ``fp32``: today's code, ``train.precision=fp32 data.feature_cache=false``;
- ``bf16``: today's code, ``train.precision=bf16 data.feature_cache=false``;
- ``now``: today's code and recipe as shipped (its own ``train.precision``), reading the frozen
  features from a ``sepkit data cache`` store written before the timed runs (not timed), where
  the recipe's system has something to cache: text embeddings (separation and hsm systems) or
  AudioMAE tokens + codec codes of clean clips (codec-ar, whose recipe trains on
  ``protocol: clean``). This is what ``sepkit train RECIPE`` gives a user after ``sepkit data cache``.

For each, ``sepkit train`` runs ``--steps`` optimizer steps with ``train.log_every=--window`` and
no validation or checkpoints, in its own process; the engine logs examples/s per window of steps
(time in training steps only: data loading of the step included, validation and start-up
excluded). The first window is the warm-up and is dropped; the figure is the median of the
remaining windows over ``--repeats`` alternating runs (before, fp32, bf16, now, before, ...), so
every configuration sees the same machine load. Achieved GFLOP/s = examples/s x 3 x forward FLOPs
per example (one forward, a backward of about twice its cost; ``sepkit complexity`` counts the
forward of the inference pipeline, so for training systems whose step differs from inference
(MAE, Q-Audio, codec GAN, the HSM stages) no figure is given). The bf16 and fp32 peaks are a
2048 x 2048 matmul measured in the same run.

Writes ``results.json``, ``results.md`` and ``throughput.png`` (a bar chart drawn by matplotlib) under
``--out``; ``--from-json`` rewrites the last two from ``results.json`` without measuring. Needs
``make mini-data`` (data/mini and data/mixes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEPKIT = Path(sys.executable).parent / "sepkit"

SHIPPED_MAE = "model.audio_encoder.audio_encoder.checkpoint=recipes/mini/hsm_tss.train/audiomae.ckpt"
# name -> (recipe, overrides, crop seconds of one example, whether a training step's forward is the inference
# pipeline's forward, so that ``sepkit complexity`` gives its FLOPs; the HSM-TSS stages, MAE, Q-Audio, the codec
# GAN and codec-ar teacher forcing compute something else, and get no GFLOP/s figure)
RECIPES = {
    "mini/audiosep": ("mini/audiosep", [], 2.0, True),
    "hsm mae": ("mini/hsm_tss_mae", [], 4.0, False),
    "hsm qaudio": ("mini/hsm_tss_qaudio", [SHIPPED_MAE], 4.0, False),
    "hsm tfcodec": ("mini/tfcodec", [], 1.5, False),
    "hsm codec-ar": ("mini/hsm_tss_decoder", [], 4.0, False),
    "hsm global": ("mini/hsm_tss", ["train.system.stage=global"], 4.0, False),
    "hsm local": ("mini/hsm_tss", ["train.system.stage=local"], 4.0, False),
    "hsm joint": ("mini/hsm_tss", ["train.system.stage=joint"], 4.0, False),
    "mini/hybrid_sep": ("mini/hybrid_sep", [], 4.0, True),
}
# recipes whose system has frozen features to cache (the ``now`` configuration writes a store first)
CACHED = ("mini/audiosep", "hsm codec-ar", "hsm global", "hsm local", "hsm joint", "mini/hybrid_sep")
BEFORE = "748609e"  # the last commit before issue 14 (training throughput) changed the trainer
CONFIGS = {  # configuration -> overrides ("before" runs the recipe as it was at --before, without overrides)
    "before": [],
    "fp32": ["train.precision=fp32", "data.feature_cache=false"],
    "bf16": ["train.precision=bf16", "data.feature_cache=false"],
    "now": ["data.feature_cache=true"],
}
PRECISIONS = ("fp32", "bf16")


def matmul_peak(dtype_name: str, size: int = 2048, repeats: int = 20) -> float:
    """GFLOP/s of a size x size matmul (median of ``repeats``) in this process."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def forward_flops(recipe: str, overrides: list[str], seconds: float) -> float | None:
    """FLOPs of one example's forward through the recipe's inference pipeline (``sepkit complexity``)."""
    cmd = [str(SEPKIT), "complexity", recipe, *overrides, "--seconds", str(seconds), "--repeats", "1", "--no-memory",
           "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        return None
    try:
        return float(json.loads(proc.stdout)["flops"])
    except (KeyError, ValueError, TypeError):
        return None


@contextlib.contextmanager
def code_at(commit: str):
    """A temporary git worktree of ``commit`` whose ``data/`` is this checkout's (yields its path)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        try:
            (tree / "data").symlink_to(ROOT / "data")
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)


def train_windows(recipe: str, overrides: list[str], steps: int, window: int, tree: Path | None = None) -> list[float]:
    """examples/s of each logged window of a fresh ``sepkit train`` run, warm-up window dropped.

    ``tree``: run the code and recipes of that checkout (a ``code_at`` worktree) instead of this one's.
    """
    env = {**os.environ, "TQDM_DISABLE": "1"}
    if tree is not None:
        env["PYTHONPATH"] = f"{tree}{os.pathsep}{tree / 'plugins'}"
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            str(SEPKIT), "train", recipe, *overrides, f"train.steps={steps}", f"train.log_every={window}",
            "train.val_every=0", "train.ckpt_every=0", "--out", f"{tmp}/run",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tree or ROOT, env=env)
        if proc.returncode != 0:
            lines = [ln[ln.index("sepkit:") :] for ln in proc.stderr.splitlines() if "sepkit:" in ln] or ["(no output)"]
            raise RuntimeError(lines[-1])
        if "data.feature_cache=true" in overrides and "feature cache: none" in proc.stderr:  # a store was written
            raise RuntimeError("no feature cache was found: " + proc.stderr.split("feature cache: none", 1)[1][:120])
        records = [json.loads(line) for line in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines() if line]
    rates = [r["examples_per_s"] for r in records if r.get("split") == "train" and "examples_per_s" in r]
    return rates[1:]


def write_cache(recipe: str, overrides: list[str]) -> None:
    """``sepkit data cache`` for the recipe's data manifests with ``overrides`` (not timed)."""
    cmd = [str(SEPKIT), "data", "cache", recipe, *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TQDM_DISABLE": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"sepkit data cache: {proc.stderr.strip().splitlines()[-1]}")


def configs_of(name: str, overrides: list[str]) -> dict[str, list[str]]:
    """configuration -> overrides of one recipe (``now`` reads a cache only where there is one to write)."""
    out = {c: [*overrides, *extra] for c, extra in CONFIGS.items()}
    if name not in CACHED:
        out["now"] = [*overrides, "data.feature_cache=false"]
    return out


def measure(names: list[str], steps: int, window: int, repeats: int, before: Path) -> dict:
    peaks = {p: matmul_peak(p) for p in PRECISIONS}
    rows = []
    for name in names:
        recipe, overrides, seconds, flops_match = RECIPES[name]
        print(f"== {name}", file=sys.stderr, flush=True)
        configs = configs_of(name, overrides)
        windows: dict[str, list[float]] = {c: [] for c in configs}
        errors = {}
        if name in CACHED:
            try:
                write_cache(recipe, configs["now"])
            except RuntimeError as exc:
                errors["now"] = str(exc)
        for _ in range(repeats):
            for config, config_overrides in configs.items():
                if config in errors:
                    continue
                try:
                    tree = before if config == "before" else None
                    windows[config] += train_windows(recipe, config_overrides, steps, window, tree)
                except RuntimeError as exc:
                    errors[config] = str(exc)
        flops = forward_flops(recipe, overrides, seconds) if flops_match else None
        row = {"name": name, "recipe": recipe, "overrides": overrides, "configs": configs, "errors": errors,
               "forward_flops": flops}  # fmt: skip
        for config in CONFIGS:
            rate = statistics.median(windows[config]) if windows.get(config) else None
            row[f"{config}_examples_per_s"] = rate
            row[f"{config}_windows"] = windows.get(config, [])
            row[f"{config}_gflops"] = 3 * flops * rate / 1e9 if flops and rate else None
        fp32, old, now = row["fp32_examples_per_s"], row["before_examples_per_s"], row["now_examples_per_s"]
        row["ratio"] = row["bf16_examples_per_s"] / fp32 if fp32 and row["bf16_examples_per_s"] else None
        row["speedup"] = now / old if old and now else None  # the recipe as shipped today over the "before" code
        row["bf16_peak_fraction"] = row["bf16_gflops"] / peaks["bf16"] if row["bf16_gflops"] else None
        rows.append(row)
    return {"peaks_gflops": peaks, "steps": steps, "window": window, "repeats": repeats, "rows": rows,
            "before_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=before, capture_output=True,
                                            text=True).stdout.strip(),
            "torch_threads": __import__("torch").get_num_threads()}  # fmt: skip


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def write_markdown(result: dict, path: Path, command: str) -> None:
    peaks = result["peaks_gflops"]
    lines = [
        "# Training throughput: the code before issue 14, and today's in fp32, in bf16, and as shipped (now)",
        "",
        f"Command: `{command}`",
        "",
        f"before: commit {result['before_commit']} (recipes as they were, fp32), run from a git worktree in the "
        f"same run. Matmul peak in the same run: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} "
        f"GFLOP/s ({result['torch_threads']} torch threads). Examples/s: median of {result['window']}-step "
        f"windows after the first, {result['repeats']} alternating runs of {result['steps']} steps per "
        "configuration. now: today's recipe as shipped (its own train.precision) with its frozen features read "
        "from a `sepkit data cache` store where it has any (see run.py). speedup: now / before. GFLOP/s: of the "
        "bf16 run, where the training forward is the inference forward.",
        "",
        "| recipe | before ex/s | fp32 ex/s | bf16 ex/s | now ex/s | bf16 / fp32 | speedup | bf16 GFLOP/s "
        "| fraction of bf16 peak | note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in result["rows"]:
        note = "; ".join(f"{k}: {v}" for k, v in r["errors"].items())
        lines.append(
            f"| {r['name']} | {fmt(r['before_examples_per_s'], '.2f')} | {fmt(r['fp32_examples_per_s'], '.2f')} | "
            f"{fmt(r['bf16_examples_per_s'], '.2f')} | {fmt(r['now_examples_per_s'], '.2f')} | "
            f"{fmt(r['ratio'], '.2f')} | {fmt(r['speedup'], '.2f')} | "
            f"{fmt(r['bf16_gflops'], '.1f')} | {fmt(r['bf16_peak_fraction'], '.3f')} | {note} |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


COLOURS = {"before": "#444444", "fp32": "#999999", "bf16": "#3b6fd6", "now": "#2ca02c"}


def write_chart(result: dict, path: Path) -> None:
    """A horizontal bar chart of examples/s per recipe and configuration, with each recipe's speedup now /
    before at the right (PNG, matplotlib's Agg canvas, about 800 x 60 px per recipe at 100 dpi)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in result["rows"] if any(r[f"{c}_examples_per_s"] for c in CONFIGS)]
    if not rows:
        return
    top = max(r[f"{c}_examples_per_s"] or 0 for r in rows for c in CONFIGS)
    bar = 0.8 / len(CONFIGS)
    figure = Figure(figsize=(8, 1.2 + 0.6 * len(rows)), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    for j, config in enumerate(CONFIGS):
        ys = [i + (j - (len(CONFIGS) - 1) / 2) * bar for i in range(len(rows))]
        values = [r[f"{config}_examples_per_s"] for r in rows]
        shown = [(y, v) for y, v in zip(ys, values) if v is not None]
        bars = axes.barh([y for y, _ in shown], [v for _, v in shown], height=bar * 0.9, color=COLOURS[config],
                         label=config)  # fmt: skip
        axes.bar_label(bars, labels=[f"{v:.2f}" for _, v in shown], padding=3, fontsize=7)
    for i, r in enumerate(rows):
        if r["speedup"]:
            axes.text(top * 1.22, i, f"x{r['speedup']:.2f}", va="center", fontsize=8)
    axes.set_yticks(range(len(rows)), [r["name"] for r in rows], fontsize=8)
    axes.invert_yaxis()  # the first recipe at the top
    axes.set_xlim(0, top * 1.32)
    axes.set_xlabel("training examples/s (right: speedup now / before)", fontsize=8)
    axes.tick_params(axis="x", labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(CONFIGS), fontsize=8, frameon=False)
    FigureCanvasAgg(figure)
    figure.savefig(path, format="png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"recipes to measure (default: all of {', '.join(RECIPES)})")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--before", default=BEFORE, help=f"commit whose code is the 'before' (default {BEFORE})")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    parser.add_argument(
        "--merge", action="store_true", help="keep the other recipes' rows of OUT/results.json (same --before)"
    )
    parser.add_argument(
        "--from-json", action="store_true", help="measure nothing: rewrite results.md and the chart from results.json"
    )
    args = parser.parse_args()
    out = Path(args.out)
    if args.from_json:  # re-render an earlier run's table and chart
        result = json.loads((out / "results.json").read_text(encoding="utf-8"))
        write_markdown(result, out / "results.md", result["command"])
        write_chart(result, out / "throughput.png")
        print(out / "results.md")
        return 0
    names = args.names or list(RECIPES)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe names {unknown}; choose from {list(RECIPES)}")
    with code_at(args.before) as before:
        result = measure(names, args.steps, args.window, args.repeats, before)
    out.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join([str(Path(sys.argv[0]).resolve().relative_to(ROOT)), *sys.argv[1:]])
    if args.merge and (out / "results.json").exists():
        earlier = json.loads((out / "results.json").read_text(encoding="utf-8"))
        if earlier.get("before_commit") != result["before_commit"]:
            parser.error(f"--merge: {out / 'results.json'} was measured against another 'before' commit")
        measured = {r["name"] for r in result["rows"]}
        kept = [r for r in earlier["rows"] if r["name"] not in measured]
        result["rows"] = sorted(kept + result["rows"], key=lambda r: list(RECIPES).index(r["name"]))
        command = f"{earlier['command']}; then {command}"
    result["command"] = command
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    write_markdown(result, out / "results.md", command)
    write_chart(result, out / "throughput.png")
    print(out / "results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
