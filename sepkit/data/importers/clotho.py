"""Clotho v2: five captions per Freesound clip.

Metadata: ``clotho_captions_{development,validation,evaluation}.csv`` with columns
``file_name,caption_1,...,caption_5``, in ``root`` or one folder down. Splits:
development -> train, validation -> val, evaluation -> test.

Audio: the file ``file_name`` anywhere under ``root`` (official archives unpack to
``development/``, ``validation/``, ``evaluation/``); a file in the folder named after
its split is preferred when names repeat.
"""

from __future__ import annotations

from pathlib import Path

from sepkit.data.importers import AudioIndex, Entry, read_csv, require_columns

SPLITS = {"development": "train", "validation": "val", "evaluation": "test"}


def read(root: Path, audio: AudioIndex) -> list[Entry]:
    from sepkit.errors import SepkitError

    entries: list[Entry] = []
    found = False
    for name, split in SPLITS.items():
        csv_name = f"clotho_captions_{name}.csv"
        path = next((p for p in [root / csv_name, *sorted(root.glob(f"*/{csv_name}"))] if p.is_file()), None)
        if path is None:
            continue
        found = True
        rows = read_csv(path)
        require_columns(rows, path, ("file_name", "caption_1"))
        for row in rows:
            file_name = row["file_name"]
            captions = [row[k] for k in sorted(row) if k.startswith("caption_") and row[k]]
            preferred = root / name / file_name
            entries.append(Entry(
                id=f"{name}/{file_name}", split=split,
                audio=preferred if preferred.is_file() else audio.find(file_name),
                expected=str(preferred), captions=captions,
                provenance={"file_name": file_name, "clotho_split": name},
            ))  # fmt: skip
    if not found:
        raise SepkitError(f"clotho: no clotho_captions_{{development,validation,evaluation}}.csv in {root}")
    return entries
