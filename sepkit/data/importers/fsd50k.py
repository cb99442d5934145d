"""FSD50K: Freesound clips labelled with the AudioSet ontology.

Metadata: ``FSD50K.ground_truth/dev.csv`` (``fname,labels,mids,split``; split is train or
val) and ``FSD50K.ground_truth/eval.csv`` (``fname,labels,mids``; -> test), in ``root`` or
one folder down. ``labels`` is a comma-separated list of AudioSet names with underscores
("Violin_fiddle,Bowed_string_instrument,Music"); coarse ancestors are dropped from the tags
by the normaliser and kept in ``provenance``.

Audio: ``FSD50K.dev_audio/<fname>.wav`` and ``FSD50K.eval_audio/<fname>.wav`` (else any
``<fname>.wav`` under ``root``).
"""

from __future__ import annotations

from pathlib import Path

from sepkit.data.importers import AudioIndex, Entry, find_file, read_csv, require_columns

FILES = {"dev": "FSD50K.dev_audio", "eval": "FSD50K.eval_audio"}


def read(root: Path, audio: AudioIndex) -> list[Entry]:
    from sepkit.errors import SepkitError

    entries: list[Entry] = []
    found = False
    for part, folder in FILES.items():
        try:
            path = find_file(root, [f"FSD50K.ground_truth/{part}.csv", f"ground_truth/{part}.csv"], "fsd50k")
        except SepkitError:
            continue
        found = True
        rows = read_csv(path)
        require_columns(rows, path, ("fname", "labels", "mids") + (("split",) if part == "dev" else ()))
        audio_dir = path.parent.parent / folder
        for row in rows:
            fname = row["fname"]
            split = "test" if part == "eval" else {"val": "val"}.get(row.get("split", ""), "train")
            direct = audio_dir / f"{fname}.wav"
            labels = [label for label in row["labels"].split(",") if label.strip()]
            entries.append(Entry(
                id=fname, split=split, audio=direct if direct.is_file() else audio.find(fname),
                expected=str(direct), labels=labels,
                provenance={"fname": fname, "mids": row["mids"].split(","), "fsd50k_split": row.get("split", part)},
            ))  # fmt: skip
    if not found:
        raise SepkitError(f"fsd50k: no FSD50K.ground_truth/dev.csv or eval.csv in {root} (or one folder down)")
    return entries
