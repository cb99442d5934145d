"""Per-example results of one system, cached under the output folder so an interrupted run resumes.

Layout (``DIR/cache/<system label>-<fingerprint[:12]>/``)::

    system.json                  what the fingerprint covers (recipe, checkpoint hash, inference settings)
    complexity.json              the system's `sepkit complexity` figures (measured once)
    examples/<mixture id>.<k>.json  instruction k of that mixture: scores or the error
    audio/<mixture id>.<k>.wav      the estimate, kept only for the report's examples

Every file is written atomically. An example entry counts as done only if it was
made for the same mixture record (its sha256) and the same metric settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from sepkit.atomic import atomic_path


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (sorted keys, so equal data gives equal bytes)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: Path) -> Optional[Any]:
    """The JSON in ``path``, or None if it is missing or unreadable (it is then recomputed)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class SystemCache:
    """The cache folder of one system."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def entry_path(self, key: str) -> Path:
        return self.folder / "examples" / f"{key}.json"

    def audio_path(self, key: str) -> Path:
        return self.folder / "audio" / f"{key}.wav"

    def read_entry(self, key: str, record_sha256: str, metrics_key: str) -> Optional[dict]:
        """The cached entry of example ``key`` if it belongs to this record and these metrics."""
        entry = read_json(self.entry_path(key))
        if not isinstance(entry, dict) or entry.get("record_sha256") != record_sha256:
            return None
        if entry.get("metrics_key") != metrics_key:
            return None
        return entry

    def write_entry(self, key: str, entry: dict) -> None:
        write_json(self.entry_path(key), entry)

    def write_estimate(self, key: str, wave: np.ndarray, sample_rate: int) -> None:
        """float32 [samples] estimate, 32-bit float wav (exactly what was scored)."""
        from sepkit.audio import write_audio

        write_audio(self.audio_path(key), wave, sample_rate, subtype="FLOAT")

    def read_complexity(self, seconds: float) -> Optional[dict]:
        data = read_json(self.folder / "complexity.json")
        if isinstance(data, dict) and data.get("seconds") == float(seconds):
            return data
        return None

    def write_complexity(self, data: dict) -> None:
        write_json(self.folder / "complexity.json", data)

    def write_description(self, data: dict) -> None:
        write_json(self.folder / "system.json", data)
