"""ESC-50: 2000 five-second clips of 50 environmental classes in five folds.

Metadata: ``meta/esc50.csv`` with columns ``filename,fold,target,category,esc10,src_file,take``
(in ``root`` or one folder down, e.g. ``ESC-50-master/``). Audio: ``audio/<filename>``.

Splits from folds (the folds are for cross-validation; this fixed assignment is ours):
folds 1-3 -> train, fold 4 -> val, fold 5 -> test.
"""

from __future__ import annotations

from pathlib import Path

from sepkit.data.importers import AudioIndex, Entry, find_file, read_csv, require_columns

COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
FOLD_SPLITS = {"1": "train", "2": "train", "3": "train", "4": "val", "5": "test"}


def read(root: Path, audio: AudioIndex) -> list[Entry]:
    from sepkit.errors import SepkitError

    path = find_file(root, ["meta/esc50.csv"], "esc50")
    rows = read_csv(path)
    require_columns(rows, path, COLUMNS)
    entries = []
    for row in rows:
        if row["fold"] not in FOLD_SPLITS:
            raise SepkitError(f"{path}: fold {row['fold']!r} of {row['filename']} is not 1-5")
        direct = path.parent.parent / "audio" / row["filename"]
        entries.append(Entry(
            id=Path(row["filename"]).stem, split=FOLD_SPLITS[row["fold"]],
            audio=direct if direct.is_file() else audio.find(row["filename"]), expected=str(direct),
            labels=[row["category"]],
            provenance={k: row[k] for k in COLUMNS},
        ))  # fmt: skip
    return entries
