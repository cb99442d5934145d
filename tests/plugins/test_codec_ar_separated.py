"""codec-ar-separated (plugins/sepkit_codec_ar/separated.py): codec-ar trained on a frozen separator's estimates.

A tiny chain: MiniLM + a 2-layer AudioMAE + a 2-layer hsm-local with its global stage (recipes/tiny/train_hsm.yaml)
and a tiny codec-ar over the plugin's toy codec (16 kHz, 50 Hz, 4 x 32 codes), registered into a test registry.
"""

from __future__ import annotations

import json
import types
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sepkit.errors import SepkitError
from sepkit.hookspecs import hookimpl
from sepkit.interfaces import encode_descriptions
from sepkit.plugins import load_registry
from sepkit.task_tokens import append_task_tokens

REPO = Path(__file__).resolve().parents[2]
TOY = {"name": "toy", "sample_rate": 16000, "hop": 320, "num_codebooks": 4, "codebook_size": 32}
DECODER = {"name": "codec-ar", "codec": TOY, "frame_rate": 12.5, "mel_patches": 2, "dim": 32, "depth": 2}
DECODER |= {"heads": 4, "dropout": 0.0, "max_seconds": 1.28}


@hookimpl
def _register_toy_codec(registry):
    registry.register("codec", "toy", "sepkit_codec_ar.toy_codec:ToyCodec", summary="toy codec (tests)")


@cache
def registry():
    plugin = types.ModuleType("codec_ar_separated_test_codec")
    plugin.sepkit_register = _register_toy_codec
    return load_registry(extra_plugins=(plugin,))


def write_recipe(root: Path, train: Path, val: Path, drop: str = "") -> Path:
    """recipes/tiny/train_hsm.yaml's chain with a trainable tiny codec-ar, trained by codec-ar-separated."""
    recipe = yaml.safe_load((REPO / "recipes" / "tiny" / "train_hsm.yaml").read_text())
    recipe["model"]["decoder"] = dict(DECODER)
    recipe["model"].pop(drop, None)
    recipe["train"] |= {"system": {"name": "codec-ar-separated", "free_running_val": True}, "steps": 3}
    recipe["train"] |= {"val_every": 3, "ckpt_every": 3, "log_every": 1, "batch_size": 2, "val_metric": "free_lsd"}
    recipe["data"] |= {"train": {"mixtures": str(train), "instruction": "all"}, "val": {"mixtures": str(val)}}
    path = root / "separated.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def write_corpus(root: Path) -> tuple[Path, Path]:
    """Frozen mixture manifests of 1.28 s tone + noise pairs (3 train, 2 val), each asked to extract and remove."""
    import soundfile

    from sepkit.data.manifest import InstructionRef, MixtureRecord, SourceRef, write_jsonl

    t = np.arange(20480) / 16000
    for i in range(2):
        soundfile.write(root / f"tone{i}.wav", (0.3 * np.sin(2 * np.pi * 300 * (i + 1) * t)).astype(np.float32), 16000)
        noise = 0.05 * np.random.default_rng(i).standard_normal(t.size)
        soundfile.write(root / f"noise{i}.wav", noise.astype(np.float32), 16000)
    for split, count in (("train", 3), ("val", 2)):
        records = []
        for n in range(count):
            sources = [
                SourceRef(f"tone{n % 2}", f"tone{n % 2}.wav", gain=1.0, tags=["tone"]),
                SourceRef(f"noise{n % 2}", f"noise{n % 2}.wav", gain=0.5 + 0.25 * n, tags=["noise"]),
            ]
            instructions = [
                InstructionRef("extract", "extract the tone", "tone", [0]),
                InstructionRef("remove", "remove the noise", "noise", [0]),
            ]
            records.append(MixtureRecord(f"{split}-{n}", "test", split, 1.28, 16000, sources, instructions))
        write_jsonl(root / f"{split}.jsonl", records)
    return root / "train.jsonl", root / "val.jsonl"


def build(path: Path):
    from sepkit.recipe import load_recipe
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    recipe = load_recipe(str(path), [])
    torch.manual_seed(0)
    return build_system(recipe, load_train_config(recipe), registry())


def batch_of(manifest: Path) -> dict:
    from sepkit.data.dataset import MixtureDataset, collate_mixtures
    from sepkit.data.manifest import ClipCache, read_mixtures

    dataset = MixtureDataset(read_mixtures(manifest), ClipCache(16000, base_dir=manifest.parent), instruction="all")
    return collate_mixtures([dataset[i] for i in range(4)])


def test_the_decoder_learns_from_the_separators_estimate_and_nothing_else_trains(tmp_path):
    system = build(write_recipe(tmp_path, *write_corpus(tmp_path)))
    batch = batch_of(tmp_path / "train.jsonl")
    system.train()
    assert not system.separator.training and not system.audio_encoder.training
    estimate, codes, code_lengths = system.frozen_outputs(batch)
    with torch.no_grad():  # what the pipeline does with the same components
        query = encode_descriptions(system.text_encoder.encode_text, list(batch["description"]))
        query = append_task_tokens(query, batch["task"], system.text_encoder.task_token_embeddings())
        features = system.audio_encoder.encode_audio(batch["mixture"], batch["lengths"])
        want = system.separator.separate(features, query, batch["task"])
    torch.testing.assert_close(estimate.frames, want.frames)
    want_codes, want_lengths = system.target_codes(batch["target"], batch["lengths"])
    assert torch.equal(codes, want_codes) and torch.equal(code_lengths, want_lengths)
    # rows 0 and 1 are one mixture's extraction and removal: the same target, different estimates
    assert torch.equal(codes[0], codes[1]) and not torch.allclose(estimate.frames[0], estimate.frames[1])

    loss = system.training_step(batch, 0)["loss"]
    loss.backward()
    trained = {name for name, p in system.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert trained and all(name.startswith("decoder.") for name in trained)
    assert all(not p.requires_grad for p in system.separator.parameters())
    assert system.checkpoint_state() and all(k.startswith("decoder.") for k in system.checkpoint_state())


def test_a_recipe_without_separation_stages_is_a_clear_error(tmp_path):
    train, val = write_corpus(tmp_path)
    with pytest.raises(SepkitError, match="needs model.separator"):
        build(write_recipe(tmp_path, train, val, drop="separator"))


def test_cached_estimates_equal_the_computed_ones_and_go_stale_with_the_separator(tmp_path):
    train, val = write_corpus(tmp_path)
    system = build(write_recipe(tmp_path, train, val))
    clips = tmp_path / "clips.jsonl"
    clips.write_text(json.dumps({"id": "tone0", "path": "tone0.wav", "tags": ["tone"], "captions": ["a tone"]}) + "\n")
    assert "not cached" in system.cache_features(clips, None, torch.device("cpu"), progress=False)
    summary = system.cache_features(train, None, torch.device("cpu"), progress=False)
    assert summary["codec-ar-separated"]["examples"] == 6  # 3 mixtures x (extract, remove)
    batch = batch_of(train)
    computed = system.compute_separated(
        batch["mixture"], batch["target"], batch["lengths"], list(batch["description"]), batch["task"]
    )
    assert system.use_feature_cache([train])[0].startswith("feature cache: codec-ar-separated estimates of 6")
    assert system._cached_rows(batch) is not None
    cached = system.frozen_outputs(batch)
    torch.testing.assert_close(cached[0].frames, computed[0].frames)
    assert torch.equal(cached[0].lengths, computed[0].lengths)
    assert torch.equal(cached[1], computed[1]) and torch.equal(cached[2], computed[2])
    other = dict(batch, description=["extract a tone"] * 4)  # a wording the cache has not seen: computed
    assert system._cached_rows(other) is None

    with torch.no_grad():  # other separator weights: the store no longer matches
        next(system.separator.parameters()).add_(0.1)
    assert "none for codec-ar-separated" in system.use_feature_cache([train])[0]


def test_trains_through_the_engine_with_free_running_validation_of_the_chain(tmp_path):
    from sepkit.train.engine import Trainer

    path = write_recipe(tmp_path, *write_corpus(tmp_path))
    from sepkit.recipe import load_recipe

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(
            load_recipe(str(path), []), out_dir=tmp_path / "run", device="cpu", progress=False, registry=registry()
        ).fit()
    finally:
        torch.set_num_threads(before)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [x for x in lines if x["split"] == "val"]
    assert val and {"loss", "accuracy", "free_lsd", "free_psnr", "free_accuracy"} <= set(val[-1])
    state = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    assert state and all(k.startswith("decoder.") for k in state)
