"""Timbre augmentation (sepkit.data.augment): each transform against an independent measure, the recipe
section's errors, and the training data path (data.train.augment): exact targets, reproducible draws,
validation untouched; the diverse mini recipe repeats mini/audiosep apart from its data."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch

from sepkit.data import augment as A
from sepkit.data.dataset import dataset_from_config
from sepkit.data.manifest import ClipRecord, write_jsonl
from sepkit.errors import SepkitError

SR = 16000
ALL_ON = {"pitch": {"p": 1.0}, "eq": {"p": 1.0}, "reverb": {"p": 1.0}, "gain_curve": {"p": 1.0}}


def _level_db(x: np.ndarray) -> float:
    return 10 * math.log10(float(np.mean(np.square(x, dtype=np.float64))))


# --- the transforms ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, at_dc, at_nyquist", [("lowshelf", 6.0, 0.0), ("highshelf", 0.0, 6.0)])
def test_shelves_reach_their_gain_at_the_band_edge(kind, at_dc, at_nyquist):
    from scipy.signal import freqz

    b, a = A.biquad(kind, 1000.0, 6.0, A.SHELF_Q, SR)
    _, h = freqz(b, a, worN=[0.0, 1000.0, SR / 2 - 1], fs=SR)
    gains = 20 * np.log10(np.abs(h))
    assert gains[0] == pytest.approx(at_dc, abs=0.05) and gains[2] == pytest.approx(at_nyquist, abs=0.05)
    assert gains[1] == pytest.approx(3.0, abs=0.05)  # half the gain (in dB) at the shelf frequency


def test_peaking_filter_equals_torchaudios_equalizer():
    """An independent implementation: torchaudio.functional.equalizer_biquad (RBJ peaking EQ)."""
    from scipy.signal import lfilter
    from torchaudio.functional import equalizer_biquad

    x = 0.1 * np.random.default_rng(0).standard_normal(4000)
    b, a = A.biquad("peaking", 1500.0, -4.5, 1.3, SR)
    ours = lfilter(b, a, x)
    theirs = equalizer_biquad(torch.from_numpy(x), SR, 1500.0, -4.5, 1.3).numpy()
    assert np.max(np.abs(ours - theirs)) < 1e-6


def test_pitch_shift_moves_a_tone_by_the_semitones_and_keeps_the_length():
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 440.0 * t)
    for semitones in (2.0, -2.0, 0.7):
        shifted = A.pitch_shift(tone, semitones)
        assert shifted.shape == tone.shape
        n = int(SR * 0.8)  # the first 0.8 s: no padding even when raised by 2 semitones
        spectrum = np.abs(np.fft.rfft(shifted[:n] * np.hanning(n)))
        peak = np.argmax(spectrum) * SR / n
        assert peak == pytest.approx(440.0 * 2 ** (semitones / 12), rel=0.01), semitones
    assert np.array_equal(A.pitch_shift(tone, 0.0), tone)


def test_impulse_response_decays_60_db_over_rt60_with_unit_energy():
    rt60 = 0.5
    h = A.impulse_response(rt60, SR, np.random.default_rng(1))
    assert len(h) == int(rt60 * SR) and np.sum(h**2) == pytest.approx(1.0)
    frame = SR // 50
    levels = [10 * np.log10(np.mean(h[i : i + frame] ** 2)) for i in range(0, len(h) - frame, frame)]
    slope = np.polyfit(np.arange(len(levels)) * frame / SR, levels, 1)[0]  # dB per second
    assert slope * rt60 == pytest.approx(-60.0, rel=0.1)


def test_gain_curve_stays_within_its_depth_and_is_slow():
    config = A.GainCurveConfig(p=1.0, depth_db=6.0, points=4)
    gains = A.gain_curve(SR, config, np.random.default_rng(2))
    db = 20 * np.log10(gains)
    assert db.min() >= -6.0 and db.max() <= 6.0 and np.ptp(db) > 1.0
    assert np.max(np.abs(np.diff(db))) < 12.0 / (SR / 3) + 1e-9  # linear in dB between 4 points


def test_augment_source_keeps_the_energy_and_draws_reproducibly():
    config = A.augment_config(ALL_ON)
    x = 0.2 * np.random.default_rng(3).standard_normal(2 * SR)
    y = A.augment_source(x, config, np.random.default_rng(9), SR)
    assert _level_db(y) == pytest.approx(_level_db(x), abs=1e-6) and not np.allclose(y, x)
    assert np.array_equal(y, A.augment_source(x, config, np.random.default_rng(9), SR))
    silent = np.zeros(SR)
    assert np.array_equal(A.augment_source(silent, config, np.random.default_rng(9), SR), silent)
    never = A.augment_config({name: {"p": 0.0} for name in A.SECTIONS})
    assert np.array_equal(A.augment_source(x, never, np.random.default_rng(9), SR), x)


def test_augment_sources_keeps_mixture_sources_and_targets_under_the_peak_limit():
    loud = np.stack([0.9 * np.sign(np.sin(np.linspace(0, 300, SR))), 0.9 * np.ones(SR)])
    out = A.augment_sources(loud, A.augment_config(ALL_ON), np.random.default_rng(4), SR, [[0], [0, 1]])
    assert out.dtype == np.float32 and out.shape == loud.shape
    assert np.abs(out.sum(axis=0)).max() <= A.PEAK_LIMIT + 1e-6 and np.abs(out).max() <= A.PEAK_LIMIT + 1e-6


# --- the recipe section --------------------------------------------------------------------------------
def test_augment_config_defaults_and_off():
    assert A.augment_config(None) is None and A.augment_config({}) is None
    assert A.augment_config({"pitch": None, "eq": False}) is None
    config = A.augment_config({"pitch": {}, "reverb": {"rt60": [0.3, 0.6]}})
    assert config.pitch == A.PitchConfig() and config.eq is None and config.reverb.rt60 == [0.3, 0.6]
    assert A.describe(config) == {"pitch": {"p": 0.5, "semitones": 2.0},
                                  "reverb": {"p": 0.3, "rt60": [0.3, 0.6], "wet": [0.1, 0.5]}}  # fmt: skip


@pytest.mark.parametrize(
    "section, words",
    [
        ({"pitchh": {}}, ["unknown key 'data.train.augment.pitchh'", "pitch, eq, reverb, gain_curve"]),
        ({"eq": {"gain": 3}}, ["unknown key 'data.train.augment.eq.gain'", "p, max_filters, gain_db"]),
        ({"eq": {"p": 1.5}}, ["'data.train.augment.eq.p'", "in [0, 1]"]),
        ({"pitch": {"semitones": 0}}, ["'data.train.augment.pitch.semitones'"]),
        ({"reverb": {"wet": [0.6, 0.2]}}, ["'data.train.augment.reverb.wet'", "low <= high"]),
        ({"gain_curve": {"points": "many"}}, ["'data.train.augment.gain_curve.points'"]),
        ({"pitch": 2}, ["'data.train.augment.pitch' must be a mapping"]),
        ("pitch", ["'data.train.augment' must be a mapping"]),
    ],
    ids=["section", "key", "probability", "range", "pair", "type", "not-mapping", "not-mapping-top"],
)
def test_augment_config_errors_name_the_key(section, words):
    with pytest.raises(SepkitError) as info:
        A.augment_config(section)
    for word in words:
        assert word in str(info.value)


# --- the training data path ----------------------------------------------------------------------------
CLASSES = ("violin", "rain", "man speaking", "piano", "siren", "cello")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    records = []
    for i, name in enumerate(CLASSES):
        t = np.arange(SR) / SR
        wave = 0.3 * np.sin(2 * np.pi * (200 + 90 * i) * t) + 0.05 * np.random.default_rng(i).standard_normal(SR)
        soundfile.write(str(folder / f"{i}.wav"), wave.astype(np.float32), SR, subtype="FLOAT")
        records.append(ClipRecord(f"c{i}", f"{i}.wav", 1.0, SR, [name], [f"a {name}"], "train"))
    write_jsonl(folder / "train.jsonl", records)
    return folder / "train.jsonl"


def _section(manifest, **extra):
    base = dict(mixtures=None, shards=None, clips=str(manifest), protocol="hsm_tss", length=6, seconds=1.0,
                instruction=None, sources=True)  # fmt: skip
    return SimpleNamespace(**{**base, **extra})


def test_training_examples_mix_the_augmented_sources_and_target_them_exactly(clips):
    plain = dataset_from_config(_section(clips), "train", SR, None, 0)
    augmented = dataset_from_config(_section(clips, augment=ALL_ON), "train", SR, None, 0)
    for i in range(len(plain)):
        a, b = plain[i], augmented[i]
        assert (a["id"], a["description"], a["task"]) == (b["id"], b["description"], b["task"])  # same draws
        assert not np.allclose(a["sources"], b["sources"])
        assert np.allclose(b["sources"].sum(axis=0), b["mixture"], atol=1e-6)
        assert np.array_equal(b["target"], b["sources"][0])  # hsm_tss: both instructions target source 0
        for s, t in zip(a["sources"], b["sources"]):  # per-source energy kept (up to the shared peak scale)
            assert _level_db(t) - _level_db(s) < 0.01
        again = augmented[i]
        assert all(np.array_equal(b[k], again[k]) for k in ("mixture", "target", "sources"))


def test_without_augment_examples_are_what_they_were(clips):
    before = dataset_from_config(_section(clips), "train", SR, None, 0)
    off = dataset_from_config(_section(clips, augment=None, wording=None), "train", SR, None, 0)
    for i in range(len(before)):
        a, b = before[i], off[i]
        assert a["description"] == b["description"] and np.array_equal(a["mixture"], b["mixture"])


def test_augment_is_for_training_mixtures_only(clips):
    with pytest.raises(SepkitError, match="data.val: augment and wording are for training data only"):
        dataset_from_config(_section(clips, augment=ALL_ON), "val", SR, None, 0)
    with pytest.raises(SepkitError, match="protocol 'clean' gives the clean clips"):
        dataset_from_config(_section(clips, protocol="clean", sources=False, augment=ALL_ON), "train", SR, None, 0)
    with pytest.raises(SepkitError, match="unknown key 'data.train.augment.bogus'"):
        dataset_from_config(_section(clips, augment={"bogus": {}}), "train", SR, None, 0)


def test_the_diverse_recipe_is_mini_audiosep_with_diverse_training_data_and_text_noise():
    from sepkit.recipe import load_recipe

    diverse = load_recipe("mini/audiosep_diverse").to_container()
    shipped = load_recipe("mini/audiosep").to_container()
    for key in ("name", "description", "checkpoint"):
        diverse.pop(key), shipped.pop(key)
    train, base = diverse["data"].pop("train"), shipped["data"].pop("train")
    assert diverse["train"].pop("system") == {"name": "separation", "text_noise": 1.0}
    assert shipped["train"].pop("system") == "separation"
    assert diverse == shipped  # model, inference, the rest of train, validation data: the same
    assert {k: v for k, v in train.items() if k not in ("clips", "augment", "wording")} == {
        k: v for k, v in base.items() if k != "clips"
    }
    assert train["clips"].endswith("data/mini_diverse/train.jsonl") and train["wording"] == "grammar"
    assert set(A.describe(A.augment_config(train["augment"]))) == set(A.SECTIONS)
    shipped_weights = load_recipe("mini/audiosep_diverse").checkpoint_path()
    assert shipped_weights is not None and shipped_weights.name == "audiosep_diverse.ckpt" and shipped_weights.is_file()
