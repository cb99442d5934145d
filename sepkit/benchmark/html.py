"""``report.html``: the results table, its notes and paired differences, and a few examples to look at and listen to.

The table's reference and oracle rows are grey and italic. For each example: the mixture,
the instruction's target and the estimate of every system and oracle row as log-spectrogram
images (``sepkit.report.spectrogram``, one shared dB range per example so they compare by
eye) with audio players. Media files go to ``DIR/report/<example>/`` (16-bit wav, 300 x 160
PNG drawn by matplotlib); the page links them relatively, so the folder can be moved or
committed as a whole.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from sepkit.atomic import atomic_path
from sepkit.benchmark.tables import SIGNIFICANCE_INTRO, Cell, significance_lines, table_sections
from sepkit.benchmark.testsets import safe_name
from sepkit.report.spectrogram import log_spectrogram_db, write_spectrogram

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;background:#fafafa;color:#222;max-width:1600px}
table{border-collapse:collapse;margin:1em 0;background:#fff;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px}th{background:#eee;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.section{background:#f3f3f3;font-style:italic}
tr.reference td{color:#777;font-style:italic}td .pm{color:#888;font-size:12px}
ul.notes{font-size:14px;line-height:1.45}
.example{margin:1.5em 0;padding-top:.5em;border-top:1px solid #ddd}
.example h3{margin:.2em 0;font-size:16px}.example p{margin:.2em 0 .6em;font-size:14px}
.row{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;width:300px}figure img{display:block;width:300px;height:160px;border:1px solid #ccc}
figcaption{font-size:13px;font-weight:600;margin:.2em 0}audio{width:300px;height:32px}
.scores{font-size:12px;color:#444}.error{font-size:12px;color:#a00;width:300px;overflow-wrap:anywhere}
"""


@dataclass
class ReportExample:
    """One instruction of one mixture, with the audio to show (mono float [samples] at ``sample_rate``)."""

    key: str
    mixture_id: str
    task: str
    text: str
    sample_rate: int
    mixture: np.ndarray
    target: np.ndarray
    estimates: dict[str, Optional[np.ndarray]] = field(default_factory=dict)  # system label -> estimate
    scores: dict[str, Optional[dict]] = field(default_factory=dict)  # system label -> scores
    errors: dict[str, Optional[str]] = field(default_factory=dict)  # system label -> error


def _cell_html(cell: Cell) -> str:
    text = f"<b>{html.escape(cell.text)}</b>" if cell.bold else html.escape(cell.text)
    plus_minus = f" <span class='pm'>± {html.escape(cell.plus_minus)}</span>" if cell.plus_minus else ""
    return f"<td class='num'>{text}{plus_minus}</td>"


def _table_html(results: dict[str, Any]) -> str:
    """The table of ``table_sections``; reference and oracle rows grey and italic."""
    cols, sections = table_sections(results)
    head = "<tr><th>Model</th>" + "".join(f"<th>{html.escape(c.title)}</th>" for c in cols) + "</tr>"
    body = []
    for title, rows in sections:
        body.append(f"<tr><td class='section' colspan='{len(cols) + 1}'>{html.escape(title)}</td></tr>")
        for label, kind, cells in rows:
            row_class = "" if kind == "system" else " class='reference'"
            tds = "".join(_cell_html(cell) for cell in cells)
            body.append(f"<tr{row_class}><td>{html.escape(label)}</td>{tds}</tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _significance_html(results: dict[str, Any]) -> str:
    sections = significance_lines(results)
    if not sections:
        return ""
    parts = [f"<h2>Paired differences</h2><p>{html.escape(SIGNIFICANCE_INTRO)}</p>"]
    for heading, lines in sections:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        parts.append(f"<h3>{html.escape(heading)}</h3><ul class='notes'>{items}</ul>")
    return "".join(parts)


def _write_media(folder: Path, name: str, wave: np.ndarray, sample_rate: int, reference_db: float) -> None:
    from sepkit.audio import write_audio

    peak = float(np.abs(wave).max()) if wave.size else 0.0
    playable = wave / peak * 0.99 if peak > 0.99 else wave  # 16-bit wav: keep within full scale
    write_audio(folder / f"{name}.wav", playable, sample_rate, subtype="PCM_16")
    write_spectrogram(folder / f"{name}.png", wave, sample_rate, reference_db=reference_db)


def _figure(folder_rel: str, name: str, caption: str, extra: str = "") -> str:
    src = html.escape(f"{folder_rel}/{name}")
    return (
        f"<figure><figcaption>{html.escape(caption)}</figcaption>"
        f"<img src='{src}.png' alt='{html.escape(caption)} spectrogram'>"
        f"<audio controls preload='metadata' src='{src}.wav'></audio>{extra}</figure>"
    )


def _scores_html(scores: Optional[dict], metrics: list[str]) -> str:
    if not scores:
        return ""
    parts = [f"{name} {scores[name]:.2f}" for name in metrics if scores.get(name) is not None]
    return f"<div class='scores'>{html.escape(' · '.join(parts))}</div>"


def _example_html(page_dir: Path, example: ReportExample, metrics: list[str]) -> str:
    folder = page_dir / "report" / safe_name(example.key)
    folder_rel = f"report/{safe_name(example.key)}"
    reference_db = float(log_spectrogram_db(example.mixture, example.sample_rate).max())
    _write_media(folder, "mixture", example.mixture, example.sample_rate, reference_db)
    _write_media(folder, "target", example.target, example.sample_rate, reference_db)
    figures = [_figure(folder_rel, "mixture", "mixture"), _figure(folder_rel, "target", "target")]
    for i, (label, estimate) in enumerate(example.estimates.items()):
        if estimate is None:
            error = example.errors.get(label) or "no estimate"
            figures.append(
                f"<figure><figcaption>{html.escape(label)}</figcaption>"
                f"<div class='error'>failed: {html.escape(error)}</div></figure>"
            )
            continue
        name = f"estimate-{i + 1}-{safe_name(label)}"
        _write_media(folder, name, estimate, example.sample_rate, reference_db)
        figures.append(_figure(folder_rel, name, label, _scores_html(example.scores.get(label), metrics)))
    return (
        f"<div class='example'><h3>{html.escape(example.mixture_id)} · {html.escape(example.task)}</h3>"
        f"<p>instruction: “{html.escape(example.text)}”</p><div class='row'>{''.join(figures)}</div></div>"
    )


def write_report(path: Path, results: dict[str, Any], examples: list[ReportExample]) -> None:
    """Write ``path`` (report.html) and its media under ``path.parent / "report"``."""
    from sepkit.benchmark.tables import notes

    path = Path(path)
    title = f"Benchmark on {results['testset']['name']}"
    metrics = [m["name"] for m in results["metrics"]]
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>",
        f"<h1>{html.escape(title)}</h1>",
        _table_html(results),
        "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes(results)) + "</ul>",
        _significance_html(results),
    ]
    if results.get("command"):
        parts.append(f"<p>Produced by: <code>{html.escape(results['command'])}</code></p>")
    if examples:
        nyquist = "/".join(f"{rate / 2000:g}" for rate in results["testset"]["sample_rates"])
        parts.append(
            f"<h2>Examples</h2><p>Log spectrograms (0 to {nyquist} kHz, low frequencies at the bottom, 80 dB "
            "range below the mixture's peak), with each system's scores under its player.</p>"
        )
        parts += [_example_html(path.parent, example, metrics) for example in examples]
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(parts) + "\n", encoding="utf-8")
