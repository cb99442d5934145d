"""Training throughput of the mini recipes: examples/s in fp32 and in bf16 autocast, measured in one run.

    .venv/bin/python benchmarks/train_throughput/run.py [NAME ...] [--steps 40] [--window 5] [--repeats 2]
        [--out benchmarks/train_throughput]

For each recipe (default: every entry of ``RECIPES``) and each precision, ``sepkit train`` runs
``--steps`` optimizer steps with ``train.log_every=--window`` and no validation or checkpoints, in
its own process; the engine logs examples/s per window of steps (time in training steps only: data
loading of the step included, validation and start-up excluded). The first window is the warm-up
and is dropped; the figure is the median of the remaining windows over ``--repeats`` alternating
runs (fp32, bf16, fp32, bf16, ...), so both precisions see the same machine load. Achieved GFLOP/s
= examples/s x 3 x forward FLOPs per example (one forward, a backward of about twice its cost;
``sepkit complexity`` counts the forward of the inference pipeline, so for training systems whose
step differs from inference (MAE, Q-Audio, codec GAN) the figure is indicative only). The bf16 and
fp32 peaks are a 2048 x 2048 matmul measured in the same run.

Writes ``results.json``, ``results.md`` and ``throughput.png`` (a bar chart) under ``--out``. Needs
``make mini-data`` (data/mini and data/mixes).
"""

from __future__ import annotations

import argparse
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


def train_windows(recipe: str, overrides: list[str], precision: str, steps: int, window: int) -> list[float]:
    """examples/s of each logged window of a fresh ``sepkit train`` run, warm-up window dropped."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            str(SEPKIT), "train", recipe, *overrides, f"train.steps={steps}", f"train.log_every={window}",
            "train.val_every=0", "train.ckpt_every=0", f"train.precision={precision}", "--out", f"{tmp}/run",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TQDM_DISABLE": "1"})
        if proc.returncode != 0:
            lines = [ln[ln.index("sepkit:") :] for ln in proc.stderr.splitlines() if "sepkit:" in ln] or ["(no output)"]
            raise RuntimeError(f"{precision}: {lines[-1]}")
        records = [json.loads(line) for line in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines() if line]
    rates = [r["examples_per_s"] for r in records if r.get("split") == "train" and "examples_per_s" in r]
    return rates[1:]


def measure(names: list[str], steps: int, window: int, repeats: int) -> dict:
    peaks = {p: matmul_peak(p) for p in PRECISIONS}
    rows = []
    for name in names:
        recipe, overrides, seconds, flops_match = RECIPES[name]
        print(f"== {name}", file=sys.stderr, flush=True)
        windows: dict[str, list[float]] = {p: [] for p in PRECISIONS}
        error = None
        try:
            for _ in range(repeats):
                for precision in PRECISIONS:
                    windows[precision] += train_windows(recipe, overrides, precision, steps, window)
        except RuntimeError as exc:
            error = str(exc)
        flops = forward_flops(recipe, overrides, seconds) if flops_match else None
        row = {"name": name, "recipe": recipe, "overrides": overrides, "error": error, "forward_flops": flops}
        for precision in PRECISIONS:
            rate = statistics.median(windows[precision]) if windows[precision] else None
            row[f"{precision}_examples_per_s"] = rate
            row[f"{precision}_windows"] = windows[precision]
            row[f"{precision}_gflops"] = 3 * flops * rate / 1e9 if flops and rate else None
        fp32, bf16 = row["fp32_examples_per_s"], row["bf16_examples_per_s"]
        row["ratio"] = bf16 / fp32 if fp32 and bf16 else None
        row["bf16_peak_fraction"] = row["bf16_gflops"] / peaks["bf16"] if row["bf16_gflops"] else None
        rows.append(row)
    return {"peaks_gflops": peaks, "steps": steps, "window": window, "repeats": repeats, "rows": rows,
            "torch_threads": __import__("torch").get_num_threads()}  # fmt: skip


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def write_markdown(result: dict, path: Path, command: str) -> None:
    peaks = result["peaks_gflops"]
    lines = [
        "# Training throughput: fp32 vs bf16 autocast (mini recipes, CPU)",
        "",
        f"Command: `{command}`",
        "",
        f"Matmul peak in the same run: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s "
        f"({result['torch_threads']} torch threads). Examples/s: median of {result['window']}-step windows after "
        f"the first, {result['repeats']} alternating runs of {result['steps']} steps per precision.",
        "",
        "| recipe | fp32 ex/s | bf16 ex/s | bf16 / fp32 | bf16 GFLOP/s | fraction of bf16 peak | note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['name']} | {fmt(r['fp32_examples_per_s'], '.2f')} | {fmt(r['bf16_examples_per_s'], '.2f')} | "
            f"{fmt(r['ratio'], '.2f')} | {fmt(r['bf16_gflops'], '.1f')} | {fmt(r['bf16_peak_fraction'], '.3f')} | "
            f"{r['error'] or ''} |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_chart(result: dict, path: Path) -> None:
    """A horizontal bar chart of examples/s per recipe, fp32 and bf16 side by side (PNG, Pillow)."""
    from PIL import Image, ImageDraw

    rows = [r for r in result["rows"] if r["fp32_examples_per_s"] or r["bf16_examples_per_s"]]
    if not rows:
        return
    top = max(max(r["fp32_examples_per_s"] or 0, r["bf16_examples_per_s"] or 0) for r in rows)
    label_w, bar_w, row_h = 150, 520, 44
    image = Image.new("RGB", (label_w + bar_w + 140, 40 + row_h * len(rows) + 30), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 10), "training examples/s (grey: fp32, blue: bf16 autocast)", fill="black")
    for i, r in enumerate(rows):
        y = 40 + i * row_h
        draw.text((10, y + 12), r["name"], fill="black")
        for j, (key, colour) in enumerate((("fp32_examples_per_s", "#999999"), ("bf16_examples_per_s", "#3b6fd6"))):
            value = r[key] or 0
            x1 = label_w + int(bar_w * value / top)
            draw.rectangle([label_w, y + j * 18, x1, y + j * 18 + 14], fill=colour)
            draw.text((x1 + 6, y + j * 18), f"{value:.2f}", fill="black")
        if r["ratio"]:
            draw.text((label_w + bar_w + 70, y + 12), f"x{r['ratio']:.2f}", fill="black")
    image.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"recipes to measure (default: all of {', '.join(RECIPES)})")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = parser.parse_args()
    names = args.names or list(RECIPES)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe names {unknown}; choose from {list(RECIPES)}")
    result = measure(names, args.steps, args.window, args.repeats)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join([str(Path(sys.argv[0]).resolve().relative_to(ROOT)), *sys.argv[1:]])
    result["command"] = command
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    write_markdown(result, out / "results.md", command)
    write_chart(result, out / "throughput.png")
    print(out / "results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
