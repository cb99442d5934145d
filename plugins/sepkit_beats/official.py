"""The official BEATs checkpoint layout, read into ``BEATsModel`` (and written, for tests).

microsoft/unilm releases BEATs (``BEATs_iter3.pt``, ``BEATs_iter3_plus_AS2M.pt``, and fine-tuned
``..._finetuned_on_AS2M_cpt*.pt``) as ``torch.save({"cfg": dict, "model": state_dict})``: ``cfg`` is
a plain dict of ``BEATsConfig`` fields (so the architecture lives in the checkpoint) and
``model`` holds the keys of ``backbone.BEATsModel``::

    patch_embedding.weight [512, 1, 16, 16]; layer_norm.{weight, bias} [512]
    post_extract_proj.{weight [768, 512], bias}
    encoder.pos_conv.0.{weight_g [1, 1, 128], weight_v [768, 48, 128], bias}
    encoder.layers.<i>.self_attn.{q,k,v,out}_proj.{weight, bias}
    encoder.layers.<i>.self_attn.relative_attention_bias.weight [320, 12]  (one table, under every layer)
    encoder.layers.<i>.self_attn.{grep_linear.{weight [8, 64], bias}, grep_a [1, 12, 1, 1]}
    encoder.layers.<i>.{self_attn_layer_norm, fc1, fc2, final_layer_norm}.{weight, bias}
    encoder.layer_norm.{weight, bias}
    predictor.{weight [527, 768], bias}    fine-tuned checkpoints only (``finetuned_model: true``)

Read with ``torch.load(weights_only=True)``. Missing, unexpected or mis-shaped keys are an error
naming them; a fine-tuned checkpoint's ``predictor`` (the AudioSet classifier) is not part of the
encoder and is dropped with a note (logger ``sepkit.beats``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sepkit.errors import SepkitError
from sepkit.hub import local_file

from .backbone import ARCHITECTURE_KEYS, ITER3_CONFIG, BEATsModel

LOGGER = logging.getLogger("sepkit.beats")
OFFICIAL_FILES = "BEATs_iter3.pt or BEATs_iter3_plus_AS2M.pt from https://github.com/microsoft/unilm/tree/master/beats"


def read_official_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(architecture cfg, state dict) of an official BEATs file; a SepkitError naming the problem otherwise.

    ``path`` may be an ``hf://OWNER/REPO/FILE`` reference (resolved in the Hugging Face cache, ``sepkit.hub``).
    """
    path = local_file(path, "BEATs checkpoint")
    path = Path(path).expanduser()
    if not path.is_file():
        raise SepkitError(f"BEATs checkpoint {path} not found; give the path of {OFFICIAL_FILES}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise SepkitError(
            f"BEATs checkpoint {path} could not be read with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {first_line}"
        ) from None
    if (
        not isinstance(payload, Mapping)
        or not isinstance(payload.get("cfg"), Mapping)
        or not isinstance(payload.get("model"), Mapping)
    ):
        found = ", ".join(map(str, list(payload)[:8])) if isinstance(payload, Mapping) else type(payload).__name__
        raise SepkitError(
            f"BEATs checkpoint {path} is not in the official layout {{'cfg': dict, 'model': state_dict}} "
            f"(found {found}); give {OFFICIAL_FILES}"
        )
    return architecture(payload["cfg"]), dict(payload["model"])


def architecture(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture fields of a checkpoint's ``cfg`` over the iter3 defaults (training-only fields ignored)."""
    return {**ITER3_CONFIG, **{k: cfg[k] for k in ARCHITECTURE_KEYS if k in cfg}}


def load_official_state(model: BEATsModel, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Load an official state dict strictly (the classifier of a fine-tuned file is dropped with a note)."""
    from sepkit.checkpoint import load_state_dict_checked

    state = dict(state)
    if not hasattr(model, "predictor"):
        head = [k for k in state if k.startswith("predictor.")]
        if head:
            LOGGER.info("%s: dropped the AudioSet classifier (%s); only the encoder is used", where, ", ".join(head))
            for k in head:
                del state[k]
    load_state_dict_checked(model, state, f"{where} (official BEATs layout)")


def write_random_checkpoint(path: str | os.PathLike, seed: int = 0, **cfg: Any) -> BEATsModel:
    """Write a random BEATs in the official layout (``cfg`` over the iter3 defaults, e.g. a tiny one); return it.

    Biases, LayerNorm affines and the gate parameters are randomised too, so a mix-up of any of them shows.
    """
    from sepkit.checkpoint import atomic_save

    full = {**ITER3_CONFIG, **cfg}
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BEATsModel(full)
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if name.endswith("bias") or "norm" in name or "grep" in name:
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=generator))
    model.eval()
    saved_cfg = {**full, "dropout": 0.0, "encoder_layerdrop": 0.05, "layer_wise_gradient_decay_ratio": 0.6}
    atomic_save({"cfg": saved_cfg, "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}, path)
    return model
