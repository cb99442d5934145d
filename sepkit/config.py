"""Validating a component's recipe keys against its ``Config`` dataclass.

omegaconf's structured configs check types and reject unknown keys; this module
turns its errors into messages that name the full recipe path, the component and
the allowed keys, and checks the value ranges a Config declares.

Ranges are declared per field, with the helpers below (a plugin imports them from
``sepkit.config``)::

    from dataclasses import dataclass, field
    from sepkit.config import at_least, fraction, positive, ranged, require

    @dataclass
    class Config:
        sample_rate: int = positive(16000)                       # > 0: for an int, at least 1
        n_fft: int = positive(1024)
        hop_length: int = field(default=256, metadata=at_least(1))   # the same, as field metadata
        channels: list[int] = positive(default_factory=lambda: [32, 64])   # every element
        win_length: Optional[int] = positive(None)               # None (= "use the default") is not checked
        dropout: float = fraction(0.1)                           # in [0, 1)
        gain: float = ranged(1.0, low=0.0, high=10.0)            # in [0, 10]

        def __post_init__(self) -> None:                         # rules across fields
            require(self.hop_length <= self.n_fft, "hop_length", f"must be at most n_fft ({self.n_fft})")

``component_config`` checks every declared range once the recipe's values are merged
(values still "???" are skipped), then builds the dataclass, which runs ``__post_init__``
(when showing a recipe, only if no value is "???"); a violated range or a ``ValueError``
from ``__post_init__`` (``require`` names the key) becomes a ``SepkitError``::

    bad value for 'model.audio_encoder.sample_rate' of audio_encoder 'stft': must be at least 1, got 0; fix the recipe

Numbers in a ranged field must also be finite (no nan or inf).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any, Optional

from sepkit.errors import SepkitError

RANGE = "sepkit_range"
"""The key of a dataclass field's ``metadata`` that holds its ``Range``."""


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed values of a number (or of every element of a list of numbers): ``low <= v <= high``.

    ``low_open`` / ``high_open`` make a bound strict; ``None`` leaves that side unbounded.
    """

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: Any) -> Optional[str]:
        """None if ``value`` is allowed, else the reason ("must be at least 1, got 0")."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number ({self.describe(value)}), got {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number ({self.describe(value)}), got {value!r}"
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            return f"must be {self.describe(value)}, got {value!r}"
        return None

    def describe(self, value: Any = None) -> str:
        low, high, low_open = self.low, self.high, self.low_open
        if isinstance(value, int) and low_open and isinstance(low, int):
            low, low_open = low + 1, False  # integers: "> 0" reads "at least 1"
        if high is None:
            return "unbounded" if low is None else (f"greater than {low}" if low_open else f"at least {low}")
        if low is None:
            return f"less than {high}" if self.high_open else f"at most {high}"
        return f"in {'(' if low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


# --- field metadata: field(default=..., metadata=at_least(1)) -----------------------------------------
def in_range(
    low: Optional[float] = None, high: Optional[float] = None, *, low_open: bool = False, high_open: bool = False
) -> dict:
    """Field metadata: ``low <= value <= high`` (a bound is strict with ``low_open`` / ``high_open``)."""
    return {RANGE: Range(low, high, low_open, high_open)}


def at_least(low: float) -> dict:
    """Field metadata: ``value >= low``."""
    return in_range(low)


# --- fields: sample_rate: int = positive(16000) -------------------------------------------------------
_NO_DEFAULT: Any = dataclasses.MISSING


def ranged(
    default: Any = _NO_DEFAULT,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = False,
    default_factory: Callable[[], Any] = _NO_DEFAULT,
) -> Any:
    """A dataclass field whose value (or each element of a list value) must lie in [low, high]."""
    metadata = in_range(low, high, low_open=low_open, high_open=high_open)
    if default_factory is not _NO_DEFAULT:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def positive(default: Any = _NO_DEFAULT, *, default_factory: Callable[[], Any] = _NO_DEFAULT) -> Any:
    """A field > 0 (an int: at least 1): sample rates, sizes, counts, durations."""
    return ranged(default, low=0, low_open=True, default_factory=default_factory)


def non_negative(default: Any = _NO_DEFAULT, *, default_factory: Callable[[], Any] = _NO_DEFAULT) -> Any:
    """A field >= 0: loss weights, optional counts (0 = off), seeds."""
    return ranged(default, low=0, default_factory=default_factory)


def fraction(default: Any = _NO_DEFAULT) -> Any:
    """A field in [0, 1): dropout, mask ratios."""
    return ranged(default, low=0, high=1, high_open=True)


def probability(default: Any = _NO_DEFAULT) -> Any:
    """A field in [0, 1]."""
    return ranged(default, low=0, high=1)


# --- rules across fields ------------------------------------------------------------------------------
class ConfigValueError(ValueError):
    """A Config's ``__post_init__`` rejects ``key``; ``component_config`` reports it as a SepkitError naming it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def require(condition: bool, key: str, message: str) -> None:
    """In a Config's ``__post_init__``: raise ``ConfigValueError(key, message)`` unless ``condition``."""
    if not condition:
        raise ConfigValueError(key, message)


def range_problems(node: Any) -> Iterator[tuple[str, str]]:
    """``(key, reason)`` for every value of a structured omegaconf config that breaks its field's ``Range``.

    ``key`` is relative to ``node`` ("sample_rate", "channels[2]", "schedule.gamma"); nested dataclass
    sections are checked too. Missing ("???") and None values are skipped.
    """
    from omegaconf import OmegaConf

    cls = OmegaConf.get_type(node)
    if cls is None or not dataclasses.is_dataclass(cls):
        return
    for f in dataclasses.fields(cls):
        if f.name not in node or OmegaConf.is_missing(node, f.name):
            continue
        value = node[f.name]
        if OmegaConf.is_dict(value):
            for key, reason in range_problems(value):
                yield f"{f.name}.{key}", reason
            continue
        rule = f.metadata.get(RANGE)
        if rule is None or value is None:
            continue
        if OmegaConf.is_list(value) or isinstance(value, (list, tuple)):
            for i in range(len(value)):
                if OmegaConf.is_list(value) and OmegaConf.is_missing(value, i):
                    continue
                reason = rule.problem(value[i])
                if reason:
                    yield f"{f.name}[{i}]", reason
            continue
        reason = rule.problem(value)
        if reason:
            yield f.name, reason


def instantiate(cfg: Any) -> Any:
    """``OmegaConf.to_object``; a ``ValueError`` of the Config's ``__post_init__`` becomes ``ConfigValueError``."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_object(cfg)
    except (ConfigValueError, OmegaConfBaseException):  # omegaconf's ValidationError is a ValueError too
        raise
    except ValueError as exc:
        raise ConfigValueError("", str(exc) or type(exc).__name__) from exc


def check_config_keys(cls: type, options: Any, where: str, component: str) -> list[str]:
    """SepkitError naming ``where.<key>`` if ``options`` has a key ``cls.Config`` lacks; returns the allowed keys.

    Needs only the Config's field names (no values are checked), so a recipe's typos can be found in
    every section before any component is built.
    """
    from sepkit.registry import config_class

    allowed = [f.name for f in dataclasses.fields(config_class(cls))]
    if not isinstance(options, dict):
        raise SepkitError(f"'{where}' of {component} must be a mapping of keys, got {options!r}")
    for key in options:
        if key not in allowed:
            raise SepkitError(
                f"unknown key '{where}.{key}' for {component}; allowed keys: {', '.join(allowed) or '(none)'}"
            )
    return allowed


def component_config(
    cls: type, options: dict, where: str, component: str, defaults: dict | None = None, allow_missing: bool = False
) -> Any:
    """Fill ``cls.Config`` from ``options`` (recipe keys) and ``defaults``; return the dataclass instance.

    Raises SepkitError naming ``where.<key>`` for an unknown key, a wrong type, a value out of the
    field's range, a rule of the Config's ``__post_init__`` or a missing value.
    With ``allow_missing`` (showing a recipe), returns a plain dict in which unset values stay "???"
    (ranges of the values that are set are checked; ``__post_init__`` only runs when none is missing).
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from sepkit.registry import config_class

    config_cls = config_class(cls)
    allowed = check_config_keys(cls, options, where, component)
    merged_defaults = {k: v for k, v in (defaults or {}).items() if k in allowed and k not in options}
    try:
        cfg = OmegaConf.structured(config_cls)
        cfg = OmegaConf.merge(cfg, merged_defaults, options)
        problem = next(range_problems(cfg), None)
        if problem is not None:
            key, reason = problem
            raise SepkitError(f"bad value for '{where}.{key}' of {component}: {reason}; fix the recipe")
        missing = sorted(OmegaConf.missing_keys(cfg))
        if allow_missing:
            if not missing:
                instantiate(cfg)  # the Config's own rules (__post_init__)
            return OmegaConf.to_container(cfg)
        if missing:
            raise SepkitError(f"{component} needs a value for '{where}.{missing[0]}'; set it in the recipe")
        return instantiate(cfg)
    except ConfigValueError as exc:
        place = f"'{where}.{exc.key}'" if exc.key else f"'{where}'"
        raise SepkitError(f"bad value for {place} of {component}: {exc.message}; fix the recipe") from None
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        reason = str(exc).splitlines()[0]
        raise SepkitError(f"bad value for '{where}.{key}' of {component}: {reason}") from None


def config_to_dict(config: Any) -> dict:
    """A component's Config dataclass instance -> plain dict (for recipes and checkpoints)."""
    return dataclasses.asdict(config)
