"""The training engine in-process: learning, run folder, best checkpoint, init-from, errors, several optimizers."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from conftest import TRAIN_RECIPE, read_metrics, run_cli, train_overrides
from torch import nn

from sepkit.checkpoint import load_checkpoint
from sepkit.errors import SepkitError
from sepkit.pipeline import SeparationPipeline, build_pipeline
from sepkit.recipe import load_recipe
from sepkit.train.engine import Trainer
from sepkit.train.system import System, l1


def recipe_for(corpus, *extra, **train):
    return load_recipe(str(TRAIN_RECIPE), train_overrides(corpus, **train) + list(extra))


def trainer(corpus, out, *extra, **train) -> Trainer:
    return Trainer(recipe_for(corpus, *extra, **train), out_dir=out, device="cpu", progress=False)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A 60-step run of the tiny recipe, logging every step, validating and checkpointing at 30 and 60."""
    out = tmp_path_factory.mktemp("trained") / "run"
    summary = trainer(corpus, out, steps=60, log_every=1, val_every=30, ckpt_every=30, keep=1).fit()
    return out, summary


def test_loss_goes_down(trained):
    out, summary = trained
    losses = [m["loss"] for m in read_metrics(out)]
    assert len(losses) == 60
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.8 * first, (first, last)
    val = read_metrics(out, "val")
    assert [v["step"] for v in val] == [30, 60] and {"loss", "si_sdr", "si_sdri"} <= set(val[0])
    assert summary["step"] == 60 and summary["examples_per_s"] > 0


def test_run_folder_layout(trained, corpus):
    out, summary = trained
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt", "step-60.ckpt"]
    saved = (out / "recipe.yaml").read_text()
    assert str(corpus["train"]) in saved  # data paths made absolute
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"step", "split", "loss", "lr", "examples_per_s", "seconds", "cpu_seconds"} <= set(first)
    assert 0 < first["cpu_seconds"] and 0 < first["seconds"]
    last = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert last["cpu_seconds"] >= first["cpu_seconds"]
    assert last["step"] == 60 and set(last["optimizers"]) == {"main"} and last["data"] == {"epoch": 14, "position": 4}
    assert {"rng", "schedulers", "best", "sepkit_version", "plugins", "recipe"} <= set(last)


def test_best_checkpoint_is_a_model_checkpoint_for_separate(trained, corpus):
    out, summary = trained
    best = load_checkpoint(out / "checkpoints" / "best.ckpt")
    assert "optimizers" not in best and best["best"]["metric"] == "si_sdri"
    assert summary["best"]["step"] == best["step"]
    pipeline = build_pipeline(load_recipe("tiny/stft_mask"), checkpoint=str(out / "checkpoints" / "best.ckpt"))
    (result,) = pipeline.separate([torch.randn(1, 8000) * 0.1], [16000], "extract the sine tone")
    assert result.shape == (1, 8000) and torch.isfinite(result).all()


def test_init_from_starts_from_the_checkpoint(corpus, tmp_path):
    recipe = recipe_for(corpus)
    torch.manual_seed(123)
    source = SeparationPipeline.from_recipe(recipe).eval()
    source.save(tmp_path / "source.ckpt")
    t = Trainer(recipe, out_dir=tmp_path / "run", device="cpu", init_from=str(tmp_path / "source.ckpt")).setup()
    mine = t.system.pipeline.eval()
    x = torch.randn(2, 8000) * 0.1
    args = (torch.tensor([8000, 6000]), ["sine tone", "white noise"], torch.tensor([0, 1]))
    with torch.no_grad():
        assert torch.equal(mine(x, *args), source(x, *args))
    other = recipe_for(corpus, "model.separator.hidden=16")
    SeparationPipeline.from_recipe(other).save(tmp_path / "other.ckpt")
    with pytest.raises(SepkitError, match="mis-shaped keys: separator"):
        Trainer(recipe, out_dir=tmp_path / "run2", device="cpu", init_from=str(tmp_path / "other.ckpt")).setup()


def test_init_from_a_file_a_component_reads_itself(corpus, tmp_path):
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    recipe = recipe_for(corpus)
    system = build_system(recipe, load_train_config(recipe))
    system.train()  # a frozen component stays in eval mode
    assert system.frozen == ["text_encoder"] and not system.pipeline.text_encoder.training
    assert system.pipeline.separator.training
    official = tmp_path / "official.pth"
    torch.save({"model": {"weight": torch.zeros(2)}}, official)  # a torch file, not in sepkit's format
    with pytest.raises(SepkitError, match="no component of this recipe .* recognises it"):
        system.init_from(str(official))
    seen = []
    system.pipeline.separator.load_official_checkpoint = lambda path: seen.append(path) or True
    system.init_from(str(official))
    assert seen == [str(official)]


def test_text_noise_perturbs_the_conditioning_in_training_mode_only(corpus):
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    recipe = recipe_for(corpus, "train.system={name: separation, text_noise: 0.5}")
    system = build_system(recipe, load_train_config(recipe))
    encode = system.pipeline.text_encoder.encode_text
    system.eval()
    clean = encode(["the violin"]).pooled
    assert torch.equal(encode(["the violin"]).pooled, clean), "noise at evaluation"
    system.train()
    assert not torch.equal(encode(["the violin"]).pooled, clean), "no noise while training"
    bad = recipe_for(corpus, "train.system={name: separation, text_noise: -0.1}")
    with pytest.raises(SepkitError, match="text_noise"):
        build_system(bad, load_train_config(bad))


def test_worker_processes_give_the_same_run(corpus, tmp_path):
    for workers in (0, 2):
        trainer(corpus, tmp_path / f"w{workers}", f"data.num_workers={workers}", steps=5, log_every=1).fit()
    assert read_metrics(tmp_path / "w0") and [m["loss"] for m in read_metrics(tmp_path / "w0")] == [
        m["loss"] for m in read_metrics(tmp_path / "w2")
    ]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_ema_and_accumulation(corpus, tmp_path, precision):
    out = tmp_path / "run"
    trainer(corpus, out, steps=4, grad_accum=2, ema=0.9, precision=precision, log_every=1).fit()
    losses = [m["loss"] for m in read_metrics(out)]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    last = load_checkpoint(out / "checkpoints" / "last.ckpt")
    best = load_checkpoint(out / "checkpoints" / "best.ckpt")
    assert last["ema"]["updates"] == 4 and (last["scaler"] is not None) == (precision == "fp16")
    shadow = last["ema"]["shadow"]["pipeline.separator.proj_in.weight"]
    assert torch.equal(best["state_dict"]["separator.proj_in.weight"], shadow)  # best.ckpt holds EMA weights
    assert not torch.equal(last["state_dict"]["separator.proj_in.weight"], shadow)


# --- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.train.mixtures=EMPTY"], "data.train.mixtures: mixture manifest .*empty.jsonl is empty"),
        (["train.batch_size=17"], "train.batch_size=17 is larger than the training set: 16 examples"),
        (["data.sample_rate=8000"], "data.sample_rate=8000 but the model works at 16000 Hz"),
        (["train.system=nope"], "train.system: unknown system 'nope'"),
        (["train.val_metric=pesq"], "train.val_metric='pesq'; this system reports loss, si_sdr, si_sdri"),
        (["train.loss=l2"], "train.loss='l2'; allowed: l1, si_sdr, snr"),
        (["model.separator.freeze=true"], "nothing to train: every component is frozen"),
    ],
)
def test_setup_errors(corpus, tmp_path, overrides, message):
    overrides = [o.replace("EMPTY", str(corpus["empty"])) for o in overrides]
    with pytest.raises(SepkitError, match=message):
        trainer(corpus, tmp_path / "run", *overrides).fit()
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_recipe_without_data(tmp_path):
    with pytest.raises(SepkitError, match="names no data"):
        Trainer(load_recipe("tiny/stft_mask"), out_dir=tmp_path)
    with pytest.raises(SepkitError, match="names no training data"):
        Trainer(load_recipe(str(TRAIN_RECIPE)), out_dir=tmp_path)


def test_run_folder_protection(corpus, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SepkitError, match="no checkpoint in .*checkpoints"):
        Trainer(recipe_for(corpus), out_dir=out, device="cpu", resume=True).setup()
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(SepkitError, match="already has checkpoints.*use --resume .* or another --out"):
        trainer(corpus, out).setup()
    (out / "recipe.yaml").write_text(recipe_for(corpus, "train.lr=0.5", "train.steps=3").to_yaml())
    with pytest.raises(SepkitError, match="differs .* in train.lr .*only train.steps may change"):
        Trainer(recipe_for(corpus, "train.steps=99"), out_dir=out, device="cpu", resume=True).setup()


def test_cli_error_is_one_line(tmp_path):
    proc = run_cli("train", TRAIN_RECIPE, "train.bogus=1", "--out", tmp_path / "run")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown key 'train.bogus'" in lines[0] and "train_stft_mask.yaml" in lines[0]


# --- a system with two optimizers ----------------------------------------------------------------
class ToyGAN(System):
    """A waveform generator (one conv) against a conv discriminator: two phases per step."""

    @dataclass
    class Config:
        adversarial: float = 0.1

    optimizer_names = ("discriminator", "generator")
    find_unused_parameters = True
    sample_rate = 16000

    def __init__(self, config, recipe, train, registry=None):
        super().__init__(config, recipe, train, registry)
        self.generator = nn.Conv1d(1, 1, 9, padding=4)
        self.discriminator = nn.Sequential(nn.Conv1d(1, 4, 64, stride=32), nn.GELU(), nn.Conv1d(4, 1, 1))

    def parameters_for(self, optimizer):
        return list(getattr(self, optimizer).parameters())

    def training_step(self, batch, step, optimizer="main"):
        real, fake = batch["target"][:, None], self.generator(batch["mixture"][:, None])
        if optimizer == "discriminator":
            loss = F.softplus(-self.discriminator(real)).mean() + F.softplus(self.discriminator(fake.detach())).mean()
            return {"loss": loss}
        adv = F.softplus(-self.discriminator(fake)).mean()
        rec = (fake - real).abs().mean()
        return {"loss": rec + self.config.adversarial * adv, "l1": rec}

    def validation_step(self, batch):
        return {"loss": l1(self.generator(batch["mixture"][:, None])[:, 0], batch["target"], batch["lengths"])}


def test_system_with_two_optimizers(corpus, tmp_path):
    from sepkit.plugins import load_registry

    registry = load_registry()
    registry.register("system", "toy-gan", f"{__name__}:ToyGAN")
    recipe = recipe_for(
        corpus, "train.system.name=toy-gan", "train.system.adversarial=0.2", val_metric="loss", steps=3, log_every=1
    )
    t = Trainer(recipe, out_dir=tmp_path / "run", device="cpu", registry=registry, progress=False).setup()
    assert t.system.config.adversarial == 0.2
    before = {k: v.clone() for k, v in t.system.state_dict().items()}
    t.fit()
    after = t.system.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)  # both networks were updated
    logged = read_metrics(tmp_path / "run")[-1]
    assert {"discriminator.loss", "generator.loss", "generator.l1", "generator.lr"} <= set(logged)
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert set(last["optimizers"]) == {"discriminator", "generator"}


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_it_is_native(corpus, tmp_path, monkeypatch, native):
    import sepkit.device

    monkeypatch.setattr(sepkit.device, "native_bf16", lambda device: native)
    run = trainer(corpus, tmp_path / "run", steps=2, precision="auto").setup()
    assert run.cfg.precision == ("bf16" if native else "fp32")
    assert run.amp == (torch.bfloat16 if native else torch.float32)
    assert run.precision_note == f"train.precision auto -> {run.cfg.precision} on cpu"
    assert run.system.train_cfg.precision == run.cfg.precision  # the system's autocast and cache keys see it too


def test_emulated_bf16_is_kept_as_asked_with_a_warning(corpus, tmp_path, monkeypatch):
    import sepkit.device

    monkeypatch.setattr(sepkit.device, "native_bf16", lambda device: False)
    run = trainer(corpus, tmp_path / "run", steps=2, precision="bf16").setup()
    assert run.cfg.precision == "bf16" and run.amp == torch.bfloat16
    assert "emulates it" in run.precision_note and "train.precision=auto" in run.precision_note
    monkeypatch.setattr(sepkit.device, "native_bf16", lambda device: True)
    assert trainer(corpus, tmp_path / "run2", steps=2, precision="bf16").setup().precision_note is None
