"""AudioCaps: captions of AudioSet excerpts.

Metadata: ``{train,val,test}.csv`` with columns ``audiocap_id,youtube_id,start_time,caption``
in ``root``, ``root/dataset`` or ``root/metadata`` (the official repository keeps them in
``dataset/``). Rows of the same ``youtube_id`` (val and test have five captions each) become
one clip with all its captions.

Audio, anywhere under ``root`` (wav, flac, ogg or mp3), named by either pattern:

- the YouTube id: ``<youtube_id>.wav``, ``Y<youtube_id>.wav`` (AudioSet downloads) or
  ``<youtube_id>_<start_time>.wav``;
- the AudioCaps id: ``<audiocap_id>.wav`` (any of the clip's ids).
"""

from __future__ import annotations

from pathlib import Path

from sepkit.data.importers import AudioIndex, Entry, read_csv, require_columns

SPLITS = ("train", "val", "test")
COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")


def read(root: Path, audio: AudioIndex) -> list[Entry]:
    from sepkit.errors import SepkitError

    entries: list[Entry] = []
    found = False
    for split in SPLITS:
        path = next((p for p in (root / f"{split}.csv", root / "dataset" / f"{split}.csv",
                                 root / "metadata" / f"{split}.csv") if p.is_file()), None)  # fmt: skip
        if path is None:
            continue
        found = True
        rows = read_csv(path)
        require_columns(rows, path, COLUMNS)
        clips: dict[str, dict] = {}
        for row in rows:
            clip = clips.setdefault(row["youtube_id"], {"start": row["start_time"], "ids": [], "captions": []})
            clip["ids"].append(row["audiocap_id"])
            clip["captions"].append(row["caption"])
        for ytid, clip in clips.items():
            start = clip["start"]
            stems = [ytid, f"Y{ytid}", f"{ytid}_{start}", f"{ytid}_{_int(start)}", *clip["ids"]]
            entries.append(Entry(
                id=ytid, split=split, audio=audio.find(*stems), expected=f"{root}/**/{ytid}.wav or <audiocap_id>.wav",
                captions=clip["captions"],
                provenance={"youtube_id": ytid, "start_time": start, "audiocap_ids": clip["ids"],
                            "metadata": path.name},
            ))  # fmt: skip
    if not found:
        raise SepkitError(f"audiocaps: no train.csv, val.csv or test.csv in {root}, {root}/dataset or {root}/metadata")
    return entries


def _int(value: str) -> str:
    try:
        return str(int(float(value)))
    except ValueError:
        return value
