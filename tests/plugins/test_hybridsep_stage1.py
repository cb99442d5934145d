"""Hybrid-Sep stage 1 (the ``hybrid-sep-stage1`` training system): FE + AET regress a frozen audio encoder's
embedding of the target; only they train; the checkpoint leaves the target encoder out and starts stage 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from sepkit.errors import SepkitError
from sepkit.testing import SystemContract

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGE1 = "recipes/mini/hybrid_sep_stage1.yaml"
TARGET = "train.system.target_encoder"

torch.set_num_threads(1)


class TestHybridSepStage1System(SystemContract):
    name = "hybrid-sep-stage1"


def tiny_overrides(itc_dim: int = 16) -> list[str]:
    """The tiny hybrid-sep (embed_dim 16) and a tiny random Q-Audio audio side (ITC width ``itc_dim``)."""
    import sepkit_hybridsep

    tiny = yaml.safe_load(sepkit_hybridsep.TINY_SEPARATOR)
    overrides = [f"model.separator.{k}={v}" for k, v in tiny.items() if k not in ("beats", "input_dim", "query_dim")]
    overrides = [o.replace("'", "") for o in overrides]
    overrides += ["model.audio_encoder.hop=32", "train.steps=10"]
    qaudio = {"checkpoint": "null", "hidden": 32, "num_layers": 1, "num_heads": 4, "ffn_dim": 64, "itc_dim": itc_dim}
    audiomae = {"checkpoint": "null", "embed_dim": 32, "depth": 1, "num_heads": 4, "target_frames": 128}
    overrides += [f"{TARGET}.{k}={v}" for k, v in qaudio.items()]
    overrides += [f"{TARGET}.audio_encoder.{k}={v}" for k, v in {**audiomae, "num_mel_bins": 32}.items()]
    return overrides


def build(recipe: str = STAGE1, overrides: list[str] = ()):
    from sepkit.recipe import load_recipe
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    loaded = load_recipe(recipe, list(overrides))
    torch.manual_seed(0)
    return build_system(loaded, load_train_config(loaded))


@pytest.fixture(scope="module")
def stage1():
    return build(overrides=tiny_overrides())


def batch(seed: int = 0) -> dict:
    """Two 1600-sample rows (target plus noise), an extract and a remove row."""
    g = torch.Generator().manual_seed(seed)
    target = 0.1 * torch.randn(2, 1600, generator=g)
    return {
        "mixture": target + 0.1 * torch.randn(2, 1600, generator=g),
        "target": target,
        "lengths": torch.tensor([1600, 1200]),
        "description": ["a dog barking", "rain"],
        "task": torch.tensor([0, 1]),
    }


def test_prediction_is_the_separators_stage_1_and_the_target_is_the_described_source(stage1):
    system = stage1.eval()
    b = batch()
    p = system.pipeline
    with torch.no_grad():
        predicted = system.predicted_embedding(b)
        features = p.audio_encoder.encode_audio(b["mixture"], b["lengths"])
        text = p.text_encoder.encode_text(b["description"])
        wave, lengths = p.separator.mixture_wave(features)
        expected = p.separator.target_embedding(wave, lengths, text)
        target = system.target_embedding(b)
        removed = b["mixture"][1:] - b["target"][1:]  # the remove row: what the description names
        own = system.target_encoder.embed_audio(removed[:, :1200], torch.tensor([1200]))
    torch.testing.assert_close(predicted, expected)
    assert predicted.shape == target.shape == (2, 16)
    torch.testing.assert_close(target[1:], torch.nn.functional.normalize(own, dim=-1), atol=1e-5, rtol=1e-4)


def test_loss_is_finite_and_decreases_on_a_fixed_batch(stage1):
    system = stage1.train()
    b = batch(seed=1)
    optimizer = torch.optim.Adam(system.parameters_for("main"), lr=3e-3)
    losses = []
    for step in range(8):
        optimizer.zero_grad()
        out = system.training_step(b, step)
        assert bool(torch.isfinite(out["loss"])) and set(out) == {"loss", "cosine"}
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < 0.8 * losses[0], losses
    system.zero_grad()


def test_only_fe_and_aet_are_trained(stage1):
    system = stage1.train()
    system.zero_grad(set_to_none=True)
    system.training_step(batch(seed=2), 0)["loss"].backward()
    sep = system.pipeline.separator
    trained = {id(p) for m in (sep.fe, sep.aet) for p in m.parameters()}
    assert {id(p) for p in system.parameters_for("main")} == trained
    assert all(p.grad is not None for m in (sep.fe, sep.aet) for p in m.parameters() if p.requires_grad)
    assert sep.aet.head.weight.grad.abs().sum() > 0 and sep.fe.input.weight.grad.abs().sum() > 0
    for module in (sep.asm, sep.denoiser, sep.discriminator, system.target_encoder):
        assert all(p.grad is None and not p.requires_grad for p in module.parameters())
    assert {id(p) for p in system.parameters() if p.requires_grad} == trained  # what DDP and EMA see
    system.zero_grad()


def test_validation_reports_query_specificity(stage1):
    with torch.no_grad():
        metrics = stage1.eval().validation_step(batch(seed=3))
    assert set(metrics) == set(stage1.validation_metrics) == {"loss", "cosine", "cosine_shuffled", "cosine_targets"}
    assert all(v.shape == (2,) and bool(torch.isfinite(v).all()) for v in metrics.values())


def test_embed_dim_must_match_the_target_embedding():
    with pytest.raises(SepkitError, match=r"model\.separator\.embed_dim is 16 .* is 12-d; set model\.separator\."):
        build(overrides=tiny_overrides(itc_dim=12))
    with pytest.raises(SepkitError, match=r"train\.system\.embedding"):
        build(overrides=[*tiny_overrides(), "train.system.embedding=mean"])


def test_checkpoint_leaves_out_the_target_encoder(stage1):
    state = stage1.checkpoint_state()
    assert set(state) == set(stage1.pipeline.checkpoint_state())
    assert not any("target_encoder" in key for key in state)
    frozen = {t.data_ptr() for t in stage1.target_encoder.state_dict().values()}
    assert frozen.isdisjoint(t.data_ptr() for t in state.values())
    prefixes = {key.split(".")[1] for key in state if key.startswith("separator.")}
    assert {"fe", "aet", "asm", "denoiser", "discriminator"} <= prefixes  # all stage 2 loads


def test_stage_2_starts_from_a_stage_1_checkpoint(stage1, tmp_path):
    """mini/hybrid_sep (ACT) with the same model and train.system.stage1=frozen loads it with --init-from."""
    from sepkit.checkpoint import save_checkpoint

    path = tmp_path / "stage1.ckpt"
    save_checkpoint(path, {}, stage1.checkpoint_state(), {})
    act_overrides = [o for o in tiny_overrides() if not o.startswith(TARGET)] + ["train.system.stage1=frozen"]
    act = build("recipes/mini/hybrid_sep.yaml", act_overrides)
    act.init_from(str(path))
    ours, theirs = stage1.pipeline.separator, act.pipeline.separator
    for name in ("fe", "aet"):
        for (key, a), b in zip(getattr(ours, name).state_dict().items(), getattr(theirs, name).state_dict().values()):
            assert torch.equal(a, b), key
    assert not any(p.requires_grad for p in theirs.aet.parameters())


def test_the_mini_recipe_resolves_builds_and_matches_its_stage_2(capsys):
    from omegaconf import OmegaConf

    from sepkit.cli import main
    from sepkit.recipe import load_recipe

    assert main(["recipe", "show", "mini/hybrid_sep_stage1", "--resolved"]) in (0, None)
    assert "hybrid-sep-stage1" in capsys.readouterr().out
    ours, act, hsm = (OmegaConf.to_container(load_recipe(f"recipes/mini/{n}.yaml").config, resolve=True)
                      for n in ("hybrid_sep_stage1", "hybrid_sep", "hsm_tss"))  # fmt: skip
    assert ours["train"]["system"]["target_encoder"] == hsm["model"]["audio_encoder"]
    assert ours["model"]["separator"]["embed_dim"] == act["model"]["separator"]["embed_dim"] == 128
    assert act["train"]["system"]["stage1"] == "frozen"  # mini/hybrid_sep is stage 2 of these weights
    assert ours["model"] == act["model"] and ours["data"]["train"] == act["data"]["train"]
    system = build(STAGE1)  # the mini Q-Audio from its shipped checkpoints: 128-d ITC embedding
    assert system.pipeline.separator.embed_dim == 128 and not system.target_encoder.training
