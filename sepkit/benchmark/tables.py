"""Result tables: per-example entries -> one row per system and instruction type -> CSV and Markdown.

The Markdown table is laid out like Table II of the HSM-TSS paper: one column per
metric with its direction (↑ higher is better, ↓ lower is better), the systems
grouped under "Extraction" and "Removal" rows, and the best value of every column
among the systems in bold (ties at the printed precision are all bold). Each
metric reads ``mean ± half the width of its 95 % bootstrap interval``. The rows
that need no model (oracle rows, Mixture, Mixture x 0.5, Silence) follow the
systems in italics and are not ranked. After the table: the notes, then the paired
differences (``significance_lines``). The complexity columns (``params_separation``,
``params_pretrained``, ``macs``, ``rtf``) come from ``sepkit.complexity``; lower is
better for each of them.
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
from sepkit.benchmark.bootstrap import finite, interval

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


def row_groups(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The systems (kind "system") then the rows that need no model (kind "oracle" or "reference"), in table order."""
    return [{"kind": "system", **s} for s in results["systems"]] + list(results.get("references", []))


def summarise(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per system or reference row and instruction type: counts, metric means and intervals, complexity.

    ``results`` holds "systems" (with "label" and "complexity"), optionally "references" (with "label" and
    "kind"), "instructions", "metrics" (``[{name, ...}]``) and "examples" (``[{system, task, scores | None,
    error | None}]``). A metric's mean and its 95 % bootstrap interval (``ci``, ``sepkit.benchmark.bootstrap``)
    are over the examples that have a finite value for it.
    """
    names = [m["name"] for m in results["metrics"]]
    rows = []
    for group in row_groups(results):
        complexity = group.get("complexity") or {}
        for task in results["instructions"]:
            mine = [e for e in results["examples"] if e["system"] == group["label"] and e["task"] == task]
            scored = [e for e in mine if e["error"] is None]
            row: dict[str, Any] = {
                "system": group["label"],
                "recipe": group.get("recipe"),
                "checkpoint": group.get("checkpoint"),
                "instruction": task,
                "n": len(scored),
                "failed": len(mine) - len(scored),
            }
            values = {name: [e["scores"][name] for e in scored if finite(e["scores"].get(name))] for name in names}
            for name in names:
                row[name] = _mean(values[name])
            for key in COMPLEXITY_COLUMNS:
                row[key] = complexity.get(key)
            row["kind"] = group["kind"]
            row["ci"] = {name: interval(values[name]) for name in names}
            rows.append(row)
    return rows


def csv_text(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV (full precision; empty cells for missing values); ``ci`` becomes <metric>_ci_low/_high."""
    if not rows:
        return ""
    flat = []
    for row in rows:
        line = {k: v for k, v in row.items() if k != "ci"}
        for name, bounds in row.get("ci", {}).items():
            line[f"{name}_ci_low"], line[f"{name}_ci_high"] = bounds if bounds else (None, None)
        flat.append(line)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(flat[0]), lineterminator="\n")
    writer.writeheader()
    for line in flat:
        writer.writerow({k: ("" if v is None else v) for k, v in line.items()})
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


@dataclass
class Cell:
    """A printed value, whether it is the column's best among the systems, and its ± half-interval ("" if none)."""

    text: str
    bold: bool = False
    plus_minus: str = ""

    def markdown(self) -> str:
        text = f"**{self.text}**" if self.bold else self.text
        return f"{text} ± {self.plus_minus}" if self.plus_minus else text


def _number(digits: int) -> Callable[[Any], str]:
    return lambda v: "-" if v is None else f"{v:.{digits}f}"


def _scaled(scale: float, digits: int) -> Callable[[Any], str]:
    return lambda v: "-" if v is None else f"{v / scale:.{digits}f}"


def metric_digits(name: str) -> int:
    """Decimals a metric is printed with: 2 for dB metrics, 3 for the others."""
    return 2 if name in DB_METRICS else 3


def columns(results: dict[str, Any]) -> list[Column]:
    """Count columns, one per metric, then the complexity columns."""
    cols = [Column("n", "n", None, str), Column("failed", "failed", None, str)]
    for metric in results["metrics"]:
        name = metric["name"]
        arrow = "↑" if metric["higher_is_better"] else "↓"
        title = f"{METRIC_TITLES.get(name, name)} {arrow}"
        cols.append(Column(name, title, metric["higher_is_better"], _number(metric_digits(name))))
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


def _plus_minus(row: dict[str, Any], col: Column) -> str:
    """Half the width of the row's interval for ``col``, printed like the value ("" without one)."""
    bounds = (row.get("ci") or {}).get(col.key)
    return col.fmt((bounds[1] - bounds[0]) / 2) if bounds else ""


def table_sections(
    results: dict[str, Any],
) -> tuple[list[Column], list[tuple[str, list[tuple[str, str, list[Cell]]]]]]:
    """(columns, [(section title, [(row label, row kind, [Cell])])]): the table both pages print.

    Bold marks the best value of a column among the systems; reference and oracle rows are not ranked.
    """
    cols = columns(results)
    rows = results["rows"]
    best = best_texts([r for r in rows if r.get("kind", "system") == "system"], cols)
    sections = []
    for task in results["instructions"]:
        lines = []
        for row in (r for r in rows if r["instruction"] == task):
            kind = row.get("kind", "system")
            cells = []
            for col in cols:
                text = col.fmt(row.get(col.key))
                bold = kind == "system" and col.key in best and text == best[col.key] and text != "-"
                cells.append(Cell(text, bold, _plus_minus(row, col) if text != "-" else ""))
            lines.append((row["system"], kind, cells))
        sections.append((TASK_TITLES.get(task, task.title()), lines))
    return cols, sections


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(results: dict[str, Any]) -> str:
    """The table; reference and oracle rows' labels in italics, metrics as ``mean ± half-interval``."""
    cols, sections = table_sections(results)
    lines = [
        "| Model | " + " | ".join(c.title for c in cols) + " |",
        "| --- | " + " | ".join("---:" for _ in cols) + " |",
    ]
    for title, rows in sections:
        lines.append(f"| *{title}* |" + " |" * len(cols))
        for label, kind, cells in rows:
            name = _md_escape(label) if kind == "system" else f"*{_md_escape(label)}*"
            lines.append(f"| {name} | " + " | ".join(cell.markdown() for cell in cells) + " |")
    return "\n".join(lines)


# --- paired significance ---------------------------------------------------------------------


def _difference_text(comparison: dict[str, Any]) -> str:
    digits = metric_digits(comparison["metric"])
    low, high = comparison["ci"]
    return (
        f"{METRIC_TITLES.get(comparison['metric'], comparison['metric'])} {comparison['difference']:+.{digits}f} "
        f"[{low:+.{digits}f}, {high:+.{digits}f}]"
    )


def _declared(reference: dict[str, Any]) -> str:
    """The text " (declared by A, B)" for an oracle row, "" for the others."""
    systems = reference.get("declared_by") or []
    return f" (declared by {', '.join(systems)})" if systems else ""


def _listed(a: str, b: str, kinds: dict[str, str], declared_by: dict[str, list[str]]) -> bool:
    """Whether the pages list the pair (a, b): a system against the other systems, the reference rows and
    its own oracle rows; an oracle row against the reference rows (results.json has every pair)."""
    if kinds[a] == "system":
        return kinds[b] in ("system", "reference") or a in declared_by.get(b, [])
    return kinds[a] == "oracle" and kinds[b] == "reference"


def significance_lines(results: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """[(instruction title, [line])]: one line per listed pair (``_listed``), its metrics grouped by outcome."""
    kinds = {r["system"]: r.get("kind", "system") for r in results["rows"]}
    declared_by = {r["label"]: r.get("declared_by", []) for r in results.get("references", [])}
    higher = {m["name"]: m["higher_is_better"] for m in results["metrics"]}
    pairs: dict[tuple[str, str, str], list[dict]] = {}
    for c in results.get("significance", []):
        if _listed(c["a"], c["b"], kinds, declared_by):
            pairs.setdefault((c["instruction"], c["a"], c["b"]), []).append(c)
    out = []
    for task in results["instructions"]:
        lines = []
        for (instruction, a, b), comparisons in pairs.items():
            if instruction != task:
                continue
            better = [c for c in comparisons if c["significant"] and (c["difference"] > 0) == higher[c["metric"]]]
            worse = [c for c in comparisons if c["significant"] and c not in better]
            same = [c for c in comparisons if c["ci"] is not None and not c["significant"]]
            parts = [f"{word} on " + ", ".join(_difference_text(c) for c in group)
                     for word, group in (("better", better), ("worse", worse)) if group]  # fmt: skip
            if same:
                names = ", ".join(METRIC_TITLES.get(c["metric"], c["metric"]) for c in same)
                parts.append(f"no significant difference on {names}")
            if parts:
                lines.append(f"{a} vs {b}: " + "; ".join(parts) + ".")
        if lines:
            out.append((TASK_TITLES.get(task, task.title()), lines))
    return out


SIGNIFICANCE_INTRO = (
    "Paired bootstrap of the difference of the means (the first row minus the second, on the examples both "
    "scored, 95 % interval in brackets): better or worse when the interval excludes 0, with the metric's direction. "
    "Listed: each system against the other systems, the reference rows and its own oracle rows, and each oracle "
    'row against the reference rows; results.json ("significance") has every pair of rows and every metric.'
)


# --- notes and the page --------------------------------------------------------------------


def notes(results: dict[str, Any]) -> list[str]:
    """Plain-text notes that every result page states under its table."""
    from sepkit.benchmark.bootstrap import CONFIDENCE, RESAMPLES, SEED

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
        "their error. SDR, SDRi, SI-SDR, SI-SDRi and PSNR in dB. Bold: the best value of each column among the "
        "systems (↑ highest, ↓ lowest).",
        f"± is half the width of the {CONFIDENCE * 100:g} % bootstrap interval of the mean over examples (percentile, "
        f"{RESAMPLES} resamples with numpy seed {SEED}); results.json has its bounds (rows[].ci) and every "
        "per-example score (examples), to recompute it.",
    ]
    references = results.get("references") or []
    if references:
        out.append(
            "Rows in italics need no model and are scored like the systems, on the same examples: "
            + "; ".join(f"{r['label']}: {r['description']}{_declared(r)}" for r in references)
            + ". A score that is not finite is stored as null and left out of the mean, the interval and the "
            "comparisons (--no-reference-rows leaves these rows out)."
        )
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
    significance = significance_lines(results)
    if significance:
        parts += ["", "## Paired differences", "", SIGNIFICANCE_INTRO]
        for heading, lines in significance:
            parts += ["", f"### {heading}", ""] + [f"- {line}" for line in lines]
    if results.get("command"):
        parts += ["", "Produced by:", "", "```", results["command"], "```"]
    return "\n".join(parts) + "\n"
