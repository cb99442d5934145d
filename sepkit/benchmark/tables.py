"""Result tables: per-example entries -> one row per system and instruction type -> CSV and Markdown.

The Markdown table is laid out like Table II of the HSM-TSS paper: one column per
metric with its direction (↑ higher is better, ↓ lower is better), the systems
grouped under "Extraction" and "Removal" rows, and the best value of every column
in bold (ties at the printed precision are all bold). The complexity columns
(``params_separation``, ``params_pretrained``, ``macs``, ``rtf``) come from
``sepkit.complexity``; lower is better for each of them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from sepkit.atomic import atomic_path

COMPLEXITY_COLUMNS = ("params_separation", "params_pretrained", "macs", "rtf")
TASK_TITLES = {"extract": "Extraction", "remove": "Removal"}
METRIC_TITLES = {
    "sdr": "SDR",
    "sdri": "SDRi",
    "si_sdr": "SI-SDR",
    "si_sdri": "SI-SDRi",
    "bss_sdr": "SDR (bss_eval)",
    "lsd": "LSD",
    "psnr": "PSNR",
    "kl": "KL",
    "clap_score": "CLAP",
    "clap_score_a": "CLAP-A",
    "afsim": "AFSim",
    "fad": "FAD",
}
DB_METRICS = ("sdr", "sdri", "si_sdr", "si_sdri", "bss_sdr", "psnr")


def _mean(values: list[float]) -> Optional[float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def summarise(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per system and instruction type: counts, metric means and the complexity columns.

    ``results`` holds "systems" (with "label" and "complexity"), "instructions", "metrics"
    (``[{name, ...}]``) and "examples" (``[{system, task, scores | None, error | None}]``).
    A metric's mean is over the examples that have a finite value for it.
    """
    names = [m["name"] for m in results["metrics"]]
    rows = []
    for system in results["systems"]:
        complexity = system.get("complexity") or {}
        for task in results["instructions"]:
            mine = [e for e in results["examples"] if e["system"] == system["label"] and e["task"] == task]
            scored = [e for e in mine if e["error"] is None]
            row: dict[str, Any] = {
                "system": system["label"],
                "recipe": system["recipe"],
                "checkpoint": system["checkpoint"],
                "instruction": task,
                "n": len(scored),
                "failed": len(mine) - len(scored),
            }
            for name in names:
                row[name] = _mean([e["scores"].get(name) for e in scored])
            for key in COMPLEXITY_COLUMNS:
                row[key] = complexity.get(key)
            rows.append(row)
    return rows


def csv_text(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV (full precision; empty cells for missing values)."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


# --- the displayed table -----------------------------------------------------------------


@dataclass
class Column:
    """A displayed column: row key, title, direction, and how a value is printed."""

    key: str
    title: str
    higher_is_better: Optional[bool]  # None: not ranked (counts)
    fmt: Callable[[Any], str]


def _number(digits: int) -> Callable[[Any], str]:
    return lambda v: "-" if v is None else f"{v:.{digits}f}"


def _scaled(scale: float, digits: int) -> Callable[[Any], str]:
    return lambda v: "-" if v is None else f"{v / scale:.{digits}f}"


def columns(results: dict[str, Any]) -> list[Column]:
    """Count columns, one per metric, then the complexity columns."""
    cols = [Column("n", "n", None, str), Column("failed", "failed", None, str)]
    for metric in results["metrics"]:
        name = metric["name"]
        arrow = "↑" if metric["higher_is_better"] else "↓"
        digits = 2 if name in DB_METRICS else 3
        title = f"{METRIC_TITLES.get(name, name)} {arrow}"
        cols.append(Column(name, title, metric["higher_is_better"], _number(digits)))
    cols += [
        Column("params_separation", "Params sep. (M) ↓", False, _scaled(1e6, 2)),
        Column("params_pretrained", "Params pretr. (M) ↓", False, _scaled(1e6, 2)),
        Column("macs", "MACs (G) ↓", False, _scaled(1e9, 2)),
        Column("rtf", "RTF ↓", False, _number(3)),
    ]
    return cols


def best_texts(rows: list[dict[str, Any]], cols: list[Column]) -> dict[str, str]:
    """{column key: printed best value} over all rows, for the ranked columns that have values."""
    best = {}
    for col in cols:
        values = [r[col.key] for r in rows if r.get(col.key) is not None and math.isfinite(r[col.key])]
        if col.higher_is_better is None or not values:
            continue
        best[col.key] = col.fmt(max(values) if col.higher_is_better else min(values))
    return best


def table_sections(results: dict[str, Any]) -> tuple[list[Column], list[tuple[str, list[tuple[str, list]]]]]:
    """(columns, [(section title, [(system label, [(cell text, bold)])])]): the table both pages print."""
    cols = columns(results)
    rows = results["rows"]
    best = best_texts(rows, cols)
    sections = []
    for task in results["instructions"]:
        lines = []
        for row in (r for r in rows if r["instruction"] == task):
            cells = []
            for col in cols:
                text = col.fmt(row.get(col.key))
                cells.append((text, col.key in best and text == best[col.key] and text != "-"))
            lines.append((row["system"], cells))
        sections.append((TASK_TITLES.get(task, task.title()), lines))
    return cols, sections


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(results: dict[str, Any]) -> str:
    cols, sections = table_sections(results)
    lines = [
        "| Model | " + " | ".join(c.title for c in cols) + " |",
        "| --- | " + " | ".join("---:" for _ in cols) + " |",
    ]
    for title, rows in sections:
        lines.append(f"| *{title}* |" + " |" * len(cols))
        for label, cells in rows:
            printed = [f"**{text}**" if bold else text for text, bold in cells]
            lines.append(f"| {_md_escape(label)} | " + " | ".join(printed) + " |")
    return "\n".join(lines)


def notes(results: dict[str, Any]) -> list[str]:
    """Plain-text notes that every result page states under its table."""
    testset = results["testset"]
    shown = testset["evaluated"]
    count = f"{shown} of {testset['mixtures']} mixtures (--limit {shown})" if shown < testset["mixtures"] else (
        f"all {testset['mixtures']} mixtures"
    )
    seconds = "/".join(f"{s:g}" for s in testset["seconds"])
    rates = "/".join(str(r) for r in testset["sample_rates"])
    out = [
        f"Test set {testset['name']} ({testset['path']}, sha256 {testset['sha256'][:12]}): {count}, "
        f"protocol {', '.join(testset['protocols'])}, {seconds} s at {rates} Hz.",
        "Extraction rows run each mixture's extract instruction, removal rows its remove instruction; each is "
        "scored against that instruction's target as the manifest defines it (for removal: the mixture without "
        "the removed sound). Scores are computed at the test set's sample rate.",
        "Each metric is the mean over the scored examples (n); failed examples are listed in results.json with "
        "their error. SDR, SDRi, SI-SDR, SI-SDRi and PSNR in dB. Bold: the best value of each column "
        "(↑ highest, ↓ lowest).",
    ]
    if results.get("spectral_preprocessing"):
        out.append(results["spectral_preprocessing"])
    seconds = results["complexity_seconds"]
    out.append(
        f"Params sep. (params_separation: trainable), Params pretr. (params_pretrained: frozen), MACs and RTF "
        f"(median wall-clock seconds per second of audio on this machine) come from `sepkit complexity` for one "
        f"{seconds:g} s mixture at the system's sample rate; MACs count matrix products, convolutions and "
        "attention (FFTs are not counted)."
    )
    for system in results["systems"]:
        weights = (
            f"checkpoint {system['checkpoint']} (sha256 {system['checkpoint_sha256'][:12]})"
            if system["checkpoint"]
            else "untrained weights (no checkpoint)"
        )
        out.append(f"{system['label']}: recipe {system['recipe']}, {weights}.")
    return out


def markdown_page(results: dict[str, Any]) -> str:
    title = f"Benchmark on {results['testset']['name']}"
    parts = [f"# {title}", "", markdown_table(results), ""]
    parts += [f"- {note}" for note in notes(results)]
    if results.get("command"):
        parts += ["", "Produced by:", "", "```", results["command"], "```"]
    return "\n".join(parts) + "\n"
