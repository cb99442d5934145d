"""The official CLAP weight files, read into LAION-CLAP's ``CLAP`` key layout.

LAION-CLAP checkpoints (``630k-audioset-best.pt``, ``music_speech_audioset_epoch_15_esc_89.98.pt``,
...) are ``torch.save`` of a training-state dict ``{"epoch", "name", "state_dict", "optimizer", ...}``
whose ``state_dict`` was saved from a DistributedDataParallel model: every key starts with
``module.`` followed by the ``CLAP`` key (``text_branch.*``, ``audio_branch.*``,
``text_projection.*``, ``audio_projection.*``, ``text_transform.*``, ``audio_transform.*``,
``logit_scale_a``, ``logit_scale_t``). Bare ``CLAP`` state dicts load the same way.

AudioSep's Lightning checkpoint (``audiosep_base_4M_steps.ckpt``) holds its query encoder, a
``CLAP_Encoder`` whose ``model`` is the ``CLAP``, under ``query_encoder.model.`` (next to the
separator's ``ss_model.*``, which ``resunet30`` reads).

Both were written with transformers < 4.31, whose RoBERTa stored ``embeddings.position_ids``
(now a non-persistent buffer); it is dropped after checking it is 0, 1, 2, ... as laion_clap's
own loader drops it. Files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Optional

import torch

from sepkit.errors import SepkitError

DDP_PREFIX = "module."
AUDIOSEP_PREFIX = "query_encoder.model."
AUDIOSEP_SEPARATOR_PREFIX = "ss_model."
POSITION_IDS = "text_branch.embeddings.position_ids"
CLAP_PARTS = ("text_branch.", "audio_branch.", "text_projection.", "audio_projection.")


def read_weights_file(path: str | Path) -> object:
    """The contents of ``path`` read safely (torch ``weights_only=True`` or safetensors, told by its bytes).

    ``path`` may be an ``hf://OWNER/REPO/FILE`` reference, read from the Hugging Face cache (``sepkit.hub``).
    """
    from sepkit.checkpoint import read_weights_file as read_safely
    from sepkit.hub import is_hub_reference

    return read_safely(path if is_hub_reference(path) else Path(path).expanduser(), "CLAP checkpoint")


def _state_dict(payload: object) -> Optional[Mapping]:
    if not isinstance(payload, Mapping):
        return None
    state = payload.get("state_dict", payload)
    return state if isinstance(state, Mapping) else None


def is_clap_state_dict(state: Mapping) -> bool:
    """True if ``state`` has ``CLAP`` keys (bare or under ``module.``)."""
    keys = [k[len(DDP_PREFIX) :] if k.startswith(DDP_PREFIX) else k for k in state if isinstance(k, str)]
    return any(k.startswith(CLAP_PARTS[0]) for k in keys) and any(k.startswith(CLAP_PARTS[1]) for k in keys)


def laion_state_dict(payload: object) -> Optional[tuple[dict, str]]:
    """A LAION-CLAP file's payload -> (``CLAP`` state dict, prefix the file used); None if not that layout."""
    state = _state_dict(payload)
    if state is None or not is_clap_state_dict(state):
        return None
    if all(k.startswith(DDP_PREFIX) for k in state):
        return {k[len(DDP_PREFIX) :]: v for k, v in state.items()}, DDP_PREFIX
    return dict(state), ""


def audiosep_state_dict(payload: object) -> Optional[tuple[dict, str]]:
    """AudioSep's checkpoint payload -> (its query encoder's ``CLAP`` state dict, "query_encoder.model."); None if
    the file has no ``query_encoder.model.*`` keys."""
    state = _state_dict(payload)
    if state is None:
        return None
    clap = {k[len(AUDIOSEP_PREFIX) :]: v for k, v in state.items() if k.startswith(AUDIOSEP_PREFIX)}
    return (clap, AUDIOSEP_PREFIX) if clap else None


def drop_position_ids(state: dict, where: str) -> dict:
    """Remove RoBERTa's stored ``position_ids`` (checked to be 0, 1, 2, ...)."""
    ids = state.pop(POSITION_IDS, None)
    if ids is not None and not torch.equal(ids.reshape(-1).long(), torch.arange(ids.numel())):
        raise SepkitError(f"{where}: {POSITION_IDS} is not 0, 1, 2, ...; this is not a LAION-CLAP RoBERTa")
    return state


def load_clap_state(model: torch.nn.Module, state: dict, prefix: str, where: str) -> None:
    """Load a ``CLAP`` state dict strictly; missing/unexpected keys are named with the file's ``prefix``."""
    from sepkit.checkpoint import load_state_dict_checked

    state = drop_position_ids(dict(state), where)
    own = model.state_dict()
    missing = [prefix + k for k in own if k not in state]
    unexpected = [prefix + k for k in state if k not in own]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            more = f" and {len(keys) - 10} more" if len(keys) > 10 else ""
            problems.append(f"{len(keys)} {label} keys: {', '.join(keys[:10])}{more}")
    if problems:
        raise SepkitError(
            f"{where} does not match this CLAP model: {'; '.join(problems)}. Check amodel (AudioSep and "
            "music_speech_audioset_epoch_15_esc_89.98.pt: HTSAT-base; 630k-audioset-best.pt: HTSAT-tiny) and "
            "that the file is a non-fusion model"
        )
    load_state_dict_checked(model, state, where)


def clap_state_to_file_layout(state: Mapping, prefix: str) -> dict:
    """``CLAP`` state dict -> the keys a file with ``prefix`` holds (with RoBERTa's old ``position_ids``)."""
    out = {prefix + k: v.detach().clone() for k, v in state.items()}
    width = next(v for k, v in state.items() if k.endswith("embeddings.position_embeddings.weight")).shape[0]
    out[prefix + POSITION_IDS] = torch.arange(width)[None]
    return out
