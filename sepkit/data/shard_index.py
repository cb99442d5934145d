"""Random access into tar shards, so training can mix clips from shards without unpacking them.

``ShardIndex(folder)`` scans every ``shard-*.tar`` once (tar headers and the small
JSON members only) and keeps, per clip, the byte offset and size of its audio
member. Its ``clips`` are the shards' ClipRecords with ``path`` set to
``"<shard name>#<key>"``; ``ShardClipCache`` reads such paths straight from the
tar file (one seek and one read), so the protocol mixer and the training datasets
work on shards exactly as on a folder of files, deterministically and resumably.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np

from sepkit.data.manifest import ClipCache, ClipRecord, clip_from_dict
from sepkit.data.shards import list_shards
from sepkit.errors import SepkitError

REWRITE = "rewrite the shards with sepkit data shard"


class ShardIndex:
    """Clip records of a folder of shards and where each clip's audio lies in its tar file."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        paths, _ = list_shards(self.folder)
        self.clips: list[ClipRecord] = []
        self._audio: dict[str, tuple[Path, int, int]] = {}  # "shard#key" -> (tar path, offset, size)
        for path in paths:
            self._scan(path)
        if not self.clips:
            raise SepkitError(f"shards in {self.folder} hold no clips; rewrite them with sepkit data shard")

    def _scan(self, path: Path) -> None:
        records: dict[str, dict] = {}
        try:
            with tarfile.open(path, "r:") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    key, _, ext = member.name.rsplit("/", 1)[-1].partition(".")
                    ref = f"{path.name}#{key}"
                    if ext == "json":
                        records[ref] = json.loads(tar.extractfile(member).read().decode("utf-8"))
                    elif ext == "wav":
                        self._audio[ref] = (path, member.offset_data, member.size)
        except (tarfile.TarError, ValueError, RecursionError) as exc:  # bad JSON or UTF-8 raise ValueErrors
            raise SepkitError(f"shard {path} is not readable ({exc}); rewrite it with sepkit data shard") from None
        for ref, record in records.items():
            if ref not in self._audio:
                raise SepkitError(f"shard {path}: clip {ref!r} has metadata but no .wav member")
            record = {**record, "path": ref} if isinstance(record, dict) else record
            self.clips.append(clip_from_dict(record, where=str(path.parent / ref), fix=REWRITE))

    def read_bytes(self, ref: str) -> bytes:
        """The WAV bytes of clip ``ref`` ("shard-000000.tar#000012-dog_bark")."""
        try:
            path, offset, size = self._audio[ref]
        except KeyError:
            raise SepkitError(f"clip {ref!r} is not in the shards of {self.folder}") from None
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)


class ShardClipCache(ClipCache):
    """A ClipCache whose clip paths are ``"<shard>#<key>"`` references into a ``ShardIndex``."""

    def __init__(self, index: ShardIndex, sample_rate: int, capacity: int = 256) -> None:
        super().__init__(sample_rate, base_dir=None, capacity=capacity)
        self.index = index

    def source_path(self, path: str, path_base=None) -> str:
        """Shard references stay as they are: they name a clip inside this cache's shards."""
        return path

    def read(self, path: str) -> tuple[np.ndarray, int]:
        import soundfile

        try:
            wave, sr = soundfile.read(io.BytesIO(self.index.read_bytes(path)), dtype="float32", always_2d=True)
        except SepkitError:
            raise
        except Exception as exc:
            raise SepkitError(f"clip {path} in {self.index.folder} is not readable audio ({exc})") from None
        return np.ascontiguousarray(wave.T), int(sr)
