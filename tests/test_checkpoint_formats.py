"""Malformed checkpoint files are user errors (SepkitError, CLI exit 2 with one stderr line), never bugs.

Issue 13, item 5: a sepkit checkpoint whose payload has the wrong structure, a file that is not a
checkpoint at all (random bytes), a corrupt or unrelated safetensors file and a pickle that
``weights_only=True`` refuses are each told apart by what the file is, with a one-line message that
names the file, the problem and the fix.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sepkit import checkpoint
from sepkit.checkpoint import NotASepkitCheckpoint, load_checkpoint, load_state_dict_checked, save_checkpoint
from sepkit.errors import SepkitError

QUERY = "extract the violin"


# --- files ----------------------------------------------------------------------------------
def random_bytes(path: Path, size: int = 4096, seed: int = 0) -> Path:
    """Seeded random bytes (seed 0 starts with 0x5f: no zip, pickle or safetensors header)."""
    data = np.random.default_rng(seed).bytes(size)
    assert data[:1] != b"\x80" and data[:2] != b"PK"
    path.write_bytes(data)
    return path


def raw_payload(path: Path, **changes) -> Path:
    """``torch.save`` of a sepkit-looking payload with ``changes`` applied."""
    payload = {"state_dict": {"w": torch.ones(2)}, "sepkit_version": "0.1.0", "recipe": {}, "plugins": {}}
    payload.update(changes)
    torch.save(payload, path)
    return path


def safetensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """A safetensors file built by hand: 8-byte little-endian header length, JSON header, raw data."""
    header, chunks, offset = {}, [], 0
    for name, tensor in tensors.items():
        data = tensor.contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    """With the safetensors package if installed, else by hand."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        path.write_bytes(safetensors_bytes(tensors))
    else:
        save_file(tensors, str(path))
    return path


def random_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"encoder.weight": torch.randn(4, 3, generator=g), "encoder.bias": torch.randn(4, generator=g)}


def raises_sepkit(path) -> SepkitError:
    """The SepkitError ``load_checkpoint(path)`` raises; its message is one line."""
    with pytest.raises(SepkitError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 1000, message
    return caught.value


# --- checkpoint_file_kind --------------------------------------------------------------------
def test_file_kind_from_first_bytes(tmp_path):
    checkpoint_file_kind = checkpoint.checkpoint_file_kind
    torch.save({"w": torch.zeros(1)}, tmp_path / "a.pt")
    torch.save({"w": torch.zeros(1)}, tmp_path / "b.pt", _use_new_zipfile_serialization=False)
    write_safetensors(tmp_path / "c.safetensors", random_weights())
    (tmp_path / "d.safetensors").write_bytes(safetensors_bytes(random_weights()))
    assert checkpoint_file_kind(tmp_path / "a.pt") == "zip"
    assert checkpoint_file_kind(tmp_path / "b.pt") == "pickle"
    assert checkpoint_file_kind(tmp_path / "c.safetensors") == "safetensors"
    assert checkpoint_file_kind(tmp_path / "d.safetensors") == "safetensors"
    assert checkpoint_file_kind(random_bytes(tmp_path / "e.safetensors")) == "unknown"
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "short.ckpt").write_bytes(b"\x80")
    assert checkpoint_file_kind(tmp_path / "empty.ckpt") == "unknown"
    assert checkpoint_file_kind(tmp_path / "short.ckpt") == "unknown"


# --- the payload's structure -----------------------------------------------------------------
def test_state_dict_that_is_a_list(tmp_path):
    error = raises_sepkit(raw_payload(tmp_path / "list.ckpt", state_dict=[1, 2]))
    assert not isinstance(error, NotASepkitCheckpoint)
    message = str(error)
    assert "list.ckpt" in message and "state_dict is a list" in message and "sepkit train" in message


def test_state_dict_values_that_are_not_tensors(tmp_path):
    state = {"a": 1, "b": "x", "c": {"d": torch.zeros(1)}, "ok": torch.zeros(1)}
    state.update({f"n{i}": i for i in range(300)})
    message = str(raises_sepkit(raw_payload(tmp_path / "vals.ckpt", state_dict=state)))
    assert "303 state_dict values are not tensors: a (int), b (str), c (dict)" in message
    assert "and 298 more" in message and "n200" not in message


def test_state_dict_keys_that_are_not_strings(tmp_path):
    state = {0: torch.zeros(1), ("x", 1): torch.zeros(1), "ok": torch.zeros(1)}
    message = str(raises_sepkit(raw_payload(tmp_path / "keys.ckpt", state_dict=state)))
    assert "2 state_dict keys are not strings: 0 (int), ('x', 1) (tuple)" in message


def test_recipe_and_plugins_structure(tmp_path):
    message = str(raises_sepkit(raw_payload(tmp_path / "r.ckpt", recipe=["a"])))
    assert "recipe is a list" in message
    message = str(raises_sepkit(raw_payload(tmp_path / "p.ckpt", plugins=["sepkit"])))
    assert "plugins is a list" in message
    message = str(raises_sepkit(raw_payload(tmp_path / "v.ckpt", plugins={"sepkit": 1, 2: "1.0"})))
    assert "2 plugins entries are not distribution: version strings: 'sepkit': 1, 2: '1.0'" in message
    # a recipe or plugins entry that is missing or None is allowed (callers use `.get(...) or {}`)
    assert load_checkpoint(raw_payload(tmp_path / "none.ckpt", recipe=None, plugins=None))["recipe"] is None
    payload = {"state_dict": {"w": torch.ones(1)}, "sepkit_version": "0.1.0", "plugins": {"sepkit": None}}
    torch.save(payload, tmp_path / "noversion.ckpt")  # a plugin without a version is named without one
    assert load_checkpoint(tmp_path / "noversion.ckpt")["plugins"] == {"sepkit": None}
    payload = {"state_dict": {"w": torch.ones(1)}, "sepkit_version": "0.1.0"}
    torch.save(payload, tmp_path / "bare.ckpt")
    assert set(load_checkpoint(tmp_path / "bare.ckpt")) == set(payload)


def test_own_format_still_loads(tmp_path):
    save_checkpoint(tmp_path / "c.ckpt", {"name": "r"}, {"w": torch.ones(2)}, {"sepkit": "0.1.0"}, step=3)
    assert torch.equal(load_checkpoint(tmp_path / "c.ckpt")["state_dict"]["w"], torch.ones(2))


# --- load_state_dict_checked -----------------------------------------------------------------
def checked_error(state, module=None) -> str:
    module = module or nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    with pytest.raises(SepkitError) as caught:
        load_state_dict_checked(module, state, "checkpoint x")
    message = str(caught.value)
    assert "\n" not in message and len(message) < 1000, message
    return message


def test_checked_load_non_tensor_values_named_briefly():
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(12)])
    state = {k: 1 for k in model.state_dict()}
    message = checked_error(state, model)
    assert "24 values are not tensors: 0.weight (int), 0.bias (int)" in message and "and 14 more" in message


def test_checked_load_non_mapping_and_non_string_keys():
    assert "state dict is a list" in checked_error([1, 2])
    message = checked_error({0: torch.zeros(1), **nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)).state_dict()})
    assert "1 keys are not strings: 0 (int)" in message


def test_checked_load_torch_refusal_is_one_line():
    """A tensor torch cannot copy into the parameter (here a sparse one): a short SepkitError, not RuntimeError."""
    state = {"weight": torch.zeros(2, 2).to_sparse(), "bias": torch.zeros(2)}
    message = checked_error(state, nn.Linear(2, 2))
    assert "could not be loaded into the model" in message and "sparse" in message


# --- files that are not sepkit checkpoints ---------------------------------------------------
@pytest.mark.parametrize("name", ["random.safetensors", "random.ckpt"])
def test_random_bytes_are_not_a_checkpoint_file(tmp_path, name):
    error = raises_sepkit(random_bytes(tmp_path / name))
    message = str(error)
    assert not isinstance(error, NotASepkitCheckpoint)
    assert "not a checkpoint file: neither a torch.save zip, a legacy pickle nor safetensors" in message
    assert name in message and "weights_only=False" not in message and "pickled" not in message


@pytest.mark.parametrize(
    "mangle, reason",
    [
        (lambda b: b[:-10], "truncated"),  # the data is shorter than the header says
        (lambda b: b[:8] + b"{not json" + b[17:], "header"),
        (lambda b: struct.pack("<Q", 10**6) + b[8:], "header"),  # header length beyond the file
    ],
)
def test_corrupt_safetensors(tmp_path, mangle, reason):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(mangle(safetensors_bytes(random_weights())))
    assert checkpoint.checkpoint_file_kind(path) == "safetensors"
    error = raises_sepkit(path)
    message = str(error)
    assert not isinstance(error, NotASepkitCheckpoint)
    assert "corrupt safetensors file" in message and "bad.safetensors" in message, message
    assert "weights_only=False" not in message and "pickled" not in message


def test_valid_safetensors_is_offered_to_components(tmp_path):
    path = write_safetensors(tmp_path / "model.safetensors", random_weights())
    error = raises_sepkit(path)
    message = str(error)
    assert isinstance(error, NotASepkitCheckpoint)
    assert "safetensors file of 2 tensors, not a sepkit checkpoint" in message
    assert "weights_only=False" not in message and "pickled" not in message


def test_pickled_objects_refused_with_trusted_source_advice(tmp_path):
    path = tmp_path / "numpy.ckpt"
    torch.save({"state_dict": {"w": np.zeros(3)}}, path)
    error = raises_sepkit(path)
    message = str(error)
    assert isinstance(error, NotASepkitCheckpoint)  # a component may still read it with its own allowlist
    assert "pickled Python objects" in message and "numpy" in message
    assert "weights_only=False" in message and "trust" in message


def test_corrupt_torch_files(tmp_path):
    good = tmp_path / "good.ckpt"
    save_checkpoint(good, {}, {"w": torch.ones(100)}, {})
    (tmp_path / "cut.ckpt").write_bytes(good.read_bytes()[:200])
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x02" + random_bytes(tmp_path / "r").read_bytes())
    for name in ("cut.ckpt", "junk.pkl"):
        error = raises_sepkit(tmp_path / name)
        message = str(error)
        assert not isinstance(error, NotASepkitCheckpoint)
        assert "corrupt or truncated torch.save file or none at all" in message and name in message, message
        assert "weights_only=False" not in message and "pickled Python objects" not in message


def test_read_weights_file_goes_by_content_not_name(tmp_path):
    """The helper for components' official loaders: safetensors or torch by the bytes, one-line errors."""
    weights = random_weights()
    misnamed = tmp_path / "release.ckpt"
    misnamed.write_bytes(safetensors_bytes(weights))
    loaded = checkpoint.read_weights_file(misnamed, "official checkpoint")
    assert set(loaded) == set(weights) and all(torch.equal(loaded[k], weights[k]) for k in weights)
    torch.save({"state_dict": weights}, tmp_path / "release.safetensors")  # a torch file with the wrong name
    assert torch.equal(checkpoint.read_weights_file(tmp_path / "release.safetensors")["state_dict"]["encoder.bias"],
                       weights["encoder.bias"])  # fmt: skip
    with pytest.raises(SepkitError, match=r"^official checkpoint .*random.bin could not be read: not a checkpoint"):
        checkpoint.read_weights_file(random_bytes(tmp_path / "random.bin"), "official checkpoint")
    (tmp_path / "cut.safetensors").write_bytes(safetensors_bytes(weights)[:-4])
    with pytest.raises(SepkitError, match="corrupt safetensors file"):
        checkpoint.read_weights_file(tmp_path / "cut.safetensors")
    torch.save({"w": np.zeros(2)}, tmp_path / "numpy.pt")
    with pytest.raises(checkpoint.PickledObjectsRefused, match="source you trust"):
        checkpoint.read_weights_file(tmp_path / "numpy.pt")


# --- official checkpoints keep loading through the components --------------------------------
def test_official_safetensors_loads_through_the_separator(tmp_path):
    """An AudioSep-layout .safetensors file is not a sepkit checkpoint: resunet30 reads it itself."""
    pytest.importorskip("safetensors")
    from sepkit.pipeline import build_pipeline
    from sepkit.recipe import load_recipe
    from sepkit_resunet.official import to_official_key

    recipe_path = tmp_path / "tiny_audiosep.yaml"
    recipe_path.write_text(
        "model:\n"
        "  text_encoder: {name: minilm, freeze: true, max_length: 16}\n"
        "  audio_encoder: {name: stft, n_fft: 256, hop_length: 64, sample_rate: 16000}\n"
        "  separator: {name: resunet30, base_channels: 4}\n"
        "  decoder: {name: istft, n_fft: 256, hop_length: 64, sample_rate: 16000}\n"
    )
    recipe = load_recipe(str(recipe_path))
    reference = build_pipeline(recipe)
    g = torch.Generator().manual_seed(5)
    state = {
        f"ss_model.{to_official_key(k)}": torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone()
        for k, v in reference.separator.state_dict().items()
    }
    path = write_safetensors(tmp_path / "audiosep.safetensors", state)
    pipeline = build_pipeline(recipe, checkpoint=str(path))
    for key, value in pipeline.separator.state_dict().items():
        assert torch.equal(value, state[f"ss_model.{to_official_key(key)}"]), key


# --- the command line ------------------------------------------------------------------------
def separate(sepkit_cli, tmp_path, write_wav, ckpt, *recipe):
    """Run ``sepkit separate MIX.wav -q ... --ckpt ckpt -o OUT.wav``; assert exit 2, one line, no OUT.wav."""
    mix = write_wav(tmp_path / "mix.wav")
    out = tmp_path / "out.wav"
    proc = sepkit_cli("separate", mix, "-q", QUERY, "--ckpt", ckpt, "-o", out, *recipe)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()
    return proc.stderr


def test_cli_state_dict_list(sepkit_cli, tmp_path, write_wav):
    stderr = separate(sepkit_cli, tmp_path, write_wav, raw_payload(tmp_path / "list.ckpt", state_dict=[1, 2]),
                      "--recipe", "tiny/stft_mask")  # fmt: skip
    assert "state_dict is a list" in stderr


def test_cli_state_dict_values_not_tensors(sepkit_cli, tmp_path, write_wav):
    state = {"separator.proj_in.weight": 1, "separator.proj_in.bias": "x", "c": {"d": 2}}
    ckpt = raw_payload(tmp_path / "vals.ckpt", state_dict=state)
    stderr = separate(sepkit_cli, tmp_path, write_wav, ckpt, "--recipe", "tiny/stft_mask")
    assert "separator.proj_in.weight (int)" in stderr


@pytest.mark.parametrize("recipe", [("--recipe", "tiny/stft_mask"), ()], ids=["tiny", "default"])
def test_cli_random_safetensors(sepkit_cli, tmp_path, write_wav, recipe):
    stderr = separate(sepkit_cli, tmp_path, write_wav, random_bytes(tmp_path / "bad.safetensors"), *recipe)
    assert "not a checkpoint file" in stderr and "weights_only=False" not in stderr


def test_cli_unrelated_safetensors(sepkit_cli, tmp_path, write_wav):
    ckpt = write_safetensors(tmp_path / "other.safetensors", random_weights())
    stderr = separate(sepkit_cli, tmp_path, write_wav, ckpt, "--recipe", "tiny/stft_mask")
    assert "not a sepkit checkpoint" in stderr and "no component of this recipe" in stderr
    assert "pickled" not in stderr and "weights_only=False" not in stderr
