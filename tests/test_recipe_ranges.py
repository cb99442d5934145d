"""Value ranges of component Configs and recipe sections, checked when a recipe is loaded (issue 13).

A recipe with ``sample_rate: 0``, ``n_fft: 0``, a negative hop or a dropout of 2 must fail at load time
with a SepkitError naming the key (the CLI: exit 2, one line), not crash later at run time; a dotlist
item without '=' must be refused instead of silently setting null.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Optional

import pytest

from sepkit.config import (
    RANGE,
    at_least,
    component_config,
    fraction,
    in_range,
    non_negative,
    positive,
    probability,
    ranged,
    require,
)
from sepkit.errors import SepkitError
from sepkit.plugins import get_registry
from sepkit.recipe import load_recipe, recipes_dir, resolve_components
from sepkit.registry import config_class

REPO = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO / "recipes" / "tiny" / "stft_mask.yaml"
TRAIN_RECIPE = REPO / "recipes" / "tiny" / "train_stft_mask.yaml"


# --- the mechanism ------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Config:
    sample_rate: int = positive(16000)
    n_fft: int = dataclasses.field(default=512, metadata=at_least(1))
    hop_length: int = positive(128)
    win_length: Optional[int] = positive(None)  # None: n_fft
    channels: list[int] = positive(default_factory=lambda: [4, 8])
    dropout: float = fraction(0.1)
    p: float = probability(0.5)
    gain: float = ranged(1.0, low=0.0, high=10.0)
    scale: float = positive(1.0)
    seed: int = non_negative(0)
    input_dim: int = positive("???")  # filled by the pipeline
    note: str = "free text"  # no range

    def __post_init__(self) -> None:
        require(self.hop_length <= self.n_fft, "hop_length", f"must be at most n_fft ({self.n_fft})")
        if self.gain == 7.0:
            raise ValueError("seven is unlucky")


class _Component:
    Config = _Config


def _build(**options):
    return component_config(_Component, options, where="model.audio_encoder", component="audio_encoder 'stft'")


def test_in_range_values_build_the_config():
    config = _build(input_dim=3, sample_rate=1, n_fft=1, hop_length=1, dropout=0.0, p=1.0, gain=10.0, seed=0)
    assert (config.sample_rate, config.n_fft, config.dropout, config.p, config.gain) == (1, 1, 0.0, 1.0, 10.0)
    assert config.win_length is None  # None is "use the default", never checked
    assert _build(input_dim=3, scale=1e-12).scale == 1e-12


def test_the_issue_message():
    with pytest.raises(SepkitError) as caught:
        _build(input_dim=3, sample_rate=0)
    assert str(caught.value) == (
        "bad value for 'model.audio_encoder.sample_rate' of audio_encoder 'stft': must be at least 1, got 0; "
        "fix the recipe"
    )


@pytest.mark.parametrize(
    "key, value, reason",
    [
        ("sample_rate", -16000, "must be at least 1, got -16000"),
        ("n_fft", 0, "must be at least 1, got 0"),
        ("hop_length", -1, "must be at least 1, got -1"),
        ("win_length", 0, "must be at least 1, got 0"),
        ("channels", [4, 0, 8], "must be at least 1, got 0"),
        ("dropout", 1.0, "must be in [0, 1), got 1.0"),
        ("dropout", -0.1, "must be in [0, 1), got -0.1"),
        ("p", 1.5, "must be in [0, 1], got 1.5"),
        ("gain", 11.0, "must be in [0.0, 10.0], got 11.0"),
        ("scale", 0.0, "must be greater than 0, got 0.0"),
        ("scale", math.nan, "must be a finite number"),
        ("scale", math.inf, "must be a finite number"),
        ("dropout", -math.inf, "must be a finite number"),
        ("seed", -1, "must be at least 0, got -1"),
        ("input_dim", 0, "must be at least 1, got 0"),
    ],
)
def test_out_of_range_values_name_the_key(key, value, reason):
    options = {"input_dim": 3, key: value}
    with pytest.raises(SepkitError) as caught:
        _build(**options)
    message = str(caught.value)
    shown = f"{key}[1]" if isinstance(value, list) else key
    assert message.startswith(f"bad value for 'model.audio_encoder.{shown}' of audio_encoder 'stft': "), message
    assert reason in message and message.endswith("; fix the recipe")
    assert "\n" not in message


def test_rules_across_fields_name_the_key():
    with pytest.raises(SepkitError, match=r"'model\.audio_encoder\.hop_length' of audio_encoder 'stft': must be at "
                                          r"most n_fft \(512\); fix the recipe"):
        _build(input_dim=3, hop_length=1024)
    with pytest.raises(SepkitError, match=r"bad value for 'model\.audio_encoder' of audio_encoder 'stft': seven"):
        _build(input_dim=3, gain=7.0)  # a plain ValueError of __post_init__ names the section


def test_showing_a_recipe_checks_the_values_that_are_set_and_skips_missing_ones():
    shown = component_config(_Component, {}, where="model.x", component="c", allow_missing=True)
    assert shown["input_dim"] == "???" and shown["sample_rate"] == 16000
    with pytest.raises(SepkitError, match=r"'model\.x\.sample_rate'.*at least 1, got 0"):
        component_config(_Component, {"sample_rate": 0}, where="model.x", component="c", allow_missing=True)
    # __post_init__ needs every value: it runs once nothing is missing
    component_config(_Component, {"hop_length": 1024}, where="model.x", component="c", allow_missing=True)
    with pytest.raises(SepkitError, match=r"'model\.x\.hop_length'"):
        component_config(_Component, {"hop_length": 1024, "input_dim": 2}, "model.x", "c", allow_missing=True)


def test_metadata_helpers_compose_with_dataclasses_field():
    assert dataclasses.fields(_Config)[1].metadata[RANGE] == at_least(1)[RANGE]
    assert in_range(0, 1, high_open=True)[RANGE].problem(0.5) is None
    assert in_range(0, 1, high_open=True)[RANGE].problem(1) == "must be in [0, 1), got 1"
    assert at_least(1)[RANGE].problem(True) is not None  # a bool is not a number here


# --- every plugin Config declares the ranges of its sizes ----------------------------------------------
SIZE_LIKE = re.compile(
    r"(sample_rate|n_fft|hop|win_length|n_mels|mel_bins|hidden|_dim$|^dim$|channels|layers|depth|heads|dropout|"
    r"frame_rate|kernel_size|max_length|num_patches|codebook_size)"
)


def _builtin_configs():
    registry = get_registry()
    seen = {}
    for kind in registry.kinds:
        for entry in registry.entries(kind):
            if entry.provider != "sepkit" or entry.unavailable:
                continue
            config = config_class(registry.load_class(kind, entry.name))
            seen.setdefault(config, f"{kind} {entry.name!r}")
    return seen


def test_size_like_fields_of_every_builtin_config_have_a_range():
    unranged = []
    for config, component in _builtin_configs().items():
        for f in dataclasses.fields(config):
            if SIZE_LIKE.search(f.name) and f.type not in ("bool", bool) and RANGE not in f.metadata:
                unranged.append(f"{component}: {config.__qualname__}.{f.name}")
    assert not unranged, "size-like Config fields without a range: " + ", ".join(unranged)


def test_every_declared_range_rejects_a_value_outside_it():
    """For each ranged field of each built-in Config: a value just outside is a SepkitError naming the key."""
    checked = 0
    for config, component in _builtin_configs().items():
        cls = type("C", (), {"Config": config})
        for f in dataclasses.fields(config):
            rule = f.metadata.get(RANGE)
            if rule is None:
                continue
            bad = (rule.low - 1) if rule.low is not None else (rule.high + 1)
            is_list = "list" in str(f.type)
            value = [bad] if is_list else bad
            if "int" in str(f.type) and bad != int(bad):
                continue
            with pytest.raises(SepkitError) as caught:
                component_config(cls, {f.name: value}, where="model.x", component=component, allow_missing=True)
            key = f"{f.name}[0]" if is_list else f.name
            assert f"'model.x.{key}'" in str(caught.value), (component, f.name, str(caught.value))
            checked += 1
    assert checked > 100


# --- recipes: load_recipe + resolve_components (what `sepkit recipe show --resolved` runs) ------------
def _resolve(*overrides, recipe=TINY_RECIPE):
    return resolve_components(load_recipe(str(recipe), list(overrides)), get_registry())


@pytest.mark.parametrize(
    "override, key, reason",
    [
        ("model.audio_encoder.sample_rate=0", "model.audio_encoder.sample_rate", "at least 1, got 0"),
        ("model.audio_encoder.n_fft=0", "model.audio_encoder.n_fft", "at least 1, got 0"),
        ("model.audio_encoder.hop_length=-64", "model.audio_encoder.hop_length", "at least 1, got -64"),
        ("model.audio_encoder.win_length=0", "model.audio_encoder.win_length", "at least 1, got 0"),
        ("model.audio_encoder.win_length=512", "model.audio_encoder.win_length", "at most n_fft (256), got 512"),
        ("model.audio_encoder.hop_length=300", "model.audio_encoder.hop_length", "at most the window"),
        ("model.decoder.sample_rate=-1", "model.decoder.sample_rate", "at least 1, got -1"),
        ("model.separator.hidden=0", "model.separator.hidden", "at least 1, got 0"),
        ("model.separator.layers=-2", "model.separator.layers", "at least 1, got -2"),
        ("model.text_encoder.max_length=0", "model.text_encoder.max_length", "at least 1, got 0"),
    ],
)
def test_bad_component_values_fail_when_the_recipe_is_resolved(override, key, reason):
    with pytest.raises(SepkitError) as caught:
        _resolve(override)
    message = str(caught.value)
    assert f"bad value for '{key}' of " in message and reason in message, message
    assert str(TINY_RECIPE) in message and message.endswith("fix the recipe")


def test_bad_component_values_fail_when_the_component_is_built():
    section = {"name": "stft", "n_fft": 256, "hop_length": 64, "sample_rate": 0}
    with pytest.raises(SepkitError, match=r"'model\.audio_encoder\.sample_rate' of audio_encoder 'stft': must be"):
        get_registry().build("audio_encoder", section, where="model.audio_encoder")
    # a rule across fields runs once every value is known: here with the pipeline's input_dim and query_dim
    with pytest.raises(SepkitError, match=r"'model\.separator\.kernel_size' of separator 'mask-net': must be odd"):
        get_registry().build(
            "separator", {"name": "mask-net", "kernel_size": 4}, where="model.separator", input_dim=129, query_dim=16
        )


@pytest.mark.parametrize(
    "override, pattern",
    [
        ("inference.chunk_seconds=nan", r"'inference\.chunk_seconds': must be a finite number"),
        ("inference.chunk_seconds=0", r"'inference\.chunk_seconds': must be greater than 0, got 0\.0"),
        ("inference.overlap_seconds=-1", r"'inference\.overlap_seconds': must be at least 0"),
        ("inference.overlap_seconds=inf", r"'inference\.overlap_seconds': must be a finite number"),
        ("inference.batch_size=0", r"'inference\.batch_size': must be at least 1, got 0"),
        ("inference=5", r"'inference' must be a mapping"),
        ("model=[1, 2]", r"override 'model=\[1, 2\]' does not fit the recipe"),
        ("model.audio_encoder=[1]", r"override 'model.audio_encoder=\[1\]' does not fit the recipe"),
        ("name=[1]", r"'name' must be text or null"),
        ("checkpoint=5", r"'checkpoint' must be text or null"),
        ("model.text_encoder.freeze=5", r"'model\.text_encoder\.freeze' must be true or false, got 5"),
    ],
)
def test_bad_recipe_sections_are_sepkit_errors(override, pattern):
    with pytest.raises(SepkitError, match=pattern):
        load_recipe(str(TINY_RECIPE), [override])


@pytest.mark.parametrize(
    "override, key, reason",
    [
        ("train.batch_size=0", "train.batch_size", "at least 1, got 0"),
        ("train.eps=0", "train.eps", "greater than 0"),
        ("train.lr=nan", "train.lr", "finite"),
        ("train.seed=-1", "train.seed", "in [0, "),
        ("train.betas=[0.9,1.5]", "train.betas[1]", "in [0, 1), got 1.5"),
        ("train.schedule.gamma=0", "train.schedule.gamma", "greater than 0"),
        ("train.schedule.step_size=0", "train.schedule.step_size", "at least 1, got 0"),
        ("train.schedule.min_ratio=2", "train.schedule.min_ratio", "in [0, 1]"),
        ("train.grad_clip=-1", "train.grad_clip", "at least 0"),
        ("train.ema=1.5", "train.ema", "in (0, 1)"),
    ],
)
def test_train_section_ranges(override, key, reason):
    from sepkit.train.config import load_train_config

    with pytest.raises(SepkitError) as caught:
        load_train_config(load_recipe(str(TRAIN_RECIPE), [override]))
    message = str(caught.value)
    assert f"bad value for '{key}': " in message and reason in message, message


@pytest.mark.parametrize(
    "override, key",
    [
        ("data.sample_rate=0", "data.sample_rate"),
        ("data.crop_seconds=-1", "data.crop_seconds"),
        ("data.cache_clips=-1", "data.cache_clips"),
        ("data.num_workers=-1", "data.num_workers"),
        ("data.train.length=0", "data.train.length"),
        ("data.train.seconds=0", "data.train.seconds"),
    ],
)
def test_data_section_ranges(override, key):
    from sepkit.train.config import load_data_config

    recipe = load_recipe(str(TRAIN_RECIPE), ["data.train.clips=c.jsonl", "data.train.protocol=hsm_tss",
                                             "data.train.length=10", override])
    with pytest.raises(SepkitError, match=rf"bad value for '{re.escape(key)}': must be"):
        load_data_config(recipe)


# --- dotlist overrides --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "item, message",
    [
        ("model.separator.hidden", "override 'model.separator.hidden' has no '='; write key.path=value"),
        ("=5", "override '=5' has no key before '='; write key.path=value"),
        ("model.separator.hidden =5", "override 'model.separator.hidden =5': the key 'model.separator.hidden ' "
                                      "contains spaces; write key.path=value"),
        ("model separator=5", "override 'model separator=5': the key 'model separator' contains spaces; "
                              "write key.path=value"),
        ("model..hidden=5", "override 'model..hidden=5': the key 'model..hidden' has an empty part; "
                            "write key.path=value"),
    ],
)
def test_malformed_overrides_are_refused(item, message):
    with pytest.raises(SepkitError) as caught:
        load_recipe(str(TINY_RECIPE), ["model.separator.layers=2", item])
    assert str(caught.value) == message


def test_unreadable_override_values_name_the_item():
    with pytest.raises(SepkitError, match=r"^bad override 'model\.separator\.hidden=\$\{': .*write key.path=value$"):
        load_recipe(str(TINY_RECIPE), ["model.separator.hidden=${"])


def test_well_formed_overrides_still_apply():
    recipe = load_recipe(str(TINY_RECIPE), ["model.separator.hidden=16", "description=a b = c", "name="])
    assert recipe.config.model.separator.hidden == 16
    assert recipe.config.description == "a b = c"


# --- bundled recipes ----------------------------------------------------------------------------------
BUNDLED = sorted(recipes_dir().rglob("*.yaml"))


@pytest.mark.parametrize("path", BUNDLED, ids=[str(p.relative_to(recipes_dir())) for p in BUNDLED])
def test_bundled_recipes_resolve_within_their_ranges(path):
    recipe = load_recipe(str(path))
    resolve_components(recipe, get_registry())
    if recipe.config.get("train") is not None:
        from sepkit.train.config import load_train_config

        load_train_config(recipe)


# --- the command line: exit 2, one line naming the key, nothing written -------------------------------
def test_separate_with_sample_rate_zero_exits_2_and_writes_nothing(sepkit_cli, write_wav, tmp_path):
    mix = write_wav(tmp_path / "mix.wav", seconds=0.5)
    recipe = tmp_path / "R.yaml"
    recipe.write_text(f"extends: {REPO / 'recipes' / 'stft_mask.yaml'}\nmodel: {{audio_encoder: {{sample_rate: 0}}}}\n")
    out = tmp_path / "OUT.wav"
    result = sepkit_cli("separate", mix, "-q", "extract the violin", "--recipe", recipe, "-o", out, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("sepkit: error:")]
    assert len(errors) == 1, result.stderr
    assert "'model.audio_encoder.sample_rate'" in errors[0] and "at least 1, got 0" in errors[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R.yaml", "mix.wav"]


def test_recipe_show_with_an_override_without_equals_exits_2(sepkit_cli):
    result = sepkit_cli("recipe", "show", "tiny/stft_mask", "model.separator.hidden")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "override 'model.separator.hidden' has no '='; write key.path=value" in lines[0]
    assert result.stdout == ""


def test_recipe_show_resolved_checks_ranges(sepkit_cli):
    result = sepkit_cli("recipe", "show", "tiny/stft_mask", "model.audio_encoder.n_fft=0", "--resolved")
    assert result.returncode == 2, result.stderr
    assert "'model.audio_encoder.n_fft'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
