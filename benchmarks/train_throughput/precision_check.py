"""Is bf16 autocast safe for a recipe? The same run in fp32 and in bf16, validated after the same steps.

    .venv/bin/python benchmarks/train_throughput/precision_check.py mini/audiosep --steps 200 \
        --init-from recipes/mini/audiosep.ckpt train.lr=2e-4 [--out benchmarks/train_throughput]

Both runs start from the same weights (``--init-from``, or the recipe's seed), see the same data in
the same order and differ only in ``train.precision``; each validates once, at the end, on the
recipe's validation set. Writes ``precision_<recipe>.md`` and ``.json`` with the validation metrics
of both runs, their difference, and the training examples/s (median of logged windows after the
first). The issue's criterion: validation within 0.3 dB (SI-SDRi) after the same number of steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEPKIT = Path(sys.executable).parent / "sepkit"
PRECISIONS = ("fp32", "bf16")
NOT_METRICS = ("step", "split", "seconds", "cpu_seconds", "examples_per_s")  # bookkeeping in a val record


def run(recipe: str, overrides: list[str], precision: str, steps: int, init_from: str | None, tmp: str) -> dict:
    out = Path(tmp) / precision
    cmd = [
        str(SEPKIT), "train", recipe, *overrides, f"train.steps={steps}", f"train.val_every={steps}",
        f"train.ckpt_every={steps}", "train.log_every=10", f"train.precision={precision}", "--out", str(out),
    ]  # fmt: skip
    if init_from:
        cmd += ["--init-from", init_from]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TQDM_DISABLE": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"{precision} run failed: {(proc.stderr.strip().splitlines() or [''])[-1]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    val = [r for r in records if r.get("split") == "val"][-1]
    rates = [r["examples_per_s"] for r in records if r.get("split") == "train" and "examples_per_s" in r][1:]
    metrics = {k: v for k, v in val.items() if k not in NOT_METRICS}
    return {"val": metrics, "examples_per_s": statistics.median(rates)}


def write_table(payload: dict, recipe: str, path: Path) -> None:
    results = payload["results"]
    fp32, bf16 = results["fp32"], results["bf16"]
    keys = sorted(k for k in set(fp32["val"]) & set(bf16["val"]) if k not in NOT_METRICS)
    lines = [
        f"# fp32 vs bf16 training of {recipe}: validation after {payload['steps']} steps",
        "",
        f"Command: `{payload['command']}`",
        "",
        "| validation metric | fp32 | bf16 | bf16 - fp32 |",
        "| --- | ---: | ---: | ---: |",
        *[
            f"| {k} | {fp32['val'][k]:.4f} | {bf16['val'][k]:.4f} | {bf16['val'][k] - fp32['val'][k]:+.4f} |"
            for k in keys
        ],  # fmt: skip
        f"| training examples/s (median of 10-step windows after the first) | {fp32['examples_per_s']:.2f} | "
        f"{bf16['examples_per_s']:.2f} | x{bf16['examples_per_s'] / fp32['examples_per_s']:.2f} |",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--init-from")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--from-json", action="store_true", help="only rewrite the table from the saved JSON")
    args = parser.parse_args()
    stages = "".join(f"_{o.split('=')[-1]}" for o in args.overrides if "stage=" in o)  # as profile_step.py
    stem = "precision_" + args.recipe.replace("/", "_") + stages
    out = Path(args.out)
    if args.from_json:  # re-render the table of an earlier run
        payload = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = {p: run(args.recipe, args.overrides, p, args.steps, args.init_from, tmp) for p in PRECISIONS}
        command = "python " + " ".join([str(Path(sys.argv[0]).resolve().relative_to(ROOT)), *sys.argv[1:]])
        payload = {"command": command, "steps": args.steps, "results": results}
        (out / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    write_table(payload, args.recipe, out / f"{stem}.md")
    print(out / f"{stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
