"""Separation datasets rendered from manifests: determinism, epochs, crops, collate, remove targets."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import soundfile
import torch

from sepkit.data.dataset import MixtureDataset, ProtocolMixtureDataset, collate_mixtures
from sepkit.data.manifest import ClipCache, ClipRecord, InstructionRef, MixtureRecord, SourceRef, render_mixture
from sepkit.errors import SepkitError
from sepkit.instructions import TASKS

SR = 8000


def write_tone(path, freq: float, seconds: float = 1.0) -> str:
    t = np.arange(int(seconds * SR)) / SR
    soundfile.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR, subtype="FLOAT")
    return path.name


def record(n: int, seconds: float = 1.0) -> MixtureRecord:
    sources = [SourceRef("low", "low.wav", gain=0.8), SourceRef("high", "high.wav", gain=0.5, offset=0.1)]
    instructions = [
        InstructionRef("extract", "extract the low tone", "low tone", [0]),
        InstructionRef("remove", "remove the low tone", "low tone", [1]),
        InstructionRef("extract", "extract the high tone", "high tone", [1]),
    ]
    return MixtureRecord(f"mix-{n}", "test", "train", seconds, SR, sources, instructions)


@pytest.fixture()
def cache(tmp_path):
    write_tone(tmp_path / "low.wav", 200)
    write_tone(tmp_path / "high.wav", 1500)
    return ClipCache(SR, base_dir=tmp_path)


def same(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a)


def test_items_are_deterministic_per_seed_and_epoch(cache):
    mixtures = [record(n) for n in range(6)]
    a = MixtureDataset(mixtures, cache, "random", seed=3, crop_seconds=0.5)
    b = MixtureDataset(mixtures, cache, "random", seed=3, crop_seconds=0.5)
    assert all(same(a[i], b[i]) for i in range(6))
    item = a[0]
    assert item["mixture"].dtype == np.float32 and item["length"] == 4000 == item["mixture"].shape[0]
    assert item["task"] in (0, 1) and isinstance(item["description"], str) and item["id"] == "mix-0"
    first = [a[i] for i in range(6)]
    a.set_epoch(1)
    assert not all(same(x, a[i]) for i, x in enumerate(first))  # new instructions and crops per epoch
    a.set_epoch(0)
    assert all(same(x, a[i]) for i, x in enumerate(first))


def test_all_and_fixed_instructions(cache):
    mixtures = [record(n) for n in range(2)]
    every = MixtureDataset(mixtures, cache, "all")
    assert len(every) == 6 and [every[i]["description"] for i in range(3)] == ["low tone", "low tone", "high tone"]
    fixed = MixtureDataset(mixtures, cache, 2)
    assert len(fixed) == 2 and fixed[1]["description"] == "high tone"
    with pytest.raises(SepkitError, match="fewer"):
        MixtureDataset(mixtures, cache, 5)
    with pytest.raises(SepkitError, match="empty"):
        MixtureDataset([], cache)


def test_remove_target_is_mixture_minus_the_described_source(cache):
    data = MixtureDataset([record(0)], cache, "all")
    extract, remove = data[0], data[1]
    assert TASKS[remove["task"]] == "remove" and TASKS[extract["task"]] == "extract"
    np.testing.assert_allclose(remove["target"], remove["mixture"] - extract["target"], atol=1e-6)
    mixture, sources = render_mixture(record(0), cache)
    np.testing.assert_array_equal(extract["target"], sources[0])


def test_collate_pads_to_the_longest(cache):
    data = MixtureDataset([record(0, 1.0), record(1, 0.5)], cache, 0)
    batch = collate_mixtures([data[0], data[1]])
    assert batch["mixture"].shape == batch["target"].shape == (2, 8000)
    assert batch["lengths"].tolist() == [8000, 4000] and batch["task"].dtype == torch.long
    assert torch.all(batch["mixture"][1, 4000:] == 0) and torch.any(batch["mixture"][1, :4000] != 0)
    assert batch["description"] == ["low tone", "low tone"] and batch["id"] == ["mix-0", "mix-1"]


def test_protocol_dataset_draws_per_epoch_and_index(cache, monkeypatch):
    calls = []

    def draw_mixture(protocol, clips, rng, cache, *, index, split, seconds=None, normaliser=None, path_base=None):
        calls.append((protocol, index, split, seconds))
        rec = record(int(rng.integers(1000)))
        rec.sources[0].gain = float(rng.uniform(0.1, 1.0))
        return rec

    fake = types.ModuleType("sepkit.data.mixing")
    fake.draw_mixture = draw_mixture
    monkeypatch.setitem(sys.modules, "sepkit.data.mixing", fake)
    monkeypatch.setattr("sepkit.data.mixing", fake, raising=False)
    clips = [ClipRecord("low", "low.wav", 1.0, SR, ["low"], [], "train")]
    data = ProtocolMixtureDataset(clips, "toy", length=4, seed=1, cache=cache, seconds=1.0, split="train")
    assert len(data) == 4
    first = data[2]
    assert calls[-1] == ("toy", 2, "train", 1.0)
    assert same(first, data[2])
    data.set_epoch(1)
    assert not same(first, data[2])
