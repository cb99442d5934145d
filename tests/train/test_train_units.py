"""Unit tests of the training parts: recipe schemas, schedules, EMA, the rank-aware sampler, losses."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TRAIN_RECIPE

from sepkit.errors import SepkitError
from sepkit.recipe import load_recipe
from sepkit.train.config import load_data_config, load_train_config
from sepkit.train.distributed import DistInfo, EpochSampler, check_batch_size
from sepkit.train.ema import EMA
from sepkit.train.optim import build_optimizer, build_scheduler, parameter_groups, schedule_factor
from sepkit.train.system import l1, si_sdr, snr


def recipe(*overrides):
    return load_recipe(str(TRAIN_RECIPE), list(overrides))


# --- schemas -----------------------------------------------------------------------------
def test_train_defaults_and_recipe_values():
    cfg = load_train_config(recipe("train.lr=0.01", "train.schedule.warmup_steps=3"))
    assert cfg.lr == 0.01 and cfg.schedule.name == "cosine" and cfg.schedule.warmup_steps == 3
    assert cfg.batch_size == 4 and cfg.betas == [0.9, 0.999] and cfg.system == "separation"


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.bogus=1", "'train.bogus'"),
        ("train.schedule.bogus=1", "'train.schedule.bogus'"),
        ("train.steps=many", "'train.steps'"),
        ("train.precision=fp8", "train.precision"),
        ("train.dtype=float32", "renamed train.precision"),
        ("train.schedule.name=linear", "train.schedule.name"),
        ("train.ema=2.0", "train.ema"),
        ("train=0", "'train' must be a mapping"),
    ],
)
def test_bad_train_keys_name_the_key_and_file(override, needle):
    with pytest.raises(SepkitError) as err:
        load_train_config(recipe(override))
    assert needle in str(err.value) and "train_stft_mask.yaml" in str(err.value)


def test_unknown_key_lists_allowed_keys():
    with pytest.raises(SepkitError, match="allowed keys of 'train': .*batch_size"):
        load_train_config(recipe("train.batchsize=3"))


def test_data_schema_errors():
    with pytest.raises(SepkitError, match="names no training data"):
        load_data_config(recipe())  # the tiny recipe leaves data.train empty
    with pytest.raises(SepkitError, match="no 'data:' section"):
        load_data_config(load_recipe("tiny/stft_mask"))
    with pytest.raises(SepkitError, match="'data.val.bogus'"):
        load_data_config(recipe("data.train.mixtures=a.jsonl", "data.val.bogus=1"))
    with pytest.raises(SepkitError, match="needs data.train.protocol"):
        load_data_config(recipe("data.train.clips=c.jsonl"))
    with pytest.raises(SepkitError, match="'data.train' must be a mapping"):
        load_data_config(recipe("data.train=x.jsonl"))
    cfg = load_data_config(recipe("data.train.mixtures=a.jsonl"))
    assert cfg.train.mixtures == "a.jsonl" and cfg.val is None and cfg.sample_rate == 16000


# --- schedules and optimizer ----------------------------------------------------------------
def test_schedules():
    from sepkit.train.config import ScheduleConfig

    warm = schedule_factor(ScheduleConfig(name="constant", warmup_steps=4), 100)
    assert [warm(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cos = schedule_factor(ScheduleConfig(name="cosine", warmup_steps=0, min_ratio=0.1), 10)
    assert cos(0) == pytest.approx(1.0) and cos(5) == pytest.approx(0.55) and cos(10) == pytest.approx(0.1)
    step = schedule_factor(ScheduleConfig(name="step", step_size=3, gamma=0.5), 100)
    assert [step(s) for s in (0, 2, 3, 6)] == [1.0, 1.0, 0.5, 0.25]


def test_optimizer_decay_groups_and_scheduler_state():
    cfg = load_train_config(recipe("train.lr=0.1", "train.schedule.warmup_steps=2", "train.steps=10"))
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    groups = parameter_groups(model.parameters(), 0.01)
    assert [len(g["params"]) for g in groups] == [1, 3] and groups[1]["weight_decay"] == 0.0
    opt = build_optimizer(model.parameters(), cfg)
    sched = build_scheduler(opt, cfg)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    state = sched.state_dict()
    assert state["lr_lambdas"] == [None, None]  # a closure: only the position is saved


# --- EMA ---------------------------------------------------------------------------------
def test_ema_tracks_and_swaps_weights():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.5)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)  # warmup decay min(0.5, 2/11)
    expected = start + (1 - 2 / 11)
    assert torch.allclose(ema.shadow["weight"], expected)
    live = model.weight.detach().clone()
    with ema.applied(model):
        assert torch.allclose(model.weight, expected)
    assert torch.equal(model.weight, live)
    other = EMA(model, 0.5)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and torch.equal(other.shadow["weight"], ema.shadow["weight"])


# --- the sampler -------------------------------------------------------------------------
def test_sampler_gives_every_rank_the_same_steps_and_disjoint_examples():
    length, batch, world = 23, 3, 2
    samplers = [EpochSampler(length, batch, rank=r, world_size=world, seed=5) for r in range(world)]
    assert len(samplers[0]) == len(samplers[1]) == 3  # 11 examples per rank -> 3 whole batches
    for epoch in (0, 1):
        seen = [sum(s.batches(epoch), []) for s in samplers]
        assert not set(seen[0]) & set(seen[1])
        assert all(len(b) == batch for s in samplers for b in s.batches(epoch))
    assert samplers[0].batches(0) != samplers[0].batches(1)  # reshuffled per epoch
    assert samplers[0].batches(0, start=2) == samplers[0].batches(0)[2:]
    assert EpochSampler(length, batch, seed=5).batches(0) == EpochSampler(length, batch, seed=5).batches(0)


def test_validation_sampler_covers_everything_once():
    parts = [EpochSampler(7, 2, r, 2, shuffle=False, drop_last=False).batches(0) for r in range(2)]
    flat = sorted(i for p in parts for b in p for i in b)
    assert flat == list(range(7))


def test_batch_size_check():
    check_batch_size(8, 4, DistInfo(), "training")
    with pytest.raises(SepkitError, match="batch_size=9 is larger than the training set: 8 examples"):
        check_batch_size(8, 9, DistInfo(), "training")
    with pytest.raises(SepkitError, match="over 2 processes \\(4 per process\\)"):
        check_batch_size(8, 5, DistInfo(rank=0, world_size=2), "training")


# --- losses ------------------------------------------------------------------------------
def test_losses_are_masked_by_lengths():
    torch.manual_seed(0)
    target = torch.randn(2, 100)
    estimate = target + 0.1 * torch.randn(2, 100)
    lengths = torch.tensor([100, 60])
    garbage = estimate.clone()
    garbage[1, 60:] = 1e3  # beyond the length: must not count
    for fn in (l1, snr, si_sdr):
        assert torch.allclose(fn(garbage, target, lengths), fn(estimate, target, lengths))
    assert si_sdr(3 * target, target, lengths).min() > 60  # scale-invariant
    assert snr(target, target, lengths).min() > 60
    assert math.isclose(float(l1(target + 0.5, target, lengths)[1]), 0.5, rel_tol=1e-6)
