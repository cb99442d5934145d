"""Plugin discovery robustness: fake installed distributions on PYTHONPATH, ``sepkit`` in a subprocess.

Each fake distribution is a ``<name>-<version>.dist-info`` folder (METADATA and
entry_points.txt) beside its module files; importlib.metadata finds dist-info
folders on sys.path, so the ``sepkit.plugins`` entry points show up as if
pip-installed.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILTINS = {
    ("text_encoder", "minilm"),
    ("audio_encoder", "stft"),
    ("separator", "mask-net"),
    ("decoder", "istft"),
    ("codec", "mulaw"),
    ("instruction_parser", "rules"),
}

WORKING_PLUGIN = """
from sepkit.hookspecs import hookimpl

@hookimpl
def sepkit_register(registry):
    registry.register("separator", "good-net", "good_plugin_impl:GoodNet", summary="a fake working separator")
"""


def add_distribution(root: Path, name: str, modules: dict[str, str], entry_points: dict[str, str],
                     version: str = "0.1") -> None:
    """Write a fake installed distribution ``name`` into ``root``: its dist-info and ``modules`` {name: source}."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[sepkit.plugins]\n{lines}")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


class Site:
    """A folder of fake distributions; ``run(*args, **env)`` runs sepkit with it on PYTHONPATH."""

    def __init__(self, root: Path, cli, cwd: Path) -> None:
        self.root, self._cli, self._cwd = root, cli, cwd

    def add(self, name: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
        add_distribution(self.root, name, modules, entry_points)

    def write(self, module: str, source: str) -> None:
        (self.root / f"{module}.py").write_text(source)

    def run(self, *args, **env):
        path = os.pathsep.join(p for p in (str(self.root), os.environ.get("PYTHONPATH", "")) if p)
        return self._cli(*args, env={"PYTHONPATH": path, **env}, cwd=self._cwd)


@pytest.fixture
def site(tmp_path, sepkit_cli):
    root = tmp_path / "site"
    root.mkdir()
    return Site(root, sepkit_cli, tmp_path)


def listed(proc) -> set[tuple[str, str]]:
    assert proc.returncode == 0, proc.stderr
    return {(e["kind"], e["name"]) for e in json.loads(proc.stdout)}


def providers(proc) -> dict[tuple[str, str], str]:
    return {(e["kind"], e["name"]): e["provider"] for e in json.loads(proc.stdout)}


def assert_fatal(proc, *keywords):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("sepkit: error:")]
    assert len(errors) == 1, proc.stderr
    for word in keywords:
        assert word in errors[0], (word, errors[0])


# 1. a plugin that raises on import ---------------------------------------------------------


@pytest.fixture
def broken_import(site):
    site.add("broken-plugin", {"broken_plugin": 'raise RuntimeError("boom")\n'},
                     {"broken": "broken_plugin"})
    site.add("good-plugin", {"good_plugin": WORKING_PLUGIN}, {"good": "good_plugin"})
    return site


def test_import_error_is_a_warning(broken_import):
    proc = broken_import.run("plugins", "--json")
    names = listed(proc)
    assert BUILTINS <= names
    assert ("separator", "good-net") in names  # the other plugins still load
    assert "broken-plugin" in proc.stderr and "boom" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_import_error_strict_is_fatal(broken_import):
    proc = broken_import.run("plugins", "--json", SEPKIT_STRICT_PLUGINS="1")
    assert_fatal(proc, "broken-plugin", "boom")
    assert proc.stdout == ""


# 2. a plugin whose hook raises -------------------------------------------------------------

RAISING_HOOK = """
from sepkit.hookspecs import hookimpl

@hookimpl
def sepkit_register(registry):
    raise ValueError("hook exploded")
"""

HALF_REGISTERING_HOOK = """
from sepkit.hookspecs import hookimpl

@hookimpl
def sepkit_register(registry):
    registry.register("separator", "half-net", "half_plugin_impl:HalfNet", summary="registered before the crash")
    raise ValueError("hook exploded halfway")
"""


def test_hook_error_is_a_warning(site):
    site.add("hook-plugin", {"hook_plugin": RAISING_HOOK}, {"hookp": "hook_plugin"})
    proc = site.run("plugins", "--json")
    assert BUILTINS <= listed(proc)
    assert "hook-plugin" in proc.stderr and "hook exploded" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_hook_error_strict_is_fatal(site):
    site.add("hook-plugin", {"hook_plugin": RAISING_HOOK}, {"hookp": "hook_plugin"})
    assert_fatal(site.run("plugins", "--json", SEPKIT_STRICT_PLUGINS="1"), "hook-plugin", "hook exploded")


def test_hook_error_after_registering_warns(site):
    site.add("half-plugin", {"half_plugin": HALF_REGISTERING_HOOK}, {"half": "half_plugin"})
    proc = site.run("plugins", "--json")
    assert BUILTINS <= listed(proc)
    assert "half-plugin" in proc.stderr and "hook exploded halfway" in proc.stderr
    assert "skipped" in proc.stderr


def test_hook_error_after_registering_leaves_nothing(site):
    site.add("half-plugin", {"half_plugin": HALF_REGISTERING_HOOK}, {"half": "half_plugin"})
    proc = site.run("plugins", "--json")
    assert ("separator", "half-net") not in listed(proc)


# 3. autoload switch ------------------------------------------------------------------------


def test_disable_autoload_keeps_only_builtins(broken_import):
    proc = broken_import.run("plugins", "--json", SEPKIT_DISABLE_PLUGIN_AUTOLOAD="1")
    names = listed(proc)
    assert BUILTINS <= names
    assert ("text_encoder", "hashed-ngrams") not in names
    assert ("separator", "good-net") not in names
    assert set(providers(proc).values()) == {"sepkit"}
    assert "broken-plugin" not in proc.stderr  # not even imported


def test_autoload_on_lists_third_party(broken_import):
    proc = broken_import.run("plugins", "--json")
    found = providers(proc)
    assert found[("separator", "good-net")] == "good-plugin"
    assert found[("text_encoder", "hashed-ngrams")] == "sepkit-example-plugin"


# 4. a name clash with a built-in -------------------------------------------------------------

CLASHING = """
from sepkit.hookspecs import hookimpl

@hookimpl
def sepkit_register(registry):
    registry.register("text_encoder", "minilm", "dup_plugin_impl:OtherMiniLM", summary="clashes with the built-in")
"""


def test_duplicate_component_name_is_fatal(site):
    site.add("dup-plugin", {"dup_plugin": CLASHING}, {"dup": "dup_plugin"})
    proc = site.run("plugins", "--json")
    assert_fatal(proc, "minilm", "sepkit", "dup-plugin", "registered twice")


# 4b. an unknown kind or a malformed target: the plugin alone is skipped ---------------------

UNKNOWN_KIND = """
from sepkit.hookspecs import hookimpl

@hookimpl
def sepkit_register(registry):
    registry.register("separator", "early-net", "kind_plugin_impl:EarlyNet", summary="registered before the bad one")
    registry.register("vocoder", "hifi", "kind_plugin_impl:HiFi", summary="a kind sepkit does not have")
"""

MALFORMED_TARGET = """
from sepkit.hookspecs import hookimpl

@hookimpl
def sepkit_register(registry):
    registry.register("separator", "no-colon-net", "target_plugin_impl.NoColonNet", summary="target lacks ':'")
"""


@pytest.mark.parametrize(
    "source, words",
    [(UNKNOWN_KIND, ("unknown kind 'vocoder'",)), (MALFORMED_TARGET, ("must look like 'module:Class'",))],
    ids=["unknown-kind", "malformed-target"],
)
def test_bad_registration_is_isolated_like_a_broken_plugin(site, source, words):
    site.add("odd-plugin", {"odd_plugin": source}, {"odd": "odd_plugin"})
    site.add("good-plugin", {"good_plugin": WORKING_PLUGIN}, {"good": "good_plugin"})
    proc = site.run("plugins", "--json")
    names = listed(proc)
    assert BUILTINS <= names and ("separator", "good-net") in names
    assert ("separator", "early-net") not in names and ("separator", "no-colon-net") not in names
    assert "odd-plugin" in proc.stderr and "skipped" in proc.stderr and "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert_fatal(site.run("plugins", "--json", SEPKIT_STRICT_PLUGINS="1"), "odd-plugin", *words)


# 5. a misspelled hookimpl --------------------------------------------------------------------

MISSPELLED = """
from sepkit.hookspecs import hookimpl

@hookimpl
def sepkit_regster(registry):
    registry.register("separator", "typo-net", "typo_plugin_impl:TypoNet")
"""


def test_misspelled_hook_is_not_silently_ignored(site):
    site.add("typo-plugin", {"typo_plugin": MISSPELLED}, {"typo": "typo_plugin"})
    proc = site.run("plugins", "--json")
    assert proc.returncode != 0 or "sepkit_regster" in proc.stderr, proc.stderr
    assert "sepkit_regster" in proc.stderr


def test_misspelled_hook_is_a_clear_plugin_error(site):
    site.add("typo-plugin", {"typo_plugin": MISSPELLED}, {"typo": "typo_plugin"})
    proc = site.run("plugins", "--json")
    assert "internal error" not in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "typo-plugin" in proc.stderr and "sepkit_regster" in proc.stderr
    if proc.returncode == 0:  # skipped with a warning
        assert BUILTINS <= listed(proc)
    else:
        assert_fatal(proc, "typo-plugin", "sepkit_regster")


# 6. a component whose module cannot be imported: lazy until built ----------------------------------

LAZY = """
from sepkit.hookspecs import hookimpl

@hookimpl
def sepkit_register(registry):
    registry.register("separator", "lazy-net", "lazy_plugin_impl:LazyNet", summary="needs a missing dependency")
"""


def lazy_recipe(folder: Path) -> Path:
    """A self-contained tiny recipe whose separator is 'lazy-net'."""
    recipe = folder / "lazy.yaml"
    recipe.write_text(
        textwrap.dedent(
            """\
            name: lazy
            model:
              text_encoder: {name: minilm, freeze: true}
              audio_encoder: {name: stft, n_fft: 256, hop_length: 64, sample_rate: 16000}
              separator: {name: lazy-net}
              decoder: {name: istft, n_fft: 256, hop_length: 64, sample_rate: 16000}
            """
        )
    )
    return recipe


@pytest.fixture
def lazy_site(site):
    site.add("lazy-plugin", {"lazy_plugin": LAZY}, {"lazy": "lazy_plugin"})
    return site


def test_lazy_component_listed(lazy_site):
    lazy_site.write("lazy_plugin_impl", "import no_such_dependency_xyz\n\nclass LazyNet: ...\n")
    proc = lazy_site.run("plugins", "--json", "--kind", "separator")
    assert providers(proc)[("separator", "lazy-net")] == "lazy-plugin"
    assert proc.stderr == ""


def test_lazy_component_unimportable_when_resolved(lazy_site, tmp_path):
    lazy_site.write("lazy_plugin_impl", "import no_such_dependency_xyz\n\nclass LazyNet: ...\n")
    recipe = lazy_recipe(tmp_path)
    assert lazy_site.run("recipe", "show", recipe).returncode == 0  # names only: nothing imported
    proc = lazy_site.run("recipe", "show", recipe, "--resolved")
    assert_fatal(proc, "lazy-net", "lazy-plugin", "no_such_dependency_xyz")


def test_lazy_component_missing_class(lazy_site, tmp_path):
    lazy_site.write("lazy_plugin_impl", "class SomethingElse: ...\n")
    proc = lazy_site.run("recipe", "show", lazy_recipe(tmp_path), "--resolved")
    assert_fatal(proc, "lazy-net", "lazy-plugin", "LazyNet")


def test_lazy_component_module_raising_names_provider(lazy_site, tmp_path):
    lazy_site.write("lazy_plugin_impl", 'raise RuntimeError("impl boom")\n')
    proc = lazy_site.run("recipe", "show", lazy_recipe(tmp_path), "--resolved")
    assert_fatal(proc, "lazy-net", "lazy-plugin", "impl boom")
