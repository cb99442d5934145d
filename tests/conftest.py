"""Shared fixtures for sepkit's tests: run the CLI, find the tiny recipe, write test audio."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO / "recipes" / "tiny" / "stft_mask.yaml"
SEPKIT_SCRIPT = Path(sys.executable).parent / "sepkit"

# Switches that change plugin loading; cleared so the caller's shell cannot change a test's outcome.
_PLUGIN_SWITCHES = ("SEPKIT_STRICT_PLUGINS", "SEPKIT_DISABLE_PLUGIN_AUTOLOAD")


def run_sepkit(*args, env: dict | None = None, cwd=None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run the installed ``sepkit`` console script with ``args``; ``env`` entries are added to a clean copy
    of ``os.environ``. Extra keyword arguments go to ``subprocess.run`` (e.g. ``umask=0o022``)."""
    full_env = {k: v for k, v in os.environ.items() if k not in _PLUGIN_SWITCHES}
    full_env.update(env or {})
    return subprocess.run(
        [str(SEPKIT_SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
        **kwargs,
    )


@pytest.fixture(scope="session")
def sepkit_cli():
    """``sepkit_cli(*args, env=None, cwd=None, **run_kwargs) -> CompletedProcess`` of the ``sepkit`` script."""
    if not SEPKIT_SCRIPT.exists():
        pytest.skip(f"the sepkit console script is not installed beside {sys.executable}")
    return run_sepkit


@pytest.fixture(scope="session")
def tiny_recipe() -> Path:
    """Path of ``recipes/tiny/stft_mask.yaml``: the small CPU recipe for quick end-to-end runs."""
    return TINY_RECIPE


def make_wav(path, seconds: float = 0.5, sample_rate: int = 16000, channels: int = 1, subtype: str | None = None,
             seed: int = 0) -> Path:
    """Write seeded noise (std 0.1) of ``seconds`` x ``channels`` at ``sample_rate``; the format follows the suffix."""
    import numpy as np
    import soundfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(round(seconds * sample_rate))
    data = 0.1 * np.random.default_rng(seed).standard_normal((frames, channels))
    soundfile.write(str(path), data.astype(np.float32), sample_rate, subtype=subtype)
    return path


@pytest.fixture(scope="session")
def write_wav():
    """``write_wav(path, seconds=0.5, sample_rate=16000, channels=1, subtype=None, seed=0) -> path``."""
    return make_wav


def _register_hypothesis_profiles() -> None:
    """Property-based tests stay fast and, in CI, derandomized (the same examples every run)."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # hypothesis is a test extra; tests that need it import it themselves
        return
    common = dict(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("sepkit", **common)
    settings.register_profile("ci", derandomize=True, database=None, **common)
    settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "sepkit"))


_register_hypothesis_profiles()
