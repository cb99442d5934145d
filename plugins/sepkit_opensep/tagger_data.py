"""``TagMixtureDataset``: mixtures of 1..max_sources clips with distinct tags, labelled with their tags (multi-hot).

Reads a clip manifest (JSONL lines with ``path``, ``tags`` and ``split``, as ``sepkit data mini``
writes; paths relative to the manifest's folder). Example ``index`` of ``epoch`` draws from
``numpy.random.default_rng([seed, epoch, index])``: the number of sources (uniform in
1..max_sources), clips with no tag in common, a random ``seconds`` excerpt of each and levels
uniform in ``level_db`` dB relative to the first source. An example is::

    mixture  float32 [T]  (T = seconds * sample_rate), peak at most 0.99
    labels   float32 [len(tags)]  1 for every tag of a mixed clip
    length   int T;  id  str
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from sepkit.errors import SepkitError


def read_clip_manifest(path: Path) -> list[dict]:
    """The JSON lines of a clip manifest; SepkitError if it is missing or malformed."""
    if not path.is_file():
        raise SepkitError(f"clip manifest {path} not found; build sepkit-mini with 'sepkit data mini --out data/mini'")
    clips = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            clip = json.loads(line)
            clip["path"], clip["tags"]
        except (ValueError, KeyError, TypeError):
            raise SepkitError(f"{path}:{number}: not a clip record (needs 'path' and 'tags')") from None
        clips.append(clip)
    return clips


class TagMixtureDataset(Dataset):
    """``length`` tagged mixtures per epoch from ``clips`` (see the module docstring)."""

    def __init__(
        self,
        clips: list[dict],
        base_dir: Path,
        tags: list[str],
        sample_rate: int,
        length: int,
        seconds: float,
        seed: int,
        max_sources: int = 4,
        level_db: tuple[float, float] = (-10.0, 10.0),
        cache_clips: int = 512,
    ) -> None:
        index = {tag: i for i, tag in enumerate(tags)}
        self.clips = [c for c in clips if c["tags"] and all(t in index for t in c["tags"])]
        if len({tuple(sorted(c["tags"])) for c in self.clips}) < max_sources:
            raise SepkitError(
                f"tagger data: {len(self.clips)} clips with known tags cannot give {max_sources} sources of "
                "different tags; lower max_sources or add clips"
            )
        self.base_dir, self.tag_index = base_dir, index
        self.sample_rate, self.length, self.seed = sample_rate, int(length), int(seed)
        self.samples = max(1, int(round(seconds * sample_rate)))
        self.max_sources, self.level_db = max_sources, level_db
        self.epoch = 0
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.capacity = cache_clips

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def load(self, path: str) -> np.ndarray:
        """Mono float32 audio of ``path`` at ``sample_rate`` (LRU-cached)."""
        if path in self.cache:
            self.cache.move_to_end(path)
            return self.cache[path]
        import soundfile as sf

        full = Path(path) if Path(path).is_absolute() else self.base_dir / path
        try:
            audio, rate = sf.read(str(full), dtype="float32", always_2d=True)
        except Exception as exc:
            raise SepkitError(f"tagger data: cannot read clip {full} ({exc})") from None
        audio = audio.mean(axis=1)
        if rate != self.sample_rate:
            import torchaudio.functional as AF

            audio = AF.resample(torch.from_numpy(audio), rate, self.sample_rate).numpy()
        self.cache[path] = audio
        if len(self.cache) > self.capacity:
            self.cache.popitem(last=False)
        return audio

    def excerpt(self, rng: np.random.Generator, audio: np.ndarray) -> np.ndarray:
        out = np.zeros(self.samples, dtype=np.float32)
        if audio.size > self.samples:
            start = int(rng.integers(audio.size - self.samples + 1))
            audio = audio[start : start + self.samples]
        out[: audio.size] = audio
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        count = int(rng.integers(1, self.max_sources + 1))
        chosen: list[dict] = []
        while len(chosen) < count:
            clip = self.clips[int(rng.integers(len(self.clips)))]
            if not any(set(clip["tags"]) & set(c["tags"]) for c in chosen):
                chosen.append(clip)
        tracks = [self.excerpt(rng, self.load(c["path"])) for c in chosen]
        energies = [float(np.mean(t.astype(np.float64) ** 2)) + 1e-10 for t in tracks]
        mixture = np.zeros(self.samples, dtype=np.float64)
        for k, (track, energy) in enumerate(zip(tracks, energies)):
            level = 0.0 if k == 0 else float(rng.uniform(*self.level_db))
            mixture += track * np.sqrt(energies[0] * 10 ** (level / 10) / energy)
        peak = float(np.abs(mixture).max())
        if peak > 0.99:
            mixture *= 0.99 / peak
        labels = np.zeros(len(self.tag_index), dtype=np.float32)
        for clip in chosen:
            labels[[self.tag_index[t] for t in clip["tags"]]] = 1.0
        return {
            "mixture": mixture.astype(np.float32),
            "labels": labels,
            "length": self.samples,
            "id": "+".join(str(c.get("id", c["path"])) for c in chosen),
        }


def collate_tagged(items: list[dict]) -> dict[str, Any]:
    """-> mixture float32 [B, T] (zero-padded), lengths long [B], labels float32 [B, K], id list."""
    width = max(int(item["length"]) for item in items)
    mixture = torch.zeros(len(items), width)
    for row, item in enumerate(items):
        mixture[row, : int(item["length"])] = torch.as_tensor(item["mixture"])
    return {
        "mixture": mixture,
        "lengths": torch.tensor([int(item["length"]) for item in items], dtype=torch.long),
        "labels": torch.stack([torch.as_tensor(item["labels"]) for item in items]),
        "id": [item["id"] for item in items],
    }
