"""The layering contracts (.importlinter) hold: the core never imports a plugin, plugins use only the
core's public modules, no plugin imports another. ``make lint`` runs the same command."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports (import-linter) is not installed: run make install (the 'lint' extra)")
    proc = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "3 kept, 0 broken" in proc.stdout


def test_core_never_reaches_benchmarks_or_examples_by_path():
    """benchmarks/ and examples/ are folders of scripts, not packages: the core must not load them by path."""
    pattern = re.compile(r"(import|sys\.path|spec_from_file_location).*\b(benchmarks|examples)\b")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in (REPO / "sepkit").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line) and not line.lstrip().startswith("#")
    ]
    assert not offenders, offenders


def test_public_names_import():
    import sepkit

    for name in ("load", "load_state_dict_checked", "atomic_save", "System", "TrainConfig", "Registry"):
        assert getattr(sepkit, name) is not None
