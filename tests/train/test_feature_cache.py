"""Cached frozen features: the store, fingerprints, clean-clip datasets, the text cache and `sepkit data cache`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from conftest import TRAIN_RECIPE, build_corpus, run_cli, train_overrides, write_clips
from torch import nn


def clip_manifest(root: Path) -> Path:
    """A clip manifest of the tiny tone and noise clips (1 s, 16 kHz), captioned."""
    lines = []
    for clip in write_clips(root):
        kind = clip["kind"]
        lines.append({
            "id": clip["id"], "path": clip["path"], "seconds": 1.0, "sample_rate": 16000, "tags": [kind],
            "captions": [f"a {kind}", f"some {kind} sound"], "split": "train",
        })  # fmt: skip
    path = root / "clips.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


# --- store and fingerprints ---------------------------------------------------------------------------
def test_store_round_trips_and_ignores_other_fingerprints(tmp_path):
    from sepkit.train.feature_cache import CACHE_DIRNAME, FeatureStore

    manifest = tmp_path / "m.jsonl"
    manifest.write_text("{}\n")
    meta = {"fingerprint": "abc", "config": {"x": 1}}
    store = FeatureStore.at(manifest, "text_encoder", meta)
    assert store.folder.parent == tmp_path / CACHE_DIRNAME
    assert store.load() == {}
    store.save({"a": {"v": torch.arange(3)}})
    assert torch.equal(FeatureStore.at(manifest, "text_encoder", meta).load()["a"]["v"], torch.arange(3))
    # same folder name, different meta (edited by hand, or a half-written store): not used
    assert FeatureStore(store.folder, {"fingerprint": "abc", "config": {"x": 2}}).load() == {}


def test_a_damaged_store_names_the_folder_to_delete(tmp_path):
    from sepkit.errors import SepkitError
    from sepkit.train.feature_cache import ENTRIES_FILE, FeatureStore

    store = FeatureStore(tmp_path / "store", {"fingerprint": "f"})
    store.save({"a": {"v": torch.zeros(1)}})
    (store.folder / ENTRIES_FILE).write_bytes(b"not a torch file")
    with pytest.raises(SepkitError, match="delete .*store"):
        store.load()


def test_fingerprint_follows_config_weights_and_precision():
    from sepkit.train.feature_cache import component_fingerprint

    torch.manual_seed(0)
    module = nn.Linear(3, 2)
    base = component_fingerprint(module, {"name": "x", "dim": 3}, "fp32")["fingerprint"]
    assert component_fingerprint(module, {"name": "x", "dim": 3, "freeze": True}, "fp32")["fingerprint"] == base
    assert component_fingerprint(module, {"name": "x", "dim": 4}, "fp32")["fingerprint"] != base
    assert component_fingerprint(module, {"name": "x", "dim": 3}, "bf16")["fingerprint"] != base
    with torch.no_grad():
        module.weight[0, 0] += 1e-3
    assert component_fingerprint(module, {"name": "x", "dim": 3}, "fp32")["fingerprint"] != base


def test_source_stamp_changes_when_a_clip_file_changes(tmp_path):
    from sepkit.train.feature_cache import source_stamp

    manifest, clip = tmp_path / "m.jsonl", tmp_path / "a.wav"
    manifest.write_text("{}\n")
    clip.write_bytes(b"1234")
    before = source_stamp(manifest, [clip])
    assert source_stamp(manifest, [clip]) == before
    os.utime(clip, ns=(1, 1))
    assert source_stamp(manifest, [clip]) != before


# --- the text side -------------------------------------------------------------------------------------
class CountingEncoder(nn.Module):
    """A stand-in text encoder: tokens = text length repeated; counts the texts it encodes."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.calls: list[str] = []

    def encode_text(self, texts):
        from sepkit.interfaces import TextEmbedding

        self.calls += texts
        n = max(len(t) for t in texts)
        tokens = torch.stack([torch.full((n, 2), float(len(t))) * self.scale for t in texts])
        mask = torch.stack([torch.arange(n) < len(t) for t in texts])
        return TextEmbedding(tokens=tokens, mask=mask, pooled=tokens[:, 0])


def test_text_cache_is_built_once_and_read_back_without_the_encoder(tmp_path):
    import contextlib

    from sepkit.train.feature_cache import CachedTextEncoder, build_text_cache, load_text_cache

    manifest = tmp_path / "m.jsonl"
    manifest.write_text("{}\n")
    encoder = CountingEncoder()
    summary = build_text_cache(encoder, encoder.encode_text, {"name": "count"}, ["ab", "abc", "ab"], manifest,
                               "fp32", contextlib.nullcontext, progress=False)  # fmt: skip
    assert summary["texts"] == 2 and summary["computed"] == 2 and encoder.calls == ["ab", "abc"]
    again = build_text_cache(encoder, encoder.encode_text, {"name": "count"}, ["ab", "x"], manifest, "fp32",
                             contextlib.nullcontext, progress=False)  # fmt: skip
    assert again["computed"] == 1 and again["texts"] == 3
    entries, folders = load_text_cache(encoder, {"name": "count"}, [manifest], "fp32")
    assert set(entries) == {"ab", "abc", "x"} and len(folders) == 1
    assert entries["abc"]["tokens"].shape == (3, 2)  # stored without the batch's padding
    encoder.calls.clear()
    cached = CachedTextEncoder(encoder.encode_text, capacity=8, preloaded=entries)
    out = cached(["abc", "ab"])
    assert encoder.calls == [] and cached.hits == 2
    assert out.tokens.shape == (2, 3, 2) and out.mask.tolist() == [[True] * 3, [True, True, False]]
    direct = encoder.encode_text(["abc", "ab"])
    valid = direct.mask[..., None]
    assert torch.equal(out.tokens * valid, direct.tokens * valid) and torch.equal(out.pooled, direct.pooled)
    cached(["new"])
    assert cached.misses == 1
    # other weights: another fingerprint, nothing found
    with torch.no_grad():
        encoder.scale.fill_(2.0)
    assert load_text_cache(encoder, {"name": "count"}, [manifest], "fp32")[0] == {}


def test_clip_manifest_descriptions_are_captions_and_tags(tmp_path):
    from sepkit.train.feature_cache import manifest_descriptions

    texts = manifest_descriptions(clip_manifest(tmp_path))
    assert {"a tone", "some tone sound", "a noise"} <= set(texts)


# --- clean clips -----------------------------------------------------------------------------------------
def test_clean_clip_dataset_gives_each_clip_from_its_start(tmp_path):
    import numpy as np

    from sepkit.data.dataset import CleanClipDataset
    from sepkit.data.manifest import ClipCache, read_clips

    manifest = clip_manifest(tmp_path)
    clips = read_clips(manifest)
    cache = ClipCache(16000, base_dir=tmp_path, capacity=0)
    dataset = CleanClipDataset(clips, cache, seed=3, seconds=0.5)
    assert len(dataset) == len(clips)
    item = dataset[1]
    assert item["id"] == clips[1].id and item["length"] == 8000 and item["task"] == 0
    assert np.array_equal(item["mixture"], item["target"])
    assert np.allclose(item["target"], cache.load(clips[1].path)[:8000])
    dataset.set_epoch(1)
    assert np.array_equal(dataset[1]["target"], item["target"])  # the same audio every epoch
    assert item["description"] in ("a tone", "some tone sound", "a noise", "some noise sound", "tone", "noise")


def test_recipe_data_section_selects_clean_clips(tmp_path):
    from sepkit.data.dataset import CleanClipDataset, dataset_from_config
    from sepkit.train.config import SplitConfig

    manifest = clip_manifest(tmp_path)
    dataset = dataset_from_config(SplitConfig(clips=str(manifest), protocol="clean"), "train", 16000, None, 0)
    assert isinstance(dataset, CleanClipDataset) and len(dataset) == 12


# --- the separation system and the CLI ------------------------------------------------------------------------
def test_sepkit_data_cache_then_train_reads_the_text_cache(tmp_path):
    # a corpus of its own: the store it writes must not reach other tests' runs on the shared corpus
    # (stored embeddings equal fresh ones only up to float rounding across thread counts)
    corpus = build_corpus(tmp_path / "corpus", train=4, val=2)
    run = run_cli("data", "cache", TRAIN_RECIPE, *train_overrides(corpus), timeout=300)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert {str(corpus["train"]), str(corpus["val"])} == set(summary)
    store = Path(summary[str(corpus["train"])]["text_encoder"]["store"])
    assert store.is_dir() and store.parent.parent == corpus["root"]

    from sepkit.recipe import load_recipe
    from sepkit.train.engine import Trainer

    recipe = load_recipe(str(TRAIN_RECIPE), train_overrides(corpus, steps=1, val_every=0))
    trainer = Trainer(recipe, out_dir=tmp_path / "run", device="cpu", progress=False).setup()
    assert any("text embeddings" in line for line in trainer.cache_notes)
    cache = trainer.system.text_cache
    assert {"sine tone", "white noise"} <= set(cache.preloaded)
    trainer.system.pipeline.text_encoder.encode_text(["sine tone"])
    assert cache.misses == 0 and cache.hits == 1


def test_sepkit_data_cache_refuses_a_system_with_nothing_to_cache(corpus):
    run = run_cli("data", "cache", TRAIN_RECIPE, *train_overrides(corpus), "model.text_encoder.freeze=false",
                  "model.text_encoder.in_checkpoint=true")  # fmt: skip
    assert run.returncode == 2
    assert "cannot be cached" in run.stderr and "Traceback" not in run.stderr


def test_sepkit_data_cache_names_a_missing_manifest(tmp_path, corpus):
    run = run_cli("data", "cache", TRAIN_RECIPE, *train_overrides(corpus), "--manifest", tmp_path / "nope.jsonl")
    assert run.returncode == 2 and "nope.jsonl does not exist" in run.stderr
