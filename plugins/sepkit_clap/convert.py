"""LAION-CLAP ``CLAP`` state dicts -> transformers ``ClapModel`` state dicts.

=============================================================  ==============================================
LAION-CLAP (``laion_clap.clap_module.CLAP``)                   transformers ``ClapModel``
=============================================================  ==============================================
``text_branch.<roberta key>``                                  ``text_model.<same key>``
``{text,audio}_projection.{0,2}.*``                            ``{text,audio}_projection.{linear1,linear2}.*``
``audio_branch.bn0.*``                                         ``audio_model.audio_encoder.batch_norm.*``
``audio_branch.{patch_embed,norm}.*``                          ``audio_model.audio_encoder.{patch_embed,norm}.*``
``audio_branch.layers.I.downsample.*``                         ``audio_model.audio_encoder.layers.I.downsample.*``
``audio_branch.layers.I.blocks.J.norm1 / norm2``               ``....blocks.J.layernorm_before / layernorm_after``
``....blocks.J.attn.qkv`` ([3C, C], rows q, k, v)              ``....blocks.J.attention.self.{query,key,value}``
``....blocks.J.attn.relative_position_{bias_table,index}``     ``....blocks.J.attention.self.<same>``
``....blocks.J.attn.proj``                                     ``....blocks.J.attention.output.dense``
``....blocks.J.mlp.fc1 / fc2``                                 ``....blocks.J.intermediate.dense / output.dense``
``logit_scale_a``, ``logit_scale_t``                           the same
=============================================================  ==============================================

Dropped, with no counterpart in ``ClapModel``: the torchlibrosa front end
(``audio_branch.spectrogram_extractor.*``, ``audio_branch.logmel_extractor.*``; transformers
computes log-mels in ``ClapFeatureExtractor``), HTSAT's AudioSet classifier
(``audio_branch.tscam_conv.*``, ``audio_branch.head.*``), the contrastive-loss MLPs
(``text_transform.*``, ``audio_transform.*``), RoBERTa's old ``position_ids`` and Swin's
``attn_mask`` buffers (recomputed by transformers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from sepkit.errors import SepkitError

DROPPED = re.compile(
    r"^(audio_branch\.(spectrogram_extractor|logmel_extractor|tscam_conv|head)\.|text_transform\.|audio_transform\."
    r"|text_branch\.embeddings\.position_ids$|audio_branch\.layers\.\d+\.blocks\.\d+\.attn_mask$)"
)
BLOCK = re.compile(r"^audio_branch\.layers\.(?P<i>\d+)\.blocks\.(?P<j>\d+)\.(?P<rest>.+)$")
BLOCK_PARTS = {
    "norm1.": "layernorm_before.",
    "norm2.": "layernorm_after.",
    "attn.relative_position_bias_table": "attention.self.relative_position_bias_table",
    "attn.relative_position_index": "attention.self.relative_position_index",
    "attn.proj.": "attention.output.dense.",
    "mlp.fc1.": "intermediate.dense.",
    "mlp.fc2.": "output.dense.",
}
AUDIO = "audio_model.audio_encoder."
# transformers' HTSAT sizes per laion_clap amodel (htsat.py's create_htsat_model)
HTSAT_SIZES = {
    "HTSAT-tiny": {"patch_embeds_hidden_size": 96, "depths": [2, 2, 6, 2], "hidden_size": 768},
    "HTSAT-base": {"patch_embeds_hidden_size": 128, "depths": [2, 2, 12, 2], "hidden_size": 1024},
    "HTSAT-large": {"patch_embeds_hidden_size": 256, "depths": [2, 2, 12, 2], "hidden_size": 2048},
}
CONSTANT_BUFFERS = re.compile(r"(embeddings\.position_ids|embeddings\.token_type_ids)$")


def convert_key(key: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    """One LAION-CLAP entry -> its ``ClapModel`` entries ({} if dropped); ``KeyError`` if it has no rule."""
    if DROPPED.match(key):
        return {}
    if key.startswith("text_branch."):
        return {"text_model." + key[len("text_branch.") :]: value}
    for branch in ("text", "audio"):
        for index, name in (("0", "linear1"), ("2", "linear2")):
            prefix = f"{branch}_projection.{index}."
            if key.startswith(prefix):
                return {f"{branch}_projection.{name}.{key[len(prefix) :]}": value}
    if key in ("logit_scale_a", "logit_scale_t"):
        return {key: value}
    if key.startswith("audio_branch.bn0."):
        return {AUDIO + "batch_norm." + key[len("audio_branch.bn0.") :]: value}
    if re.match(r"^audio_branch\.(patch_embed|norm)\.|^audio_branch\.layers\.\d+\.downsample\.", key):
        return {AUDIO + key[len("audio_branch.") :]: value}
    block = BLOCK.match(key)
    if block:
        head = f"{AUDIO}layers.{block['i']}.blocks.{block['j']}."
        rest = block["rest"]
        if rest.startswith("attn.qkv."):
            param = rest[len("attn.qkv.") :]
            query, key_part, val = value.chunk(3, dim=0)
            parts = {"query": query, "key": key_part, "value": val}
            return {f"{head}attention.self.{name}.{param}": part.clone() for name, part in parts.items()}
        for old, new in BLOCK_PARTS.items():
            if rest.startswith(old):
                return {head + new + rest[len(old) :]: value}
    raise KeyError(key)


def laion_to_hf(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A LAION-CLAP ``CLAP`` state dict (no ``module.`` prefix) -> ``ClapModel`` keys; ``SepkitError`` lists
    keys without a rule (e.g. a fusion model's ``audio_branch.fusion_model.*``)."""
    out, unknown = {}, []
    for key, value in state.items():
        try:
            out.update(convert_key(key, value))
        except KeyError:
            unknown.append(key)
    if unknown:
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise SepkitError(
            f"{len(unknown)} LAION-CLAP keys have no transformers ClapModel counterpart (fusion models are not "
            f"supported): {', '.join(unknown[:10])}{more}"
        )
    return out


def hf_config_from_laion(amodel: str, roberta_config: Mapping) -> object:
    """The ``transformers.ClapConfig`` matching a LAION-CLAP ``amodel`` and its RoBERTa config (dict)."""
    from transformers import ClapConfig

    if amodel not in HTSAT_SIZES:
        raise SepkitError(f"no transformers ClapModel sizes for amodel {amodel!r}; known: {', '.join(HTSAT_SIZES)}")
    text = {k: v for k, v in dict(roberta_config).items() if k not in ("architectures", "model_type")}
    return ClapConfig(text_config=text, audio_config=dict(HTSAT_SIZES[amodel]), projection_dim=512)


def load_laion_into_hf(model, state: Mapping[str, torch.Tensor], where: str = "LAION-CLAP state") -> None:
    """Convert ``state`` and load it into the ``ClapModel`` ``model`` strictly (its constant id buffers kept)."""
    from sepkit.checkpoint import load_state_dict_checked

    converted = laion_to_hf(state)
    for key, value in model.state_dict().items():
        if key not in converted and CONSTANT_BUFFERS.search(key):
            converted[key] = value
    load_state_dict_checked(model, converted, where)
