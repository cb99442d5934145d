"""Corpus importers: a corpus's official metadata and audio -> clip manifests (``ClipRecord`` JSONL).

    import_corpus("esc50", "/data/ESC-50-master", "manifests/")
    # -> manifests/esc50_train.jsonl, esc50_val.jsonl, esc50_test.jsonl and a summary dict

One module per corpus (``audiocaps``, ``clotho``, ``fsd50k``, ``esc50``, ``wavcaps``,
``audioset``, ``music``); each documents the folder layout and file names it expects and
exposes ``read(root, audio) -> list[Entry]``. This module does the rest for all of them:

- **tags**: the corpus labels through ``TagNormaliser.normalise_all``; for caption-only
  corpora, the categories ``TagNormaliser.find_in_text`` spots in the captions (clips where
  none is found stay untagged, and mixing protocols skip them).
- **captions**: the corpus's own, or for label corpora ``"the sound of <labels>"``.
- **audio**: ``soundfile.info`` gives ``seconds`` and ``sample_rate`` (no samples are read).
  Missing and unreadable (corrupt or empty) files are counted in the summary with the first
  few paths (``on_missing="skip"``), or reported all together in one SepkitError (``"fail"``).
- **output**: ``out/<corpus>_<split>.jsonl`` per split, clip paths relative to ``out``,
  written atomically; ``provenance`` keeps the original ids and labels.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sepkit.errors import SepkitError

CORPORA: dict[str, str] = {
    "audiocaps": "AudioCaps: {train,val,test}.csv (audiocap_id,youtube_id,start_time,caption)",
    "clotho": "Clotho v2: clotho_captions_{development,validation,evaluation}.csv (file_name,caption_1..5)",
    "fsd50k": "FSD50K: FSD50K.ground_truth/{dev,eval}.csv (fname,labels,mids[,split])",
    "esc50": "ESC-50: meta/esc50.csv and audio/",
    "wavcaps": "WavCaps: json files {'data': [{'id', 'caption', ...}]}, one per source",
    "audioset": "AudioSet: class_labels_indices.csv and *_segments.csv",
    "music": "MUSIC (CLIPSep lists): {train,val,test}.csv rows audio_path,frames_dir,num_frames,label",
}
EXAMPLES = 5  # paths listed per problem in summaries and errors


@dataclass
class Entry:
    """One clip as a corpus module reads it: ``audio`` is None when the file was not found."""

    id: str
    split: str
    audio: Optional[Path]
    expected: str  # where the audio was looked for, for reports
    labels: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)


class AudioIndex:
    """Every audio file under a folder, found by file stem or name (built once, lazily)."""

    EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._stems: Optional[dict[str, Path]] = None
        self._names: dict[str, Path] = {}

    def _build(self) -> dict[str, Path]:
        if self._stems is None:
            self._stems = {}
            for path in sorted(self.root.rglob("*")):
                if path.suffix.lower() in self.EXTENSIONS and path.is_file():
                    self._stems.setdefault(path.stem, path)
                    self._names.setdefault(path.name, path)
        return self._stems

    def find(self, *stems: str) -> Optional[Path]:
        """The first file whose stem (or, for names with a suffix, whose name) is one of ``stems``."""
        index = self._build()
        for stem in stems:
            found = self._names.get(stem) or index.get(stem)
            if found is not None:
                return found
        return None


def find_file(root: Path, names: list[str], what: str) -> Path:
    """The first of ``names`` (relative paths) under ``root`` or one folder down; SepkitError if none."""
    root = Path(root)
    for name in names:
        for base in [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else [root]:
            if (base / name).is_file():
                return base / name
    raise SepkitError(f"{what}: none of {', '.join(names)} found in {root} (or one folder down)")


def readable(label: str) -> str:
    """A label as caption words: "Violin_fiddle" -> "violin fiddle", "Male speech, man speaking" -> "male speech"."""
    return " ".join(str(label).replace("_", " ").split(",")[0].split()).lower()


def label_caption(names: list[str]) -> str:
    """The caption of a label-only clip: ["dog", "rain"] -> "the sound of dog and rain"."""
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"the sound of {joined}"


def import_corpus(corpus: str, root, out, on_missing: str = "skip") -> dict:
    """Import ``corpus`` from ``root`` into clip manifests ``out/<corpus>_<split>.jsonl``; returns a summary."""
    if corpus not in CORPORA:
        known = "; ".join(f"{name} ({what})" for name, what in CORPORA.items())
        raise SepkitError(f"unknown corpus {corpus!r}; known corpora: {known}")
    if on_missing not in ("skip", "fail"):
        raise SepkitError(f"on_missing must be 'skip' or 'fail', not {on_missing!r}")
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise SepkitError(f"corpus root {root} is not a folder; give the folder holding the {corpus} metadata")
    module = importlib.import_module(f"sepkit.data.importers.{corpus}")
    entries = module.read(root, AudioIndex(root))
    if not entries:
        raise SepkitError(f"{corpus}: the metadata under {root} lists no clips")
    from sepkit.data.manifest import write_jsonl
    from sepkit.data.tags import TagNormaliser

    normaliser = TagNormaliser()
    by_split: dict[str, list] = {}
    missing, corrupt, seen = [], [], set()
    untagged = 0
    for entry in entries:
        if entry.id in seen:
            continue
        seen.add(entry.id)
        header = _audio_header(entry, missing, corrupt)
        if header is None:
            continue
        record = _record(corpus, entry, header, normaliser, out)
        untagged += not record.tags
        by_split.setdefault(record.split, []).append(record)
    if on_missing == "fail" and (missing or corrupt):
        raise SepkitError(f"{corpus}: {_problems(missing, corrupt, len(seen))}; fix the files or use --on-missing skip")
    if not by_split:
        raise SepkitError(f"{corpus}: no clip of {len(seen)} has readable audio under {root}: "
                          f"{_problems(missing, corrupt, len(seen))}")  # fmt: skip
    manifests = {}
    for split, records in sorted(by_split.items()):
        path = out / f"{corpus}_{split}.jsonl"
        write_jsonl(path, records)
        manifests[split] = str(path)
    return {
        "corpus": corpus,
        "root": str(root),
        "clips": sum(len(r) for r in by_split.values()),
        "counts": {split: len(r) for split, r in sorted(by_split.items())},
        "manifests": manifests,
        "untagged": untagged,
        "missing": len(missing),
        "missing_examples": missing[:EXAMPLES],
        "corrupt": len(corrupt),
        "corrupt_examples": corrupt[:EXAMPLES],
    }


def _audio_header(entry: Entry, missing: list, corrupt: list):
    """soundfile.info of the entry's audio, or None after noting it as missing or corrupt."""
    import soundfile

    if entry.audio is None or not Path(entry.audio).is_file():
        missing.append(str(entry.audio or entry.expected))
        return None
    try:
        info = soundfile.info(str(entry.audio))
    except Exception as exc:  # soundfile raises several types for bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        corrupt.append(f"{entry.audio} ({reason})")
        return None
    if info.frames <= 0 or info.samplerate <= 0:
        corrupt.append(f"{entry.audio} (no samples)")
        return None
    return info


def _record(corpus: str, entry: Entry, info, normaliser, out: Path):
    from sepkit.data.manifest import ClipRecord

    if entry.labels:
        tags = normaliser.normalise_all(entry.labels)
    else:
        tags = normaliser.normalise_all(t for caption in entry.captions for t in normaliser.find_in_text(caption))
    captions = list(entry.captions)
    if not captions and entry.labels:
        names = [readable(label) for label in entry.labels if normaliser.normalise(label) in tags]
        captions = [label_caption(list(dict.fromkeys(names)))]
    path = Path(os.path.relpath(os.path.abspath(entry.audio), os.path.abspath(out))).as_posix()
    provenance = {"corpus": corpus, **entry.provenance}
    if entry.labels:
        provenance.setdefault("labels", list(entry.labels))
    return ClipRecord(
        id=f"{corpus}-{entry.id}",
        path=path,
        seconds=round(info.frames / info.samplerate, 6),
        sample_rate=int(info.samplerate),
        tags=tags,
        captions=captions,
        split=entry.split,
        provenance=provenance,
    )


def _problems(missing: list, corrupt: list, total: int) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} of {total} audio files missing (e.g. {', '.join(missing[:EXAMPLES])})")
    if corrupt:
        parts.append(f"{len(corrupt)} unreadable (e.g. {', '.join(corrupt[:EXAMPLES])})")
    return "; ".join(parts) or "no audio"


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a csv with a header as dicts, BOM and surrounding spaces stripped."""
    import csv

    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f, skipinitialspace=True))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SepkitError(f"{path}: not a readable UTF-8 csv ({exc})") from None
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in rows]


def require_columns(rows: list[dict], path: Path, columns: tuple[str, ...]) -> None:
    if rows and not set(columns) <= set(rows[0]):
        lacking = sorted(set(columns) - set(rows[0]))
        raise SepkitError(f"{path}: missing column(s) {', '.join(lacking)}; expected {', '.join(columns)}")
