"""Frechet audio distance between the embedding distributions of two sets of clips.

Kilgour et al. 2019, computed as the usual FID/FAD code does: every valid frame of every
clip (``AudioFeatures.frames`` of the configured audio encoder; PANNs CNN14 by default,
complex frames as magnitudes, patch axes flattened into frames) is one embedding; each set
gets a Gaussian fit (``mu = mean``, ``sigma = np.cov(rowvar=False)``) and::

    FAD = |mu_e - mu_r|^2 + tr(sigma_e + sigma_r - 2 sqrtm(sigma_e @ sigma_r))

with ``scipy.linalg.sqrtm``; when the product is singular (a non-finite or inaccurate
square root), ``1e-6 * I`` is added to both covariances and the root recomputed; the real
part of the root is used. Lower is better.

FAD is a property of whole sets: ``accumulate(estimate, reference, sample_rate)`` collects
embeddings batch by batch and ``compute()`` returns the set's FAD. ``score`` (the per-row
Metric API) returns the FAD of the batch it is given, repeated for each row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor

from sepkit.config import non_negative
from sepkit.errors import SepkitError
from sepkit.interfaces import Metric
from sepkit.registry import Registry

from .kl import PANNS, build_metric_encoder, to_rate

EPS = 1e-6
SQRTM_TOLERANCE = 1e-3  # relative residual |X X - A|_F / |A|_F above which the product counts as near-singular


def gaussian_fit(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, D] -> (mu [D], sigma [D, D]) in float64; N >= 2."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or embeddings.shape[0] < 2:
        raise SepkitError(
            f"FAD needs at least 2 embedding frames per set, got an array of shape {embeddings.shape}; "
            "score more or longer clips"
        )
    return embeddings.mean(axis=0), np.cov(embeddings, rowvar=False)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    import warnings

    from scipy import linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return linalg.sqrtm(matrix)


def _accurate(root: np.ndarray, matrix: np.ndarray) -> bool:
    if not np.isfinite(root).all():
        return False
    scale = np.linalg.norm(matrix)
    return scale == 0 or np.linalg.norm(root @ root - matrix) / scale <= SQRTM_TOLERANCE


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = EPS
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), as the usual FID/FAD implementation."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise SepkitError(f"FAD: embedding widths differ ({mu1.shape} vs {mu2.shape})")
    product = sigma1 @ sigma2
    covmean = _sqrtm(product)
    if not _accurate(covmean, product):
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fad_from_embeddings(estimate: np.ndarray, reference: np.ndarray, eps: float = EPS) -> float:
    """FAD between two embedding sets [N1, D] and [N2, D]."""
    return frechet_distance(*gaussian_fit(estimate), *gaussian_fit(reference), eps=eps)


def _default_encoder() -> dict[str, Any]:
    return {"name": PANNS}


@dataclass
class FADConfig:
    encoder: dict[str, Any] = field(default_factory=_default_encoder)  # any audio encoder section
    checkpoint: Optional[str] = None  # put into the encoder section (PANNs: Cnn14_16k_mAP=0.438.pth)
    allow_random_weights: bool = False  # tests only: accept an untrained PANNs encoder
    eps: float = non_negative(EPS)  # covariance regularisation when the product is singular


class FAD(Metric):
    """Frechet audio distance of encoder frame embeddings, estimate set vs reference set; lower is better."""

    Config = FADConfig
    higher_is_better = False

    def __init__(self, config: FADConfig, registry: Registry) -> None:
        """``registry`` builds the ``encoder`` sub-section."""
        super().__init__(config)
        self.encoder = build_metric_encoder(
            registry,
            "fad", config.encoder, config.checkpoint, config.allow_random_weights, "its embeddings"
        )
        self.reset()

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()
        return self

    def reset(self) -> None:
        """Forget the accumulated embeddings."""
        self._estimates: list[np.ndarray] = []
        self._references: list[np.ndarray] = []

    def embed(self, wave: Tensor, sample_rate: int, lengths: Optional[Tensor] = None) -> np.ndarray:
        """[B, T] at ``sample_rate`` -> float64 [N, D]: every valid frame of every row."""
        encoder = self.encoder
        device = next(encoder.buffers(), next(encoder.parameters(), torch.empty(0))).device
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[-1], dtype=torch.long)
        if sample_rate != encoder.sample_rate:
            lengths = (lengths.double() * encoder.sample_rate / sample_rate).round().long()
        wave = to_rate(wave, sample_rate, encoder.sample_rate).to(device)
        lengths = lengths.clamp(1, wave.shape[-1]).to(device)
        with torch.no_grad():
            features = encoder.encode_audio(wave, lengths)
        frames = features.frames.detach()
        if frames.is_complex():
            frames = frames.abs()
        rows = [frames[i, : int(n)].reshape(-1, frames.shape[-1]) for i, n in enumerate(features.lengths.tolist())]
        return torch.cat(rows).double().cpu().numpy()

    def accumulate(
        self, estimate: Tensor, reference: Tensor, sample_rate: Optional[int] = None, lengths: Optional[Tensor] = None
    ) -> None:
        """Add a batch of estimates and references ([B, T] each; ``sample_rate`` default: the encoder's)."""
        sample_rate = sample_rate or self.encoder.sample_rate
        self._estimates.append(self.embed(estimate, sample_rate, lengths))
        self._references.append(self.embed(reference, sample_rate, lengths))

    def compute(self) -> float:
        """FAD of all accumulated estimates against all accumulated references."""
        if not self._estimates:
            raise SepkitError("FAD.compute() before any accumulate(estimate, reference, sample_rate)")
        return fad_from_embeddings(np.concatenate(self._estimates), np.concatenate(self._references), self.config.eps)

    def score(self, estimate, reference, sample_rate, mixture=None):
        value = fad_from_embeddings(
            self.embed(estimate, sample_rate), self.embed(reference, sample_rate), self.config.eps
        )
        return torch.full((estimate.shape[0],), value, dtype=torch.float64)
