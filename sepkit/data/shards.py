"""Webdataset-style tar shards of a clip manifest, written and streamed with the stdlib ``tarfile``.

``write_shards(manifest, out, shard_size)`` packs the clips into ``out/shard-000000.tar``,
``shard-000001.tar``, ... Each clip is two members sharing a key (webdataset's
convention: the key is the name up to the first dot)::

    000012-dog_bark_3.json    the ClipRecord as JSON (path as in the manifest)
    000012-dog_bark_3.wav     the audio: a .wav clip's bytes as they are, other formats decoded
                              and re-encoded as float WAV

``out/shards.json`` lists the shards and their clip counts. Members carry fixed
metadata (mtime 0, uid 0), so the same manifest always gives the same bytes.

``ShardDataset`` streams shards as an ``IterableDataset``: shards are dealt to
(rank, worker) slots round-robin (after a seeded per-epoch shuffle if asked), so ranks
and DataLoader workers read disjoint shards; with ``shards.json`` every slot stops after
the same number of clips, so all ranks take the same number of steps. Items are dicts
with the ClipRecord fields plus ``wave`` (float32 [channels, samples] at ``sample_rate``,
the file's rate) and ``key``.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import tarfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from torch.utils.data import IterableDataset

from sepkit.errors import SepkitError

INDEX_FILE = "shards.json"
SHARD_PATTERN = "shard-{:06d}.tar"


def sample_key(index: int, clip_id: str) -> str:
    """A tar-safe key: running number and the id with anything but [A-Za-z0-9_-] replaced ("000012-dog_bark")."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", clip_id).strip("_")[:80]
    return f"{index:06d}-{safe}" if safe else f"{index:06d}"


def _audio_bytes(path: Path) -> bytes:
    """WAV bytes of a clip: the file itself if it is a .wav, else decoded and written as float WAV."""
    if path.suffix.lower() == ".wav":
        if not path.is_file():
            raise SepkitError(f"clip {path} does not exist; check the manifest")
        return path.read_bytes()
    from sepkit.audio import read_audio

    wave, sr = read_audio(path)
    return float_wav_bytes(wave, sr)


def float_wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    """A 32-bit float WAV of ``wave`` float [channels, samples], with no timestamped chunk (same input, same bytes)."""
    channels, frames = wave.shape
    data = np.ascontiguousarray(wave.T, dtype="<f4").tobytes()
    block = 4 * channels
    fmt = struct.pack("<HHIIHHH", 3, channels, sample_rate, sample_rate * block, block, 32, 0)  # IEEE float
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<II", 4, frames) + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def write_shards(manifest: Union[str, os.PathLike], out: Union[str, os.PathLike], shard_size: int = 1000) -> dict:
    """Pack the clips of a clip manifest into tar shards of ``shard_size`` clips; returns a summary dict."""
    from sepkit.atomic import atomic_path
    from sepkit.data.manifest import read_clips, resolve_path

    if shard_size < 1:
        raise SepkitError(f"--shard-size {shard_size}: a shard holds at least one clip")
    manifest = Path(manifest)
    clips = read_clips(manifest)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    for number, start in enumerate(range(0, len(clips), shard_size)):
        name = SHARD_PATTERN.format(number)
        part = clips[start : start + shard_size]
        with atomic_path(out / name) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for offset, clip in enumerate(part):
                key = sample_key(start + offset, clip.id)
                record = json.dumps(asdict(clip), sort_keys=True, ensure_ascii=False).encode("utf-8")
                _add(tar, f"{key}.json", record)
                _add(tar, f"{key}.wav", _audio_bytes(resolve_path(clip.path, manifest.parent)))
        shards.append({"name": name, "count": len(part), "bytes": (out / name).stat().st_size})
    for stale in out.glob("shard-*.tar"):  # left by an earlier, larger run
        if stale.name not in {s["name"] for s in shards}:
            stale.unlink()
    index = {"manifest": str(manifest.resolve()), "clips": len(clips), "shard_size": shard_size, "shards": shards}
    with atomic_path(out / INDEX_FILE) as tmp:
        tmp.write_text(json.dumps(index, indent=1), encoding="utf-8")
    return {
        "out": str(out),
        "clips": len(clips),
        "shards": len(shards),
        "shard_size": shard_size,
        "bytes": sum(s["bytes"] for s in shards),
        "files": [s["name"] for s in shards],
    }


def read_shard(path: Union[str, os.PathLike]) -> Iterator[dict[str, Any]]:
    """Stream the samples of one shard: ClipRecord fields + ``wave`` float32 [channels, samples] + ``key``."""
    import soundfile

    def finish(key: str, parts: dict[str, bytes]) -> dict[str, Any]:
        if "json" not in parts or "wav" not in parts:
            raise SepkitError(f"shard {path}: sample {key!r} lacks its {'json' if 'json' not in parts else 'wav'}")
        record = json.loads(parts["json"].decode("utf-8"))
        wave, sr = soundfile.read(io.BytesIO(parts["wav"]), dtype="float32", always_2d=True)
        return {**record, "sample_rate": int(sr), "wave": np.ascontiguousarray(wave.T), "key": key}

    key, parts = None, {}
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                this_key, _, ext = base.partition(".")
                if key is not None and this_key != key:
                    yield finish(key, parts)
                    parts = {}
                key = this_key
                parts[ext] = tar.extractfile(member).read()
    except tarfile.TarError as exc:
        raise SepkitError(
            f"shard {path} is not a readable tar file ({exc}); rewrite it with sepkit data shard"
        ) from None
    if key is not None:
        yield finish(key, parts)


def assign_shards(shards: list, rank: int, world_size: int, worker: int = 0, num_workers: int = 1) -> list:
    """The shards of slot (rank, worker): every ``world_size * num_workers``-th one, rank-major."""
    slots = world_size * num_workers
    return shards[rank * num_workers + worker :: slots]


def list_shards(source: Union[str, os.PathLike, list]) -> tuple[list[Path], dict[str, int]]:
    """(shard paths, {name: clip count} from shards.json if present) of a folder or a list of files."""
    if isinstance(source, (list, tuple)):
        paths = [Path(p) for p in source]
        folder = paths[0].parent if paths else None
    else:
        folder = Path(source)
        paths = sorted(folder.glob("shard-*.tar"))
    if not paths:
        raise SepkitError(f"no shards (shard-*.tar) in {source}; write them with sepkit data shard")
    counts = {}
    if folder is not None and (folder / INDEX_FILE).is_file():
        index = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))
        counts = {s["name"]: int(s["count"]) for s in index.get("shards", [])}
    return paths, counts


def _dist_rank() -> tuple[int, int]:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:
        pass
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


class ShardDataset(IterableDataset):
    """Clips streamed from tar shards, split over ranks and DataLoader workers (see module docstring).

    ``rank``/``world_size`` default to the torch.distributed group (or RANK/WORLD_SIZE);
    ``shuffle`` reorders the shards per epoch with ``seed`` (call ``set_epoch``); ``split``
    keeps only clips of that split; ``equalize`` stops every slot after as many clips as
    the smallest slot holds (needs shards.json).
    """

    def __init__(
        self,
        source: Union[str, os.PathLike, list],
        shuffle: bool = False,
        seed: int = 0,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        split: Optional[str] = None,
        equalize: bool = True,
    ) -> None:
        super().__init__()
        self.paths, self.counts = list_shards(source)
        default_rank, default_world = _dist_rank()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        self.shuffle, self.seed, self.split, self.equalize = shuffle, seed, split, equalize
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def ordered(self) -> list[Path]:
        if not self.shuffle:
            return list(self.paths)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.paths))
        return [self.paths[i] for i in order]

    def slot_shards(self, worker: int = 0, num_workers: int = 1) -> list[Path]:
        """The shards this rank's ``worker`` reads this epoch."""
        return assign_shards(self.ordered(), self.rank, self.world_size, worker, num_workers)

    def slot_limit(self, num_workers: int = 1) -> Optional[int]:
        """Clips per slot when equalising (the smallest slot's count), or None."""
        if not self.equalize or self.split is not None or not self.counts:
            return None
        shards = self.ordered()
        totals = [
            sum(self.counts.get(p.name, 0) for p in assign_shards(shards, r, self.world_size, w, num_workers))
            for r in range(self.world_size)
            for w in range(num_workers)
        ]
        return min(totals)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = self.slot_shards(worker, num_workers)
        if not mine:
            raise SepkitError(
                f"rank {self.rank} worker {worker} got no shard: {len(self.paths)} shards for "
                f"{self.world_size * num_workers} readers; write smaller shards or use fewer workers"
            )
        limit = self.slot_limit(num_workers)
        produced = 0
        for path in mine:
            for sample in read_shard(path):
                if self.split is not None and sample.get("split") != self.split:
                    continue
                if limit is not None and produced >= limit:
                    return
                produced += 1
                yield sample
