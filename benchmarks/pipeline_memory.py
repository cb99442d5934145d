"""Peak memory and time of `SeparationPipeline.separate` for a short and a long input.

Each measurement runs in a fresh process (peak RSS from getrusage is per
process), repeated; the median is reported, with the long input's figures as
ratios to the short one's measured in the same run. Chunked inference should
keep the long input's peak memory near the short one's, while time grows with
the length.

    .venv/bin/python benchmarks/pipeline_memory.py [--recipe tiny/stft_mask] [--repeats 3] \
        [--short 10] [--long 600] [--out benchmarks/results/pipeline_memory.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import torch
from sepkit.pipeline import SeparationPipeline
from sepkit.recipe import load_recipe
torch.set_num_threads(2)
recipe, seconds = sys.argv[1], float(sys.argv[2])
pipeline = SeparationPipeline.from_recipe(load_recipe(recipe)).eval()
wave = torch.randn(1, int(seconds * 16000)) * 0.1
pipeline.separate([wave[:, :16000]], [16000], "extract the violin")  # warm-up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
pipeline.separate([wave], [16000], "extract the violin")
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak / 1024, "model_rss_mb": base / 1024}))
"""


def measure(recipe: str, seconds: float, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", CHILD, recipe, str(seconds)], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="tiny/stft_mask")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--short", type=float, default=10.0)
    parser.add_argument("--long", type=float, default=600.0)
    parser.add_argument("--out", default="benchmarks/results/pipeline_memory.md")
    args = parser.parse_args()
    short = measure(args.recipe, args.short, args.repeats)
    long = measure(args.recipe, args.long, args.repeats)
    lines = [
        f"# Pipeline memory and time: {args.recipe}",
        "",
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`; median of {args.repeats} fresh processes, "
        "2 threads, CPU, float32, one extraction query.",
        "",
        "| input | separate time (s) | x real time | peak RSS (MB) | RSS after model load (MB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, secs, r in (("short", args.short, short), ("long", args.long, long)):
        lines.append(
            f"| {label}: {secs:g} s | {r['seconds']:.2f} | {secs / r['seconds']:.0f} | "
            f"{r['peak_rss_mb']:.0f} | {r['model_rss_mb']:.0f} |"
        )
    lines += [
        "",
        f"Ratios long/short: time {long['seconds'] / short['seconds']:.1f}x for {args.long / args.short:g}x the audio; "
        f"peak RSS {long['peak_rss_mb'] / short['peak_rss_mb']:.2f}x.",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
