"""Reading LASS-Net's released checkpoint (``LASSNet.pt``) into ``bert`` and ``lass-resunet``.

LASS-Net (github.com/liuxubo717/LASS, commit 8979776) releases one file. Its ``inference.py``
(lines 45-47) builds ``nn.DataParallel(LASSNet(device))`` and loads ``torch.load(path)['model']``
into it, so the file is::

    {"model": {"module.<LASSNet key>": tensor, ...}, <any other entries: not read>}

``LASSNet`` (``model/LASSNet.py`` lines 10-11) holds ``text_embedder`` (``model/text_encoder.py``:
``bert_layer``, prajjwal1/bert-mini as ``BertModel(add_pooling_layer=False)``, lines 19-23;
``linear_layer`` = ``Sequential(Linear(256, 256), ReLU)``, line 25) and ``UNet``
(``model/resunet_film.py``'s ``UNetRes_FiLM``, its blocks in ``model/modules.py``; each FiLM of
``model/film.py`` keeps its MLP in ``Film.linear``). The keys, after ``module.``, map as:

====================================================  ===========================================
official                                              sepkit
====================================================  ===========================================
``text_embedder.bert_layer.<BertModel key>``          ``bert``: ``model.<BertModel key>``
``text_embedder.bert_layer.embeddings.position_ids``  dropped if present: the constant ``arange``
                                                      buffer transformers < 4.31 stored (the
                                                      reference pins 4.13)
``text_embedder.linear_layer.0.{weight,bias}``        ``lass-resunet``: ``query_projection.*``
``UNet.<path>.<film>.linear.<i>.<param>``             ``lass-resunet``: ``<path>.<film>.<i>.<param>``
                                                      (``<film>``: ``film1``, ``film2``, ``film_res``)
``UNet.<other key>``                                  ``lass-resunet``: ``<other key>``
====================================================  ===========================================

A bare state dict (without the ``model`` wrapper, with or without ``module.``) loads the same
way, as do ``.safetensors`` files. Files are read with ``torch.load(weights_only=True)``
(``sepkit.checkpoint.read_weights_file``); if the released file holds pickled Python objects
besides its tensors, the error says how to keep its ``model`` entry alone.

Each component reads its own part (``sepkit.pipeline.SeparationPipeline.load_official_checkpoint``
offers the file to every component): ``bert`` the BERT weights, ``lass-resunet`` the query
projection and the UNet. Both refuse keys that belong to neither part. The tokenizer is not in
the file: LASS-Net's is bert-mini's (``model.text_encoder.model_dir`` or ``tokenizer_dir``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sepkit.errors import SepkitError

WRAPPER = "model"  # inference.py: checkpoint['model']
DATA_PARALLEL = "module."  # inference.py wraps LASSNet in nn.DataParallel before loading
BERT = "text_embedder.bert_layer."
QUERY_PROJECTION = "text_embedder.linear_layer.0."
UNET = "UNet."
LEGACY_BERT_BUFFERS = ("embeddings.position_ids",)  # persistent in transformers < 4.31, not stored since
OFFICIAL_FILM = re.compile(r"\.(film\d|film_res)\.linear\.(\d+)\.")
SEPKIT_FILM = re.compile(r"\.(film\d|film_res)\.(\d+)\.")
FULL_SIZE = (
    "LASS-Net is bert with bert-mini's sizes (hidden 256, 4 layers, 4 heads, intermediate 1024, vocab 30522, "
    "pooling cls) and lass-resunet input_dim 513 (n_fft 1024), query_dim 256, cond_dim 256, base_channels 32, "
    "channel_multipliers [1, 2, 4, 8, 12, 12]: recipe lass"
)
KEEP_WEIGHTS = (
    "python -c \"import torch; c = torch.load('LASSNet.pt', map_location='cpu', weights_only=False); "
    "torch.save({'model': c['model']}, 'LASSNet.weights.pt')\""
)


@dataclass
class OfficialCheckpoint:
    """The parts of a LASS-Net state dict.

    text_encoder: state dict in ``bert``'s key layout (``model.<BertModel key>``).
    separator:    state dict in ``lass-resunet``'s key layout (``query_projection.*`` and the UNet).
    dropped:      official keys left out (``text_embedder.bert_layer.embeddings.position_ids``).
    prefix:       what the file's keys start with: ``module.`` (the release) or nothing.
    """

    text_encoder: dict = field(default_factory=dict)
    separator: dict = field(default_factory=dict)
    dropped: list = field(default_factory=list)
    prefix: str = ""


# --- key names ----------------------------------------------------------------------
def separator_to_official_key(key: str) -> str:
    """A ``lass-resunet`` state-dict key -> the official LASSNet key (without ``module.``)."""
    if key.startswith("query_projection."):
        return QUERY_PROJECTION + key[len("query_projection.") :]
    return UNET + SEPKIT_FILM.sub(r".\1.linear.\2.", key)


def text_encoder_to_official_key(key: str) -> str:
    """A ``bert`` state-dict key (``model.<BertModel key>``) -> the official LASSNet key (without ``module.``)."""
    return BERT + key.removeprefix("model.")


def from_official_key(key: str) -> Optional[tuple[str, str]]:
    """An official LASSNet key (without ``module.``) -> (``"text_encoder"`` or ``"separator"``, sepkit key).

    None for a key outside LASS-Net's layout (and for spellings that do not map back onto themselves,
    such as a FiLM weight without ``.linear``).
    """
    if key.startswith(BERT):
        return "text_encoder", "model." + key[len(BERT) :]
    if key.startswith(QUERY_PROJECTION):
        ours = "query_projection." + key[len(QUERY_PROJECTION) :]
    elif key.startswith(UNET):
        ours = OFFICIAL_FILM.sub(r".\1.\2.", key[len(UNET) :])
    else:
        return None
    return ("separator", ours) if separator_to_official_key(ours) == key else None


def official_key_shapes(text_encoder, separator) -> dict[str, tuple[int, ...]]:
    """{official key: shape} of the LASSNet matching ``text_encoder`` (``bert``) and ``separator``
    (``lass-resunet``), without ``module.`` and without the legacy ``position_ids`` buffer."""
    shapes = {text_encoder_to_official_key(k): tuple(v.shape) for k, v in text_encoder.state_dict().items()}
    shapes.update({separator_to_official_key(k): tuple(v.shape) for k, v in separator.state_dict().items()})
    return shapes


# --- state dicts --------------------------------------------------------------------
def official_state_dict(payload: Any) -> Optional[tuple[Mapping, str]]:
    """(state dict, key prefix) of a LASS-Net file's contents, or None if they are not in its layout.

    Accepts ``{"model": state}`` (the release) and a bare state dict; the prefix is ``module.``
    when the keys have nn.DataParallel's prefix, else "".
    """
    if not isinstance(payload, Mapping):
        return None
    state = payload.get(WRAPPER, payload)
    if not isinstance(state, Mapping):
        return None
    keys = [k for k in state if isinstance(k, str)]
    for prefix in (DATA_PARALLEL, ""):
        if any(k.startswith(prefix + UNET) or k.startswith(prefix + "text_embedder.") for k in keys):
            return state, prefix
    return None


def split_official_state_dict(state_dict: Mapping, prefix: str, where: str) -> OfficialCheckpoint:
    """Official keys -> ``OfficialCheckpoint``; ``SepkitError`` naming keys outside LASS-Net's layout."""
    parts = OfficialCheckpoint(prefix=prefix)
    unknown = []
    for key, value in state_dict.items():
        inner = key[len(prefix) :] if isinstance(key, str) and key.startswith(prefix) else None
        if inner is not None and inner.startswith(BERT) and inner[len(BERT) :] in LEGACY_BERT_BUFFERS:
            parts.dropped.append(inner)
            continue
        found = from_official_key(inner) if inner is not None else None
        if found is None:
            unknown.append(str(key))
        else:
            kind, ours = found
            getattr(parts, kind)[ours] = value
    if unknown:
        raise SepkitError(
            f"{where}: {len(unknown)} keys are not in LASS-Net's layout ({prefix}{BERT}*, {prefix}{QUERY_PROJECTION}*, "
            f"{prefix}{UNET}*): {_listing(unknown)}"
        )
    return parts


def load_official_part(module, part: Mapping, to_official, prefix: str, name: str, where: str) -> None:
    """Load ``part`` (sepkit keys) into ``module`` strictly; ``SepkitError`` names missing and unexpected
    keys as the official file spells them (``to_official`` renames, ``prefix`` as in the file)."""
    from sepkit.checkpoint import load_state_dict_checked

    load_state_dict_checked(
        module, part, f"{where} ({name})", file_key=lambda key: prefix + to_official(key), advice=FULL_SIZE
    )


def load_official_state_dict(
    text_encoder, separator, state_dict: Mapping, where: str = "state dict"
) -> OfficialCheckpoint:
    """Load a LASS-Net state dict into ``text_encoder`` (``bert``; None to skip it) and ``separator``
    (``lass-resunet``; None to skip it), strictly. The keys may carry ``module.`` or not."""
    found = official_state_dict(state_dict)
    if found is None:
        raise SepkitError(f"{where} is not in LASS-Net's layout ({UNET}*, {BERT}*, optionally under module.)")
    parts = split_official_state_dict(*found, where)
    if text_encoder is not None:
        load_official_part(text_encoder, parts.text_encoder, text_encoder_to_official_key, parts.prefix, "bert", where)
    if separator is not None:
        load_official_part(separator, parts.separator, separator_to_official_key, parts.prefix, "lass-resunet", where)
    return parts


# --- files --------------------------------------------------------------------------
def read_official_checkpoint(path: str | Path) -> Optional[OfficialCheckpoint]:
    """The parts of the LASS-Net file ``path``; None if it is not in LASS-Net's layout.

    ``SepkitError`` if it is but holds keys outside the layout, and (``PickledObjectsRefused``)
    if ``torch.load(weights_only=True)`` refuses its objects, with the command that keeps its weights.
    """
    from sepkit.checkpoint import PickledObjectsRefused, read_weights_file

    try:
        payload = read_weights_file(path, "official checkpoint")
    except PickledObjectsRefused as exc:
        raise PickledObjectsRefused(
            f"{exc}. For LASS-Net's LASSNet.pt, only its 'model' entry is needed: {KEEP_WEIGHTS}"
        ) from None
    found = official_state_dict(payload)
    if found is None:
        return None
    return split_official_state_dict(*found, f"official LASS-Net checkpoint {path}")


def load_official_checkpoint(module, kind: str, path: str | Path) -> bool:
    """Load ``module``'s part (``kind``: "text_encoder" for ``bert``, "separator" for ``lass-resunet``) of
    the LASS-Net file ``path``. False if the file is not in LASS-Net's layout; ``SepkitError`` if it is
    but does not fit ``module``."""
    parts = read_official_checkpoint(path)
    if parts is None:
        return False
    rename = text_encoder_to_official_key if kind == "text_encoder" else separator_to_official_key
    name = "bert" if kind == "text_encoder" else "lass-resunet"
    load_official_part(module, getattr(parts, kind), rename, parts.prefix, name, f"official LASS-Net checkpoint {path}")
    return True


def _listing(keys: list[str], limit: int = 10) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
