"""sepkit.device: device, dtype and training precision from recipe strings."""

import pytest
import torch

import sepkit.device
from sepkit.device import bf16_emulated_note, native_bf16, resolve_precision
from sepkit.errors import SepkitError

CPU = torch.device("cpu")


def test_native_bf16_on_this_cpu_agrees_with_torch_cpu_capabilities():
    expected = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert native_bf16(CPU) == expected


@pytest.mark.parametrize("native, auto", [(True, "bf16"), (False, "fp32")])
def test_resolve_precision(monkeypatch, native, auto):
    monkeypatch.setattr(sepkit.device, "native_bf16", lambda device: native)
    assert resolve_precision("auto", CPU) == auto
    for asked in ("fp32", "bf16", "fp16"):  # an explicit choice is kept
        assert resolve_precision(asked, CPU) == asked
    with pytest.raises(SepkitError, match="train.precision='fp8'; allowed: auto, fp32, bf16, fp16"):
        resolve_precision("fp8", CPU)


def test_bf16_emulated_note(monkeypatch):
    monkeypatch.setattr(sepkit.device, "native_bf16", lambda device: False)
    assert "emulates it" in bf16_emulated_note("bf16", CPU)
    assert bf16_emulated_note("fp32", CPU) is None
    monkeypatch.setattr(sepkit.device, "native_bf16", lambda device: True)
    assert bf16_emulated_note("bf16", CPU) is None
