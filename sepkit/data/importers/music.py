"""MUSIC (solo videos of 11 instruments), as listed by CLIPSep for its zero-shot evaluation.

Metadata: CLIPSep's ``train.csv``, ``val.csv`` and ``test.csv`` (in ``root``, ``root/solo``
or ``root/MUSIC/solo``; the file name gives the split). CLIPSep's rows have no header::

    data/MUSIC/solo/audio/violin/w81p5ty4OZc.wav,data/MUSIC/solo/preprocessed/violin/w81p5ty4OZc,131,violin

i.e. ``audio_path, frames_dir, num_frames, label`` (label with underscores: "acoustic_guitar").
A csv with a header is also accepted if it has an audio column (``audio``, ``audio_path``,
``path`` or ``file``) and a label column (``label``, ``instrument`` or ``category``); this
form is our assumption, not CLIPSep's.

Audio: the listed path relative to the csv's folder, to ``root`` or to ``root``'s parent
(CLIPSep's paths start at its ``data/`` folder), else the file name anywhere under ``root``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sepkit.data.importers import AudioIndex, Entry

SPLITS = ("train", "val", "test")
AUDIO_COLUMNS = ("audio", "audio_path", "path", "file")
LABEL_COLUMNS = ("label", "instrument", "category")


def read(root: Path, audio: AudioIndex) -> list[Entry]:
    from sepkit.errors import SepkitError

    entries: list[Entry] = []
    found = False
    for split in SPLITS:
        path = next((p for p in (root / f"{split}.csv", root / "solo" / f"{split}.csv",
                                 root / "MUSIC" / "solo" / f"{split}.csv") if p.is_file()), None)  # fmt: skip
        if path is None:
            continue
        found = True
        for number, listed, label, extra in _rows(path):
            located = _locate(listed, path.parent, root, audio)
            entries.append(Entry(
                id=f"{label}/{Path(listed).stem}", split=split, audio=located, expected=listed,
                labels=[label], provenance={"listed_path": listed, "csv": f"{path.name}:{number}", **extra},
            ))  # fmt: skip
    if not found:
        raise SepkitError(f"music: no train.csv, val.csv or test.csv in {root}, {root}/solo or {root}/MUSIC/solo")
    return entries


def _rows(path: Path):
    """(line number, audio path, label, extra provenance) of either csv form."""
    from sepkit.errors import SepkitError

    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [[c.strip() for c in row] for row in csv.reader(f) if any(c.strip() for c in row)]
    if not rows:
        return
    header = [c.lower() for c in rows[0]]
    audio_col = next((header.index(c) for c in AUDIO_COLUMNS if c in header), None)
    label_col = next((header.index(c) for c in LABEL_COLUMNS if c in header), None)
    if audio_col is not None and label_col is not None:
        for number, row in enumerate(rows[1:], 2):
            yield number, row[audio_col], row[label_col], {}
        return
    for number, row in enumerate(rows, 1):
        if len(row) < 4:
            raise SepkitError(f"{path}:{number}: expected audio_path,frames_dir,num_frames,label (CLIPSep) "
                              f"or a header with {'/'.join(AUDIO_COLUMNS)} and {'/'.join(LABEL_COLUMNS)}")  # fmt: skip
        yield number, row[0], row[3], {"frames_dir": row[1], "num_frames": row[2]}


def _locate(listed: str, folder: Path, root: Path, audio: AudioIndex) -> Path | None:
    listed_path = Path(listed)
    if listed_path.is_absolute():
        return listed_path if listed_path.is_file() else audio.find(listed_path.name)
    for base in (folder, root, root.parent):
        if (base / listed_path).is_file():
            return base / listed_path
    return audio.find(listed_path.name)
