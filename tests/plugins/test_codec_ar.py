"""codec-ar: the AR codec-token decoder of HSM-TSS (plugins/sepkit_codec_ar) and its training system.

Most tests use ``ToyCodec`` (a parameter-free G-group codec shipped with the plugin for tests) and
``ParamCodec`` below (a codec with a parameter, to check it stays out of the decoder's state),
registered into a test registry; the process-wide registry is left alone.
"""

from __future__ import annotations

import json
import math
import types
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sepkit.checkpoint import save_checkpoint
from sepkit.errors import SepkitError
from sepkit.hookspecs import hookimpl
from sepkit.interfaces import AudioFeatures, Codec, CodecFrames
from sepkit.plugins import load_registry

REPO = Path(__file__).resolve().parents[2]
TINY_RECIPE = REPO / "recipes" / "tiny" / "train_codec_ar.yaml"
TOY = {"name": "toy", "sample_rate": 1600, "hop": 32, "num_codebooks": 4, "codebook_size": 16}  # 50 Hz, 4 x 16
TINY = {
    "input_dim": 16,
    "frame_rate": 50.0,
    "mel_patches": 8,
    "dim": 32,
    "depth": 2,
    "heads": 4,
    "dropout": 0.0,
    "max_seconds": 2.0,
}


class ParamCodec(Codec):
    """ToyCodec with one (unused) parameter: its state must not appear in the decoder's state dict."""

    @dataclass
    class Config:
        sample_rate: int = 1600

    num_codebooks, codebook_size = 2, 8

    def __init__(self, config) -> None:
        super().__init__(config)
        self.sample_rate, self.frame_rate = config.sample_rate, config.sample_rate / 32
        self.gain = nn.Parameter(torch.ones(1))

    def encode(self, wave, lengths):
        t = -(-wave.shape[-1] // 32)
        return CodecFrames(torch.zeros(wave.shape[0], 2, t, dtype=torch.long), (lengths + 31) // 32)

    def decode(self, codes):
        return self.gain * torch.zeros(codes.shape[0], codes.shape[-1] * 32)


@hookimpl
def _register_test_codecs(registry):
    registry.register("codec", "toy", "sepkit_codec_ar.toy_codec:ToyCodec", summary="toy codec (tests)")
    registry.register("codec", "param", f"{__name__}:ParamCodec", summary="codec with a parameter (tests)")


@cache
def registry():
    plugin = types.ModuleType("codec_ar_test_codecs")
    plugin.sepkit_register = _register_test_codecs
    return load_registry(extra_plugins=(plugin,))


def build_decoder(seed: int = 0, defaults: dict | None = None, **overrides):
    """A tiny codec-ar over the toy codec; ``defaults`` are passed as the pipeline passes its build defaults."""
    torch.manual_seed(seed)
    section = {"name": "codec-ar", "codec": dict(TOY), **TINY, **overrides}
    return registry().build("decoder", section, **(defaults or {})).eval()


def features(lengths=(25, 32, 40), tokens: int = 40, dim: int = 16, seed: int = 0) -> AudioFeatures:
    g = torch.Generator().manual_seed(seed)
    return AudioFeatures(torch.randn(len(lengths), tokens, dim, generator=g), torch.tensor(lengths), 50.0)


def random_codes(decoder, batch: int, steps: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lm = decoder.lm
    return torch.randint(0, lm.codebook_size, (batch, lm.num_groups, steps), generator=g)


# --- model ---------------------------------------------------------------------------------
def test_prefix_shapes_in_both_modes():
    f = features()
    tokens, valid = build_decoder().prefix_tokens(f)
    assert tokens.shape == (3, 5, 8 * 16)  # 40 tokens = 5 time steps of 8 mel patches, concatenated
    assert valid.sum(1).tolist() == [4, 4, 5]  # ceil(25 / 8), ceil(32 / 8), 40 / 8
    assert torch.equal(tokens[1, 2], f.frames[1, 16:24].reshape(-1))
    tokens, valid = build_decoder(prefix="patches").prefix_tokens(f)
    assert tokens.shape == (3, 40, 16) and valid.sum(1).tolist() == [25, 32, 40]
    grid = AudioFeatures(f.frames.view(3, 5, 8, 16), f.lengths, 50.0)  # a [B, time, mel, D] grid is flattened
    assert torch.equal(build_decoder().prefix_tokens(grid)[0], build_decoder().prefix_tokens(f)[0])
    with pytest.raises(SepkitError, match="whole time steps"):
        build_decoder().prefix_tokens(features(tokens=36))
    with pytest.raises(SepkitError, match="prefix must be one of"):
        build_decoder(prefix="frames")


@pytest.mark.parametrize("aligned", [False, True])
def test_logits_are_causal_and_ignore_prefix_padding(aligned):
    dec = build_decoder(aligned=aligned)
    prefix, valid = dec.prefix_tokens(features())
    codes = random_codes(dec, 3, 12)
    with torch.no_grad():
        base = dec.lm(prefix, valid, codes)
        assert base.shape == (3, 4, 12, 16)
        for t in (0, 5, 11):
            changed = codes.clone()
            changed[..., t:] = random_codes(dec, 3, 12 - t, seed=t + 1)
            out = dec.lm(prefix, valid, changed)
            torch.testing.assert_close(out[:, :, : t + 1], base[:, :, : t + 1], rtol=0, atol=1e-6)
            if t < 11:
                assert not torch.allclose(out[:, :, t + 1 :], base[:, :, t + 1 :])
        padded = prefix.clone()
        padded[0, 4:] = 100.0  # row 0 has 4 valid time steps: the 5th is padding
        torch.testing.assert_close(dec.lm(padded, valid, codes), base, rtol=0, atol=1e-5)


@pytest.mark.parametrize("aligned", [False, True])
def test_kv_cache_steps_give_the_full_forward_logits(aligned):
    from sepkit_codec_ar.generation import generate

    dec = build_decoder(aligned=aligned)
    prefix, valid = dec.prefix_tokens(features())
    codes = random_codes(dec, 3, 10)
    lm = dec.lm
    with torch.no_grad():
        full = lm(prefix, valid, codes)
        cache = lm.new_cache(3, prefix.shape[1], 10, "cpu")
        lm.prefill(prefix, valid, cache)
        stepped = [lm.step(None if t == 0 else codes[:, :, t - 1], t, cache) for t in range(10)]
        torch.testing.assert_close(torch.stack(stepped, dim=2), full, rtol=1e-5, atol=1e-5)
        # greedy generation with the cache equals greedy decoding by re-running the full forward pass
        cached = generate(lm, prefix, valid, 10)
        slow = torch.zeros(3, 4, 0, dtype=torch.long)
        for _ in range(10):
            nxt = lm(prefix, valid, torch.cat([slow, torch.zeros(3, 4, 1, dtype=torch.long)], -1))[:, :, -1].argmax(-1)
            slow = torch.cat([slow, nxt[..., None]], -1)
    assert torch.equal(cached, slow)


def test_aligned_steps_read_the_prefix_token_of_their_time():
    dec = build_decoder(aligned=True)
    lm = dec.lm
    assert lm.prefix_per_step == pytest.approx(50.0 / 8 / 50.0)  # 6.25 prefix steps/s over 50 codec frames/s
    prefix, valid = dec.prefix_tokens(features())
    with torch.no_grad():
        got = lm.aligned_inputs(prefix, 6, 40)  # steps 6 .. 45
        want = lm.aligned_proj(prefix[:, [min((6 + i) // 8, 4) for i in range(40)]])
        torch.testing.assert_close(got, want)
        codes = random_codes(dec, 3, 12)
        base = lm(prefix, valid, codes)
        changed = prefix.clone()
        changed[:, 1] += 1.0  # the second time step covers acoustic steps 8 .. 15
        out = lm(changed, valid, codes)
    assert not torch.allclose(out, base)
    assert build_decoder().lm.aligned_proj is None  # off by default: the paper's prefix-only conditioning


def test_classifier_free_guidance_combines_the_conditional_and_the_zero_prefix_logits():
    from sepkit_codec_ar.generation import generate

    dec = build_decoder()
    lm = dec.lm
    prefix, valid = dec.prefix_tokens(features())
    with torch.no_grad():
        assert torch.equal(generate(lm, prefix, valid, 8, guidance=1.0), generate(lm, prefix, valid, 8))
        guided = generate(lm, prefix, valid, 8, guidance=3.0)
        slow = torch.zeros(3, 4, 0, dtype=torch.long)  # greedy on uncond + 3 (cond - uncond), full forward passes
        for _ in range(8):
            codes = torch.cat([slow, torch.zeros(3, 4, 1, dtype=torch.long)], -1)
            cond = lm(prefix, valid, codes)[:, :, -1]
            uncond = lm(torch.zeros_like(prefix), valid, codes)[:, :, -1]
            slow = torch.cat([slow, (uncond + 3.0 * (cond - uncond)).argmax(-1)[..., None]], -1)
    assert torch.equal(guided, slow)
    assert build_decoder(guidance=0.0).config.guidance == 0.0  # 0: the unconditional model alone
    with pytest.raises(SepkitError, match="guidance"):
        build_decoder(guidance=-1.0)


def test_sampling_is_seeded_and_respects_top_k():
    from sepkit_codec_ar.generation import choose

    f = features()
    a = build_decoder(sampling="sample", temperature=1.5, seed=7).generate_codes(f)
    b = build_decoder(sampling="sample", temperature=1.5, seed=7).generate_codes(f)
    c = build_decoder(sampling="sample", temperature=1.5, seed=8).generate_codes(f)
    assert torch.equal(a, b) and not torch.equal(a, c)
    dec = build_decoder(sampling="sample", seed=7)
    assert torch.equal(dec.decode(f), dec.decode(f))  # a fresh generator per call: same input, same output
    logits = torch.randn(2, 3, 16, generator=torch.Generator().manual_seed(0))
    picks = torch.stack([choose(logits, "sample", 1.0, 2, torch.Generator().manual_seed(s)) for s in range(50)])
    top2 = logits.topk(2, dim=-1).indices
    assert bool((picks[..., None] == top2).any(-1).all())
    assert torch.equal(choose(logits, "greedy"), logits.argmax(-1))


def test_rows_of_different_lengths_are_generated_and_trimmed():
    dec = build_decoder()
    f = features(lengths=(16, 40, 29))
    steps = dec.acoustic_steps(f)
    assert steps.tolist() == [16, 40, 29]  # lengths / 50 tokens/s * 50 Hz codec frames
    codes = dec.generate_codes(f)
    assert codes.shape == (3, 4, 40)
    for row in (0, 2):  # alone (its own valid tokens only), a row gets the codes it got in the batch
        alone = AudioFeatures(f.frames[row : row + 1, :40], f.lengths[row : row + 1], 50.0)
        n = int(steps[row])
        assert torch.equal(dec.generate_codes(alone)[0, :, :n], codes[row, :, :n])
    wave = dec.decode(f)
    assert wave.shape == (3, 40 * 32)  # 0.8 s at the codec's 1600 Hz
    valid = (f.lengths / 50 * 1600).long()
    for row in range(3):
        assert bool((wave[row, valid[row] :] == 0).all()) and bool(wave[row, : valid[row]].abs().sum() > 0)
    assert dec.decode(f, num_samples=100).shape == (3, 100)
    assert dec.decode(f, num_samples=2000).shape == (3, 2000)
    assert dec.acoustic_steps(AudioFeatures(f.frames, torch.tensor([1, 3, 40]), 50.0)).tolist() == [1, 3, 40]


def test_too_long_input_is_a_clear_error():
    dec = build_decoder(max_seconds=0.5)
    with pytest.raises(SepkitError, match="max_seconds"):
        dec.decode(features())


# --- codec handling, pipeline handshake --------------------------------------------------------
def test_codec_is_frozen_outside_the_state_dict_and_takes_the_sample_rate():
    section = {k: v for k, v in TINY.items() if k != "input_dim"}
    # the pipeline's build defaults: the audio encoder's 16 kHz is not the codec's
    dec = registry().build(
        "decoder", {"name": "codec-ar", "codec": {"name": "param"}, **section}, input_dim=768, sample_rate=16000
    )
    assert dec.sample_rate == 1600 and dec.input_dim == 768 and dec.frame_rate == 50.0
    assert dec.consumes == "audiomae_patches"
    assert not dec.codec.gain.requires_grad and not any(k.startswith("codec.") for k in dec.state_dict())
    assert any(n.startswith("codec.") for n, _ in dec.named_parameters())  # still a submodule: moves with .to()
    dec.train()
    assert dec.lm.training and not dec.codec.training
    state = {k: v + 1 for k, v in dec.state_dict().items()}
    dec.load_state_dict(state)  # strict: the codec's keys are not asked for
    assert torch.equal(dec.lm.bos, state["lm.bos"]) and float(dec.codec.gain) == 1.0
    holder = nn.ModuleDict({"decoder": dec})
    assert not any(k.startswith("decoder.codec.") for k in holder.state_dict())


def test_unknown_codec_is_a_clear_error():
    with pytest.raises(SepkitError, match="unknown codec 'nope'"):
        build_decoder(codec={"name": "nope"})
    with pytest.raises(SepkitError, match="naming a registered component"):
        build_decoder(codec={"name": 3})


def test_tie_heads_shares_the_embedding_tables():
    untied, tied = build_decoder(), build_decoder(tie_heads=True)
    saved = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
    assert saved == 4 * 16 * 32  # G * K * dim
    assert tied.decode(features()).shape == (3, 1280)


# --- training system ---------------------------------------------------------------------------
@cache
def toy_recipe_file() -> Path:
    """recipes/tiny/train_codec_ar.yaml with the toy codec (16 kHz, 50 Hz, 4 x 32 codes) in a temporary file."""
    import tempfile

    import yaml

    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    recipe["model"]["decoder"]["codec"] = {
        "name": "toy",
        "sample_rate": 16000,
        "hop": 320,
        "num_codebooks": 4,
        "codebook_size": 32,
    }
    path = Path(tempfile.mkdtemp(prefix="codec_ar_")) / "train_codec_ar_toy.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def tiny_recipe(*overrides: str):
    from sepkit.recipe import load_recipe

    return load_recipe(str(toy_recipe_file()), list(overrides))


def build_system(*overrides: str):
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system as build

    torch.manual_seed(0)
    recipe = tiny_recipe(*overrides)
    return build(recipe, load_train_config(recipe), registry())


def target_batch(seconds=(1.28, 0.9)):
    g = torch.Generator().manual_seed(0)
    n = int(max(seconds) * 16000)
    t = torch.arange(n) / 16000
    rows = [0.4 * torch.sin(2 * math.pi * 220 * (i + 1) * t) + 0.02 * torch.randn(n, generator=g) for i in range(2)]
    lengths = torch.tensor([int(s * 16000) for s in seconds])
    target = torch.stack(rows) * (torch.arange(n)[None] < lengths[:, None])
    return {"target": target, "mixture": target.clone(), "lengths": lengths}


def test_system_takes_sizes_from_the_audio_encoder_and_masks_padding():
    system = build_system()
    dec = system.decoder
    assert (dec.input_dim, dec.frame_rate, dec.config.mel_patches) == (64, 12.5, 2)
    assert system.sample_rate == 16000 and not any(p.requires_grad for p in system.audio_encoder.parameters())
    prefix, valid, codes, steps = system.targets(target_batch())
    assert prefix.shape == (2, 8, 128) and valid.sum(1).tolist() == [8, 6]  # 1.28 s and 0.9 s of 160 ms steps
    assert codes.shape == (2, 4, 64) and steps.tolist() == [64, 45]  # 50 Hz codec frames (0.9 s -> 45)
    ce, correct, mask = system.token_losses(target_batch())
    assert ce.shape == (2, 4, 64) and mask.sum().item() == 64 + 45
    metrics = system.validation_step(target_batch())
    assert set(metrics) == {"loss", "accuracy"} and metrics["loss"].shape == (2,)


def test_cross_entropy_decreases_on_a_fixed_batch():
    system = build_system()
    system.train()
    batch = target_batch()
    optimizer = torch.optim.Adam([p for p in system.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for step in range(15):
        loss = system.training_step(batch, step)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0], losses
    assert not any(p.grad is not None for p in system.audio_encoder.parameters())


def test_condition_dropout_zeroes_training_prefixes_only():
    system = build_system("train.system={name: codec-ar, condition_dropout: 1.0}")
    assert system.config.condition_dropout == 1.0
    batch = target_batch()
    prefix, valid, codes, _ = system.targets(batch)
    with torch.no_grad():
        system.train()
        dropped = system.token_losses(batch)[0]
        unconditional = torch.nn.functional.cross_entropy(
            system.decoder.lm(torch.zeros_like(prefix), valid, codes).float().permute(0, 3, 1, 2),
            codes,
            reduction="none",
        )
        system.eval()
        conditional = system.token_losses(batch)[0]
    torch.testing.assert_close(dropped, unconditional)
    assert not torch.allclose(conditional, dropped)  # validation always sees the condition


def test_system_checkpoint_loads_into_the_decoder_and_bad_keys_are_named(tmp_path):
    system = build_system()
    with torch.no_grad():
        for p in system.decoder.parameters():
            p.add_(0.01)
    state = system.checkpoint_state()
    assert state and all(k.startswith("decoder.lm.") for k in state)
    path = tmp_path / "car.ckpt"
    versions = system.plugin_versions()  # audiomae and codec-ar from sepkit; the test codec from "extra"
    assert set(versions) == {"sepkit", "extra"}
    save_checkpoint(path, recipe={}, state_dict=state, plugins={"sepkit": versions["sepkit"]})
    section = {
        "name": "codec-ar",
        "codec": {"name": "toy", "sample_rate": 16000, "hop": 320, "num_codebooks": 4, "codebook_size": 32},
        "input_dim": 64,
        "frame_rate": 12.5,
        "mel_patches": 2,
        "dim": 64,
        "depth": 2,
        "heads": 4,
        "max_seconds": 1.28,
        "checkpoint": str(path),
    }
    dec = registry().build("decoder", section)
    for key, value in dec.state_dict().items():
        assert torch.equal(value, state[f"decoder.{key}"]), key
    fresh = build_system()
    fresh.load_checkpoint_state(state, "test")
    assert torch.equal(fresh.decoder.lm.bos, system.decoder.lm.bos)

    bad = dict(state)
    bad.pop("decoder.lm.bos")
    bad["decoder.lm.extra"] = torch.zeros(1)
    with pytest.raises(SepkitError, match=r"missing keys: decoder\.lm\.bos.*unexpected keys: decoder\.lm\.extra"):
        fresh.load_checkpoint_state(bad, "test")
    save_checkpoint(tmp_path / "bad.ckpt", recipe={}, state_dict=bad, plugins={})
    with pytest.raises(SepkitError, match=r"missing keys: lm\.bos.*unexpected keys: lm\.extra"):
        registry().build("decoder", {**section, "checkpoint": str(tmp_path / "bad.ckpt")})
    save_checkpoint(tmp_path / "other.ckpt", recipe={}, state_dict={"separator.w": torch.zeros(1)}, plugins={})
    with pytest.raises(SepkitError, match=r"no 'decoder\.\*' weights"):
        registry().build("decoder", {**section, "checkpoint": str(tmp_path / "other.ckpt")})


def test_system_needs_a_codec_ar_decoder():
    with pytest.raises(SepkitError, match="model.decoder: {name: codec-ar"):
        build_system("model.decoder={name: istft}")
    with pytest.raises(SepkitError, match="has frame_rate=50.0 but audio_encoder 'audiomae' has frame_rate=12.5"):
        build_system("model.decoder.frame_rate=50.0")


def write_corpus(root: Path) -> tuple[Path, Path]:
    """Frozen mixture manifests of 1.28 s tone + noise pairs (6 train, 2 val)."""
    import soundfile

    from sepkit.data.manifest import InstructionRef, MixtureRecord, SourceRef, write_jsonl

    t = np.arange(20480) / 16000
    for i in range(3):
        soundfile.write(root / f"tone{i}.wav", (0.3 * np.sin(2 * np.pi * 300 * (i + 1) * t)).astype(np.float32), 16000)
        noise = 0.05 * np.random.default_rng(i).standard_normal(t.size)
        soundfile.write(root / f"noise{i}.wav", noise.astype(np.float32), 16000)
    records = {"train": [], "val": []}
    for split, count in (("train", 6), ("val", 2)):
        for n in range(count):
            sources = [
                SourceRef(f"tone{n % 3}", f"tone{n % 3}.wav", gain=1.0, tags=["tone"]),
                SourceRef(f"noise{n % 3}", f"noise{n % 3}.wav", gain=1.0, tags=["noise"]),
            ]
            instructions = [InstructionRef("extract", "extract the tone", "tone", [0])]
            records[split].append(MixtureRecord(f"{split}-{n}", "test", split, 1.28, 16000, sources, instructions))
    write_jsonl(root / "train.jsonl", records["train"])
    write_jsonl(root / "val.jsonl", records["val"])
    return root / "train.jsonl", root / "val.jsonl"


def test_system_trains_through_the_engine(tmp_path):
    from sepkit.train.engine import Trainer

    train, val = write_corpus(tmp_path)
    recipe = tiny_recipe(
        f"data.train.mixtures={train}",
        f"data.val.mixtures={val}",
        "train.steps=6",
        "train.log_every=1",
        "train.val_every=6",
        "train.ckpt_every=6",
        "train.schedule.warmup_steps=1",
        "train.batch_size=2",
    )
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(recipe, out_dir=tmp_path / "run", device="cpu", progress=False, registry=registry()).fit()
    finally:
        torch.set_num_threads(before)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val_lines = [x for x in lines if x["split"] == "val"]
    assert len([x for x in lines if x["split"] == "train"]) == 6 and {"loss", "accuracy"} <= set(val_lines[0])
    state = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    assert state and all(k.startswith("decoder.lm.") for k in state)


# --- full size -----------------------------------------------------------------------------------
def full_size_parameters(
    groups=16,
    codes=1024,
    dim=1024,
    depth=12,
    ffn_mult=4,
    prefix_in=8 * 768,
    max_prefix=64,
    max_steps=512,
    tie_heads=False,
) -> int:
    """prefix projection + positions + BOS + code tables + blocks + final norm + heads (see model.py)."""
    block = 4 * dim + (3 * dim * dim + 3 * dim) + (dim * dim + dim) + 2 * ffn_mult * dim * dim + ffn_mult * dim + dim
    heads = groups * codes + (0 if tie_heads else groups * codes * dim)
    return (
        (prefix_in * dim + dim)
        + (max_prefix + max_steps) * dim
        + dim
        + groups * codes * dim
        + depth * block
        + 2 * dim
        + heads
    )


@pytest.mark.slow
def test_full_size_parameter_count():
    toy = {"name": "toy", "sample_rate": 16000, "hop": 320, "num_codebooks": 16, "codebook_size": 1024}
    dec = registry().build("decoder", {"name": "codec-ar", "codec": toy})
    count = sum(p.numel() for p in dec.parameters())
    print(f"codec-ar full size (16 x 1024 codes, 1024 wide, 12 layers): {count:,} parameters")
    assert count == full_size_parameters()
    assert dec.lm.max_prefix == 64 and dec.lm.max_steps == 512


def write_clip_manifest(root: Path) -> Path:
    """Three 1.28 s tones as a clean-clip manifest."""
    import soundfile

    t = np.arange(20480) / 16000
    lines = []
    for i in range(3):
        soundfile.write(root / f"tone{i}.wav", (0.3 * np.sin(2 * np.pi * 300 * (i + 1) * t)).astype(np.float32), 16000)
        lines.append({"id": f"tone{i}", "path": f"tone{i}.wav", "seconds": 1.28, "sample_rate": 16000,
                      "tags": ["tone"], "captions": ["a tone"], "split": "train"})  # fmt: skip
    path = root / "clips.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_cached_targets_equal_the_frozen_encoders_and_go_stale_with_the_clips(tmp_path):
    import os

    from sepkit.data.dataset import collate_mixtures
    from sepkit.train.config import load_data_config

    manifest = write_clip_manifest(tmp_path)
    overrides = (f"data.train.clips={manifest}", "data.train.protocol=clean")
    system = build_system(*overrides)
    data = load_data_config(tiny_recipe(*overrides))
    summary = system.cache_features(manifest, data, torch.device("cpu"), progress=False)
    assert summary["codec-ar"]["clips"] == 3 and summary["codec-ar"]["computed"] == 3
    assert "feature cache: codec-ar targets of 3 clips" in system.use_feature_cache([manifest])[0]
    dataset = system.build_dataset("train", data, None, 0)
    batch = collate_mixtures([dataset[i] for i in range(3)])
    cached = system.targets(batch)
    system._cached = {}
    computed = system.targets(batch)
    for a, b in zip(cached, computed):
        assert torch.equal(a, b)
    # a cropped row (not the cached clip as cached) is computed, not read
    system.use_feature_cache([manifest])
    short = dict(batch, lengths=torch.tensor([20480, 20480, 16000]))
    assert system._cached_rows(short) is None
    # a clip file that changed: the store no longer matches its source stamp
    os.utime(tmp_path / "tone1.wav", ns=(1, 1))
    assert "none for codec-ar" in system.use_feature_cache([manifest])[0]
    assert system.cache_features(manifest, data, torch.device("cpu"), progress=False)["codec-ar"]["computed"] == 3


def test_code_dropout_corrupts_teacher_forced_inputs_in_training_only():
    system = build_system("train.system={name: codec-ar, code_dropout: 0.5}")
    batch = target_batch()
    _, _, codes, _ = system.targets(batch)
    torch.manual_seed(0)
    wide = codes.repeat(64, 1, 1)  # enough steps for the fraction to be near 0.5
    corrupted = system.corrupted_inputs(wide)
    assert corrupted.shape == wide.shape and corrupted.dtype == wide.dtype
    assert 0 <= int(corrupted.min()) and int(corrupted.max()) < system.decoder.lm.codebook_size
    changed = (corrupted != wide).any(1).float().mean().item()  # steps with any group replaced
    assert 0.4 < changed < 0.6
    # a replaced step replaces all its groups together: where one group kept its code by chance, the step was
    # still drawn as a whole, so no step mixes kept and replaced groups beyond chance agreement (1 / K each)
    agree = (corrupted == wide).float().mean(1)  # per step: fraction of groups equal
    partial = ((agree > 0) & (agree < 1)).float().mean().item()
    assert partial < 0.1
    with torch.no_grad():
        system.eval()
        plain = system.token_losses(batch)[0]
        system.config.code_dropout = 0.0
        assert torch.equal(plain, system.token_losses(batch)[0])  # validation never corrupts


def test_code_dropout_changes_the_training_loss():
    # no dropout, so only the code corruption differs between the two training-mode losses
    system = build_system("train.system={name: codec-ar, code_dropout: 1.0}", "model.decoder.dropout=0")
    batch = target_batch()
    system.train()
    with torch.no_grad():
        torch.manual_seed(0)
        corrupted = system.token_losses(batch)[0]
        system.config.code_dropout = 0.0
        clean = system.token_losses(batch)[0]
        assert torch.equal(clean, system.token_losses(batch)[0])  # deterministic without the corruption
    assert not torch.allclose(corrupted, clean)


def test_free_running_validation_scores_the_generated_waveform():
    system = build_system("train.system={name: codec-ar, free_running_val: true}")
    assert system.validation_metrics == ("loss", "accuracy", "free_lsd", "free_psnr", "free_accuracy")
    batch = target_batch()
    system.eval()
    with torch.no_grad():
        out = system.validation_step(batch)
    rows = batch["lengths"].shape[0]
    for key in system.validation_metrics:
        assert out[key].shape == (rows,) and torch.isfinite(out[key]).all(), key
    assert ((0 <= out["free_accuracy"]) & (out["free_accuracy"] <= 1)).all()
    # the scores are those of the decoder's own output (same seed -> same codes) against the target
    features = system.audio_encoder.encode_audio(batch["target"].float(), batch["lengths"])
    wave = system.decoder.decode(features, num_samples=batch["target"].shape[-1]).float()
    length = int(batch["lengths"][0])
    lsd = system._metrics["free_lsd"].score(wave[:1, :length], batch["target"][:1, :length].float(), 16000)
    assert abs(float(lsd) - float(out["free_lsd"][0])) < 1e-3
    assert build_system().validation_metrics == ("loss", "accuracy")  # off by default
