"""The HSM-TSS ladder's outputs from its results: ``results.md`` (tables) and ``ladder.png`` (spectrograms).

``write_markdown(path, results)``: one table per task (rungs 1-5, then the reference rows in italics)
with mean ± half the 95 % bootstrap interval, a token table per task, the entropy of each codebook
group, and the paired differences of neighbouring rungs and of each rung against the references.
``write_figure(path, examples, rungs)``: one row of log spectrograms per rung (plus mixture and
target) for each example column; the spectrograms of a column share the mixture's dB range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from sepkit.atomic import atomic_path

TASK_TITLES = {"extract": "Extraction", "remove": "Removal"}
COLUMNS = (  # score, header, decimals
    ("si_sdri", "SI-SDRi ↑", 2),
    ("sdri", "SDRi ↑", 2),
    ("lsd", "LSD ↓", 3),
    ("psnr", "PSNR ↑", 2),
    ("rms_db", "RMS vs target (dB)", 1),
    ("token_accuracy", "Token acc. ↑", 3),
)
PAIRED_SHOWN = ("lsd", "psnr")


def _cell(summary: dict, name: str, decimals: int) -> str:
    mean = summary["mean"].get(name)
    if mean is None:
        return "-"
    ci = summary["ci"].get(name)
    text = f"{mean:.{decimals}f}"
    return text if ci is None else f"{text} ± {(ci[1] - ci[0]) / 2:.{decimals}f}"


def _labels(results: dict) -> dict[str, str]:
    return {row["key"]: row["label"] for row in results["rows"]}


def _summary(results: dict, row: str, task: str) -> Optional[dict]:
    for summary in results["summary"]:
        if summary["row"] == row and summary["task"] == task:
            return summary
    return None


def score_table(results: dict, task: str) -> list[str]:
    labels = _labels(results)
    lines = [
        "| Row | n | " + " | ".join(header for _, header, _ in COLUMNS) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " |",
    ]
    for row in results["rows"]:
        summary = _summary(results, row["key"], task)
        if summary is None:
            continue
        label = labels[row["key"]] if row["rung"] is not None else f"*{labels[row['key']]}*"
        cells = [_cell(summary, name, decimals) for name, _, decimals in COLUMNS]
        lines.append(f"| {label} | {summary['n']} | " + " | ".join(cells) + " |")
    return lines


def _spread(values: list[float], scale: float, decimals: int) -> str:
    v = np.asarray(values) * scale
    return f"{v.mean():.{decimals}f} [{v.min():.{decimals}f}–{v.max():.{decimals}f}]"


def token_table(results: dict) -> list[str]:
    labels = _labels(results)
    tasks = [t for t in TASK_TITLES if t in results["tokens"]]
    header = "| Row | " + " | ".join(f"{TASK_TITLES[t]}: token acc. | usage % | entropy (bits)" for t in tasks) + " |"
    lines = [header, "| --- | " + " | ".join("---: | ---: | ---:" for _ in tasks) + " |"]
    keys = ["target"] + [row["key"] for row in results["rows"] if row["rung"] is not None and row["rung"] > 1]
    for key in keys:
        cells = []
        for task in tasks:
            stats = results["tokens"][task][key]
            if key == "target":
                accuracy = "(1)"
            else:
                summary = _summary(results, key, task)
                accuracy = _cell(summary, "token_accuracy", 3) if summary else "-"
            cells.append(f"{accuracy} | {_spread(stats['usage'], 100, 1)} | {_spread(stats['entropy_bits'], 1, 2)}")
        label = "*Codec's codes of the target (decoded by rung 1)*" if key == "target" else labels[key]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def entropy_table(results: dict) -> list[str]:
    labels = _labels(results)
    groups = results["codec"]["num_groups"]
    lines = [
        "| Row | task | " + " | ".join(f"g{g + 1}" for g in range(groups)) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in range(groups)) + " |",
    ]
    for task in (t for t in TASK_TITLES if t in results["tokens"]):
        for key, stats in results["tokens"][task].items():
            label = "*target's codes*" if key == "target" else labels[key]
            lines.append(f"| {label} | {task} | " + " | ".join(f"{h:.2f}" for h in stats["entropy_bits"]) + " |")
    return lines


def paired_lines(results: dict) -> list[str]:
    labels = _labels(results)
    lines = []
    for task in TASK_TITLES:
        found = {}
        for item in results["paired"]:
            if item["task"] == task and item["metric"] in PAIRED_SHOWN and item["ci"] is not None:
                found.setdefault((item["a"], item["b"]), []).append(item)
        if not found:
            continue
        lines.append(f"### {TASK_TITLES[task]}")
        lines.append("")
        for (a, b), items in found.items():
            parts = []
            for item in items:
                decimals = 3 if item["metric"] == "lsd" else 2
                low, high = item["ci"]
                mark = "" if item["significant"] else " (n.s.)"
                parts.append(
                    f"{item['metric'].upper()} {item['difference']:+.{decimals}f} "
                    f"[{low:+.{decimals}f}, {high:+.{decimals}f}]{mark}"
                )
            lines.append(f"- {labels.get(a, a)} − {labels.get(b, b)}: " + ", ".join(parts))
        lines.append("")
    return lines


def level_table(results: dict, task: str) -> list[str]:
    """Rows x target-level bins: the bin's mean frame LSD and, in brackets, its contribution to the row's LSD."""
    levels = results.get("lsd_levels", {})
    rows = levels.get(task, {})
    if not rows:
        return []
    labels = _labels(results)
    first = next(iter(rows.values()))
    share = " | ".join(f"{100 * f:.1f} %" for f in first["share"])
    lines = [
        "| Row | " + " | ".join(levels["bins"]) + " | LSD |",
        "| --- | " + " | ".join("---:" for _ in levels["bins"]) + " | ---: |",
        f"| *share of the frames* | {share} | |",
    ]
    for row in (r["key"] for r in results["rows"] if r["key"] in rows):  # the ladder's row order (JSON sorts keys)
        summary = rows[row]
        cells = [
            "-" if mean is None else f"{mean:.3f} ({part:.3f})"
            for mean, part in zip(summary["mean"], summary["contribution"])
        ]
        lines.append(f"| {labels.get(row, row)} | " + " | ".join(cells) + f" | {sum(summary['contribution']):.3f} |")
    return lines


def level_sections(results: dict) -> list[str]:
    """A heading and ``level_table`` per task that has one."""
    lines = []
    for task, title in TASK_TITLES.items():
        table = level_table(results, task)
        if table:
            lines += [f"### {title}", "", *table, ""]
    return lines


def markdown(results: dict) -> str:
    mixtures, seconds = results["mixtures"], results["seconds"]
    codec = results["codec"]
    chain, ours = results["systems"]["chain"], results["systems"]["ours_local"]
    decoding = chain["decoding"]
    lines = [
        "# HSM-TSS oracle ladder on mini-hsm_tss",
        "",
        f"{mixtures['evaluated']} mixtures of `{mixtures['path']}` (sha256 {mixtures['sha256'][:12]}, in manifest "
        f"order), {mixtures['examples']} examples (each mixture's extract and remove instruction). Produced by "
        f"`{results['command']}` on {results['device']} ({results['torch_threads']} torch thread(s)): "
        f"{seconds['wall']:.0f} s wall, {seconds['cpu']:.0f} s CPU.",
        "",
        f"Chain: `{chain['recipe']}` (checkpoint `{chain['checkpoint']}`, sha256 {chain['checkpoint_sha256'][:12]}); "
        f"Ours_local: `{ours['recipe']}` (checkpoint `{ours['checkpoint']}`, sha256 {ours['checkpoint_sha256'][:12]}); "
        f"codec-ar decoding: {decoding['sampling']}"
        + (
            f" (temperature {decoding['temperature']:g}, top-k {decoding['top_k']})"
            if decoding["sampling"] != "greedy"
            else ""
        )
        + f"; codec: {codec['num_groups']} groups x {codec['codebook_size']} codes at {codec['frame_rate']:g} "
        f"frames/s. Weights of every component file: results.json (`systems`).",
        "",
        "Rows (README.md says more): "
        + "; ".join(f"**{r['label']}**: {r['description']}" for r in results["rows"])
        + ".",
        "",
    ]
    for task in TASK_TITLES:
        if any(s["task"] == task for s in results["summary"]):
            lines += [f"## {TASK_TITLES[task]}", "", *score_table(results, task), ""]
    lines += [
        "Mean over examples ± half the 95 % bootstrap interval (percentile, 1000 resamples, numpy seed 0: "
        "`sepkit/benchmark/bootstrap.py`). SI-SDRi, SDRi, LSD and PSNR are the metric plugins `sepkit benchmark` "
        "uses, at the test set's rate, without audioldm-eval's preprocessing (as in `benchmarks/mini/results.md`). "
        "RMS vs target: 20 log10(RMS(output) / RMS(target)), each RMS floored at 1e-10 (Silence hits the floor). "
        "Token acc.: the fraction of generated codes equal to the codec's codes of the target, over the target's "
        "valid frames and all groups (rung 1 decodes the target's own codes).",
        "",
        *_compound_note(results),
        "## Tokens",
        "",
        "Codebook usage: distinct codes used / codebook size, per group, pooled over the task's examples (valid "
        f"frames only); entropy of each group's code distribution in bits (log2 {codec['codebook_size']} = "
        f"{np.log2(codec['codebook_size']):g} for uniform use). Cells: mean over the {codec['num_groups']} groups "
        "[lowest–highest group]; token accuracy as above (mean ± half the interval).",
        "",
        *token_table(results),
        "",
        "### Entropy per group (bits)",
        "",
        *entropy_table(results),
        "",
        "## LSD by the target's frame level",
        "",
        "Each frame's LSD distance (the `lsd` metric's frames: RMS over bins of the log10 power ratio), grouped by "
        "the target frame's mean power relative to the loudest frame of the same target (`ladder_levels.py`). "
        "Cells: the mean frame distance in that level bin (its contribution to the row's LSD: frame-distance sum "
        "over all frames); the contributions add up to the LSD column (equally long examples). A row that loses "
        "to another where the target is loud reproduces the target's spectrum less well; one that loses where it "
        "is quiet has a louder noise floor or fails to fall silent.",
        "",
        *level_sections(results),
        "## Paired differences",
        "",
        "Paired bootstrap of the difference of means (first row minus second, same examples, 95 % interval); "
        "(n.s.): the interval contains 0. LSD: lower is better; PSNR: higher is better. results.json (`paired`) "
        "also has SI-SDRi.",
        "",
        *paired_lines(results),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _compound_note(results: dict) -> list[str]:
    compound = results.get("compound_parses", {})
    keys = sorted(set(compound.get("chain", [])) | set(compound.get("ours_local", [])))
    if not keys:
        return []
    return [
        f"{len(keys)} examples ({', '.join(f'`{k}`' for k in keys)}) have an instruction the pipelines' rule parser "
        'splits in two (a caption with "and"); rungs 3-5 condition them on the manifest\'s description, where '
        "`sepkit benchmark` separates them as two instructions in turn.",
        "",
    ]


def write_markdown(path: Path, results: dict) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(markdown(results), encoding="utf-8")


def write_figure(path: Path, examples: dict[str, dict[str, Any]], rungs: list[tuple[str, str]]) -> None:
    """``examples``: key -> {id, task, text, rate, mixture, target, rows: {row key: wave}} (float [T] each);
    one column per example, rows: mixture, target, then ``rungs`` (key, label) in order."""
    from matplotlib.figure import Figure

    from sepkit.report.spectrogram import FLOOR_DB, log_spectrogram_db, spectrogram_image

    keys = sorted(examples)
    if not keys:
        return
    rows = [("mixture", "Mixture"), ("target", "Target"), *rungs]
    width, height = 3.2, 1.25
    figure = Figure(figsize=(0.9 + width * len(keys), 0.5 + height * len(rows)), dpi=90)
    grid = figure.subplots(len(rows), len(keys), squeeze=False)
    for column, key in enumerate(keys):
        example = examples[key]
        rate = int(example["rate"])
        top = float(log_spectrogram_db(example["mixture"], rate).max())
        seconds = len(example["mixture"]) / rate
        for r, (row, label) in enumerate(rows):
            wave = example[row] if row in ("mixture", "target") else example["rows"][row]
            axes = grid[r][column]
            axes.imshow(
                spectrogram_image(wave, rate, reference_db=top, floor_db=FLOOR_DB, height=128),
                aspect="auto",
                extent=(0, seconds, 0, rate / 2000),
                interpolation="nearest",
            )
            axes.tick_params(labelsize=6, length=2)
            if r < len(rows) - 1:
                axes.set_xticklabels([])
            else:
                axes.set_xlabel("s", fontsize=7)
            if column == 0:
                axes.set_ylabel(label.replace(" (", "\n("), fontsize=7)
            else:
                axes.set_yticklabels([])
            if r == 0:
                axes.set_title(f"{example['id']}\n{example['text']}", fontsize=7)
    figure.suptitle(
        f"HSM-TSS oracle ladder: log spectrograms (kHz; each column in its mixture's dB range, {FLOOR_DB:g} dB)",
        fontsize=8,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    _save_palette_png(figure, path)


def _save_palette_png(figure, path: Path) -> None:
    """Render ``figure`` with the Agg canvas and write it as a 256-colour palette PNG (atomically): about a
    third of the RGBA file matplotlib writes, with no visible loss for colour-mapped spectrograms and text."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    image = Image.fromarray(np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[..., :3]))
    with atomic_path(path) as tmp:
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(tmp, format="PNG", optimize=True)
