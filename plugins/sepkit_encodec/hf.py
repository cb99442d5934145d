"""``HFEncodec`` (registered as codec ``encodec``): EnCodec 24 kHz through transformers' ``EncodecModel``.

wave float [B, T] at 24 kHz -> CodecFrames(codes long [B, G, F] in [0, 1024), lengths long [B],
latents float [B, F, 128] = the quantised embeddings, the sum of the G codebooks' vectors, as the
decoder receives them); F = ceil(T / 320), 75 frames per second. ``decode``: codes [B, G, F] ->
wave float [B, 320 F]. ``bandwidth`` (kbit/s) picks G: 1.5 / 3 / 6 / 12 / 24 -> 2 / 4 / 8 / 16 / 32
codebooks of 10 bits (G x 10 x 75 bit/s).

``model_dir``: a local folder in the layout of the official ``facebook/encodec_24khz`` release
(``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, ``preprocessor_config.json``),
read with ``from_pretrained(model_dir, local_files_only=True)``, or its hub name (``hf://facebook/encodec_24khz``
or ``facebook/encodec_24khz``: the snapshot in the Hugging Face cache, ``sepkit.hub``). Without it
the model has random weights in the published 24 kHz configuration (transformers' ``EncodecConfig``
defaults: 14.85 M parameters, as HSM-TSS Table IX lists for EnCodec), or smaller sizes given by
the size keys (tests). Only the 24 kHz layout is supported (no chunking, no loudness
normalisation: the 48 kHz model needs per-chunk scales this interface does not carry).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.hub import local_folder
from sepkit.interfaces import Codec, CodecFrames

OFFICIAL = "the files of facebook/encodec_24khz (config.json, model.safetensors, preprocessor_config.json)"
SIZE_KEYS = ("hidden_size", "num_filters", "upsampling_ratios", "num_lstm_layers", "codebook_size")


@dataclass
class HFEncodecConfig:
    model_dir: Optional[str] = None  # local folder in the facebook/encodec_24khz layout, or a hub name
    bandwidth: float = positive(6.0)  # kbit/s: 1.5, 3, 6, 12 or 24 (2 to 32 codebooks)
    # sizes of a random-weight model (only without model_dir); None = the published 24 kHz model's
    hidden_size: Optional[int] = positive(None)  # 128
    num_filters: Optional[int] = positive(None)  # 32
    upsampling_ratios: Optional[list[int]] = positive(None)  # [8, 5, 4, 2]: 320 samples per frame
    num_lstm_layers: Optional[int] = positive(None)  # 2
    codebook_size: Optional[int] = positive(None)  # 1024


def build_model(config: HFEncodecConfig):
    """The transformers ``EncodecModel`` ``config`` describes (eval mode)."""
    from transformers import EncodecConfig, EncodecModel

    sizes = {k: getattr(config, k) for k in SIZE_KEYS if getattr(config, k) is not None}
    if config.model_dir is None:
        model = EncodecModel(EncodecConfig(**sizes))
        return model.eval()
    if sizes:
        raise SepkitError(
            f"codec 'encodec': {', '.join(sizes)} set together with model_dir; the sizes come from "
            f"{config.model_dir}/config.json, drop them"
        )
    folder = Path(local_folder(config.model_dir, "codec 'encodec': model_dir")).expanduser()
    if not (folder / "config.json").is_file():
        raise SepkitError(
            f"codec 'encodec': model_dir {folder} has no config.json; give a local folder with {OFFICIAL}"
        )
    try:
        model = EncodecModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise SepkitError(f"codec 'encodec': could not load {folder} ({first}); it needs {OFFICIAL}") from None
    return model.eval()


class HFEncodec(Codec):
    """wave float [B, T] at 24 kHz <-> codes long [B, G, ceil(T / 320)] at 75 Hz; see the module docstring."""

    Config = HFEncodecConfig

    def __init__(self, config: HFEncodecConfig) -> None:
        super().__init__(config)
        self.model = build_model(config)
        cfg = self.model.config
        if cfg.chunk_length_s is not None or cfg.normalize or cfg.audio_channels != 1:
            raise SepkitError(
                "codec 'encodec': only the mono 24 kHz layout (no chunking, no normalisation) is supported; "
                f"this model has chunk_length_s={cfg.chunk_length_s}, normalize={cfg.normalize}, "
                f"audio_channels={cfg.audio_channels}"
            )
        if float(config.bandwidth) not in [float(b) for b in cfg.target_bandwidths]:
            raise SepkitError(
                f"codec 'encodec': bandwidth {config.bandwidth} is not one of the model's target_bandwidths "
                f"{list(cfg.target_bandwidths)} (kbit/s)"
            )
        self.bandwidth = float(config.bandwidth)
        self.sample_rate = int(cfg.sampling_rate)
        self.hop = int(torch.tensor(cfg.upsampling_ratios).prod())
        self.frame_rate = self.sample_rate / self.hop
        self.num_codebooks = int(self.model.quantizer.get_num_quantizers_for_bandwidth(self.bandwidth))
        self.codebook_size = int(cfg.codebook_size)

    def encode(self, wave: Tensor, lengths: Tensor) -> CodecFrames:
        mask = torch.arange(wave.shape[-1], device=wave.device)[None] < lengths[:, None].to(wave.device)
        out = self.model.encode(wave.float()[:, None], mask[:, None], bandwidth=self.bandwidth, return_dict=True)
        codes = out.audio_codes[0].long()  # [B, G, F] (one chunk)
        latents = self.model.quantizer.decode(codes.transpose(0, 1)).transpose(1, 2)  # [B, F, D]
        frames = torch.div(lengths + self.hop - 1, self.hop, rounding_mode="floor").clamp_max(codes.shape[-1])
        return CodecFrames(codes=codes, lengths=frames.long(), latents=latents)

    def decode(self, codes: Tensor) -> Tensor:
        out = self.model.decode(codes.long()[None], [None], return_dict=True)
        return out.audio_values[:, 0]
