"""Contract tests for sepkit components: what a third-party plugin must satisfy.

A plugin's test suite subclasses the contract of each component's kind::

    from sepkit.testing import SeparatorContract

    class TestMaskNet(SeparatorContract):
        name = "mask-net"                                  # registry name
        config = "hidden: 32\\nlayers: 2\\ninput_dim: 513\\nquery_dim: 384"   # default: the entry's example

and ``sepkit check-plugin DISTRIBUTION`` runs the contracts of every component an
installed distribution registers (``run_check_plugin``).

Exports are loaded on first use, so importing ``sepkit.testing.pytest_plugin``
(loaded by every pytest run in the environment) does not import torch.
"""

from __future__ import annotations

import importlib

import pytest

# Plain ``assert`` in the contract classes gets pytest's detailed failure messages.
pytest.register_assert_rewrite("sepkit.testing.contracts")

_EXPORTS = {
    "ComponentContract": "contracts",
    "TextEncoderContract": "contracts",
    "AudioEncoderContract": "contracts",
    "SeparatorContract": "contracts",
    "DecoderContract": "contracts",
    "CodecContract": "contracts",
    "InstructionParserContract": "contracts",
    "MetricContract": "contracts",
    "SystemContract": "contracts",
    "CONTRACTS": "contracts",
    "contract_for": "contracts",
    "assert_same_outputs": "contracts",
    "perturb_state": "contracts",
    "make_ragged_wave_batch": "pytest_plugin",
    "block_network": "pytest_plugin",
    "run_check_plugin": "check_plugin",
    "contract_module_source": "check_plugin",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sepkit.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"sepkit.testing.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
