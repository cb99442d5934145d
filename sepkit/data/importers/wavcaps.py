"""WavCaps: ChatGPT-written captions for AudioSet_SL, FreeSound, SoundBible and BBC Sound Effects.

Metadata: the released json files, one per source, anywhere under ``root``
(``json_files/AudioSet_SL/as_final.json``, ``.../BBC_Sound_Effects/bbc_final.json``, ...),
each ``{"data": [{"id": ..., "caption": ..., "audio": ..., "duration": ..., ...}]}``.
The source is the json's folder name (its file stem if it sits in ``root``).

Audio: an entry's ``audio`` or ``wav_path`` field when it holds a real path (relative to the
json's folder or to ``root``; the release has the placeholder "wav_path"), else a file under
``root`` whose stem is the entry's ``id`` without extension ("Yb0RFKhbpFJA.wav" ->
``Yb0RFKhbpFJA.flac``). Everything is split "train" (WavCaps has no official split);
HSM-TSS's filtering (no FreeSound, nothing over 60 s) is left to the recipe, with the
``source`` and ``duration`` kept in ``provenance``.
"""

from __future__ import annotations

import json
from pathlib import Path

from sepkit.data.importers import AudioIndex, Entry

PLACEHOLDERS = {"", "wav_path", "audio_path", "flac_path"}


def read(root: Path, audio: AudioIndex) -> list[Entry]:
    from sepkit.errors import SepkitError

    files = sorted(root.rglob("*.json"))
    entries: list[Entry] = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise SepkitError(f"wavcaps: {path} is not readable json ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            continue  # another json (e.g. a config); not a WavCaps metadata file
        source = path.parent.name if path.parent != root else path.stem
        for item in data["data"]:
            if not isinstance(item, dict) or "id" not in item:
                raise SepkitError(f"wavcaps: {path}: an entry has no 'id' ({str(item)[:80]})")
            stem = Path(str(item["id"])).stem
            found = _explicit(item, path.parent, root) or audio.find(stem)
            captions = item.get("caption") or []
            entries.append(Entry(
                id=f"{source}/{stem}", split="train", audio=found, expected=f"{root}/**/{stem}.flac",
                captions=[captions] if isinstance(captions, str) else [str(c) for c in captions],
                provenance={"source": source, "wavcaps_id": str(item["id"]), "duration": item.get("duration")},
            ))  # fmt: skip
    if not entries:
        raise SepkitError(f"wavcaps: no json file with a 'data' list under {root}")
    return entries


def _explicit(item: dict, folder: Path, root: Path) -> Path | None:
    for key in ("audio", "wav_path"):
        value = item.get(key)
        if isinstance(value, str) and value not in PLACEHOLDERS:
            for base in (folder, root):
                if (base / value).is_file():
                    return base / value
    return None
