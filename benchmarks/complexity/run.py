"""Complexity of every full-size recipe for 10 s of audio, next to the papers' Table X.

    .venv/bin/python benchmarks/complexity/run.py [RECIPE ...] [--repeats 3] [--threads 2] [--out benchmarks/complexity]

For each recipe (default: every top-level ``recipes/*.yaml``) this runs
``sepkit complexity RECIPE --seconds 10 --repeats R --threads T --json`` in its own process, keeps
the JSON under ``OUT/results/<recipe>.json`` and writes ``OUT/results.md``, ``OUT/results.csv``
and ``OUT/report.html``: parameters (separation = trainable, pretrained = frozen), MACs and
FLOPs (``torch.utils.flop_counter``, 2 FLOPs per MAC), real-time factor and peak RSS on this
machine, and the paper's figures where the paper has a row for the system (HSM-TSS Table X; the
HSM-TSS paper reports fvcore "FLOPs", which count one per multiply-accumulate, so its column is
compared with ``macs``). A recipe that fails is listed with its error and the run goes on.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# HSM-TSS paper (../shared/papers/001_...), Table X "Complexity comparisons for a 10-second audio":
# (paper "FLOPs"/G, #Param_sep/M, #Param_pretrained/M)
PAPER_TABLE_X = {
    "audiosep": ("AudioSep", 333.7, 39.0, 199.6),
    "hsm_tss": ("HSM-TSS", 183.8, 129.9, 378.3),
    "flowsep": ("FlowSep", 2046.9, 265.6, 410.5),
}
COLUMNS = [
    ("recipe", "recipe"),
    ("params_separation_m", "sep. params (M)"),
    ("params_pretrained_m", "pretrained params (M)"),
    ("macs_g", "MACs (G)"),
    ("flops_g", "FLOPs (G)"),
    ("rtf", "RTF"),
    ("peak_rss_mb", "peak RSS (MB)"),
    ("paper_system", "paper row"),
    ("paper_flops_g", "paper FLOPs (G)"),
    ("paper_sep_m", "paper sep. (M)"),
    ("paper_pretrained_m", "paper pretrained (M)"),
    ("macs_vs_paper", "MACs / paper"),
    ("sep_vs_paper", "sep. / paper"),
    ("pretrained_vs_paper", "pretrained / paper"),
    ("error", "error"),
]


def measure(recipe: Path, repeats: int, threads: int, seconds: float, memory: bool = True) -> dict:
    """Run ``sepkit complexity`` in a fresh process; the JSON dict, or {"error": ...}."""
    command = [
        str(ROOT / ".venv/bin/sepkit"), "complexity", str(recipe), "--seconds", str(seconds),
        "--repeats", str(repeats), "--threads", str(threads), "--json",
    ] + ([] if memory else ["--no-memory"])
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        return {"error": lines[-1] if lines else f"exit {proc.returncode}"}
    return json.loads(proc.stdout)


def row_for(name: str, result: dict) -> dict:
    """One table row: measured figures in M / G, the paper's and their ratios."""
    row = {"recipe": name, "error": result.get("error", "")}
    if not row["error"]:
        row.update(
            params_separation_m=result["params_separation"] / 1e6,
            params_pretrained_m=result["params_pretrained"] / 1e6,
            macs_g=result["macs"] / 1e9,
            flops_g=result["flops"] / 1e9,
            rtf=result.get("rtf"),
            peak_rss_mb=result.get("peak_rss_mb"),
        )
    paper = PAPER_TABLE_X.get(name)
    if paper:
        system, flops, sep, pretrained = paper
        row.update(paper_system=system, paper_flops_g=flops, paper_sep_m=sep, paper_pretrained_m=pretrained)
        if not row["error"]:
            row.update(
                macs_vs_paper=row["macs_g"] / flops,
                sep_vs_paper=row["params_separation_m"] / sep,
                pretrained_vs_paper=row["params_pretrained_m"] / pretrained,
            )
    return row


def cell(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def markdown(rows: list[dict], meta: dict) -> str:
    out = [
        "# Complexity of the full-size recipes (10 s of audio)",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; torch {meta['torch']}; {meta['threads']} threads; "
        f"median of {meta['repeats']} runs.",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        out.append("| " + " | ".join(cell(row.get(key)) for key, _ in COLUMNS) + " |")
    out += [
        "",
        "Separation parameters are the recipe's trainable ones, pretrained the frozen ones. The paper's FLOPs come",
        "from fvcore, which counts one per multiply-accumulate, so they are compared with MACs here. RTF and",
        "peak RSS are this machine's (CPU) and depend on its load.",
    ]
    return "\n".join(out) + "\n"


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[key for key, _ in COLUMNS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: cell(row.get(key)) for key, _ in COLUMNS})
    return buffer.getvalue()


def html_page(rows: list[dict], meta: dict) -> str:
    """A table and, per recipe, bars of measured vs paper MACs and parameters."""
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(row.get(key)))}</td>" for key, _ in COLUMNS) + "</tr>" for row in rows
    )
    bars = []
    scale = max([r.get("macs_g") or 0 for r in rows] + [r.get("paper_flops_g") or 0 for r in rows] + [1])
    for row in rows:
        if row.get("error"):
            continue
        items = [("measured MACs", row["macs_g"], "#3b7dd8")]
        if row.get("paper_flops_g"):
            items.append(("paper FLOPs (MACs)", row["paper_flops_g"], "#d8873b"))
        lines = "".join(
            f'<div class="bar"><span>{label}</span><div style="width:{400 * value / scale:.0f}px;background:{colour}">'
            f"</div><b>{value:.1f} G</b></div>"
            for label, value, colour in items
        )
        bars.append(f"<h3>{html.escape(row['recipe'])}</h3>{lines}")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #bbb;"
        "padding:3px 6px;font-size:13px}th{background:#eee}.bar{display:flex;align-items:center;gap:8px;margin:2px 0}"
        ".bar span{width:150px;font-size:13px}.bar div{height:14px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>sepkit complexity</title><style>{style}</style>"
        f"</head><body><h1>Complexity of the full-size recipes, 10 s of audio</h1>"
        f"<p>{html.escape(meta['command'])}<br>{html.escape(meta['machine'])}; torch {html.escape(meta['torch'])}; "
        f"{meta['threads']} threads; median of {meta['repeats']} runs</p>"
        f"<table><tr>{head}</tr>{body}</table><h2>MACs per 10 s</h2>{''.join(bars)}</body></html>\n"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", help="recipe files (default: every top-level recipes/*.yaml)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/complexity"))
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocess (faster)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep OUT/results/<recipe>.json files that exist without an error"
    )
    args = parser.parse_args(argv)
    recipes = [Path(r) for r in args.recipes] or sorted((ROOT / "recipes").glob("*.yaml"))
    out = Path(args.out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    rows = []
    for recipe in recipes:
        name = recipe.stem
        kept = out / "results" / f"{name}.json"
        if args.reuse and kept.is_file() and "error" not in json.loads(kept.read_text()):
            result = json.loads(kept.read_text())
        else:
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            result = measure(recipe, args.repeats, args.threads, args.seconds, memory=not args.no_memory)
            kept.write_text(json.dumps(result, indent=2) + "\n")
        rows.append(row_for(name, result))
        print(f"  {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    import platform

    import torch

    meta = {
        "command": "python benchmarks/complexity/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "torch": torch.__version__,
        "threads": args.threads,
        "repeats": args.repeats,
    }
    (out / "results.md").write_text(markdown(rows, meta))
    (out / "results.csv").write_text(csv_text(rows))
    (out / "report.html").write_text(html_page(rows, meta))
    print(f"wrote {out / 'results.md'}, results.csv, report.html", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
