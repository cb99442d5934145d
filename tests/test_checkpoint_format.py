"""Checkpoints record their layout's ``format``; a newer one than this sepkit reads says "upgrade sepkit".

Issue 17: a checkpoint written by a newer sepkit in a newer format fails to load with a SepkitError
naming both versions and both formats; checkpoints written before the ``format`` key existed (the
shipped mini weights among them) are format 1 and keep loading.
"""

from __future__ import annotations

import re

import pytest
import torch

import sepkit
from sepkit.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, payload_problems, save_checkpoint
from sepkit.errors import SepkitError
from sepkit.recipe import recipes_dir

NEWER = CHECKPOINT_FORMAT + 1


def payload(**changes) -> dict:
    """A well-formed sepkit payload as ``torch.save`` would store it, with ``changes`` applied."""
    base = {"state_dict": {"w": torch.ones(2)}, "sepkit_version": "0.1.0", "recipe": {}, "plugins": {}}
    return {**base, **changes}


def saved(path, **changes):
    torch.save(payload(**changes), path)
    return path


def test_save_checkpoint_records_the_format_and_version(tmp_path):
    path = tmp_path / "a.ckpt"
    save_checkpoint(path, recipe={}, state_dict={"w": torch.zeros(3)}, plugins={}, step=7)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT == 1
    assert raw["sepkit_version"] == sepkit.__version__ and raw["step"] == 7
    assert load_checkpoint(path)["format"] == CHECKPOINT_FORMAT


def test_extra_keys_cannot_overwrite_the_format(tmp_path):
    path = tmp_path / "a.ckpt"
    save_checkpoint(path, recipe={}, state_dict={}, plugins={}, format=NEWER)
    assert torch.load(path, weights_only=True)["format"] == CHECKPOINT_FORMAT


def test_a_checkpoint_without_format_is_format_1_and_loads(tmp_path):
    path = saved(tmp_path / "old.ckpt")
    assert "format" not in torch.load(path, weights_only=True)
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(2))


def test_the_shipped_mini_weights_predate_the_key_and_load():
    path = recipes_dir() / "mini" / "audiosep.ckpt"
    raw = torch.load(path, weights_only=True)
    assert raw.get("format", 1) <= CHECKPOINT_FORMAT
    assert load_checkpoint(path)["state_dict"]


def test_a_newer_format_from_a_newer_sepkit_says_upgrade(tmp_path):
    path = saved(tmp_path / "new.ckpt", sepkit_version="9.3.0", format=NEWER)
    expected = (
        f"checkpoint {path} was written by sepkit 9.3.0 (format {NEWER}); this sepkit is {sepkit.__version__} "
        f"(reads format <= {CHECKPOINT_FORMAT}): upgrade sepkit"
    )
    with pytest.raises(SepkitError, match=re.escape(expected)):
        load_checkpoint(path)


def test_a_newer_format_is_reported_before_its_unknown_layout(tmp_path):
    """A newer layout may store weights differently: the reader says "upgrade", not "malformed"."""
    path = saved(tmp_path / "new.ckpt", sepkit_version="2.0.0", format=NEWER + 3, state_dict=[1, 2], plugins=5)
    with pytest.raises(SepkitError, match="upgrade sepkit") as info:
        load_checkpoint(path)
    assert "malformed" not in str(info.value) and f"format {NEWER + 3}" in str(info.value)


def test_a_newer_sepkit_writing_the_same_format_loads(tmp_path):
    path = saved(tmp_path / "same.ckpt", sepkit_version="9.3.0", format=CHECKPOINT_FORMAT)
    assert load_checkpoint(path)["sepkit_version"] == "9.3.0"


@pytest.mark.parametrize(
    "value", ["2", 0, -1, 1.0, True, None], ids=["text", "zero", "negative", "float", "bool", "none"]
)
def test_a_format_that_is_no_positive_integer_is_malformed(tmp_path, value):
    path = saved(tmp_path / "bad.ckpt", format=value)
    with pytest.raises(SepkitError, match=r"malformed sepkit checkpoint: its format is .*not a positive integer"):
        load_checkpoint(path)


def test_payload_problems_accepts_this_format():
    assert payload_problems(payload(format=CHECKPOINT_FORMAT)) == []
    assert payload_problems(payload()) == []


def test_cli_separate_with_a_newer_checkpoint_exits_2_naming_the_upgrade(sepkit_cli, tmp_path, write_wav):
    ckpt = saved(tmp_path / "new.ckpt", sepkit_version="9.3.0", format=NEWER)
    mix, out = write_wav(tmp_path / "mix.wav"), tmp_path / "out.wav"
    proc = sepkit_cli("separate", mix, "-q", "extract the violin", "--ckpt", ckpt, "-o", out,
                      "--recipe", "tiny/stft_mask")  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "written by sepkit 9.3.0" in lines[0] and "upgrade sepkit" in lines[0], proc.stderr
    assert not out.exists()


def test_the_message_can_name_the_file():
    from sepkit.checkpoint import check_format_readable

    check_format_readable(payload())  # format 1: nothing to say
    with pytest.raises(SepkitError, match=r"^checkpoint runs/x\.ckpt was written by a newer sepkit \(format \d+\)"):
        check_format_readable(payload(sepkit_version=None, format=NEWER), "checkpoint runs/x.ckpt")
