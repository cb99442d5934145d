"""Waveform metrics: SDR (plain SNR), SI-SDR, their improvements, and bss_eval SDR.

All take float [B, T] tensors and return float64 [B] in dB.

- ``SDR``: as the DCASE 2024 Task 9 baseline and AudioSep compute it,
  ``10 log10(max(mean s^2, 1e-10) / max(mean (s_hat - s)^2, 1e-10))``.
- ``SISDR``: Le Roux et al., "SDR - half-baked or well done?" (2019): project the
  estimate on the reference, ``alpha = <s_hat, s> / <s, s>``,
  ``10 log10(|alpha s|^2 / |s_hat - alpha s|^2)``; like torchmetrics, fast_bss_eval and
  DCASE, no mean removal unless ``zero_mean: true``. A tiny epsilon keeps silence finite.
- ``BSSEvalSDR``: bss_eval v4 SDR with a 512-tap distortion filter, computed by fast_bss_eval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import Metric

EPS = 1e-10


def plain_sdr(estimate: Tensor, reference: Tensor) -> Tensor:
    """DCASE 2024 Task 9 / AudioSep SDR in dB, float64 [B]."""
    s, e = reference.double(), estimate.double()
    signal = (s**2).mean(-1).clamp_min(EPS)
    noise = ((e - s) ** 2).mean(-1).clamp_min(EPS)
    return 10 * torch.log10(signal / noise)


def si_sdr(estimate: Tensor, reference: Tensor, zero_mean: bool = False) -> Tensor:
    """Scale-invariant SDR in dB, float64 [B]."""
    s, e = reference.double(), estimate.double()
    if zero_mean:
        s = s - s.mean(-1, keepdim=True)
        e = e - e.mean(-1, keepdim=True)
    alpha = (e * s).sum(-1, keepdim=True) / (s**2).sum(-1, keepdim=True).clamp_min(EPS)
    target = alpha * s
    return 10 * torch.log10((target**2).sum(-1).clamp_min(EPS) / ((e - target) ** 2).sum(-1).clamp_min(EPS))


def _require_mixture(mixture: Optional[Tensor], name: str) -> Tensor:
    if mixture is None:
        raise SepkitError(f"metric {name!r} is an improvement over the mixture: give the mixture (--mixture)")
    return mixture


class SDR(Metric):
    """Plain SNR (DCASE 2024 Task 9, AudioSep), dB."""

    @dataclass
    class Config:
        pass

    def score(self, estimate, reference, sample_rate, mixture=None):
        return plain_sdr(estimate, reference)


class SDRi(Metric):
    """SDR(estimate, reference) - SDR(mixture, reference), dB."""

    needs_mixture = True

    @dataclass
    class Config:
        pass

    def score(self, estimate, reference, sample_rate, mixture=None):
        return plain_sdr(estimate, reference) - plain_sdr(_require_mixture(mixture, "sdri"), reference)


class SISDR(Metric):
    """Scale-invariant SDR (Le Roux et al. 2019), dB."""

    @dataclass
    class Config:
        zero_mean: bool = False

    def score(self, estimate, reference, sample_rate, mixture=None):
        return si_sdr(estimate, reference, self.config.zero_mean)


class SISDRi(Metric):
    """SI-SDR(estimate) - SI-SDR(mixture), dB."""

    needs_mixture = True

    @dataclass
    class Config:
        zero_mean: bool = False

    def score(self, estimate, reference, sample_rate, mixture=None):
        mixture = _require_mixture(mixture, "si_sdri")
        return si_sdr(estimate, reference, self.config.zero_mean) - si_sdr(mixture, reference, self.config.zero_mean)


class BSSEvalSDR(Metric):
    """bss_eval SDR (512-tap projection) from fast_bss_eval, dB."""

    @dataclass
    class Config:
        filter_length: int = positive(512)

    def score(self, estimate, reference, sample_rate, mixture=None):
        """float64 [B]; an all-zero estimate row gets NaN: its projection onto the reference and its error are
        both zero, so bss_eval's ratio is 0/0 (fast_bss_eval itself fails on such a row)."""
        silent = estimate.detach().reshape(estimate.shape[0], -1).abs().amax(-1).cpu() == 0
        out = torch.full((estimate.shape[0],), float("nan"), dtype=torch.float64)
        if not silent.all():
            keep = ~silent
            out[keep] = self._sdr(estimate.cpu()[keep], reference.cpu()[keep])
        return out

    def _sdr(self, estimate, reference):
        import fast_bss_eval

        # numpy backend: in a long test process torch.linalg.solve was seen spinning without end here
        # (after the CLAP and AudioMAE tests); numpy's LAPACK gives the same figures.
        ref = reference.double().numpy()[:, None, :]
        est = estimate.double().numpy()[:, None, :]
        try:
            sdr = fast_bss_eval.sdr(ref, est, filter_length=self.config.filter_length)[:, 0]
        except ValueError:  # its numpy path fails on an exact estimate (zero error); torch's handles it
            taps = self.config.filter_length
            sdr = fast_bss_eval.sdr(torch.from_numpy(ref), torch.from_numpy(est), filter_length=taps)
            return sdr[:, 0].double()
        return torch.from_numpy(np.ascontiguousarray(sdr)).double()
