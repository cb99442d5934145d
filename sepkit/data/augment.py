"""Per-source timbre augmentation at training time: pitch, EQ, reverb and a slow gain curve.

Recipe key ``data.train.augment`` (training splits only; off unless given)::

    augment:
      pitch: {p: 0.5, semitones: 2.0}                  # shift by resampling (tempo follows), U[-2, 2] semitones
      eq: {p: 0.5, max_filters: 3, gain_db: 6.0}       # 1-3 random biquads: low shelf, high shelf or peaking
      reverb: {p: 0.3, rt60: [0.2, 1.0], wet: [0.1, 0.5]}   # decaying-noise impulse response
      gain_curve: {p: 0.5, depth_db: 6.0, points: 4}  # slow random gain envelope

A transform that is named is on, with the defaults above for keys left out (``pitch: {}``); one left
out (or ``null``) is off. ``augment_sources(sources, config, rng, sample_rate, targets)`` transforms
each clean source of a mixture (float [S, T] at ``sample_rate``, as placed and gained) on its own:
each enabled transform applies with its probability ``p``, in the order pitch, EQ, reverb, gain curve,
with values drawn from ``rng``. Each transformed source is brought back to the energy (mean square) it
had, so the levels the mixing protocol drew (its SNR) hold; then all sources are scaled together if
the mixture, a source or a target group would peak above ``PEAK_LIMIT``. The training example mixes
the transformed sources and its target is their sum over the instruction's target, so the target stays
exact. The random draws come from the caller's generator: the same generator state gives the same
output.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from sepkit.config import ConfigValueError, instantiate, probability, range_problems, ranged, require
from sepkit.errors import SepkitError

PEAK_LIMIT = 0.95  # as sepkit.data.mixing: the largest peak of the mixture, a source or a target
SILENT = 1e-10  # mean square under which a source (e.g. zero padding) is left as it is
PITCH_STEPS = 160  # resampling ratio 160 / down: pitch in steps of about 0.1 semitone
SHELF_Q = 1 / math.sqrt(2)  # shelf slope S = 1
LOW_SHELF_HZ = (60.0, 400.0)
HIGH_SHELF_HZ = (2000.0, 6000.0)
PEAK_HZ = (150.0, 5000.0)
PEAK_Q = (0.5, 2.0)
DECAY_DB = 60.0  # an RT60 impulse response decays by 60 dB over rt60 seconds


@dataclass
class PitchConfig:
    """Pitch shift by resampling (the tempo follows): uniform in [-semitones, semitones]."""

    p: float = probability(0.5)
    semitones: float = ranged(2.0, low=0, high=12, low_open=True)


@dataclass
class EqConfig:
    """1 to ``max_filters`` biquads, each a low shelf (60-400 Hz), a high shelf (2-6 kHz) or a peaking filter
    (150 Hz-5 kHz, Q 0.5-2), with a gain uniform in [-gain_db, gain_db] (frequencies kept below 0.45 x rate)."""

    p: float = probability(0.5)
    max_filters: int = ranged(3, low=1, high=8)
    gain_db: float = ranged(6.0, low=0, high=24, low_open=True)


@dataclass
class ReverbConfig:
    """A synthetic room: Gaussian noise decaying by 60 dB over RT60 seconds (uniform in ``rt60``), mixed with
    the dry source at a wet fraction uniform in ``wet``."""

    p: float = probability(0.3)
    rt60: list[float] = ranged(default_factory=lambda: [0.2, 1.0], low=0.05, high=4.0)
    wet: list[float] = ranged(default_factory=lambda: [0.1, 0.5], low=0.0, high=1.0)

    def __post_init__(self) -> None:
        for key in ("rt60", "wet"):
            pair = list(getattr(self, key))
            require(len(pair) == 2 and pair[0] <= pair[1], key, f"must be [low, high] with low <= high, got {pair}")


@dataclass
class GainCurveConfig:
    """A slow gain envelope: ``points`` values uniform in [-depth_db, depth_db] dB, evenly spaced over the
    source, joined linearly in dB."""

    p: float = probability(0.5)
    depth_db: float = ranged(6.0, low=0, high=40, low_open=True)
    points: int = ranged(4, low=2, high=64)


@dataclass
class AugmentConfig:
    """``data.train.augment``: each transform's config, None when it is off."""

    pitch: Optional[PitchConfig] = None
    eq: Optional[EqConfig] = None
    reverb: Optional[ReverbConfig] = None
    gain_curve: Optional[GainCurveConfig] = None

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name) is not None for f in dataclasses.fields(self))


SECTIONS: dict[str, type] = {
    "pitch": PitchConfig,
    "eq": EqConfig,
    "reverb": ReverbConfig,
    "gain_curve": GainCurveConfig,
}


# --- the recipe section ------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


def _section(cls: type, value: Any, where: str) -> Any:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    allowed = [f.name for f in dataclasses.fields(cls)]
    if value is True:
        value = {}
    if not isinstance(value, Mapping):
        raise SepkitError(f"'{where}' must be a mapping (keys: {', '.join(allowed)}) or null, got {value!r}")
    for key in value:
        if key not in allowed:
            raise SepkitError(f"unknown key '{where}.{key}'; allowed keys of '{where}': {', '.join(allowed)}")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(cls), dict(value))
        problem = next(range_problems(cfg), None)
        if problem is not None:
            raise SepkitError(f"bad value for '{where}.{problem[0]}': {problem[1]}; fix the recipe")
        return instantiate(cfg)
    except ConfigValueError as exc:
        raise SepkitError(f"bad value for '{where}.{exc.key}': {exc.message}; fix the recipe") from None
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise SepkitError(f"bad value for '{where}.{key}': {str(exc).splitlines()[0]}") from None


def augment_config(section: Any, where: str = "data.train.augment") -> Optional[AugmentConfig]:
    """The recipe's augment section as an ``AugmentConfig`` (None: off); SepkitError naming a bad key."""
    section = _plain(section)
    if section is None or section == {}:
        return None
    if not isinstance(section, Mapping):
        raise SepkitError(f"'{where}' must be a mapping with keys {', '.join(SECTIONS)}, got {section!r}")
    parts = {}
    for key, value in section.items():
        if key not in SECTIONS:
            raise SepkitError(f"unknown key '{where}.{key}'; allowed keys of '{where}': {', '.join(SECTIONS)}")
        if value is not None and value is not False:
            parts[key] = _section(SECTIONS[key], value, f"{where}.{key}")
    config = AugmentConfig(**parts)
    return config if config.enabled else None


# --- the transforms (float64 [T] -> float64 [T]) --------------------------------------------------------
def pitch_shift(x: np.ndarray, semitones: float) -> np.ndarray:
    """``x`` resampled by 2 ** (semitones / 12) and cut or zero-padded to its length: pitch and tempo move
    together (+2 semitones: about 11 % faster, the end padded with silence). The ratio is
    ``PITCH_STEPS / round(PITCH_STEPS * factor)``."""
    from scipy.signal import resample_poly

    down = max(1, int(round(PITCH_STEPS * 2.0 ** (semitones / 12.0))))
    if down == PITCH_STEPS:
        return x.copy()
    y = resample_poly(x, PITCH_STEPS, down)
    out = np.zeros_like(x)
    n = min(len(x), len(y))
    out[:n] = y[:n]
    return out


def biquad(kind: str, freq: float, gain_db: float, q: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of an RBJ audio-EQ-cookbook biquad, normalised so a[0] == 1; ``kind``: lowshelf | highshelf | peaking."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq / sample_rate
    cos, alpha = math.cos(w0), math.sin(w0) / (2.0 * q)
    if kind == "peaking":
        b = [1 + alpha * amp, -2 * cos, 1 - alpha * amp]
        a = [1 + alpha / amp, -2 * cos, 1 - alpha / amp]
    elif kind in ("lowshelf", "highshelf"):
        root = 2.0 * math.sqrt(amp) * alpha
        sign = 1.0 if kind == "lowshelf" else -1.0
        b = [
            amp * ((amp + 1) - sign * (amp - 1) * cos + root),
            sign * 2 * amp * ((amp - 1) - sign * (amp + 1) * cos),
            amp * ((amp + 1) - sign * (amp - 1) * cos - root),
        ]
        a = [
            (amp + 1) + sign * (amp - 1) * cos + root,
            -sign * 2 * ((amp - 1) + sign * (amp + 1) * cos),
            (amp + 1) + sign * (amp - 1) * cos - root,
        ]
    else:
        raise ValueError(f"unknown biquad kind {kind!r}")
    return np.asarray(b) / a[0], np.asarray(a) / a[0]


def random_eq(x: np.ndarray, config: EqConfig, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """``x`` through 1..max_filters random biquads (``EqConfig``)."""
    from scipy.signal import lfilter

    top = 0.45 * sample_rate
    for _ in range(int(rng.integers(1, config.max_filters + 1))):
        kind = ("lowshelf", "highshelf", "peaking")[int(rng.integers(3))]
        low, high = {"lowshelf": LOW_SHELF_HZ, "highshelf": HIGH_SHELF_HZ, "peaking": PEAK_HZ}[kind]
        freq = min(float(np.exp(rng.uniform(np.log(low), np.log(high)))), top)
        q = SHELF_Q if kind != "peaking" else float(rng.uniform(*PEAK_Q))
        gain = float(rng.uniform(-config.gain_db, config.gain_db))
        b, a = biquad(kind, freq, gain, q, sample_rate)
        x = lfilter(b, a, x)
    return x


def impulse_response(rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """float64 [round(rt60 * sample_rate)]: Gaussian noise under an exponential decay of 60 dB over ``rt60``
    seconds, unit energy."""
    n = max(2, int(round(rt60 * sample_rate)))
    t = np.arange(n) / sample_rate
    h = rng.standard_normal(n) * 10.0 ** (-DECAY_DB / 20.0 * t / rt60)
    return h / np.sqrt(np.sum(h**2))


def reverb(x: np.ndarray, config: ReverbConfig, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """``(1 - wet) * x + wet * (x * h)``, cut to the length of ``x``; h: ``impulse_response`` with a drawn RT60."""
    from scipy.signal import fftconvolve

    h = impulse_response(float(rng.uniform(*config.rt60)), sample_rate, rng)
    wet = float(rng.uniform(*config.wet))
    return (1.0 - wet) * x + wet * fftconvolve(x, h)[: len(x)]


def gain_curve(length: int, config: GainCurveConfig, rng: np.random.Generator) -> np.ndarray:
    """float64 [length] linear gains: ``config.points`` dB values, evenly spaced, joined linearly in dB."""
    points = rng.uniform(-config.depth_db, config.depth_db, size=config.points)
    db = np.interp(np.arange(length), np.linspace(0, max(length - 1, 1), config.points), points)
    return 10.0 ** (db / 20.0)


# --- a source, a mixture ---------------------------------------------------------------------------------
def augment_source(x: np.ndarray, config: AugmentConfig, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One clean source, float [T] -> float64 [T] at the same energy (module docstring); a silent one as it is."""
    x = np.asarray(x, dtype=np.float64)
    draws = [(name, getattr(config, name)) for name in SECTIONS if getattr(config, name) is not None]
    applied = [(name, part) for name, part in draws if rng.random() < part.p]
    energy = float(np.mean(x**2)) if x.size else 0.0
    if energy < SILENT:
        return x.copy()
    y = x
    for name, part in applied:
        if name == "pitch":
            y = pitch_shift(y, float(rng.uniform(-part.semitones, part.semitones)))
        elif name == "eq":
            y = random_eq(y, part, rng, sample_rate)
        elif name == "reverb":
            y = reverb(y, part, rng, sample_rate)
        else:
            y = y * gain_curve(len(y), part, rng)
    now = float(np.mean(y**2))
    return y * math.sqrt(energy / now) if now >= SILENT else x.copy()


def augment_sources(
    sources: np.ndarray,
    config: AugmentConfig,
    rng: np.random.Generator,
    sample_rate: int,
    targets: Sequence[Sequence[int]] = (),
) -> np.ndarray:
    """Sources of one mixture, float [S, T] -> float32 [S, T], each through ``augment_source`` (drawn in
    order from ``rng``), then scaled together so that neither their sum, a source, nor the sum over any
    index list in ``targets`` peaks above ``PEAK_LIMIT``."""
    out = np.stack([augment_source(s, config, rng, sample_rate) for s in sources]) if len(sources) else sources
    peaks = [np.abs(out.sum(axis=0)).max(), np.abs(out).max()]
    peaks += [np.abs(out[list(group)].sum(axis=0)).max() for group in targets if len(group)]
    peak = float(max(peaks)) if out.size else 0.0
    if peak > PEAK_LIMIT:
        out = out * (PEAK_LIMIT / peak)
    return out.astype(np.float32)


def describe(config: Optional[AugmentConfig]) -> dict[str, Any]:
    """The enabled transforms and their settings, JSON-ready (for logs)."""
    if config is None:
        return {}
    return {name: dataclasses.asdict(part) for name in SECTIONS if (part := getattr(config, name)) is not None}
