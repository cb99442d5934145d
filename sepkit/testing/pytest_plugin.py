"""pytest fixtures for sepkit plugin tests (registered as the ``pytest11`` entry point ``sepkit``).

Installed with sepkit, this module is loaded by every pytest run in the
environment, so it imports neither torch nor the contract classes at import
time. Without the entry point, enable it with ``-p sepkit.testing.pytest_plugin``
or ``pytest_plugins = ["sepkit.testing.pytest_plugin"]`` in a conftest.

Fixtures:

- ``sepkit_registry``: the registry filled from the installed ``sepkit.plugins``
  entry points (session-scoped, loaded once).
- ``ragged_wave_batch``: a factory
  ``(sample_rate, batch=3, seconds=None, seed=0) -> (wave float32 [B, T], lengths long [B])``.
- ``no_network``: blocks sockets for the test; a connection attempt raises
  ``RuntimeError("network access in a contract test")``.

The plain functions behind the fixtures (``make_ragged_wave_batch``,
``block_network``) are used by the contract classes too, so contracts work
whether or not this plugin is loaded.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Optional

import pytest

NETWORK_MESSAGE = "network access in a contract test"
DEFAULT_SECONDS = (0.5, 0.8, 1.1)


def make_ragged_wave_batch(
    sample_rate: int,
    batch: int = 3,
    seconds: Optional[Sequence[float]] = None,
    seed: int = 0,
):
    """A seeded random mono batch whose rows have different lengths.

    ``seconds``: the duration of each row; by default evenly spaced from 0.5 s to
    1.1 s (0.5, 0.8, 1.1 for three rows). Returns ``wave`` float32 [batch, T]
    (noise of std 0.1, zero beyond each row's length, T = the longest row) and
    ``lengths`` long [batch] (valid samples per row).
    """
    import torch

    if seconds is None:
        lo, hi = DEFAULT_SECONDS[0], DEFAULT_SECONDS[-1]
        seconds = [lo + (hi - lo) * i / max(batch - 1, 1) for i in range(batch)]
    if len(seconds) != batch:
        raise ValueError(f"seconds has {len(seconds)} durations for a batch of {batch}")
    lengths = torch.tensor([max(1, round(s * sample_rate)) for s in seconds], dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    wave = 0.1 * torch.randn(batch, int(lengths.max()), generator=generator)
    valid = torch.arange(wave.shape[1])[None, :] < lengths[:, None]
    return wave * valid, lengths


def block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every socket connection attempt raise ``RuntimeError(NETWORK_MESSAGE)`` until the test ends."""

    def refuse(*args, **kwargs):
        raise RuntimeError(NETWORK_MESSAGE)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="session")
def sepkit_registry():
    """The ``Registry`` loaded from the installed ``sepkit.plugins`` entry points (once per session)."""
    from sepkit.plugins import load_registry

    return load_registry()


@pytest.fixture
def ragged_wave_batch():
    """Factory ``(sample_rate, batch=3, seconds=None, seed=0) -> (wave [B, T], lengths [B])``.

    See ``make_ragged_wave_batch``.
    """
    return make_ragged_wave_batch


@pytest.fixture
def no_network(monkeypatch):
    """Block network access for the test: connecting raises ``RuntimeError("network access in a contract test")``."""
    block_network(monkeypatch)
