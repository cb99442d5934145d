"""The official AudioMAE checkpoint layout, read into ``AudioMAEViT`` (and written, for tests).

facebookresearch/AudioMAE releases ``pretrained.pth`` (MAE pretraining on AudioSet-2M, ViT-B/16)
and ``finetuned.pth``. Both are ``torch.save`` of ``{"model": state_dict, ...}`` (files written by
its ``save_model`` also hold ``optimizer``, ``epoch``, ``scaler`` and ``args``, an
``argparse.Namespace``). The encoder keys are timm's ViT names:

    cls_token [1, 1, D]; pos_embed [1, 1 + N, D] (fixed sin-cos, taken from the file as is)
    patch_embed.proj.{weight [D, 1, 16, 16], bias}
    blocks.<i>.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}.{weight, bias}
    norm.{weight, bias}        pretrained.pth (models_mae: per-token norm after the blocks)
    fc_norm.{weight, bias}     finetuned.pth  (models_vit, global_pool: norm of the mean patch token)

``pretrained.pth`` also holds the MAE decoder (``mask_token``, ``decoder_pos_embed``,
``decoder_embed.*``, ``decoder_blocks.*`` (Swin blocks), ``decoder_norm.*``, ``decoder_pred.*``) and
``finetuned.pth`` the AudioSet classifier ``head.*``: neither is part of the encoder; they are
dropped with a note (logger ``sepkit.audiomae``). Any other unknown or missing key is an error
naming it. A sepkit checkpoint of the ``mae`` training system stores its weights in this same
naming and is read the same way.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sepkit.errors import SepkitError
from sepkit.hub import local_file

from .vit import AudioMAEViT

LOGGER = logging.getLogger("sepkit.audiomae")
DECODER_PREFIXES = ("decoder_", "mask_token")  # the MAE decoder of pretrained.pth
HEAD_PREFIXES = ("head.",)  # the classifier of finetuned.pth
OFFICIAL_FILES = "pretrained.pth (or finetuned.pth) from https://github.com/facebookresearch/AudioMAE"


def read_official_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``model`` dict of an official AudioMAE file, a sepkit ``mae`` checkpoint, or a bare state dict.

    Read with ``torch.load(weights_only=True)``; the only non-tensor global allowed is
    ``argparse.Namespace`` (the ``args`` entry of files written by the official ``save_model``). ``path`` may be
    an ``hf://OWNER/REPO/FILE`` reference (resolved in the Hugging Face cache, ``sepkit.hub``).
    """
    path = local_file(path, "AudioMAE checkpoint")
    path = Path(path).expanduser()
    if not path.is_file():
        raise SepkitError(f"AudioMAE checkpoint {path} not found; give the path of {OFFICIAL_FILES}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise SepkitError(
            f"AudioMAE checkpoint {path} could not be read with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {first_line}"
        ) from None
    state: Any = payload
    if isinstance(payload, Mapping):
        if "model" in payload:
            state = payload["model"]
        elif "state_dict" in payload and "sepkit_version" in payload:  # sepkit checkpoint of the mae system
            state = payload["state_dict"]
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = ", ".join(map(str, list(payload)[:8])) if isinstance(payload, Mapping) else type(payload).__name__
        raise SepkitError(
            f"AudioMAE checkpoint {path} is not in the official layout: expected {{'model': state_dict, ...}} "
            f"as AudioMAE saves it, found {keys}"
        )
    return dict(state)


def encoder_state_dict(state: Mapping[str, torch.Tensor], model: AudioMAEViT, where: str) -> dict[str, torch.Tensor]:
    """Official state dict -> the ``AudioMAEViT`` state dict: decoder and classifier keys dropped (with a note),
    the final norm checked against the model's ``final_norm``. Other key problems surface when loading."""
    dropped = {
        "MAE decoder": [k for k in state if k.startswith(DECODER_PREFIXES)],
        "classifier head": [k for k in state if k.startswith(HEAD_PREFIXES)],
    }
    for what, keys in dropped.items():
        if keys:
            LOGGER.info("%s: dropped %d %s keys (%s, ...); only the encoder is used", where, len(keys), what, keys[0])
    skip = {k for keys in dropped.values() for k in keys}
    encoder = {k: v for k, v in state.items() if k not in skip}
    has = {name: f"{name}.weight" in encoder for name in ("norm", "fc_norm")}
    other = "fc_norm" if model.final_norm == "norm" else "norm"
    if has[other] and not has[model.final_norm]:
        kind = (
            "a fine-tuned classifier (models_vit, global pool)" if other == "fc_norm" else "an MAE-pretrained encoder"
        )
        raise SepkitError(
            f"{where} is {kind} whose final norm is '{other}', but the encoder is configured with final_norm: "
            f"{model.final_norm}; set final_norm: {other}"
        )
    pos = encoder.get("pos_embed")
    if pos is not None and tuple(pos.shape) != tuple(model.pos_embed.shape):
        raise SepkitError(
            f"{where}: pos_embed has shape {tuple(pos.shape)} ({pos.shape[1] - 1} patches of width {pos.shape[-1]}) "
            f"but the encoder has {tuple(model.pos_embed.shape)} ({model.num_patches} patches of "
            f"{model.patch_size} x {model.patch_size}, width {model.embed_dim}); the official ViT-B/16 needs "
            "target_frames: 1024, num_mel_bins: 128, embed_dim: 768"
        )
    return encoder


def load_official_encoder(path: str | os.PathLike, model: AudioMAEViT) -> None:
    """Read an official AudioMAE file (a path or an ``hf://`` reference) and load its encoder into ``model``
    strictly (key problems listed)."""
    from sepkit.checkpoint import load_state_dict_checked

    path = local_file(path, "AudioMAE checkpoint")
    where = f"AudioMAE checkpoint {Path(path).expanduser()}"
    state = encoder_state_dict(read_official_state_dict(path), model, where)
    load_state_dict_checked(model, state, f"{where} (official layout)")


def write_random_checkpoint(path: str | os.PathLike, seed: int = 0, decoder: bool = True, **vit: Any) -> AudioMAEViT:
    """Write a random-weight encoder in the official ``pretrained.pth`` layout, for tests; return it (eval mode).

    ``vit``: ``AudioMAEViT`` arguments (a tiny model for tests). Biases, LayerNorm affines and the
    position table are randomised too, so a mix-up of any of them shows. ``decoder`` adds a small
    random MAE decoder (keys as the official file's, including Swin-style relative-position
    tables) that loading must drop; ``args`` and ``epoch`` entries are written as the official
    ``save_model`` writes them.
    """
    from sepkit.checkpoint import atomic_save

    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AudioMAEViT(**vit)
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if name.endswith("bias") or "norm" in name or name == "pos_embed":
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=generator))
    model.eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if decoder:
        width = 8
        state |= {
            "mask_token": torch.randn(1, 1, width, generator=generator),
            "decoder_pos_embed": torch.randn(1, model.num_patches + 1, width, generator=generator),
            "decoder_embed.weight": torch.randn(width, model.embed_dim, generator=generator),
            "decoder_embed.bias": torch.zeros(width),
            "decoder_blocks.0.attn.relative_position_bias_table": torch.randn(49, 2, generator=generator),
            "decoder_blocks.0.attn.relative_position_index": torch.arange(256).reshape(16, 16),
            "decoder_norm.weight": torch.ones(width),
            "decoder_pred.weight": torch.randn(model.patch_size**2, width, generator=generator),
        }
    args = argparse.Namespace(model="mae_vit_base_patch16", mask_ratio=0.8, decoder_mode=1, norm_pix_loss=True)
    atomic_save({"model": state, "epoch": 32, "args": args}, path)
    return model
