"""The HSM-TSS separation stages (hsm-global, hsm-local) and their training system (hsm)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, Decoder, TextEmbedding
from sepkit.plugins import get_registry
from sepkit.task_tokens import append_task_tokens

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "tiny" / "train_hsm.yaml"
C_S, C_T, C_G, N = 32, 24, 16, 12  # patch width, query width, global width, patch tokens
TINY = {"hidden": 32, "depth": 2, "heads": 4, "dropout": 0.0}
WIDTHS = {"input_dim": C_S, "query_dim": C_T, "global_dim": C_G}


def local(with_global: bool = True, seed: int = 0, **keys):
    """A tiny hsm-local (eval mode), with the default tiny global stage unless ``keys`` give one."""
    torch.manual_seed(seed)
    section = {"name": "hsm-local", **WIDTHS, **TINY, "num_patches": 16, **keys}
    if with_global and "global_stage" not in keys:
        section["global_stage"] = {"name": "hsm-global", **TINY}
    return get_registry().build("separator", section).eval()


def inputs(seed: int = 0, lengths=(12, 7), query_lengths=(5, 2)):
    """Mixture features [2, N, C_s] (pooled G_mix [2, C_g]) and a ragged query [2, 5, C_t]."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(len(lengths), N, C_S, generator=g)
    mixture = AudioFeatures(frames, torch.tensor(lengths), 12.5, pooled=torch.randn(len(lengths), C_G, generator=g))
    m = max(query_lengths)
    mask = torch.arange(m)[None] < torch.tensor(query_lengths)[:, None]
    tokens = torch.randn(len(query_lengths), m, C_T, generator=g) * mask[..., None]
    return mixture, TextEmbedding(tokens, mask, torch.randn(len(query_lengths), C_T, generator=g))


def valid(features: AudioFeatures) -> list[torch.Tensor]:
    return [features.frames[b, : int(n)] for b, n in enumerate(features.lengths)]


# --- the stages -------------------------------------------------------------------------------
def test_shapes_with_and_without_the_global_stage():
    mixture, query = inputs()
    tasks = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        both = local().separate(mixture, query, tasks)
        alone = local(with_global=False).separate(mixture, query, tasks)
        g = get_registry().build("separator", {"name": "hsm-global", **WIDTHS, **TINY}).eval()
        g_out = g.separate(mixture, query, tasks)
    for out in (both, alone):
        assert out.frames.shape == (2, N, C_S) and out.frame_rate == 12.5
        assert torch.equal(out.lengths, mixture.lengths)
        assert bool((out.frames[1, 7:] == 0).all())  # zero past lengths
    assert both.pooled.shape == (2, C_G) and alone.pooled is None
    assert g_out.frames.shape == (2, 1, C_G) and torch.equal(g_out.frames[:, 0], g_out.pooled)
    sep = local()
    assert (sep.consumes, sep.produces, sep.tasks, sep.task_tokens) == (
        "audiomae_patches",
        "audiomae_patches",
        ("extract", "remove"),
        True,
    )
    assert local(representation="clap_patches").produces == "clap_patches"
    assert sep.global_stage.config.global_dim == C_G and sep.global_stage.config.query_dim == C_T  # inherited


def test_padded_query_tokens_and_padded_patches_do_not_change_valid_outputs():
    sep = local()
    mixture, query = inputs()
    tasks = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        base = sep.separate(mixture, query, tasks)
        noisy_query = TextEmbedding(query.tokens + 5.0 * (~query.mask)[..., None], query.mask, query.pooled)
        frames = mixture.frames.clone()
        frames[1, 7:] = 100.0  # past row 1's length
        noisy_mixture = AudioFeatures(frames, mixture.lengths, mixture.frame_rate, mixture.pooled)
        again = sep.separate(noisy_mixture, noisy_query, tasks)
    torch.testing.assert_close(again.pooled, base.pooled, rtol=0, atol=1e-5)
    for a, b in zip(valid(again), valid(base)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    with torch.no_grad():  # a valid patch does matter
        frames[1, 0] += 1.0
        changed = sep.separate(AudioFeatures(frames, mixture.lengths, 12.5, mixture.pooled), query, tasks)
    assert not torch.allclose(changed.frames[1, :7], base.frames[1, :7], atol=1e-4)


def test_task_tokens_change_the_output():
    sep = local()
    mixture, query = inputs()
    g = torch.Generator().manual_seed(5)
    table = {"extract": torch.randn(1, C_T, generator=g), "remove": torch.randn(2, C_T, generator=g)}
    extract, remove = torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long)
    q_extract, q_remove = append_task_tokens(query, extract, table), append_task_tokens(query, remove, table)
    assert q_remove.mask.sum(1).tolist() == [7, 4]
    with torch.no_grad():
        a, b = sep.separate(mixture, q_extract, extract), sep.separate(mixture, q_remove, remove)
    assert not torch.allclose(a.pooled, b.pooled, atol=1e-4)  # the global stage sees the task
    for x, y in zip(valid(a), valid(b)):
        assert not torch.allclose(x, y, atol=1e-4)
    # the local stage alone (same G) also reads the task tokens
    with torch.no_grad():
        ga = sep.separate_with_global(mixture, q_extract, a.pooled).frames
        gb = sep.separate_with_global(mixture, q_remove, a.pooled).frames
    assert not torch.allclose(ga[0], gb[0], atol=1e-4)


def test_ground_truth_global_path_and_what_each_variant_accepts():
    sep = local()
    mixture, query = inputs()
    tasks = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        out = sep.separate(mixture, query, tasks)
        g_hat = sep.predict_global(mixture, query)
        same = sep.separate_with_global(mixture, query, g_hat)
        other = sep.separate_with_global(mixture, query, torch.randn(2, C_G))
    torch.testing.assert_close(out.pooled, g_hat)
    torch.testing.assert_close(same.frames, out.frames)
    assert other.pooled.shape == (2, C_G)
    assert not torch.allclose(other.frames[0], out.frames[0], atol=1e-4)  # G conditions the local stage
    with pytest.raises(SepkitError, match="global feature"):
        sep.separate_with_global(mixture, query, None)
    with pytest.raises(SepkitError, match="pooled"):
        sep.separate(AudioFeatures(mixture.frames, mixture.lengths, 12.5), query, tasks)
    ours_local = local(with_global=False)
    assert ours_local.global_in is None and ours_local.global_stage is None
    with pytest.raises(SepkitError, match="no global stage"):
        ours_local.separate_with_global(mixture, query, g_hat)
    with torch.no_grad():  # Ours_local ignores pooled altogether
        ours_local.separate(AudioFeatures(mixture.frames, mixture.lengths, 12.5), query, tasks)
    with pytest.raises(SepkitError, match="num_patches"):
        local(num_patches=8).separate(mixture, query, tasks)


def test_global_stage_sub_section_is_checked():
    with pytest.raises(SepkitError, match="global_stage.global_dim"):
        local(with_global=False, global_stage={"name": "hsm-global", "global_dim": 8})
    with pytest.raises(SepkitError, match="hsm-global"):
        local(with_global=False, global_stage={"name": "mask-net"})
    with pytest.raises(SepkitError, match="definitely_not"):
        local(with_global=False, global_stage={"name": "hsm-global", "definitely_not": 1})


# --- losses and the switcher -----------------------------------------------------------------
def test_global_loss_is_one_minus_cosine_plus_mean_l1():
    from sepkit_hsm.losses import global_cosine, global_loss

    a = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    b = torch.tensor([[0.0, 2.0, 0.0, 0.0], [2.0, 4.0, 6.0, 8.0]])
    torch.testing.assert_close(global_cosine(a, b), torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(global_loss(a, b), torch.tensor([1.0 + 3.0 / 4, 0.0 + 10.0 / 4]))
    torch.testing.assert_close(global_loss(a, b, lambda1=2.0, lambda2=0.5), torch.tensor([2.0 + 3.0 / 8, 10.0 / 8]))
    assert float(global_loss(b, b).abs().max()) < 1e-6


def test_local_l1_counts_only_valid_tokens():
    from sepkit_hsm.losses import local_l1

    pred, target = torch.zeros(2, 4, 3), torch.ones(2, 4, 3)
    target[1, 2:] = 50.0  # padding of row 1
    torch.testing.assert_close(local_l1(pred, target, torch.tensor([4, 2])), torch.tensor([1.0, 1.0]))


def test_switcher_picks_ground_truth_with_probability_p_gt_per_row():
    from sepkit_hsm.losses import switch_global

    rows = 20000
    g_tgt, g_hat = torch.ones(rows, 3), torch.zeros(rows, 3)
    mixed, use_gt = switch_global(g_tgt, g_hat, 0.1, torch.Generator().manual_seed(0))
    fraction = float(use_gt.float().mean())
    assert abs(fraction - 0.1) < 4 * (0.1 * 0.9 / rows) ** 0.5, fraction  # 4 sigma = 0.0085
    assert torch.equal(mixed[:, 0] == 1, use_gt) and bool((mixed == mixed[:, :1]).all())  # whole rows switch
    _, again = switch_global(g_tgt, g_hat, 0.1, torch.Generator().manual_seed(0))
    assert torch.equal(again, use_gt)  # seeded: reproducible
    assert not bool(switch_global(g_tgt, g_hat, 0.0)[1].any()) and bool(switch_global(g_tgt, g_hat, 1.0)[1].all())


# --- sizes ---------------------------------------------------------------------------------------
def test_tiny_parameter_counts_match_the_formula():
    from sepkit_hsm.global_stage import GlobalSeparator
    from sepkit_hsm.local_stage import LocalSeparator

    for with_global in (True, False):
        sep = local(with_global=with_global)
        assert sum(p.numel() for p in sep.parameters()) == LocalSeparator.parameter_count(sep.config)
    g = local().global_stage
    assert sum(p.numel() for p in g.parameters()) == GlobalSeparator.parameter_count(g.config)


@pytest.mark.slow
def test_full_size_parameter_count_is_close_to_table_x():
    """Paper defaults (query_dim 768 = FLAN-T5-base, C_g = C_s = 768): Table X gives 129.9 M for both stages."""
    from sepkit_hsm.global_stage import GlobalSeparator
    from sepkit_hsm.local_stage import LocalSeparator

    sep = get_registry().build("separator", {"name": "hsm-local", "global_stage": {"name": "hsm-global"}})
    total = sum(p.numel() for p in sep.parameters())
    stage1 = sum(p.numel() for p in sep.global_stage.parameters())
    stage2 = total - stage1
    assert total == LocalSeparator.parameter_count(sep.config)
    assert stage1 == GlobalSeparator.parameter_count(sep.global_stage.config)
    assert len(sep.transformer.blocks) == 12 and len(sep.global_stage.transformer.blocks) == 6
    print(f"hsm-global {stage1 / 1e6:.2f} M + hsm-local {stage2 / 1e6:.2f} M = {total / 1e6:.2f} M (Table X: 129.9 M)")
    assert abs(total / 129.9e6 - 1) < 0.03
    assert stage1 == 44_301_312 and stage2 == 87_811_584


# --- checkpoint keys -----------------------------------------------------------------------------
def test_checkpoint_keys_load_stages_and_name_mismatches(tmp_path):
    from sepkit.checkpoint import save_checkpoint

    trained = local(seed=1)
    state = {f"separator.{k}": v for k, v in trained.state_dict().items()}
    path = tmp_path / "hsm.ckpt"
    save_checkpoint(path, {}, state, {})
    loaded = local(seed=2, checkpoint=str(path))
    for key, value in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    # the global stage alone from the same file (its separator.global_stage.* keys) ...
    stage = get_registry().build("separator", {"name": "hsm-global", **WIDTHS, **TINY, "checkpoint": str(path)})
    assert torch.equal(stage.global_out.weight, trained.global_stage.global_out.weight)
    # ... and the sub-section's own checkpoint wins over hsm-local's
    other = local(seed=3)
    other_path = tmp_path / "other.ckpt"
    save_checkpoint(other_path, {}, {f"separator.{k}": v for k, v in other.state_dict().items()}, {})
    mixed = local(
        checkpoint=str(path),
        global_stage={"name": "hsm-global", **TINY, "checkpoint": str(other_path)},
    )
    assert torch.equal(mixed.global_stage.global_out.weight, other.global_stage.global_out.weight)
    assert torch.equal(mixed.patch_out.weight, trained.patch_out.weight)
    # Ours_local weights do not fit a separator with a global stage: the keys are named
    save_checkpoint(tmp_path / "ours.ckpt", {}, {f"separator.{k}": v for k, v in local(False).state_dict().items()}, {})
    with pytest.raises(SepkitError, match=r"missing keys: global_stage\.") as caught:
        local(checkpoint=str(tmp_path / "ours.ckpt"))
    assert "global_in.weight" in str(caught.value)
    save_checkpoint(tmp_path / "none.ckpt", {}, {"decoder.x": torch.zeros(1)}, {})
    with pytest.raises(SepkitError, match="no 'separator"):
        local(checkpoint=str(tmp_path / "none.ckpt"))


# --- the training system ---------------------------------------------------------------------------
def tiny_recipe(*overrides: str):
    from sepkit.recipe import load_recipe

    return load_recipe(str(RECIPE), list(overrides))


def build_hsm_system(stage: str, *overrides: str):
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    recipe = tiny_recipe(f"train.system.stage={stage}", *overrides)
    torch.manual_seed(0)
    return build_system(recipe, load_train_config(recipe)), recipe


def fixed_batch() -> dict:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(20480) / 16000
    target = torch.stack([0.3 * torch.sin(2 * np.pi * 440 * t), 0.3 * torch.sin(2 * np.pi * 880 * t)])
    noise = 0.05 * torch.randn(2, 20480, generator=g)
    mixture = target + noise
    return {
        "mixture": mixture,
        "target": torch.stack([target[0], noise[1]]),  # row 1: remove the tone -> the noise
        "lengths": torch.tensor([20480, 14000]),
        "description": ["a high tone", "a higher tone"],
        "task": torch.tensor([0, 1]),
    }


def test_mixture_and_target_encoded_in_one_batch_equal_two_calls():
    system, _ = build_hsm_system("local")
    system.eval()
    batch = fixed_batch()
    with torch.no_grad():
        enc = system.encode(batch)
        for got, wave in ((enc.mixture, batch["mixture"]), (enc.target, batch["target"])):
            want = system.audio_encoder.encode_audio(wave, batch["lengths"])
            torch.testing.assert_close(got.frames, want.frames)
            torch.testing.assert_close(got.pooled, want.pooled)
            assert torch.equal(got.lengths, want.lengths) and got.frame_rate == want.frame_rate


@pytest.mark.parametrize("stage", ["global", "local", "joint"])
def test_each_stage_trains_on_a_fixed_batch(stage):
    system, _ = build_hsm_system(stage)
    optimizer, _ = system.optimizers(system.train_cfg)["main"]
    trained = {id(p) for p in system.parameters_for("main")}
    sep = system.separator
    assert not any(id(p) in trained for p in system.text_encoder.parameters())
    assert not any(id(p) in trained for p in system.audio_encoder.parameters())
    assert any(id(p) in trained for p in sep.global_stage.parameters()) == (stage != "local")
    assert (id(sep.patch_out.weight) in trained) == (stage != "global")
    batch = fixed_batch()
    system.train()
    assert not system.text_encoder.training and not system.audio_encoder.training
    losses = []
    for step in range(12):
        optimizer.zero_grad()
        out = system(batch, step)
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < 0.8 * losses[0], losses
    system.eval()
    with torch.no_grad():
        metrics = system.validation_step(batch)
    assert set(metrics) == set(system.validation_metrics)
    expected = {"global": {"loss", "global_cosine"}, "local": {"loss", "global_cosine", "local_l1"}}
    assert set(system.validation_metrics) == expected.get(stage, {"loss", "global_cosine", "local_l1"})
    assert all(v.shape == (2,) and bool(torch.isfinite(v).all()) for v in metrics.values())
    state = system.checkpoint_state()
    assert state and all(k.startswith("separator.") for k in state)  # the encoders are frozen: not stored


def test_joint_switcher_and_ours_local_system():
    system, _ = build_hsm_system("joint", "train.system.p_gt=1.0")
    out = system(fixed_batch(), 0)
    assert float(out["gt_fraction"]) == 1.0 and set(out) == {"loss", "global", "local", "gt_fraction"}
    torch.testing.assert_close(out["loss"], 0.1 * out["global"] + 1.0 * out["local"])
    ours, _ = build_hsm_system("local", "model.separator.global_stage=null")
    assert ours.global_stage is None and ours.validation_metrics == ("loss", "local_l1")
    assert float(ours(fixed_batch(), 0)["loss"].detach()) > 0
    with pytest.raises(SepkitError, match="global_stage"):
        build_hsm_system("global", "model.separator.global_stage=null")
    with pytest.raises(SepkitError, match="stage must be one of"):
        build_hsm_system("both")
    with pytest.raises(SepkitError, match="model.decoder"):
        build_hsm_system("local", "model.decoder.name=istft")


# --- stage chaining through the engine, and the pipeline reading the result --------------------
def write_corpus(root: Path) -> tuple[Path, Path]:
    """Frozen mixture manifests of 1.28 s tone + noise pairs (4 train, 2 val), extract and remove."""
    import soundfile

    from sepkit.data.manifest import InstructionRef, MixtureRecord, SourceRef, write_jsonl

    t = np.arange(20480) / 16000
    for i in range(2):
        soundfile.write(root / f"tone{i}.wav", (0.3 * np.sin(2 * np.pi * 300 * (i + 1) * t)).astype(np.float32), 16000)
        noise = 0.05 * np.random.default_rng(i).standard_normal(t.size)
        soundfile.write(root / f"noise{i}.wav", noise.astype(np.float32), 16000)
    records = {"train": [], "val": []}
    for split, count in (("train", 4), ("val", 2)):
        for n in range(count):
            sources = [
                SourceRef(f"tone{n % 2}", f"tone{n % 2}.wav", gain=1.0, tags=["tone"]),
                SourceRef(f"noise{n % 2}", f"noise{n % 2}.wav", gain=1.0, tags=["noise"]),
            ]
            instructions = [
                InstructionRef("extract", "extract the tone", "tone", [0]),
                InstructionRef("remove", "remove the noise", "noise", [0]),
            ]
            records[split].append(MixtureRecord(f"{split}-{n}", "test", split, 1.28, 16000, sources, instructions))
    write_jsonl(root / "train.jsonl", records["train"])
    write_jsonl(root / "val.jsonl", records["val"])
    return root / "train.jsonl", root / "val.jsonl"


class ZeroDecoder(Decoder):
    """A stand-in decoder of patch tokens (the codec-ar decoder is another plugin): silence of the right length."""

    consumes, input_dim, frame_rate, sample_rate = "audiomae_patches", 64, 12.5, 16000

    def __init__(self) -> None:
        super().__init__(None)
        self.bias = nn.Parameter(torch.zeros(1))

    def decode(self, features, num_samples=None):
        return torch.zeros(features.frames.shape[0], num_samples or 20480) + 0 * self.bias


def test_stages_chain_global_then_local_then_joint_and_the_pipeline_loads_the_result(tmp_path):
    from sepkit.checkpoint import load_checkpoint
    from sepkit.pipeline import SeparationPipeline
    from sepkit.train.engine import Trainer

    train, val = write_corpus(tmp_path)
    data = [f"data.train.mixtures={train}", f"data.val.mixtures={val}", "train.steps=4", "train.val_every=4"]
    data += ["train.ckpt_every=4", "train.log_every=1", "train.device=cpu"]
    runs, previous = {}, None
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for stage in ("global", "local", "joint"):
            recipe = tiny_recipe(*data, f"train.system.stage={stage}")
            Trainer(recipe, out_dir=tmp_path / stage, device="cpu", progress=False, init_from=previous).fit()
            previous = str(tmp_path / stage / "checkpoints" / "best.ckpt")
            runs[stage] = load_checkpoint(previous)["state_dict"]
    finally:
        torch.set_num_threads(before)
    for stage in runs:
        lines = [json.loads(x) for x in (tmp_path / stage / "metrics.jsonl").read_text().splitlines()]
        val_lines = [x for x in lines if x["split"] == "val"]
        assert val_lines and "global_cosine" in val_lines[-1]
    g_key, l_key = "separator.global_stage.global_out.weight", "separator.patch_out.weight"
    assert all(k.startswith("separator.") for k in runs["joint"])
    # the local run started from the global run and left its (frozen) global stage alone ...
    assert torch.equal(runs["local"][g_key], runs["global"][g_key])
    assert not torch.equal(runs["local"][l_key], runs["global"][l_key])
    # ... the global run left the local stage alone, and the joint run trained both
    assert not torch.equal(runs["joint"][g_key], runs["local"][g_key])
    assert not torch.equal(runs["joint"][l_key], runs["local"][l_key])

    # a pipeline with the recipe's components reads best.ckpt (the separator.* keys), as 'sepkit separate' does
    system, _ = build_hsm_system("local")
    pipeline = SeparationPipeline(
        system.text_encoder, system.audio_encoder, system.separator, ZeroDecoder(), stored_kinds=("separator",)
    )
    pipeline.load(previous)
    assert torch.equal(pipeline.separator.state_dict()["patch_out.weight"], runs["joint"][l_key])
    with torch.no_grad():
        batch = fixed_batch()
        wave = pipeline(batch["mixture"], batch["lengths"], batch["description"], batch["task"])
    assert wave.shape == (2, 20480)
    # hsm-local's checkpoint key reads the same file
    sep = local(
        input_dim=64,
        query_dim=384,
        global_dim=64,
        num_patches=16,
        checkpoint=previous,
        global_stage={"name": "hsm-global", **TINY},
    )
    assert torch.equal(sep.patch_out.weight, runs["joint"][l_key])
