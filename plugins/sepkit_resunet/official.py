"""Reading AudioSep's own checkpoints into ``ResUNet30Separator``.

AudioSep (https://github.com/Audio-AGI/AudioSep) saves a PyTorch Lightning
checkpoint, e.g. ``audiosep_base_4M_steps.ckpt``::

    {"state_dict": {"ss_model.<ResUNet30 keys>": ..., "query_encoder.<CLAP keys>": ...},
     "epoch": ..., "global_step": ..., <other Lightning keys: optimizer states, loops, ...>}

The ResUNet30 keys (``models/resunet.py``) map onto the separator as follows:

===============================================  =============================================
official (after ``ss_model.``)                   sepkit ``resunet30``
===============================================  =============================================
``base.<module path>.<param>``                   ``<module path>.<param>``
``film.<a>-><b>->beta<N>.<param>``               ``<a>.<b>.film<N>.<param>``
``base.stft.*``, ``base.istft.*``                dropped: torchlibrosa's fixed DFT matrices and
                                                 overlap-add window (sepkit uses torch.stft/istft)
``base.decoder_block<N>.bn2.*``,                 dropped: created but never used by the official
``film.decoder_block<N>->beta2.*``               forward pass
===============================================  =============================================

``query_encoder.*`` (the CLAP text/audio encoder) is returned separately by
``read_official_checkpoint`` for a CLAP component; the separator ignores it. A bare
ResUNet30 state dict (keys ``base.*``/``film.*``, or ``ss_model.*`` without the
Lightning wrapper) and ``.safetensors`` files load the same way. Files are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sepkit.errors import SepkitError

SEPARATOR_PREFIX = "ss_model."
QUERY_ENCODER_PREFIX = "query_encoder."
TORCHLIBROSA = re.compile(r"^base\.(stft|istft)\.")
UNUSED = re.compile(r"^(base\.decoder_block\d+\.bn2\.|film\.decoder_block\d+->beta2\.)")
FILM = re.compile(r"^film\.(?P<path>.+)->beta(?P<n>\d)\.(?P<param>[^.]+)$")
SEP_FILM = re.compile(r"^(?P<path>.+)\.film(?P<n>\d)\.(?P<param>[^.]+)$")
BATCH_NORM_STATE = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@dataclass
class OfficialCheckpoint:
    """The parts of an AudioSep checkpoint.

    separator:     state dict in ``ResUNet30Separator``'s key layout.
    query_encoder: the ``query_encoder.`` entries with that prefix removed (CLAP weights).
    dropped:       official keys left out (torchlibrosa STFT/ISTFT, unused decoder layers).
    meta:          ``epoch``/``global_step`` of a Lightning checkpoint, if present.
    """

    separator: dict
    query_encoder: dict = field(default_factory=dict)
    dropped: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)


# --- key names ----------------------------------------------------------------------
def to_official_key(key: str) -> str:
    """A ``resunet30`` state-dict key -> the official ResUNet30 key (without ``ss_model.``)."""
    film = SEP_FILM.match(key)
    if film:
        return f"film.{film['path'].replace('.', '->')}->beta{film['n']}.{film['param']}"
    return f"base.{key}"


def from_official_key(key: str) -> Optional[str]:
    """An official ResUNet30 key (without ``ss_model.``) -> the ``resunet30`` key; None if it has no counterpart."""
    film = FILM.match(key)
    if film:
        return f"{film['path'].replace('->', '.')}.film{film['n']}.{film['param']}"
    if key.startswith("base."):
        return key[len("base.") :]
    return None


def official_key_shapes(separator) -> dict[str, tuple[int, ...]]:
    """{official key: shape} of the official ResUNet30 matching ``separator``, without torchlibrosa's keys.

    Includes the official model's unused decoder ``bn2`` and FiLM ``beta2`` entries, so
    the result lists exactly what ``ResUNet30(...).state_dict()`` holds besides
    ``base.stft.*``/``base.istft.*``.
    """
    shapes = {to_official_key(k): tuple(v.shape) for k, v in separator.state_dict().items()}
    for name in separator.decoder_names:
        channels = getattr(separator, name).bn1.num_features
        for part in BATCH_NORM_STATE:
            shapes[f"base.{name}.bn2.{part}"] = () if part == "num_batches_tracked" else (channels,)
        shapes[f"film.{name}->beta2.weight"] = (channels, separator.query_dim)
        shapes[f"film.{name}->beta2.bias"] = (channels,)
    return shapes


def torchlibrosa_key_shapes(n_fft: int = 2048) -> dict[str, tuple[int, ...]]:
    """{key: shape} of the torchlibrosa STFT/ISTFT entries an official checkpoint also holds."""
    bins = n_fft // 2 + 1
    return {
        "base.stft.conv_real.weight": (bins, 1, n_fft),
        "base.stft.conv_imag.weight": (bins, 1, n_fft),
        "base.istft.ola_window": (n_fft,),
        "base.istft.conv_real.weight": (n_fft, n_fft, 1),
        "base.istft.conv_imag.weight": (n_fft, n_fft, 1),
    }


# --- state dicts --------------------------------------------------------------------
def looks_official(state_dict: Mapping) -> bool:
    """True if ``state_dict`` has AudioSep's ResUNet30 keys (with or without ``ss_model.``)."""
    keys = [k for k in state_dict if isinstance(k, str)]
    return any(k.startswith(SEPARATOR_PREFIX + "base.") for k in keys) or (
        any(k.startswith("base.") for k in keys) and any(k.startswith("film.") for k in keys)
    )


def split_official_state_dict(state_dict: Mapping, where: str = "checkpoint") -> OfficialCheckpoint:
    """Official keys -> ``OfficialCheckpoint`` (separator keys renamed, CLAP keys apart, the rest dropped).

    Raises ``SepkitError`` naming keys that belong to neither the separator nor the query encoder.
    """
    lightning = any(k.startswith(SEPARATOR_PREFIX) for k in state_dict)
    separator, query_encoder, dropped, unknown = {}, {}, [], []
    for key, value in state_dict.items():
        if key.startswith(QUERY_ENCODER_PREFIX):
            query_encoder[key[len(QUERY_ENCODER_PREFIX) :]] = value
            continue
        if lightning:
            if not key.startswith(SEPARATOR_PREFIX):
                unknown.append(key)
                continue
            key = key[len(SEPARATOR_PREFIX) :]
        if TORCHLIBROSA.match(key) or UNUSED.match(key):
            dropped.append(key)
            continue
        ours = from_official_key(key)
        if ours is None:
            unknown.append((SEPARATOR_PREFIX if lightning else "") + key)
        else:
            separator[ours] = value
    if unknown:
        raise SepkitError(
            f"{where}: {len(unknown)} keys belong to neither AudioSep's separator ({SEPARATOR_PREFIX}base.*, "
            f"{SEPARATOR_PREFIX}film.*) nor its query encoder ({QUERY_ENCODER_PREFIX}*): {_listing(unknown)}"
        )
    return OfficialCheckpoint(separator=separator, query_encoder=query_encoder, dropped=dropped)


def load_official_state_dict(separator, state_dict: Mapping, where: str = "checkpoint") -> OfficialCheckpoint:
    """Load official-layout weights into ``separator`` strictly; ``SepkitError`` lists keys that do not fit.

    Missing and unexpected keys are named as in the official file (``ss_model.`` prefix
    included when the file had it); mis-shaped keys go through ``load_state_dict_checked``.
    """
    from sepkit.checkpoint import load_state_dict_checked

    parts = split_official_state_dict(state_dict, where)
    prefix = SEPARATOR_PREFIX if any(k.startswith(SEPARATOR_PREFIX) for k in state_dict) else ""
    widths = f"base_channels {separator.config.base_channels}, input_dim {separator.input_dim}"
    load_state_dict_checked(
        separator,
        parts.separator,
        f"{where} (resunet30, {widths})",
        file_key=lambda key: prefix + to_official_key(key),
        advice="The official AudioSep model is base_channels 32, input_dim 1025 (n_fft 2048), query_dim 512",
    )
    return parts


# --- files --------------------------------------------------------------------------
def read_state_file(path: str | Path) -> Any:
    """The contents of ``path`` read safely (torch ``weights_only=True`` or safetensors, told by its bytes)."""
    from sepkit.checkpoint import read_weights_file

    return read_weights_file(path, "official checkpoint")


def _official_state_dict(payload: Any) -> Optional[Mapping]:
    """The state dict of a Lightning file or a bare state dict, if it is in AudioSep's layout; else None."""
    if not isinstance(payload, Mapping):
        return None
    state_dict = payload.get("state_dict", payload)
    return state_dict if isinstance(state_dict, Mapping) and looks_official(state_dict) else None


def read_official_checkpoint(path: str | Path) -> Optional[OfficialCheckpoint]:
    """The separator and query-encoder weights of an AudioSep file; None if it is not in AudioSep's layout."""
    payload = read_state_file(path)
    state_dict = _official_state_dict(payload)
    if state_dict is None:
        return None
    parts = split_official_state_dict(state_dict, f"official checkpoint {path}")
    parts.meta = {k: payload[k] for k in ("epoch", "global_step") if k in payload}
    return parts


def load_official_checkpoint(separator, path: str | Path) -> bool:
    """Load the ResUNet30 weights of the AudioSep file ``path`` into ``separator``.

    Returns False if the file is not in AudioSep's layout (another component may read
    it); raises ``SepkitError`` if it is but its keys or shapes do not fit.
    """
    state_dict = _official_state_dict(read_state_file(path))
    if state_dict is None:
        return False
    load_official_state_dict(separator, state_dict, f"official AudioSep checkpoint {path}")
    return True


def _listing(keys: list[str], limit: int = 10) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
