import pytest
import torch
from torch import nn

from sepkit.checkpoint import atomic_save, load_checkpoint, load_state_dict_checked, save_checkpoint
from sepkit.errors import SepkitError


def test_save_load_format(tmp_path):
    path = tmp_path / "sub" / "c.ckpt"
    save_checkpoint(path, {"name": "r"}, {"w": torch.ones(2)}, {"sepkit": "0.1.0"}, step=3)
    payload = load_checkpoint(path)
    assert payload["recipe"] == {"name": "r"} and payload["step"] == 3
    assert torch.equal(payload["state_dict"]["w"], torch.ones(2))
    assert not [p for p in path.parent.iterdir() if p.name != "c.ckpt"]  # no temp files left


def test_atomic_save_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "c.ckpt"
    atomic_save({"a": torch.zeros(1)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        atomic_save({"a": Unpicklable()}, path)
    assert torch.load(path, weights_only=True)["a"].shape == (1,)
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]


def test_unsafe_pickle_rejected(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "obj": nn.Linear(1, 1)}, path)  # a module object needs full unpickling
    with pytest.raises(SepkitError, match="weights_only=True"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "junk.ckpt").write_bytes(b"\x00\x01junk")
    with pytest.raises(SepkitError, match="could not be read"):
        load_checkpoint(tmp_path / "junk.ckpt")
    torch.save({"weights": 1}, tmp_path / "other.ckpt")
    with pytest.raises(SepkitError, match="not a sepkit checkpoint"):
        load_checkpoint(tmp_path / "other.ckpt")
    with pytest.raises(SepkitError, match="not found"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_missing_plugin_distribution_is_named(tmp_path):
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, {}, {}, {"sepkit": "0.1.0", "sepkit-fancy-codec": "2.0"})
    with pytest.raises(SepkitError, match=r"pip install sepkit-fancy-codec==2.0"):
        load_checkpoint(path)


def test_key_mismatch_lists_keys():
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(12)])
    state = model.state_dict()
    bad = {k: v for k, v in state.items() if not k.startswith("0.")}
    bad["extra.weight"] = torch.zeros(1)
    bad["1.weight"] = torch.zeros(3, 3)
    with pytest.raises(SepkitError) as caught:
        load_state_dict_checked(model, bad, "checkpoint x")
    message = str(caught.value)
    assert "2 missing keys: 0.weight, 0.bias" in message
    assert "1 unexpected keys: extra.weight" in message
    assert "1.weight (checkpoint (3, 3), model (2, 2))" in message


def test_long_key_lists_are_cut_at_ten():
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(12)])
    with pytest.raises(SepkitError, match=r"24 missing keys: .* and 14 more"):
        load_state_dict_checked(model, {}, "checkpoint x")
