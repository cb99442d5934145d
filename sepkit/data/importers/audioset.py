"""AudioSet: weakly labelled ten-second YouTube excerpts.

Metadata, in ``root`` or one folder down:

- ``class_labels_indices.csv``: ``index,mid,display_name``;
- segment lists ``balanced_train_segments.csv``, ``unbalanced_train_segments.csv`` (-> train)
  and ``eval_segments.csv`` (-> test): header comment lines starting with ``#``, then rows
  ``YTID, start_seconds, end_seconds, "mid1,mid2,..."``.

Audio, anywhere under ``root``, named ``Y<YTID>.wav`` (the usual download layout),
``<YTID>.wav`` or ``<YTID>_<start_seconds as integer>.wav`` (also flac, ogg, mp3).
Labels are the display names ("Male speech, man speaking"); unknown mids are kept in
``provenance`` only.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sepkit.data.importers import AudioIndex, Entry, find_file, read_csv, require_columns

SEGMENTS = {"balanced_train_segments.csv": "train", "unbalanced_train_segments.csv": "train",
            "eval_segments.csv": "test"}  # fmt: skip


def read(root: Path, audio: AudioIndex) -> list[Entry]:
    from sepkit.errors import SepkitError

    labels_path = find_file(root, ["class_labels_indices.csv", "metadata/class_labels_indices.csv"], "audioset")
    rows = read_csv(labels_path)
    require_columns(rows, labels_path, ("index", "mid", "display_name"))
    names = {row["mid"]: row["display_name"] for row in rows}
    entries: list[Entry] = []
    found = False
    for file_name, split in SEGMENTS.items():
        try:
            path = find_file(labels_path.parent, [file_name], "audioset")
        except SepkitError:
            continue
        found = True
        for number, row in _segments(path):
            if len(row) < 4:
                raise SepkitError(f"{path}:{number}: expected YTID, start_seconds, end_seconds, positive_labels")
            ytid, start, end, mids = row[0], row[1], row[2], row[3].split(",")
            stems = [f"Y{ytid}", ytid, f"{ytid}_{_int(start)}", f"{ytid}_{start}"]
            entries.append(Entry(
                id=f"{ytid}_{_int(start)}", split=split, audio=audio.find(*stems), expected=f"{root}/**/Y{ytid}.wav",
                labels=[names[m] for m in mids if m in names],
                provenance={"ytid": ytid, "start_seconds": start, "end_seconds": end, "mids": mids,
                            "segments": file_name},
            ))  # fmt: skip
    if not found:
        raise SepkitError(f"audioset: no {', '.join(SEGMENTS)} beside {labels_path}")
    return entries


def _segments(path: Path):
    with open(path, encoding="utf-8", newline="") as f:
        lines = [(n, line) for n, line in enumerate(f, 1) if line.strip() and not line.lstrip().startswith("#")]
    for (number, _), row in zip(lines, csv.reader((line for _, line in lines), skipinitialspace=True)):
        yield number, [field.strip() for field in row]


def _int(value: str) -> str:
    try:
        return str(int(float(value)))
    except ValueError:
        return value
