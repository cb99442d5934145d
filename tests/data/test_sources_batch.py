"""Examples and batches that carry every source of their mixture (data.<split>.sources: true)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from sepkit.data.dataset import MixtureDataset, ProtocolMixtureDataset, collate_mixtures, dataset_from_config
from sepkit.data.manifest import ClipCache, ClipRecord, InstructionRef, MixtureRecord, SourceRef, write_jsonl
from sepkit.errors import SepkitError
from sepkit.train.config import SplitConfig

SR = 8000
TONES = {"violin": 440.0, "cello": 130.0, "flute": 1200.0, "trumpet": 700.0}


def write_tone(path, freq: float, seconds: float = 1.0) -> None:
    t = np.arange(int(seconds * SR)) / SR
    wave = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    soundfile.write(str(path), wave.astype(np.float32), SR, subtype="FLOAT")


@pytest.fixture()
def clips(tmp_path):
    out = []
    for name, freq in TONES.items():
        for k in range(2):
            write_tone(tmp_path / f"{name}{k}.wav", freq * (1 + 0.1 * k))
            out.append(ClipRecord(f"{name}{k}", f"{name}{k}.wav", 1.0, SR, [name], [f"a {name} playing"], "train"))
    return out


def test_protocol_sources_are_the_scaled_components_of_the_mixture(tmp_path, clips):
    cache = ClipCache(SR, base_dir=tmp_path)
    data = ProtocolMixtureDataset(
        clips, "music_zeroshot", length=6, seed=2, cache=cache, seconds=1.0, crop_seconds=0.5, sources=True
    )
    plain = ProtocolMixtureDataset(
        clips, "music_zeroshot", length=6, seed=2, cache=cache, seconds=1.0, crop_seconds=0.5
    )
    for i in range(6):
        item, without = data[i], plain[i]
        assert item["sources"].shape == (2, 4000) and item["sources"].dtype == np.float32
        np.testing.assert_allclose(item["sources"].sum(0), item["mixture"], atol=1e-6)
        assert len(set(item["source_labels"])) == 2 and set(item["source_labels"]) <= set(TONES)
        # the instruction's target is one of the sources, and everything else is as without sources
        assert any(np.allclose(item["target"], s, atol=1e-7) for s in item["sources"])
        assert set(item) - set(without) == {"sources", "source_labels"}
        for key in without:
            assert (
                np.array_equal(item[key], without[key])
                if isinstance(item[key], np.ndarray)
                else item[key] == without[key]
            )
    # the levels differ between the sources (SNR U[-5, 5] dB), so the gains are applied, not just the clips
    item = data[0]
    energies = np.square(item["sources"]).mean(-1)
    assert not np.isclose(energies[0], energies[1], rtol=1e-3)


def test_frozen_mixture_sources_follow_gains_offsets_scale_and_crop(tmp_path):
    write_tone(tmp_path / "low.wav", 200)
    write_tone(tmp_path / "high.wav", 1500)
    sources = [
        SourceRef("low", "low.wav", gain=0.8, tags=["cello"]),
        SourceRef("high", "high.wav", gain=0.5, offset=0.1),
    ]
    record = MixtureRecord("mix-0", "test", "train", 1.0, SR, sources,
                           [InstructionRef("extract", "extract the cello", "cello", [0])], scale=0.7)  # fmt: skip
    cache = ClipCache(SR, base_dir=tmp_path)
    item = MixtureDataset([record], cache, 0, seed=1, crop_seconds=0.25, sources=True)[0]
    assert item["sources"].shape == (2, 2000) and item["source_labels"] == ["cello", ""]  # untagged: ""
    np.testing.assert_allclose(item["sources"].sum(0), item["mixture"], atol=1e-6)
    np.testing.assert_array_equal(item["sources"][0], item["target"])
    assert "sources" not in MixtureDataset([record], cache, 0)[0]


def test_collate_pads_sources_and_marks_the_real_ones():
    def example(count: int, n: int, name: str) -> dict:
        sources = np.arange(1, count + 1, dtype=np.float32)[:, None] * np.ones((count, n), np.float32)
        return {"mixture": sources.sum(0), "target": sources[0], "description": "x", "task": 0, "length": n,
                "id": name, "sources": sources, "source_labels": [f"{name}{k}" for k in range(count)]}  # fmt: skip

    batch = collate_mixtures([example(2, 5, "a"), example(3, 8, "b")])
    assert batch["sources"].shape == (2, 3, 8) and batch["sources"].dtype == torch.float32
    assert batch["source_mask"].dtype == torch.bool
    assert batch["source_mask"].tolist() == [[True, True, False], [True, True, True]]
    assert torch.all(batch["sources"][0, 2] == 0) and torch.all(batch["sources"][0, :, 5:] == 0)
    assert batch["sources"][0, 1, :5].tolist() == [2.0] * 5 and batch["sources"][1, 2].tolist() == [3.0] * 8
    assert batch["source_labels"] == [["a0", "a1"], ["b0", "b1", "b2"]]
    assert torch.allclose(batch["sources"].sum(1), batch["mixture"])
    plain = {k: v for k, v in example(1, 4, "c").items() if not k.startswith("source")}
    assert "sources" not in collate_mixtures([plain]) and "source_mask" not in collate_mixtures([plain])
    with pytest.raises(ValueError, match="some examples carry sources"):
        collate_mixtures([example(2, 5, "a"), plain])


def test_sources_key_from_the_recipe(tmp_path, clips):
    manifest = tmp_path / "clips.jsonl"
    write_jsonl(manifest, clips)
    section = SplitConfig(clips=str(manifest), protocol="music_zeroshot", length=2, seconds=1.0, sources=True)
    data = dataset_from_config(section, "train", SR, tmp_path, 0)
    assert data.sources and data[0]["sources"].shape[0] == 2
    assert not dataset_from_config(SplitConfig(clips=str(manifest), protocol="music_zeroshot", length=2), "train",
                                   SR, tmp_path, 0).sources  # fmt: skip
    with pytest.raises(SepkitError, match="sources: true needs mixtures"):
        dataset_from_config(SplitConfig(clips=str(manifest), protocol="clean", sources=True), "train", SR, tmp_path, 0)
