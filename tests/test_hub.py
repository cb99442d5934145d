"""Official weights by name (``sepkit.hub``): ``hf://OWNER/REPO/FILE`` through the Hugging Face cache.

The tests build a hub cache by hand in huggingface_hub's own layout
(``models--OWNER--REPO/{blobs/<sha256>, snapshots/<commit>/<path> -> ../../blobs/<sha256>, refs/main}``),
holding random weights in the official layouts, and run with ``HF_HUB_OFFLINE=1``: nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import torch

from sepkit.errors import SepkitError

REPO = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
AUDIOSEP_REF = "hf://Audio-AGI/AudioSep/checkpoint/audiosep_base_4M_steps.ckpt"
TINY_AUDIOSEP = (
    "model:\n"
    "  text_encoder: {name: minilm, freeze: true, max_length: 16}\n"
    "  audio_encoder: {name: stft, n_fft: 256, hop_length: 64, sample_rate: 16000}\n"
    "  separator: {name: resunet30, base_channels: 4}\n"
    "  decoder: {name: istft, n_fft: 256, hop_length: 64, sample_rate: 16000}\n"
    "inference: {chunk_seconds: 0.5, overlap_seconds: 0.05}\n"  # one short chunk: fast on a busy CPU
)


# --- a hand-made hub cache ------------------------------------------------------------------
def cache_file(cache: Path, repo_id: str, path_in_repo: str, source: Path, commit: str = COMMIT) -> Path:
    """Put ``source`` into ``cache`` as ``path_in_repo`` of ``repo_id`` (main branch at ``commit``), the way
    huggingface_hub stores a download: the content under blobs/, a relative symlink under snapshots/."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    data = Path(source).read_bytes()
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    link = repo / "snapshots" / commit / path_in_repo
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return link


def cache_folder(cache: Path, repo_id: str, folder: Path) -> Path:
    """Every file of ``folder`` into ``cache`` as ``repo_id``; returns the snapshot folder."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            cache_file(cache, repo_id, path.relative_to(folder).as_posix(), path)
    return cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / COMMIT


@pytest.fixture
def offline_home(tmp_path, monkeypatch) -> Path:
    """HF_HOME in ``tmp_path`` (cache ``HF_HOME/hub``), HF_HUB_OFFLINE=1, no other cache variable."""
    home = tmp_path / "hf"
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def resunet_test_helpers():
    """``tests/plugins/test_resunet.py`` as a module: its writers of official AudioSep checkpoints."""
    spec = importlib.util.spec_from_file_location("resunet_helpers", REPO / "tests" / "plugins" / "test_resunet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- references -----------------------------------------------------------------------------
def test_parse_references():
    from sepkit.hub import HubReference, parse_hub_reference

    ref = parse_hub_reference(AUDIOSEP_REF)
    assert ref == HubReference("Audio-AGI/AudioSep", "checkpoint/audiosep_base_4M_steps.ckpt", None)
    assert str(ref) == AUDIOSEP_REF
    assert ref.download_command() == "hf download Audio-AGI/AudioSep checkpoint/audiosep_base_4M_steps.ckpt"
    assert parse_hub_reference(AUDIOSEP_REF + "@v1.0").revision == "v1.0"
    assert parse_hub_reference("hf://Audio-AGI/AudioSep@v1.0/checkpoint/a.ckpt") == HubReference(
        "Audio-AGI/AudioSep", "checkpoint/a.ckpt", "v1.0"
    )
    assert parse_hub_reference("hf://FacebookAI/roberta-base") == HubReference("FacebookAI/roberta-base")
    assert parse_hub_reference("hf://google/flan-t5-base/") == HubReference("google/flan-t5-base")
    for bad in ("hf://", "hf://owner", "hf://owner/", "hf://o/r//x.ckpt", "hf://o/r/../x.ckpt", "hf://o/r/x@",
                "hf://-o/r/x", "hf://o/r$/x"):  # fmt: skip
        with pytest.raises(SepkitError, match="malformed hub reference"):
            parse_hub_reference(bad)


def test_bare_repo_ids_are_hub_names_only_when_no_such_local_path(tmp_path, monkeypatch):
    from sepkit.hub import is_hub_reference, looks_like_repo_id

    monkeypatch.chdir(tmp_path)
    assert looks_like_repo_id("google/flan-t5-base") and looks_like_repo_id("FacebookAI/roberta-base")
    (tmp_path / "google" / "flan-t5-base").mkdir(parents=True)
    assert not looks_like_repo_id("google/flan-t5-base")  # a local folder wins
    assert not looks_like_repo_id("/abs/path") and not looks_like_repo_id("a/b/c") and not looks_like_repo_id("x")
    assert is_hub_reference(AUDIOSEP_REF) and not is_hub_reference(Path("hf://a/b"))  # Path folds the '//'


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    from sepkit.hub import hub_cache_dir, hub_offline

    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub" and not hub_offline()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert hub_cache_dir() == tmp_path / "cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "yes")
    assert hub_offline()


# --- files --------------------------------------------------------------------------------
def test_offline_and_not_cached_is_exit_2_naming_file_and_cache(tmp_path, sepkit_cli, monkeypatch):
    """The issue's acceptance check: `--recipe audiosep --ckpt hf://...` offline with an empty cache (the
    recipe given by its path in the checkout, so the check does not depend on how bundled recipes install)."""
    import numpy as np
    import soundfile as sf

    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    sf.write(tmp_path / "m.wav", np.zeros(16000), 16000)
    home = tmp_path / "hf"
    proc = sepkit_cli(
        "separate", tmp_path / "m.wav", "-q", "extract the violin", "--recipe", REPO / "recipes" / "audiosep.yaml",
        "--ckpt", AUDIOSEP_REF,
        "-o", tmp_path / "o.wav", env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(home)},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "offline" in proc.stderr and "audiosep_base_4M_steps.ckpt" in proc.stderr
    assert str(home / "hub") in proc.stderr and "hf download Audio-AGI/AudioSep" in proc.stderr
    assert not (tmp_path / "o.wav").exists()


def test_cached_file_resolves_offline_and_reads_through_checkpoint_functions(tmp_path, offline_home):
    from sepkit.checkpoint import checkpoint_file_kind, load_checkpoint, read_weights_file
    from sepkit.hub import resolve_file

    weights = tmp_path / "w.pt"
    torch.save({"w": torch.arange(3.0)}, weights)
    link = cache_file(offline_home / "hub", "owner/repo", "sub/w.pt", weights)
    assert resolve_file("hf://owner/repo/sub/w.pt") == link
    assert checkpoint_file_kind("hf://owner/repo/sub/w.pt") == "zip"
    assert torch.equal(read_weights_file("hf://owner/repo/sub/w.pt")["w"], torch.arange(3.0))
    with pytest.raises(SepkitError, match="not a sepkit checkpoint"):  # found and read, then offered to components
        load_checkpoint("hf://owner/repo/sub/w.pt")
    with pytest.raises(SepkitError, match=r"sub/other\.pt of owner/repo is not in the Hugging Face cache .*offline"):
        read_weights_file("hf://owner/repo/sub/other.pt", "PANNs checkpoint")
    with pytest.raises(SepkitError, match="names a repository, not a file"):
        resolve_file("hf://owner/repo")


def test_separate_loads_an_official_audiosep_file_by_hub_name(tmp_path, offline_home, capsys):
    """`sepkit separate --ckpt hf://Audio-AGI/AudioSep/...` (offline, cached) = the same file given as a path."""
    import soundfile as sf

    from sepkit.cli import main
    from sepkit.pipeline import build_pipeline
    from sepkit.plugins import get_registry
    from sepkit.recipe import load_recipe

    helpers = resunet_test_helpers()
    separator = get_registry().build("separator", {"name": "resunet30", "input_dim": 129, "query_dim": 384,
                                                   "base_channels": 4})  # fmt: skip
    state = helpers.official_layout_state(separator)
    local = helpers.save_lightning(tmp_path / "audiosep_base_4M_steps.ckpt", state)
    cache_file(offline_home / "hub", "Audio-AGI/AudioSep", "checkpoint/audiosep_base_4M_steps.ckpt", local)
    recipe = tmp_path / "tiny_audiosep.yaml"
    recipe.write_text(TINY_AUDIOSEP)

    sf.write(tmp_path / "mix.wav", 0.1 * torch.randn(4000, generator=torch.Generator().manual_seed(1)).numpy(), 16000)
    outputs = {}
    for name, ckpt in (("hub", AUDIOSEP_REF), ("local", str(local)), ("none", None)):
        args = ["separate", str(tmp_path / "mix.wav"), "-q", "extract the violin", "--recipe", str(recipe),
                "-o", str(tmp_path / f"{name}.wav")] + (["--ckpt", ckpt] if ckpt else [])  # fmt: skip
        assert main(args) == 0, capsys.readouterr().err
        outputs[name] = sf.read(tmp_path / f"{name}.wav")[0]
    assert (outputs["hub"] == outputs["local"]).all()
    assert not (outputs["hub"] == outputs["none"]).all()  # the weights changed the output

    # the same reference as the recipe's own checkpoint: kept as written, not mangled into a Path
    hub_recipe = tmp_path / "hub_audiosep.yaml"
    hub_recipe.write_text(f"checkpoint: {AUDIOSEP_REF}\n{TINY_AUDIOSEP}")
    loaded = load_recipe(str(hub_recipe))
    assert loaded.checkpoint_path() == AUDIOSEP_REF
    helpers.assert_loaded(build_pipeline(loaded).separator, state)


# --- folders ------------------------------------------------------------------------------
def test_tokenizer_and_model_folders_by_hub_name(tmp_path, offline_home):
    """flan-t5's model_dir as hf://google/flan-t5-base or google/flan-t5-base: the cached snapshot folder."""
    from sepkit_t5.standin import write_standin_model_dir

    from sepkit.hf_local import local_dir
    from sepkit.plugins import get_registry

    tiny = {"d_model": 16, "num_layers": 1, "num_heads": 2, "d_kv": 8, "d_ff": 32}
    model = write_standin_model_dir(tmp_path / "t5", seed=2, **tiny)
    snapshot = cache_folder(offline_home / "hub", "google/flan-t5-base", tmp_path / "t5")
    for name in ("hf://google/flan-t5-base", "google/flan-t5-base"):
        assert local_dir(name, "model_dir", "flan-t5", "google/flan-t5-base") == snapshot
        encoder = get_registry().build("text_encoder", {"name": "flan-t5", "model_dir": name})
        for key, value in model.state_dict().items():
            assert torch.equal(encoder.model.state_dict()[key], value), key
        assert encoder.tokenizer("violin")["input_ids"][-1] == 1  # </s> of the cached tokenizer
    missing = r"repository google/t5-small is not in the Hugging Face cache .*local folder"
    with pytest.raises(SepkitError, match=missing):
        local_dir("google/t5-small", "model_dir", "flan-t5", "google/flan-t5-base")
    with pytest.raises(SepkitError, match="is not a directory"):  # a local path stays a local path
        local_dir(str(tmp_path / "absent"), "model_dir", "flan-t5", "google/flan-t5-base")


def test_roberta_folder_by_hub_name(tmp_path, offline_home):
    """clap-laion's text_model_dir as hf://FacebookAI/roberta-base (a tiny RoBERTa in the cache)."""
    from sepkit_clap.roberta import resolve_text_branch, write_roberta_dir

    folder = write_roberta_dir(tmp_path / "roberta", num_hidden_layers=1, hidden_size=16, num_attention_heads=2,
                               intermediate_size=32)  # fmt: skip
    snapshot = cache_folder(offline_home / "hub", "FacebookAI/roberta-base", folder)
    source = resolve_text_branch("hf://FacebookAI/roberta-base", {}, "clap-laion")
    assert source.config.hidden_size == 16 and not source.standin and source.weights is None
    assert source.tokenizer.name_or_path == str(snapshot)
    shutil.rmtree(offline_home / "hub" / "models--FacebookAI--roberta-base")
    with pytest.raises(SepkitError, match=r"clap-laion: text_model_dir hf://FacebookAI/roberta-base: .*offline"):
        resolve_text_branch("hf://FacebookAI/roberta-base", {}, "clap-laion")


# --- the whole AudioSep file: separator and CLAP query encoder ------------------------------
@pytest.mark.slow
def test_audiosep_file_by_hub_name_loads_both_parts(tmp_path, offline_home):
    """An AudioSep-layout file (ss_model.* and query_encoder.model.*) and the RoBERTa folder both by hub name."""
    import yaml
    from sepkit_clap import TINY_LAION
    from sepkit_clap.official import clap_state_to_file_layout
    from sepkit_clap.roberta import write_roberta_dir

    from sepkit.pipeline import build_pipeline
    from sepkit.plugins import get_registry
    from sepkit.recipe import load_recipe
    from sepkit.testing.contracts import perturb_state
    from sepkit_resunet.official import official_key_shapes, to_official_key

    tiny_roberta = yaml.safe_load(TINY_LAION)["roberta"]
    cache_folder(offline_home / "hub", "FacebookAI/roberta-base", write_roberta_dir(tmp_path / "rb", **tiny_roberta))
    torch.manual_seed(0)
    laion = get_registry().build("text_encoder", {"name": "clap-laion", **yaml.safe_load(TINY_LAION)}).eval()
    perturb_state(laion.model)
    separator = get_registry().build("separator", {"name": "resunet30", "input_dim": 129, "query_dim": 512,
                                                   "base_channels": 4})  # fmt: skip
    generator = torch.Generator().manual_seed(5)
    state = {f"ss_model.{key}": 0.1 * torch.randn(shape, generator=generator) if shape else torch.tensor(0)
             for key, shape in official_key_shapes(separator).items()}  # fmt: skip
    state.update(clap_state_to_file_layout(laion.model.state_dict(), "query_encoder.model."))
    torch.save({"state_dict": state, "epoch": 0, "global_step": 0}, tmp_path / "a.ckpt")
    cache_file(offline_home / "hub", "Audio-AGI/AudioSep", AUDIOSEP_REF.split("/", 4)[4], tmp_path / "a.ckpt")
    recipe = tmp_path / "clap_audiosep.yaml"
    recipe.write_text(TINY_AUDIOSEP.replace(
        "{name: minilm, freeze: true, max_length: 16}",
        "{name: clap-laion, freeze: true, amodel: HTSAT-tiny, text_model_dir: hf://FacebookAI/roberta-base}",
    ))  # fmt: skip
    pipeline = build_pipeline(load_recipe(str(recipe)), checkpoint=AUDIOSEP_REF)
    for key, value in pipeline.separator.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(value, state[f"ss_model.{to_official_key(key)}"]), key
    with torch.no_grad():
        torch.testing.assert_close(pipeline.text_encoder.embed_text(["violin"]), laion.embed_text(["violin"]))
    # the component-level key: model.text_encoder.checkpoint=hf://... reads the query encoder part
    component = load_recipe(str(recipe), [f"model.text_encoder.checkpoint={AUDIOSEP_REF}"])
    encoder = build_pipeline(component).text_encoder
    with torch.no_grad():
        torch.testing.assert_close(encoder.embed_text(["violin"]), laion.embed_text(["violin"]))
