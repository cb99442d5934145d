"""The Python API (``sepkit.load(...).separate(...)``) on the bundled default and its shipped weights."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import sepkit
from sepkit.errors import SepkitError

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def pipe():
    return sepkit.load("mini/audiosep", device="cpu")


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype("float32")


def test_mono_numpy_at_another_rate_keeps_shape_rate_and_type(pipe):
    wave = tone(1.3, 22050) + tone(1.3, 22050, 3000.0)
    out = pipe.separate(wave, 22050, "extract the violin")
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == wave.shape
    assert np.isfinite(out).all() and 0 < np.abs(out).max()
    assert pipe.trained


def test_several_instructions_give_one_result_each_in_order(pipe):
    wave = tone(1.0, 16000) + tone(1.0, 16000, 3000.0)
    both = pipe.separate(wave, 16000, ["extract the violin", "remove the violin"])
    assert isinstance(both, list) and len(both) == 2
    np.testing.assert_allclose(both[0], pipe.separate(wave, 16000, "extract the violin"), atol=1e-6)
    np.testing.assert_allclose(both[1], pipe.separate(wave, 16000, "remove the violin"), atol=1e-6)
    assert not np.allclose(both[0], both[1], atol=1e-3)


def test_stereo_tensor_in_gives_a_tensor_out(pipe):
    wave = torch.from_numpy(np.stack([tone(0.8, 16000), tone(0.8, 16000, 660.0)]))
    out = pipe.separate(wave, 16000, "extract the violin")
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == wave.shape


@pytest.mark.parametrize(
    "wave, instruction, words",
    [
        (np.zeros(1600, "float32"), "  ", "instruction is empty"),
        (np.full(1600, np.nan, "float32"), "extract the violin", "NaN"),
        (np.zeros(0, "float32"), "extract the violin", "got shape"),
        (np.zeros((1, 2, 3), "float32"), "extract the violin", "got shape"),
    ],
)
def test_bad_input_is_a_sepkit_error(pipe, wave, instruction, words):
    with pytest.raises(SepkitError, match=words):
        pipe.separate(wave, 16000, instruction)


def test_untrained_recipe_says_so():
    assert not sepkit.load("tiny/stft_mask").trained


def test_readme_python_api_section_runs():
    text = README.read_text()
    section = text[text.index("## Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md: Python API", "exec"), namespace)  # noqa: S102 - the README's own example
    assert namespace["violin"].shape == namespace["wave"].shape
