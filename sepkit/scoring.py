"""Scoring an estimate file against a reference (and mixture) with registered metrics.

Files may differ in sample rate and length: the estimate and mixture are
resampled to the reference's rate and all are cut to the shortest. Channels are
scored separately and averaged.
"""

from __future__ import annotations

from typing import Optional

import torch
import torchaudio.functional as AF

from sepkit.audio import read_audio
from sepkit.errors import SepkitError

DEFAULT_METRICS = ("sdr", "sdri", "si_sdr", "si_sdri", "lsd", "psnr")


def _load(path: str, sample_rate: Optional[int] = None) -> tuple[torch.Tensor, int]:
    wave, sr = read_audio(path)
    tensor = torch.from_numpy(wave)
    if sample_rate is not None and sr != sample_rate:
        tensor = AF.resample(tensor, sr, sample_rate)
        sr = sample_rate
    return tensor, sr


def _match_channels(x: torch.Tensor, channels: int, what: str) -> torch.Tensor:
    if x.shape[0] == channels:
        return x
    if x.shape[0] == 1:
        return x.expand(channels, -1)
    raise SepkitError(f"{what} has {x.shape[0]} channels but the reference has {channels}; give matching files")


def parse_metric_options(pairs: list[str]) -> dict[str, dict]:
    """["kl.checkpoint=/w/Cnn14.pth", "si_sdr.zero_mean=true"] -> {"kl": {"checkpoint": ...}, ...} (YAML values)."""
    import yaml

    options: dict[str, dict] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        metric, dot, field = key.partition(".")
        if not sep or not dot or not metric or not field:
            raise SepkitError(f"--option {pair!r}: use METRIC.KEY=VALUE, e.g. kl.checkpoint=Cnn14_16k_mAP=0.438.pth")
        options.setdefault(metric, {})[field] = yaml.safe_load(value) if value else value
    return options


def score_files(
    estimate: str,
    reference: str,
    mixture: Optional[str] = None,
    metrics: Optional[tuple[str, ...]] = None,
    options: Optional[dict[str, dict]] = None,
    text: Optional[str] = None,
) -> dict:
    """{"metrics": {name: value}, "skipped": [...], "sample_rate": sr, "seconds": s, ...}.

    ``metrics=None`` scores ``DEFAULT_METRICS`` and skips those that need a mixture when none is
    given (and those that need a text when ``text`` is None); metrics asked for by name that need a
    missing mixture or text are an error. ``options``:
    per-metric config keys, e.g. ``{"kl": {"checkpoint": "Cnn14_16k_mAP=0.438.pth"}}``.
    """
    asked = metrics is not None
    metrics = tuple(metrics) if asked else DEFAULT_METRICS
    from sepkit.plugins import get_registry

    registry = get_registry()
    options = options or {}
    unused = sorted(set(options) - set(metrics))
    if unused:
        raise SepkitError(f"options given for metrics not asked for: {', '.join(unused)}; add them to --metrics")
    built = {
        name: registry.build("metric", {**options.get(name, {}), "name": name}, where=f"metric {name}")
        for name in metrics
    }
    ref, sr = _load(reference)
    est = _match_channels(_load(estimate, sr)[0], ref.shape[0], "the estimate")
    mix = _match_channels(_load(mixture, sr)[0], ref.shape[0], "the mixture") if mixture else None
    n = min(x.shape[-1] for x in (ref, est, mix) if x is not None)
    ref, est = ref[:, :n], est[:, :n]
    mix = mix[:, :n] if mix is not None else None
    values, skipped = {}, []
    for name, metric in built.items():
        if metric.needs_mixture and mix is None and not asked:
            skipped.append(name)
            continue
        kwargs = {}
        if metric.needs_text:
            if text is None:
                if not asked:
                    skipped.append(name)
                    continue
                raise SepkitError(f"metric {name} compares the estimate with a text: give it with --text")
            kwargs["texts"] = [text] * est.shape[0]
        with torch.no_grad():
            values[name] = float(metric.score(est, ref, sr, mix, **kwargs).mean())
    return {
        "metrics": values,
        "skipped": skipped,
        "sample_rate": sr,
        "seconds": n / sr,
        "channels": int(ref.shape[0]),
        "estimate": estimate,
        "reference": reference,
        "mixture": mixture,
        "text": text,
    }
