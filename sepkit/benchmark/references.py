"""Rows that need no model: Mixture, Mixture x 0.5, Silence, and the oracle rows the systems declare.

Every test set gets the three reference rows (unless ``--no-reference-rows``), scored with the
same metrics on the same examples as the systems:

- **Mixture**: the mixture itself as the estimate (doing nothing; SDRi and SI-SDRi are exactly 0);
- **Mixture x 0.5**: half the mixture (a system that only lowers the volume);
- **Silence**: all zeros. Each metric gives what its own formula gives for silence, with the
  floors it already has (sepkit's: SDR and SI-SDR 0 dB, as their 1e-10 energy floors make 0/0
  count as 1; LSD's 1e-12 terms and PSNR's 1e-5 mel floor keep both finite); a metric that still
  returns a non-finite value gets null, left out of the row's mean, interval and comparisons.

Oracle rows come from ``SeparationPipeline.oracles()`` (``sepkit.oracles``): one row per distinct
oracle, labelled by what decides it, e.g. "Oracle IRM [STFTEncoder n_fft 512, hop_length 160]", never
by the systems that declare it (an oracle row is not a system's result; ``declared_by`` in
results.json and the notes under the table name them). Two oracles are the same when name, config,
sample rate and the sha256 of their modules' weights agree; two different ones with the same label
get the first 6 hex digits of their fingerprints appended.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor, nn

from sepkit.interfaces import Oracle

Output = Callable[[Tensor, Tensor, Tensor], Tensor]  # (mixture [B, T], target [B, T], lengths [B]) -> [B, T]


@dataclass
class Reference:
    """One row group that needs no model: a function of the mixture and the target."""

    name: str
    kind: str  # "reference" (Mixture, Mixture x 0.5, Silence) or "oracle"
    description: str
    output: Output
    sample_rate: Optional[int] = None  # Hz ``output`` works at; None: the test set's rate
    config: dict[str, Any] = field(default_factory=dict)
    modules: tuple[nn.Module, ...] = ()
    weights_sha256: Optional[str] = None
    declared_by: list[str] = field(default_factory=list)  # labels of the systems that declare this oracle
    shown: bool = False  # its estimates appear among report.html's examples
    setting: str = ""  # what decides an oracle's output, in a few words (``Oracle.setting``)

    @property
    def label(self) -> str:
        return f"{self.name} [{self.setting}]" if self.setting else self.name

    @property
    def fingerprint(self) -> str:
        """sha256 of what decides the output (not of the systems that declare it)."""
        payload = {"name": self.name, "kind": self.kind, "config": self.config, "sample_rate": self.sample_rate,
                   "weights": self.weights_sha256}  # fmt: skip
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def device(self) -> torch.device:
        for module in self.modules:
            for tensor in (*module.parameters(), *module.buffers()):
                return tensor.device
        return torch.device("cpu")

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "kind": self.kind,
            "description": self.description,
            "declared_by": list(self.declared_by),
            "config": self.config,
            "sample_rate": self.sample_rate,
            "weights_sha256": self.weights_sha256,
            "fingerprint": self.fingerprint,
        }


def reference_rows() -> list[Reference]:
    """Mixture, Mixture x 0.5 and Silence, in table order."""
    return [
        Reference("Mixture", "reference", "the mixture itself as the estimate (doing nothing)",
                  lambda mixture, target, lengths: mixture.clone()),
        Reference("Mixture x 0.5", "reference", "half the mixture (a system that only lowers the volume)",
                  lambda mixture, target, lengths: 0.5 * mixture),
        Reference("Silence", "reference", "an all-zero estimate, scored with each metric's own floors (SDR and "
                  "SI-SDR give 0 dB: their 1e-10 energy floors make 0/0 count as 1)",
                  lambda mixture, target, lengths: torch.zeros_like(mixture)),
    ]  # fmt: skip


def weights_sha256(modules: tuple[nn.Module, ...]) -> str:
    """sha256 over the state (names, dtypes, shapes, bytes) of ``modules``, in order."""
    digest = hashlib.sha256()
    for index, module in enumerate(modules):
        for key, value in sorted(module.state_dict().items()):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"{index}.{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def oracle_row(oracle: Oracle, system_label: str) -> Reference:
    """The reference row of ``oracle``, declared by the system ``system_label``."""
    return Reference(
        name=oracle.name,
        kind="oracle",
        description=oracle.description,
        output=oracle.output,
        sample_rate=int(oracle.sample_rate),
        config=oracle.config,
        modules=tuple(oracle.modules),
        weights_sha256=weights_sha256(tuple(oracle.modules)),
        declared_by=[system_label],
        shown=True,
        setting=oracle.setting,
    )
