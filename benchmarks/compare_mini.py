"""Paired comparison of two ``evaluate_mini.py`` results on the same mixtures and instructions.

    .venv/bin/python benchmarks/compare_mini.py A.json B.json [--metric si_sdri] [--md OUT.md]

For each task (extract, remove, all): the mean of A, the mean of B, and the mean of the per-instruction
differences A - B with its 95 % percentile-bootstrap interval (``sepkit.benchmark.bootstrap``: 1,000
resamples, seed 0); "significant" when the interval excludes 0. Instructions are matched by mixture
id and task; both files must hold the same ones (they do when made from the same manifest).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def rows_by_key(path: Path) -> dict[tuple[str, str], dict]:
    return {(r["id"], r["task"]): r for r in json.loads(path.read_text())["rows"]}


def compare(a_path: Path, b_path: Path, metric: str) -> dict[str, dict]:
    """{task: {n, a, b, difference, ci, significant}} for extract, remove and all."""
    from sepkit.benchmark.bootstrap import paired_difference

    a, b = rows_by_key(a_path), rows_by_key(b_path)
    if set(a) != set(b):
        raise SystemExit(f"{a_path} and {b_path} do not hold the same instructions ({len(a)} vs {len(b)})")
    out = {}
    for task in ("extract", "remove", "all"):
        keys = sorted(k for k in a if task == "all" or k[1] == task)
        xs, ys = [a[k][metric] for k in keys], [b[k][metric] for k in keys]
        result = paired_difference(xs, ys)
        out[task] = {"a": sum(xs) / len(xs), "b": sum(ys) / len(ys), **result}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--metric", default="si_sdri")
    parser.add_argument("--md", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args(argv)
    result = compare(args.a, args.b, args.metric)
    lines = [
        f"A = `{args.a}`, B = `{args.b}`, {args.metric} (dB), paired over instructions:",
        "",
        "| task | A | B | A - B [95 % CI] | significant |",
        "| --- | --- | --- | --- | --- |",
    ]
    for task, r in result.items():
        ci = f"[{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]" if r["ci"] else "-"
        lines.append(f"| {task} | {r['a']:+.2f} | {r['b']:+.2f} | {r['difference']:+.2f} {ci} | "
                     f"{'yes' if r['significant'] else 'no'} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        with args.md.open("a") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
