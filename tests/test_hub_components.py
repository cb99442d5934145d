"""Component-level ``checkpoint: hf://OWNER/REPO/FILE`` keys and benchmark systems by hub name (``sepkit.hub``).

The hub cache is built by hand with ``tests/test_hub.py``'s helpers and read with ``HF_HUB_OFFLINE=1``:
nothing is downloaded.
"""

from __future__ import annotations

import pytest
import test_hub
import torch
from test_hub import TINY_AUDIOSEP, cache_file

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry

offline_home = test_hub.offline_home  # the fixture: HF_HOME in tmp_path, HF_HUB_OFFLINE=1

HSM_REF = "hf://owner/hsm-tss/checkpoints/separator.ckpt"
HSM_WIDTHS = {"input_dim": 32, "query_dim": 24, "global_dim": 16}
HSM_TINY = {"hidden": 32, "depth": 2, "heads": 4, "dropout": 0.0}


def hsm_local(seed: int, **keys):
    """A tiny hsm-local separator with a tiny global stage (eval mode), as in tests/plugins/test_hsm.py."""
    torch.manual_seed(seed)
    section = {"name": "hsm-local", **HSM_WIDTHS, **HSM_TINY, "num_patches": 16,
               "global_stage": {"name": "hsm-global", **HSM_TINY}, **keys}  # fmt: skip
    return get_registry().build("separator", section).eval()


def test_separator_checkpoint_key_by_hub_name(tmp_path, offline_home):
    """hsm-local's and hsm-global's ``checkpoint: hf://...`` read the cached file; an uncached one is an error."""
    from sepkit.checkpoint import save_checkpoint

    trained = hsm_local(seed=1)
    save_checkpoint(tmp_path / "hsm.ckpt", {}, {f"separator.{k}": v for k, v in trained.state_dict().items()}, {})
    cache_file(offline_home / "hub", "owner/hsm-tss", "checkpoints/separator.ckpt", tmp_path / "hsm.ckpt")

    loaded = hsm_local(seed=2, checkpoint=HSM_REF)
    for key, value in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    stage = get_registry().build("separator", {"name": "hsm-global", **HSM_WIDTHS, **HSM_TINY, "checkpoint": HSM_REF})
    assert torch.equal(stage.global_out.weight, trained.global_stage.global_out.weight)
    with pytest.raises(SepkitError, match=r"hsm-local.*checkpoints/other\.ckpt of owner/hsm-tss .*offline"):
        hsm_local(seed=2, checkpoint="hf://owner/hsm-tss/checkpoints/other.ckpt")


def test_benchmark_system_keeps_hub_references(tmp_path, offline_home):
    """`sepkit benchmark RECIPE@hf://...`: the reference is kept as written, the cached file hashed; a component's
    ``checkpoint: hf://...`` is fingerprinted too."""
    from sepkit.benchmark.systems import _sha256, component_checkpoints, load_system

    torch.save({"w": torch.arange(3.0)}, tmp_path / "w.pt")
    link = cache_file(offline_home / "hub", "owner/repo", "sub/w.pt", tmp_path / "w.pt")
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_AUDIOSEP)

    system = load_system(f"{recipe}@hf://owner/repo/sub/w.pt", get_registry())
    assert system.checkpoint == "hf://owner/repo/sub/w.pt" and system.checkpoint_sha256 == _sha256(link)
    assert system.describe()["checkpoint"] == "hf://owner/repo/sub/w.pt"
    own = tmp_path / "own.yaml"
    own.write_text(f"checkpoint: hf://owner/repo/sub/w.pt\n{TINY_AUDIOSEP}")
    assert load_system(str(own), get_registry()).checkpoint == "hf://owner/repo/sub/w.pt"
    with pytest.raises(SepkitError, match=r"checkpoint hf://owner/repo/sub/x\.pt: .*not in the Hugging Face cache"):
        load_system(f"{recipe}@hf://owner/repo/sub/x.pt", get_registry())

    tree = {"decoder": {"codec": {"checkpoint": "hf://owner/repo/sub/w.pt"}}}
    assert component_checkpoints(tree) == {"model.decoder.codec.checkpoint": _sha256(link)}
