"""audiocraft's EnCodec model configs (``config/model/encodec/*.yaml`` of facebookresearch/audiocraft,
which the pip package does not ship), written out as plain dicts with the interpolations resolved.

``preset_config(name, sample_rate, **overrides)`` -> the dict ``builders.get_compression_model``
reads: ``compression_model``, ``sample_rate``, ``channels``, ``encodec``, ``seanet``, ``rvq``.
``default``: non-causal, 8 codebooks; ``encodec_base_causal``: causal, 32 codebooks with quantizer
dropout (the 24 kHz EnCodec); ``encodec_large_nq4_s640`` / ``_s320``: 64 filters, 4 codebooks of
2048 (MusicGen's 32 kHz tokenizer is the s640 one).
"""

from __future__ import annotations

import copy
from typing import Any, Optional

DEFAULT: dict[str, Any] = {
    "compression_model": "encodec",
    "channels": 1,
    "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "causal": False, "renormalize": False},
    "seanet": {
        "dimension": 128,
        "n_filters": 32,
        "n_residual_layers": 1,
        "ratios": [8, 5, 4, 2],
        "activation": "ELU",
        "activation_params": {"alpha": 1.0},
        "norm": "weight_norm",
        "norm_params": {},
        "kernel_size": 7,
        "residual_kernel_size": 3,
        "last_kernel_size": 7,
        "dilation_base": 2,
        "pad_mode": "constant",
        "true_skip": True,
        "compress": 2,
        "lstm": 2,
        "disable_norm_outer_blocks": 0,
        "decoder": {"trim_right_ratio": 1.0, "final_activation": None, "final_activation_params": None},
        "encoder": {},
    },
    "rvq": {
        "n_q": 8,
        "q_dropout": False,
        "bins": 1024,
        "decay": 0.99,
        "kmeans_init": True,
        "kmeans_iters": 50,
        "threshold_ema_dead_code": 2,
        "orthogonal_reg_weight": 0.0,
        "orthogonal_reg_active_codes_only": False,
    },
    "no_quant": {},
}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {},
    "encodec_base_causal": {"encodec": {"causal": True}, "rvq": {"n_q": 32, "q_dropout": True}},
    "encodec_large_nq4_s640": {
        "seanet": {"ratios": [8, 5, 4, 4], "n_filters": 64},
        "rvq": {"bins": 2048, "n_q": 4, "q_dropout": False},
    },
    "encodec_large_nq4_s320": {
        "seanet": {"ratios": [8, 5, 4, 2], "n_filters": 64},
        "rvq": {"bins": 2048, "n_q": 4, "q_dropout": False},
    },
}
SEANET_KEYS = ("n_filters", "ratios", "dimension", "lstm")
RVQ_KEYS = ("n_q", "bins")


def preset_config(name: str, sample_rate: int, kmeans_init: bool = False, **overrides: Optional[Any]) -> dict:
    """The full config of preset ``name`` at ``sample_rate`` with size ``overrides`` (None = keep)."""
    cfg = copy.deepcopy(DEFAULT)
    for section, values in PRESETS[name].items():
        cfg[section].update(values)
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in SEANET_KEYS + RVQ_KEYS:
            raise KeyError(key)
        cfg["seanet" if key in SEANET_KEYS else "rvq"][key] = list(value) if isinstance(value, (list, tuple)) else value
    cfg["sample_rate"] = cfg["encodec"]["sample_rate"] = sample_rate
    cfg["encodec"]["channels"] = cfg["seanet"]["channels"] = cfg["channels"]
    cfg["seanet"]["causal"] = cfg["encodec"]["causal"]
    cfg["rvq"]["kmeans_init"] = kmeans_init
    return cfg
