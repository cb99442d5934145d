"""bss_eval SIR and SAR of an estimate (Vincent et al. 2006), computed by fast_bss_eval.

The MUSIC / Sound-of-Pixels evaluations SGN reports (SDR, SIR, SAR) run ``bss_eval_sources`` over
every source of a mixture. A sepkit metric sees one target per row, so the other sources are the
rest of the mixture: ``references = [reference, mixture - reference]`` and the estimate is scored
as source 0 (``compute_permutation=False``), with a ``filter_length``-tap (512) distortion filter
as mir_eval's ``bss_eval_sources``::

    P_j est, P_all est = projections of est on the delayed target / on both references
    SIR = 10 log10(|P_j est|^2 / |P_all est - P_j est|^2)
    SAR = 10 log10(|P_all est|^2 / |est - P_all est|^2)

(bss_eval's SDR of the same decomposition is ``bss_sdr`` with a mixture-free single reference; see
``sdr.py``.) Both need the mixture. A perfect estimate (est = reference) has no interference and
no artefacts, so it scores +inf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import Metric

METRIC_INDEX = {"sdr": 0, "sir": 1, "sar": 2}


def bss_eval_against_rest(
    estimate: Tensor, reference: Tensor, mixture: Tensor, filter_length: int
) -> tuple[Tensor, Tensor, Tensor]:
    """estimate, reference, mixture float [B, T] -> (SDR, SIR, SAR) float64 [B] of the estimate as source 0
    of ``[reference, mixture - reference]`` (fast_bss_eval.bss_eval_sources, no permutation)."""
    import fast_bss_eval

    ref = torch.stack((reference, mixture - reference), dim=1).double().cpu()
    est = torch.stack((estimate, mixture - estimate), dim=1).double().cpu()
    # torch backend: with several references, fast_bss_eval's numpy path fails under numpy 2
    # (np.linalg.solve reads its batched right-hand side as a matrix)
    out = fast_bss_eval.bss_eval_sources(ref, est, filter_length=filter_length, compute_permutation=False)
    return tuple(m[:, 0].double() for m in out)


class _BSSEvalAgainstRest(Metric):
    needs_mixture = True
    which = ""

    @dataclass
    class Config:
        filter_length: int = positive(512)  # taps of the allowed distortion filter (bss_eval's default)

    def score(self, estimate: Tensor, reference: Tensor, sample_rate: int, mixture: Optional[Tensor] = None) -> Tensor:
        if mixture is None:
            raise SepkitError(
                f"metric bss_{self.which} needs the mixture (the other sources are mixture - reference); pass --mixture"
            )
        return bss_eval_against_rest(estimate, reference, mixture, self.config.filter_length)[METRIC_INDEX[self.which]]


class BSSEvalSIR(_BSSEvalAgainstRest):
    """bss_eval source-to-interference ratio (dB), fast_bss_eval ``bss_eval_sources`` as mir_eval."""

    which = "sir"


class BSSEvalSAR(_BSSEvalAgainstRest):
    """bss_eval source-to-artefacts ratio (dB), fast_bss_eval ``bss_eval_sources`` as mir_eval."""

    which = "sar"
