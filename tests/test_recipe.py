from pathlib import Path

import pytest

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry
from sepkit.recipe import bundled_recipe_names, find_recipe, load_recipe, recipes_dir, resolve_components

BASE = """
name: base
model:
  text_encoder: {name: minilm, freeze: true}
  audio_encoder: {name: stft, n_fft: 256, hop_length: 64}
  separator: {name: mask-net, hidden: 8}
  decoder:
    name: istft
    n_fft: ${model.audio_encoder.n_fft}
    hop_length: 64
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_bundled_recipe_loads_and_resolves():
    names = sorted(recipes_dir().rglob("*.yaml"))
    assert names
    for path in names:
        recipe = load_recipe(str(path))
        resolve_components(recipe, get_registry())


def test_find_bundled_by_name():
    assert find_recipe("tiny/stft_mask") == recipes_dir() / "tiny" / "stft_mask.yaml"
    names = bundled_recipe_names()
    assert "mini/audiosep" in names and not [n for n in names if ".train/" in n]  # training records are not offered
    with pytest.raises(SepkitError, match="not found.*tiny/stft_mask"):
        find_recipe("no-such-recipe")


def test_extends_overrides_and_interpolation(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nmodel:\n  audio_encoder: {n_fft: 512}\n")
    recipe = load_recipe(str(child), ["model.separator.hidden=16"])
    cfg = recipe.to_container()
    assert "extends" not in cfg
    assert cfg["model"]["separator"] == {"name": "mask-net", "hidden": 16}
    assert cfg["model"]["decoder"]["n_fft"] == 512  # interpolation sees the child's value
    assert recipe.inference.chunk_seconds == 30.0


def test_two_levels_of_extends_rejected(tmp_path):
    write(tmp_path, "a.yaml", BASE)
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    c = write(tmp_path, "c.yaml", "extends: b.yaml\n")
    with pytest.raises(SepkitError, match="one level of extends"):
        load_recipe(str(c))


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("model: [1, 2]\n", "needs a 'model' mapping"),
        ("modle: {}\n", "unknown top-level key 'modle'"),
        ("model:\n  seperator: {name: mask-net}\n", "unknown key 'model.seperator'"),
        ("model:\n  separator: {hidden: 3}\n", "'model.separator' needs a 'name'"),
        ("model: {}\ninference: {device: tpu}\n", "inference.device='tpu'"),
        ("model: {}\ninference: {chunk_secs: 3}\n", "inference.chunk_secs"),
        ("model: {}\ninference: {chunk_seconds: 1, overlap_seconds: 1}\n", "chunk_seconds > 2"),
        ("model: {a: [\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a YAML mapping"),
    ],
)
def test_schema_errors_name_key_and_file(tmp_path, text, pattern):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(SepkitError, match=pattern) as caught:
        load_recipe(str(path))
    assert str(path) in str(caught.value)


def test_resolve_components_fills_defaults_and_checks_keys(tmp_path):
    path = write(tmp_path, "r.yaml", BASE)
    config = resolve_components(load_recipe(str(path)), get_registry())
    assert config.model.separator.kernel_size == 5
    assert config.model.separator.hidden == 8
    assert config.model.text_encoder.freeze is True
    bad = write(tmp_path, "bad.yaml", BASE.replace("hidden: 8", "hiden: 8"))
    with pytest.raises(SepkitError, match=r"bad.yaml.*model\.separator\.hiden"):
        resolve_components(load_recipe(str(bad)), get_registry())
    unknown = write(tmp_path, "unk.yaml", BASE.replace("mask-net", "mask-nett"))
    with pytest.raises(SepkitError, match=r"model\.separator\.name.*installed: .*mask-net"):
        resolve_components(load_recipe(str(unknown)), get_registry())


def test_bad_override(tmp_path):
    path = write(tmp_path, "r.yaml", BASE)
    with pytest.raises(SepkitError, match="override"):
        load_recipe(str(path), ["no-equals-sign"])


def test_component_checkpoint_paths_beside_the_recipe_are_made_absolute(tmp_path, monkeypatch):
    from sepkit.recipe import load_recipe

    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "weights.ckpt").write_bytes(b"x")
    (folder / "r.yaml").write_text(
        "model:\n"
        "  text_encoder: {name: minilm}\n"
        "  audio_encoder: {name: stft, checkpoint: weights.ckpt}\n"
        "  separator: {name: masknet, global_stage: {name: x, checkpoint: weights.ckpt}}\n"
        "  decoder: {name: istft, checkpoint: runs/elsewhere.ckpt}\n"
    )
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(str(folder / "r.yaml"))
    expected = str((folder / "weights.ckpt").resolve())
    assert recipe.section("audio_encoder").checkpoint == expected
    assert recipe.section("separator").global_stage.checkpoint == expected
    assert recipe.section("decoder").checkpoint == "runs/elsewhere.ckpt"  # not beside the recipe: left as written


def test_extends_swapping_a_component_drops_the_base_components_keys(tmp_path):
    from sepkit.recipe import load_recipe

    (tmp_path / "base.yaml").write_text(
        "model:\n"
        "  text_encoder: {name: qaudio, part: text, freeze: true, text_encoder: {name: flan-t5, max_length: 64}}\n"
        "  audio_encoder: {name: stft, n_fft: 512}\n"
        "  separator: {name: hsm-local, depth: 12, global_stage: {name: hsm-global, depth: 6}}\n"
        "  decoder: {name: istft}\n"
    )
    (tmp_path / "child.yaml").write_text(
        "extends: base.yaml\n"
        "model:\n"
        "  text_encoder: {name: minilm}\n"
        "  audio_encoder: {hop_length: 128}\n"
        "  separator: {depth: 4, global_stage: {name: other-global}}\n"
    )
    model = load_recipe(str(tmp_path / "child.yaml")).config.model
    assert dict(model.text_encoder) == {"name": "minilm", "freeze": True}  # qaudio's keys go, the role's stay
    assert dict(model.audio_encoder) == {"name": "stft", "n_fft": 512, "hop_length": 128}  # same name: merged
    assert model.separator.depth == 4 and dict(model.separator.global_stage) == {"name": "other-global"}


def test_an_extending_recipe_in_another_folder_finds_the_bases_own_checkpoint(tmp_path):
    """The base's relative ``checkpoint:`` (shipped beside it) resolves from the base's folder."""
    base = recipes_dir() / "mini" / "hsm_tss.yaml"
    (tmp_path / "child.yaml").write_text(f"extends: {base}\ninference: {{batch_size: 2}}\n")
    path = load_recipe(str(tmp_path / "child.yaml")).checkpoint_path()
    assert path is not None and Path(path) == (base.parent / "hsm_tss.train" / "separator.ckpt").resolve()
