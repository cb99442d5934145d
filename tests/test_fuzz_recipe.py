"""Property-based tests: any dotlist override of a bundled tiny recipe loads or fails with a SepkitError.

The CLI contract (exit 2 with one line for a bad recipe, exit 1 only for bugs) rests on
``load_recipe`` + ``resolve_components`` (what ``sepkit recipe show --resolved`` and every
command run first) raising nothing but ``SepkitError`` for a bad recipe. These tests throw
random keys (the recipe's own paths, near misses, nonsense) and random values (numbers at and
past their limits, nan/inf, text, lists, mappings, YAML and omegaconf specials) at them.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sepkit.errors import SepkitError  # noqa: E402
from sepkit.plugins import get_registry  # noqa: E402
from sepkit.recipe import load_recipe, resolve_components  # noqa: E402
from sepkit.train.config import flatten, load_data_config, load_train_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO / "recipes" / "tiny" / "stft_mask.yaml"
BASE_RECIPE = REPO / "recipes" / "stft_mask.yaml"  # what the tiny recipe extends (one level allowed)
TRAIN_RECIPE = REPO / "recipes" / "tiny" / "train_stft_mask.yaml"


def _paths(recipe_path) -> list[str]:
    """Every key path of the recipe, resolved (component defaults included), and every section above them."""
    config = resolve_components(load_recipe(str(recipe_path)), get_registry())
    from omegaconf import OmegaConf

    leaves = list(flatten(OmegaConf.to_container(config)))
    sections = {".".join(p.split(".")[:i]) for p in leaves for i in range(1, p.count(".") + 1)}
    return sorted(set(leaves) | sections)


TINY_PATHS = _paths(TINY_RECIPE)
TRAIN_PATHS = _paths(TRAIN_RECIPE) + [
    "train.schedule.step_size",
    "train.schedule.gamma",
    "train.betas",
    "train.eps",
    "data.cache_clips",
    "data.train.mixtures",
    "data.train.clips",
    "data.train.protocol",
    "data.train.length",
    "data.train.seconds",
    "data.val.instruction",
]

SPECIALS = [
    "null", "~", "???", "''", '""', "{}", "[]", "{a: b}", "[1, 2]", "[0, -1]", "[nan]", "true", "false",
    "yes", "no", "${model.separator.hidden}", "${model}", "${nope}", "${nope.deeper}", "${", "}", "${oc.env:HOME}",
    "${oc.env:SEPKIT_FUZZ_UNSET_VARIABLE}", "${oc.decode:'{a: 1}'}", "${oc.create:[1]}", "${oc.select:nope,3}",
    "${model.separator.hidden:}", "'quoted'", '"unterminated', "[1,", "{a:", "a=b", "=", ".", "..", "0x10",
    "1e3", "1_000", "nan", "inf", "-inf", ".inf", "-.inf", ".nan", "1e400", "-0", "0.0", "+1", "stft", "mask-net",
    "istft", "minilm", "cpu", "cuda", "auto", "bfloat16", "float16", "\\", "'", "%", "#comment", "- a",
    "!!python/object:os.system", "*alias", "&anchor x",
]

INTS = st.one_of(st.sampled_from([0, 1, -1, 2, 3, 4, 7, 8, 16, 64, 256, 1024, 16000, -16000, 2**31, 2**63, -(2**63)]),
                 st.integers(-(2**70), 2**70))
FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 0.5, 1.0, 1.5, -1.0, 1e-9, 1e300, math.nan, math.inf, -math.inf]),
                   st.floats(allow_nan=True, allow_infinity=True))
TEXT = st.text(max_size=12)
SCALAR_TEXT = st.one_of(INTS.map(str), FLOATS.map(repr), FLOATS.map(str), TEXT, st.sampled_from(SPECIALS))
VALUES = st.one_of(
    SCALAR_TEXT,
    st.lists(st.one_of(INTS.map(str), FLOATS.map(repr), st.sampled_from(["a", "null", "{}", "[]"])), max_size=4)
    .map(lambda items: "[" + ", ".join(items) + "]"),
    st.dictionaries(st.sampled_from(["a", "name", "hidden", "n_fft", "sample_rate", "1"]),
                    st.one_of(INTS.map(str), st.sampled_from(["b", "null", "stft", "[1]"])), max_size=3)
    .map(lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"),
)
SEGMENT = st.one_of(
    st.sampled_from(["name", "hidden", "n_fft", "sample_rate", "x", "model", "0", "extends", "freeze", "checkpoint"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789[]$:", min_size=1, max_size=6),
)


def _keys(paths: list[str]):
    """Mostly the recipe's own paths; also a level too deep, made-up paths and malformed keys."""
    return st.one_of(
        st.sampled_from(paths),
        st.sampled_from(paths),
        st.sampled_from(paths),
        st.sampled_from(paths).flatmap(lambda p: SEGMENT.map(lambda s: f"{p}.{s}")),
        st.lists(SEGMENT, min_size=1, max_size=4).map(".".join),
        st.sampled_from(["", " ", "model..separator", "model.separator.", ".model", "a b", "extends", "name"]),
    )


def _items(paths: list[str]):
    """1-3 ``key=value`` items; one in ten lists also gets a malformed item (no '=', random text)."""
    good = st.tuples(_keys(paths), VALUES).map(lambda kv: f"{kv[0]}={kv[1]}")
    bad = st.one_of(_keys(paths), TEXT)

    def combine(parts):
        items, roll, malformed, where = parts
        return items if roll != 7 else items[:where] + [malformed] + items[where:]

    return st.tuples(st.lists(good, min_size=1, max_size=3), st.integers(0, 9), bad, st.integers(0, 3)).map(combine)


def _load_and_resolve(recipe_path, items: list[str]):
    """load_recipe + resolve_components; only a SepkitError may escape (returned as None)."""
    try:
        recipe = load_recipe(str(recipe_path), items)
        resolve_components(recipe, get_registry())
        return recipe
    except SepkitError as exc:
        message = str(exc)
        assert len(message.strip().splitlines()) == 1, f"SepkitError must be one line: {message!r}"
        return None


@settings(max_examples=150)
@given(items=_items(TINY_PATHS))
def test_dotlist_overrides_of_the_tiny_recipe_load_or_raise_sepkit_error(items):
    _load_and_resolve(TINY_RECIPE, items)


@settings(max_examples=60)
@given(key=st.sampled_from([p for p in TINY_PATHS if p.startswith(("model.", "inference."))]), value=SCALAR_TEXT)
def test_one_value_at_a_known_key(key, value):
    _load_and_resolve(TINY_RECIPE, [f"{key}={value}"])


@settings(max_examples=100)
@given(items=_items([p for p in TRAIN_PATHS if p.startswith(("train", "data"))]))
def test_train_and_data_overrides_load_or_raise_sepkit_error(items):
    recipe = _load_and_resolve(TRAIN_RECIPE, items)
    if recipe is None:
        return
    for load in (load_train_config, load_data_config):
        try:
            load(recipe)
        except SepkitError as exc:
            assert len(str(exc).strip().splitlines()) == 1, f"SepkitError must be one line: {exc}"


# --- ranges: a size, rate or count below its minimum is refused, naming the key ------------------------
SIZE_KEYS = [
    "model.audio_encoder.sample_rate", "model.audio_encoder.n_fft", "model.audio_encoder.hop_length",
    "model.audio_encoder.win_length", "model.decoder.sample_rate", "model.decoder.n_fft", "model.decoder.hop_length",
    "model.separator.hidden", "model.separator.layers", "model.separator.kernel_size",
    "model.text_encoder.max_length", "inference.batch_size",
]
SECONDS_KEYS = ["inference.chunk_seconds", "inference.overlap_seconds"]


@settings(max_examples=40)
@given(key=st.sampled_from(SIZE_KEYS), value=st.integers(max_value=0))
def test_sizes_below_one_are_refused_naming_the_key(key, value):
    with pytest.raises(SepkitError, match=rf"'{re.escape(key)}'.*at least 1, got {value}"):
        resolve_components(load_recipe(str(TINY_RECIPE), [f"{key}={value}"]), get_registry())


@settings(max_examples=30)
@given(key=st.sampled_from(SECONDS_KEYS),
       value=st.one_of(st.floats(max_value=-1e-9), st.sampled_from([math.nan, math.inf, -math.inf])))
def test_negative_or_non_finite_durations_are_refused_naming_the_key(key, value):
    with pytest.raises(SepkitError, match=rf"'{re.escape(key)}'"):
        load_recipe(str(TINY_RECIPE), [f"{key}={value!r}"])


# --- the same values written in a recipe file that extends the base recipe -----------------------------
def _nested(entries: list[tuple[str, str]]) -> dict:
    """Dotted keys -> nested dict of raw YAML value texts (an entry that clashes with an earlier one is dropped)."""
    tree: dict = {}
    for key, value in entries:
        node, parts = tree, key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            if not isinstance(node.get(parts[-1]), dict):
                node[parts[-1]] = value
    return tree


def _block_yaml(tree: dict, indent: int = 0) -> str:
    lines = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(f"{'  ' * indent}{key}:\n{_block_yaml(value, indent + 1)}")
        else:
            lines.append(f"{'  ' * indent}{key}: {value}\n")
    return "".join(lines)


@settings(max_examples=60)
@given(entries=st.lists(st.tuples(_keys(TINY_PATHS), st.one_of(VALUES, st.sampled_from(["???", "", "null"]))),
                        min_size=1, max_size=4))
def test_recipe_files_load_or_raise_sepkit_error(entries):
    text = f"extends: {BASE_RECIPE}\n" + _block_yaml(_nested(entries))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.yaml"
        path.write_text(text, encoding="utf-8")
        _load_and_resolve(path, [])
