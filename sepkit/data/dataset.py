"""torch Datasets of separation examples, rendered on the fly from manifests, and their collate.

An example is a dict::

    mixture      float32 [T]   the mixture at the dataset's sample rate
    target       float32 [T]   what the instruction asks for (the sum of its target sources)
    description  str           the sound described ("dog barking")
    task         int           index into sepkit.instructions.TASKS (0 extract, 1 remove)
    length       int           T
    id           str           the mixture's id

With ``sources=True`` (recipe key ``data.<split>.sources: true``; mixture datasets only) an
example also carries every source of its mixture, as mixed::

    sources        float32 [S, T]  the placed, gained and scaled sources (same crop); they sum to ``mixture``
    source_labels  list[str] (S)   each source's first tag as the mixture records it (normalised for
                                   on-the-fly protocols, e.g. "cello"); "" for an untagged source

``collate_mixtures`` zero-pads a list of examples to the longest: mixture/target
[B, T], lengths long [B], task long [B], description/id lists; and, when every example
has sources, sources float32 [B, S_max, T] (zero in padded slots), source_mask bool
[B, S_max] (True on real sources) and source_labels list[list[str]] (unpadded).

Randomness (which instruction, where to crop, which mixture a protocol draws) comes
from ``numpy.random.default_rng([seed, epoch, index])``: the same (seed, epoch, index)
always gives the same example, in any worker process, after any resume.

Training splits may also change what a mixture is made of and how it is asked for (recipe keys
``data.train.augment`` and ``data.train.wording``; mixture datasets only): ``augment`` transforms each
source's timbre before mixing (``sepkit.data.augment``; the example mixes the transformed sources
and its target, and ``sources``, are the transformed ones), ``wording: grammar`` rewords the drawn
instruction (``sepkit.data.wording``). Each draws from its own generator,
``default_rng([seed, epoch, index, AUGMENT_STREAM | WORDING_STREAM])``, so turning one on changes no
other draw: with neither, examples are what they always were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from sepkit.data.manifest import (
    ClipCache,
    ClipRecord,
    MixtureRecord,
    instruction_target,
    read_clips,
    read_mixtures,
    render_mixture,
    resolve_path,
)
from sepkit.errors import SepkitError
from sepkit.instructions import TASKS

Instruction = Union[str, int]
AUGMENT_STREAM = 1  # last word of the seed of an example's augmentation draws
WORDING_STREAM = 2  # last word of the seed of an example's wording draws


def _task_id(task: str, where: str) -> int:
    if task not in TASKS:
        raise SepkitError(f"{where}: instruction task {task!r} is not one of {', '.join(TASKS)}")
    return TASKS.index(task)


def crop_window(total: int, samples: Optional[int], rng: np.random.Generator) -> slice:
    """A random window of ``samples`` out of ``total`` (everything if shorter or ``samples`` is None)."""
    if samples is None or total <= samples:
        return slice(None)
    start = int(rng.integers(0, total - samples + 1))
    return slice(start, start + samples)


def crop(
    mixture: np.ndarray, target: np.ndarray, samples: Optional[int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The same random window of ``samples`` from both (unchanged if shorter or ``samples`` is None)."""
    window = crop_window(mixture.shape[-1], samples, rng)
    return mixture[..., window], target[..., window]


def make_example(
    record: MixtureRecord,
    cache: ClipCache,
    index: int,
    crop_samples: Optional[int],
    rng: np.random.Generator,
    sources: bool = False,
    augment: Any = None,
    augment_rng: Optional[np.random.Generator] = None,
) -> dict[str, Any]:
    """Render ``record`` with instruction ``index`` into an example dict (see module docstring);
    ``sources``: also every source of the mixture (``sources``, ``source_labels``), cut like the mixture;
    ``augment``: an ``AugmentConfig``, applied to each source (draws from ``augment_rng``) before mixing."""
    mixture, placed = render_mixture(record, cache)
    if augment is not None:
        from sepkit.data.augment import augment_sources

        targets = [instruction.target for instruction in record.instructions]
        placed = augment_sources(placed, augment, augment_rng, cache.sample_rate, targets)
        mixture = placed.sum(axis=0, dtype=np.float64)
    target = instruction_target(record, placed, index)
    window = crop_window(mixture.shape[-1], crop_samples, rng)
    mixture, target = mixture[window], target[window]
    instruction = record.instructions[index]
    example = {
        "mixture": np.ascontiguousarray(mixture, dtype=np.float32),
        "target": np.ascontiguousarray(target, dtype=np.float32),
        "description": instruction.description,
        "task": _task_id(instruction.task, f"mixture {record.id}"),
        "length": int(mixture.shape[-1]),
        "id": record.id,
    }
    if sources:
        example["sources"] = np.ascontiguousarray(placed[:, window], dtype=np.float32)
        example["source_labels"] = [source.tags[0] if source.tags else "" for source in record.sources]
    return example


class _EpochDataset(Dataset):
    """Shared seed/epoch handling: ``set_epoch`` before iterating an epoch."""

    def __init__(self, seed: int, crop_seconds: Optional[float], sample_rate: int) -> None:
        self.seed = int(seed)
        self.epoch = 0
        self.crop_samples = None if crop_seconds is None else max(1, int(round(crop_seconds * sample_rate)))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def stream_rng(self, index: int, stream: int) -> np.random.Generator:
        """An example's generator for one kind of optional draws (``AUGMENT_STREAM``, ``WORDING_STREAM``)."""
        return np.random.default_rng([self.seed, self.epoch, int(index), int(stream)])

    # training variations of mixture datasets (module docstring); off unless a subclass sets them
    augment: Any = None  # an AugmentConfig
    wording: str = "templates"  # "templates" | "grammar"

    def vary(self, record: MixtureRecord, k: int, index: int) -> tuple[MixtureRecord, Optional[np.random.Generator]]:
        """(``record`` with instruction ``k`` reworded when ``wording`` is "grammar", the augmentation
        generator of item ``index`` or None when ``augment`` is off)."""
        if self.wording == "grammar":
            from dataclasses import replace

            from sepkit.data.wording import reword

            instructions = list(record.instructions)
            instructions[k] = reword(instructions[k], record, self.stream_rng(index, WORDING_STREAM))
            record = replace(record, instructions=instructions)
        return record, (self.stream_rng(index, AUGMENT_STREAM) if self.augment is not None else None)


class MixtureDataset(_EpochDataset):
    """Frozen mixtures (``MixtureRecord``) rendered on the fly at ``cache.sample_rate``.

    ``instruction``: "random" (one item per mixture, an instruction drawn per epoch),
    "all" (one item per (mixture, instruction)) or an int (that instruction of every mixture).
    ``sources``: examples also carry every source (``sources``, ``source_labels``; module docstring).
    ``augment`` (an ``AugmentConfig``), ``wording`` ("templates" | "grammar"): training variations
    (module docstring).
    """

    def __init__(
        self,
        mixtures: list[MixtureRecord],
        cache: ClipCache,
        instruction: Instruction = "random",
        seed: int = 0,
        crop_seconds: Optional[float] = None,
        sources: bool = False,
        augment: Any = None,
        wording: str = "templates",
    ) -> None:
        super().__init__(seed, crop_seconds, cache.sample_rate)
        self.sources = bool(sources)
        self.augment, self.wording = augment, wording
        if not mixtures:
            raise SepkitError("the mixture list is empty; give a non-empty mixture manifest")
        self.mixtures = mixtures
        self.cache = cache
        self.instruction = instruction
        bad = [m.id for m in mixtures if not m.instructions]
        if bad:
            raise SepkitError(f"mixture {bad[0]} has no instructions; every training mixture needs at least one")
        if instruction == "all":
            self.items = [(m, k) for m, rec in enumerate(mixtures) for k in range(len(rec.instructions))]
        elif instruction == "random":
            self.items = [(m, None) for m in range(len(mixtures))]
        elif isinstance(instruction, int) and not isinstance(instruction, bool):
            short = [m.id for m in mixtures if len(m.instructions) <= instruction]
            if short:
                raise SepkitError(f"instruction {instruction} asked for, but mixture {short[0]} has fewer")
            self.items = [(m, instruction) for m in range(len(mixtures))]
        else:
            raise SepkitError(f"instruction must be 'random', 'all' or an index, got {instruction!r}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        m, k = self.items[index]
        record = self.mixtures[m]
        rng = self.rng(index)
        if k is None:
            k = int(rng.integers(len(record.instructions)))
        record, augment_rng = self.vary(record, k, index)
        return make_example(record, self.cache, k, self.crop_samples, rng, self.sources, self.augment, augment_rng)


class ProtocolMixtureDataset(_EpochDataset):
    """``length`` mixtures per epoch, each drawn anew from ``clips`` by a mixing protocol.

    Mixture ``index`` of ``epoch`` is ``draw_mixture(protocol, clips, rng, cache, index=index, ...)``
    with ``rng = default_rng([seed, epoch, index])``; one of its instructions is drawn with the same rng.
    ``sources``: examples also carry every source of the mixture as mixed (``sources``, ``source_labels``
    with each source's normalised tag; module docstring). ``augment``, ``wording``: training variations
    (module docstring).
    """

    def __init__(
        self,
        clips: list[ClipRecord],
        protocol: str,
        length: int,
        seed: int,
        cache: ClipCache,
        seconds: Optional[float] = None,
        split: str = "train",
        crop_seconds: Optional[float] = None,
        normaliser: Any = None,
        sources: bool = False,
        augment: Any = None,
        wording: str = "templates",
    ) -> None:
        super().__init__(seed, crop_seconds, cache.sample_rate)
        self.sources = bool(sources)
        self.augment, self.wording = augment, wording
        try:
            from sepkit.data import mixing
        except ImportError as exc:
            raise SepkitError(f"on-the-fly mixing needs sepkit.data.mixing ({exc})") from None
        if hasattr(mixing, "get_protocol"):
            mixing.get_protocol(protocol)  # an unknown protocol fails here, not in a worker
        if not clips:
            raise SepkitError("the clip list is empty; give a non-empty clip manifest")
        if length < 1:
            raise SepkitError(f"length={length}: draw at least one mixture per epoch")
        self._draw = mixing.draw_mixture
        self.clips = clips
        self.protocol = protocol
        self.length = int(length)
        self.cache = cache
        self.seconds = seconds
        self.split = split
        self.normaliser = normaliser

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self.rng(index)
        record = self._draw(
            self.protocol,
            self.clips,
            rng,
            self.cache,
            index=index,
            split=self.split,
            seconds=self.seconds,
            normaliser=self.normaliser,
        )
        k = int(rng.integers(len(record.instructions)))
        record, augment_rng = self.vary(record, k, index)
        return make_example(record, self.cache, k, self.crop_samples, rng, self.sources, self.augment, augment_rng)


CLEAN_PROTOCOL = "clean"  # data.<split>.protocol for clean clips, not mixtures


class CleanClipDataset(_EpochDataset):
    """Clean clips as they are: ``protocol: clean`` in a recipe's ``data.<split>`` section.

    Item ``index`` is clip ``index % len(clips)``: its first ``seconds`` (the whole clip if
    shorter; never a random window, so a frozen encoder's output for it is the same every epoch
    and can be cached), as both ``mixture`` and ``target``, with one of the clip's descriptions
    (drawn per epoch) and the task "extract"; ``id`` is the clip id. ``length`` items per epoch
    (default: one per clip). For systems that train on audio alone (codecs, AudioMAE, the
    codec-ar decoder).
    """

    def __init__(
        self,
        clips: list[ClipRecord],
        cache: ClipCache,
        seed: int = 0,
        length: Optional[int] = None,
        seconds: Optional[float] = None,
        crop_seconds: Optional[float] = None,
    ) -> None:
        super().__init__(seed, crop_seconds, cache.sample_rate)
        if not clips:
            raise SepkitError("the clip list is empty; give a non-empty clip manifest")
        from sepkit.data.mixing import clip_descriptions

        self.clips = clips
        self.cache = cache
        self.length = len(clips) if length is None else int(length)
        self.samples = None if seconds is None else max(1, int(round(seconds * cache.sample_rate)))
        self.descriptions = [clip_descriptions(clip) or [clip.id] for clip in clips]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self.rng(index)
        k = index % len(self.clips)
        clip = self.clips[k]
        audio = self.cache.load(clip.path)
        if self.samples is not None:
            audio = audio[: self.samples]
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        audio, _ = crop(audio, audio, self.crop_samples, rng)
        options = self.descriptions[k]
        return {
            "mixture": audio,
            "target": audio,
            "description": options[int(rng.integers(len(options)))],
            "task": TASKS.index("extract"),
            "length": int(audio.shape[-1]),
            "id": clip.id,
        }


def collate_mixtures(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Examples -> batch: mixture/target float32 [B, T] zero-padded to the longest, lengths/task long [B];
    with sources (every example has them): sources float32 [B, S_max, T], source_mask bool [B, S_max],
    source_labels list[list[str]]."""
    if not items:
        raise ValueError("collate_mixtures needs at least one example")
    width = max(int(item["length"]) for item in items)
    mixture = torch.zeros(len(items), width)
    target = torch.zeros(len(items), width)
    for row, item in enumerate(items):
        n = int(item["length"])
        mixture[row, :n] = torch.as_tensor(item["mixture"][:n])
        target[row, :n] = torch.as_tensor(item["target"][:n])
    batch = {
        "mixture": mixture,
        "target": target,
        "lengths": torch.tensor([int(item["length"]) for item in items], dtype=torch.long),
        "description": [item["description"] for item in items],
        "task": torch.tensor([int(item["task"]) for item in items], dtype=torch.long),
        "id": [item["id"] for item in items],
    }
    with_sources = ["sources" in item for item in items]
    if any(with_sources):
        if not all(with_sources):
            raise ValueError("collate_mixtures: some examples carry sources and some do not; mix one kind per batch")
        batch.update(_collate_sources(items, width))
    return batch


def _collate_sources(items: list[dict[str, Any]], width: int) -> dict[str, Any]:
    """sources float32 [B, S_max, width] zero-padded, source_mask bool [B, S_max], source_labels list of lists."""
    most = max(len(item["sources"]) for item in items)
    sources = torch.zeros(len(items), most, width)
    mask = torch.zeros(len(items), most, dtype=torch.bool)
    for row, item in enumerate(items):
        n, count = int(item["length"]), len(item["sources"])
        if count:
            sources[row, :count, :n] = torch.as_tensor(np.asarray(item["sources"])[:, :n])
        mask[row, :count] = True
    return {"sources": sources, "source_mask": mask, "source_labels": [list(item["source_labels"]) for item in items]}


def _read_source(where: str, reader, path: Path):
    """``reader(path)``, with a SepkitError prefixed by the recipe key that named ``path``."""
    try:
        return reader(path)
    except SepkitError as exc:
        raise SepkitError(f"{where}: {exc}") from None


def dataset_from_config(
    split_cfg: Any,
    split: str,
    sample_rate: int,
    base_dir: Optional[Path],
    seed: int,
    crop_seconds: Optional[float] = None,
    cache_clips: int = 512,
) -> Dataset:
    """The dataset a recipe's ``data.<split>`` section describes (a ``SplitConfig``).

    Manifest paths are relative to ``base_dir`` (the recipe's folder); clip paths inside a
    manifest are relative to the manifest's folder. ``sources: true`` (mixtures only): examples also
    carry every source of their mixture.
    """
    where = f"data.{split}"
    sources = bool(getattr(split_cfg, "sources", False))
    augment, wording = _training_variations(split_cfg, split)
    default = "random" if split == "train" else "all"
    instruction = default if split_cfg.instruction is None else split_cfg.instruction
    if isinstance(instruction, str) and instruction.isdigit():
        instruction = int(instruction)
    if split_cfg.mixtures is not None:
        path = resolve_path(str(split_cfg.mixtures), base_dir)
        mixtures = _read_source(f"{where}.mixtures", read_mixtures, path)
        cache = ClipCache(sample_rate, base_dir=path.parent, capacity=cache_clips)
        try:
            return MixtureDataset(
                mixtures,
                cache,
                instruction=instruction,
                seed=seed,
                crop_seconds=crop_seconds,
                sources=sources,
                augment=augment,
                wording=wording,
            )
        except SepkitError as exc:
            raise SepkitError(f"{where} ({path}): {exc}") from None
    if getattr(split_cfg, "shards", None) is not None:
        from sepkit.data.shard_index import ShardClipCache, ShardIndex

        source = f"{where}.shards"
        path = resolve_path(str(split_cfg.shards), base_dir)
        index = _read_source(source, ShardIndex, path)
        clips, cache = index.clips, ShardClipCache(index, sample_rate, capacity=cache_clips)
    else:
        source = f"{where}.clips"
        path = resolve_path(str(split_cfg.clips), base_dir)
        clips = _read_source(source, read_clips, path)
        cache = ClipCache(sample_rate, base_dir=path.parent, capacity=cache_clips)
    splits = {c.split for c in clips}
    mine = [c for c in clips if c.split == split] if len(splits) > 1 else clips
    if not mine:
        raise SepkitError(f"{source}: {path} has no clips of split {split!r} (it has {', '.join(sorted(splits))})")
    if split_cfg.protocol == CLEAN_PROTOCOL:
        if sources:
            raise SepkitError(
                f"{where}.sources: true needs mixtures, but protocol {CLEAN_PROTOCOL!r} gives the clean clips "
                "themselves (one source each); drop sources or mix the clips with a protocol"
            )
        if augment is not None or wording != "templates":
            raise SepkitError(
                f"{where}.augment / {where}.wording act on mixtures, but protocol {CLEAN_PROTOCOL!r} gives the "
                "clean clips themselves (whose frozen features may be cached); drop them or mix the clips"
            )
        length = None if split_cfg.length is None else int(split_cfg.length)
        return CleanClipDataset(mine, cache, seed, length, split_cfg.seconds, crop_seconds)
    return ProtocolMixtureDataset(
        mine,
        str(split_cfg.protocol),
        int(split_cfg.length),
        seed,
        cache,
        seconds=split_cfg.seconds,
        split=split,
        crop_seconds=crop_seconds,
        sources=sources,
        augment=augment,
        wording=wording,
    )


def _training_variations(split_cfg: Any, split: str) -> tuple[Any, str]:
    """(AugmentConfig or None, wording) of ``data.<split>``; SepkitError for a bad value or for either on a
    split other than train (validation and test stay untouched)."""
    from sepkit.data.augment import augment_config
    from sepkit.data.wording import check_wording

    where = f"data.{split}"
    augment = augment_config(getattr(split_cfg, "augment", None), f"{where}.augment")
    wording = check_wording(getattr(split_cfg, "wording", None), where)
    if split != "train" and (augment is not None or wording != "templates"):
        raise SepkitError(
            f"{where}: augment and wording are for training data only (data.train); validation and test "
            "mixtures stay as they are. Remove them from " + where
        )
    return augment, wording
