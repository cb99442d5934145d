import os
from pathlib import Path

import pytest

from sepkit.paths import display_path, display_words, find_repository_root


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A checkout at tmp_path/repo (``.git`` folder) with a plugin folder that has its own setup.cfg;
    the home folder is tmp_path/home."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "setup.cfg").write_text("[metadata]\n")
    (root / "examples" / "plugin").mkdir(parents=True)
    (root / "examples" / "plugin" / "setup.cfg").write_text("[metadata]\n")
    (root / "recipes" / "mini").mkdir(parents=True)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(root)
    return root


def test_inside_the_repository_paths_are_repository_relative_from_any_of_its_folders(repo, monkeypatch):
    recipe = repo / "recipes" / "mini" / "audiosep.yaml"  # need not exist
    assert display_path(recipe) == "recipes/mini/audiosep.yaml"
    assert display_path(str(recipe)) == "recipes/mini/audiosep.yaml"
    monkeypatch.chdir(repo / "examples" / "plugin")  # its setup.cfg does not make it the root: .git wins
    assert find_repository_root() == repo
    assert display_path(recipe) == "recipes/mini/audiosep.yaml"
    assert display_path("../../recipes/x.yaml") == "recipes/x.yaml"  # relative to the working directory first
    assert display_path(repo) == "."


def test_without_git_the_nearest_setup_cfg_is_the_root(tmp_path, monkeypatch):
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "setup.cfg").write_text("")
    monkeypatch.chdir(tmp_path / "tree" / "sub")
    assert find_repository_root() == tmp_path / "tree"
    assert display_path(tmp_path / "tree" / "recipes" / "a.yaml") == "recipes/a.yaml"


def test_outside_the_repository_home_paths_use_a_tilde_and_others_stay(repo, tmp_path):
    assert display_path(tmp_path / "home" / "ckpts" / "best.ckpt") == "~/ckpts/best.ckpt"
    assert display_path(tmp_path / "elsewhere" / "x.ckpt") == str(tmp_path / "elsewhere" / "x.ckpt")
    assert display_path("~/a/b.ckpt") == "~/a/b.ckpt"


def test_outside_any_repository_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    if find_repository_root(tmp_path) is not None:
        pytest.skip("the temporary folder lies inside a checkout")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert display_path(tmp_path / "work" / "runs" / "a.ckpt") == "runs/a.ckpt"


def test_symlinked_working_directory(repo, tmp_path, monkeypatch):
    link = tmp_path / "link"
    os.symlink(repo, link)
    monkeypatch.chdir(link)
    assert display_path(repo.resolve() / "recipes" / "a.yaml") == "recipes/a.yaml"
    assert display_path(link / "recipes" / "a.yaml") == "recipes/a.yaml"


def test_what_is_not_a_local_path_is_kept(repo):
    assert display_path(None) is None
    assert display_path("hf://org/model/weights.ckpt") == "hf://org/model/weights.ckpt"
    assert display_path("<recipe>") == "<recipe>"


def test_command_words_keep_names_and_rewrite_paths(repo, tmp_path):
    words = [
        "benchmark", "mini/audiosep", f"{repo}/recipes/x.yaml@{repo}/runs/a/best.ckpt",
        f"model.decoder.checkpoint={repo}/c.pt", "--out", f"{repo}/benchmarks/mini", f"--testset={tmp_path}/t.jsonl",
        "--label", "AudioSep (mini)",
    ]  # fmt: skip
    assert display_words(words) == [
        "benchmark", "mini/audiosep", "recipes/x.yaml@runs/a/best.ckpt", "model.decoder.checkpoint=c.pt",
        "--out", "benchmarks/mini", f"--testset={tmp_path}/t.jsonl", "--label", "AudioSep (mini)",
    ]  # fmt: skip
    assert Path(display_words([str(repo / "a b.yaml")])[0]) == Path("a b.yaml")
