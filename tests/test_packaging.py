"""sepkit as a package (issue 17): its version, its bundled recipes as package data, one listing per plugin.

The recipes (and the mini weights they ship with) are the resources package ``sepkit_recipes``
(``recipes/`` in the checkout) found through ``importlib.resources``; ``setup.cfg`` names each built-in
plugin's package once, beside its one entry point. ``.ci/wheel-test`` runs the built wheel outside
the checkout; the slow test here only builds it and reads its file list.
"""

from __future__ import annotations

import configparser
import importlib
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest
import yaml

import sepkit
from sepkit import recipe as recipe_module
from sepkit.cli import main
from sepkit.errors import SepkitError
from sepkit.recipe import find_recipe, recipes_dir

REPO = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in", "sepkit", "plugins", "recipes")


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    return parser


def listed(parser: configparser.ConfigParser, section: str, key: str) -> list[str]:
    return [line.strip() for line in parser[section][key].splitlines() if line.strip()]


def plugin_folders() -> list[str]:
    return sorted(p.name for p in (REPO / "plugins").iterdir() if (p / "__init__.py").is_file())


def package_data_suffixes() -> list[str]:
    """The suffixes ``setup.cfg`` ships from the recipes: ``**/*.yaml`` -> ``.yaml``."""
    patterns = [p.strip() for p in setup_cfg()["options.package_data"]["sepkit_recipes"].split(",")]
    assert all(re.fullmatch(r"\*\*/\*\.\w+", p) for p in patterns), patterns
    return [p[len("**/*") :] for p in patterns]


# --- the version -------------------------------------------------------------------------------------
def test_version_flag_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sepkit {version('sepkit')}" == f"sepkit {sepkit.__version__}"


# --- the recipes as a resources package ---------------------------------------------------------------
def test_recipes_dir_is_the_resources_package_here_the_checkouts_recipes():
    assert recipes_dir() == Path(str(resources.files("sepkit_recipes")))
    assert recipes_dir().resolve() == (REPO / "recipes").resolve()  # the editable install of this checkout
    assert find_recipe("mini/audiosep") == recipes_dir() / "mini" / "audiosep.yaml"
    assert find_recipe("mini/audiosep.yaml") == recipes_dir() / "mini" / "audiosep.yaml"


def test_find_recipe_reads_whatever_sepkit_recipes_is_installed(tmp_path, monkeypatch):
    """Not a folder beside the sepkit package: another installed sepkit_recipes is what is read."""
    package = tmp_path / "site" / "sepkit_recipes"
    (package / "demo").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "demo" / "only_here.yaml").write_text("model: {}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "sepkit_recipes", raising=False)
    importlib.invalidate_caches()
    try:
        assert recipes_dir() == package
        assert find_recipe("demo/only_here") == package / "demo" / "only_here.yaml"
        with pytest.raises(SepkitError, match=r"recipe 'mini/audiosep' not found: .*bundled recipe \(demo/only_here\)"):
            find_recipe("mini/audiosep")
    finally:
        sys.modules.pop("sepkit_recipes", None)  # the next import finds the checkout's again


def test_a_path_that_exists_wins_over_a_bundled_name(tmp_path, monkeypatch):
    (tmp_path / "mini").mkdir()
    (tmp_path / "mini" / "audiosep").write_text("model: {}\n")
    monkeypatch.chdir(tmp_path)
    assert find_recipe("mini/audiosep") == Path("mini/audiosep")


def test_missing_recipes_package_is_a_sepkit_error_naming_the_fix(monkeypatch):
    monkeypatch.setattr(recipe_module, "RECIPES_PACKAGE", "sepkit_recipes_not_installed")
    with pytest.raises(SepkitError, match=r"bundled recipes \(sepkit_recipes_not_installed\) are not installed; "
                                          r"reinstall sepkit"):  # fmt: skip
        find_recipe("mini/audiosep")


def test_every_file_a_bundled_recipe_names_beside_it_is_package_data():
    """A recipe's relative ``checkpoint:`` (or table) that exists beside it must be in the wheel too."""
    suffixes = package_data_suffixes()
    assert {".yaml", ".ckpt"} <= set(suffixes)
    root, named = (REPO / "recipes").resolve(), set()
    for path in sorted(root.rglob("*.y*ml")):
        stack = [yaml.safe_load(path.read_text())]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                stack += node.values()
            elif isinstance(node, list):
                stack += node
            elif isinstance(node, str) and len(node) < 200 and (path.parent / node).is_file():
                target = (path.parent / node).resolve()
                if target.is_relative_to(root):  # not ../../data/mini/...: data, not part of the package
                    named.add(target.relative_to(root))
    assert Path("mini/audiosep.ckpt") in named and Path("mini/hsm_tss.train/separator.ckpt") in named
    assert Path("mini/opensep_properties.yml") in named
    assert [str(p) for p in sorted(named) if p.suffix not in suffixes] == []


# --- setup.cfg: each built-in plugin once ---------------------------------------------------------------
def test_each_plugin_is_named_once_by_its_entry_point():
    """setup.py finds the packages (core, plugins/*, recipes); setup.cfg names each plugin once, as an entry point."""
    cfg = setup_cfg()
    assert not cfg.has_option("options", "packages") and not cfg.has_option("options", "package_dir")
    targets = [line.split("=", 1)[1].strip() for line in listed(cfg, "options.entry_points", "sepkit.plugins")]
    assert len(targets) == len(set(targets))
    assert sorted(set(targets) - {"sepkit.builtin_plugin"}) == plugin_folders()
    source = (REPO / "setup.py").read_text()
    assert 'find_packages("plugins")' in source and 'find_packages(include=["sepkit", "sepkit.*"])' in source


def test_installed_entry_points_are_setup_cfgs():
    """The editable install in .venv was made from this setup.cfg (re-run pip install -e . if not)."""
    lines = listed(setup_cfg(), "options.entry_points", "sepkit.plugins")
    declared = {tuple(part.strip() for part in line.split("=", 1)) for line in lines}
    installed = {(ep.name, ep.value) for ep in entry_points(group="sepkit.plugins") if ep.dist.name == "sepkit"}
    assert installed == declared and len(installed) == 22


# --- the wheel -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_wheel_holds_the_recipes_their_weights_and_every_plugin(tmp_path):
    source = tmp_path / "src"  # a copy: building in the checkout would leave build/ and *.egg-info there
    source.mkdir()
    for item in BUILD_INPUTS:
        if (REPO / item).is_dir():
            shutil.copytree(REPO / item, source / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif (REPO / item).is_file():
            shutil.copy2(REPO / item, source / item)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path / "dist"),
         str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("sepkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    suffixes = package_data_suffixes()
    shipped = {
        f"sepkit_recipes/{p.relative_to(REPO / 'recipes').as_posix()}"
        for p in (REPO / "recipes").rglob("*")
        if p.is_file() and p.suffix in suffixes
    }
    assert {"sepkit_recipes/mini/audiosep.yaml", "sepkit_recipes/mini/audiosep.ckpt"} <= shipped
    assert sorted(shipped - names) == []
    assert "sepkit_recipes/__init__.py" in names
    for plugin in plugin_folders():
        assert f"{plugin}/__init__.py" in names, plugin
    assert "sepkit/cli/__init__.py" in names and "sepkit/data/mini/__init__.py" in names
    assert not any(n.startswith(("tests/", "plugins/", "recipes/")) or "__pycache__" in n for n in names)

    info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(info).decode()
    group = text.split("[sepkit.plugins]", 1)[1].split("\n[", 1)[0]
    assert len([line for line in group.splitlines() if "=" in line]) == 22


# --- data folders are the user's, not the install's ----------------------------------------------------
def test_mini_testsets_are_read_from_the_data_root_not_the_install_location(tmp_path, monkeypatch):
    from sepkit.benchmark.testsets import resolve_testset_path
    from sepkit.data.testsets import data_root

    monkeypatch.delenv("SEPKIT_DATA_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data_root() == tmp_path
    with pytest.raises(SepkitError, match=rf"data/mixes/hsm_tss_test.jsonl in {re.escape(str(tmp_path))}\) is not "
                                          r"built yet; run `make mini-data`.*or set SEPKIT_DATA_ROOT"):  # fmt: skip
        resolve_testset_path("mini-hsm_tss")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data" / "mixes").mkdir(parents=True)
    (elsewhere / "data" / "mixes" / "hsm_tss_test.jsonl").write_text("{}\n")
    monkeypatch.setenv("SEPKIT_DATA_ROOT", str(elsewhere))
    assert resolve_testset_path("mini-hsm_tss") == elsewhere / "data" / "mixes" / "hsm_tss_test.jsonl"
