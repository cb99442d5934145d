"""``HFClapEncoder`` (``clap-hf``): CLAP through transformers' ``ClapModel``, both roles.

``model_dir`` is a local Hugging Face CLAP directory (e.g. a copy of laion/clap-htsat-unfused:
``config.json``, weights, tokenizer files, ``preprocessor_config.json``), read with
``from_pretrained(model_dir)``. Without it the model has random weights from a ``ClapConfig``
(RoBERTa-base text sizes, HTSAT-tiny audio sizes, each overridable), the byte-level stand-in
tokenizer and a ``ClapFeatureExtractor`` with LAION-CLAP's mel settings (64 mels, 50-14000 Hz).

The audio front end is transformers' numpy ``ClapFeatureExtractor`` (no gradient flows to the
wave); ``mel_embeddings`` takes its log-mel features directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError

from .encoder import ClapEncoder
from .roberta import ROBERTA_BASE, standin_tokenizer
from .windows import CLAP_SAMPLE_RATE

LAION_MEL = {"frequency_min": 50, "frequency_max": 14000}


class HFClapEncoder(ClapEncoder):
    """texts -> TextEmbedding (tokens [B, N, 512], pooled [B, 512]); wave [B, T] at ``sample_rate`` ->
    AudioFeatures (frames [B, windows, 512] at 0.1 Hz, pooled [B, 512]); ``embed_audio`` -> [B, 512]."""

    @dataclass
    class Config:
        model_dir: Optional[str] = None  # local transformers CLAP directory; None: random weights
        text_config: dict[str, Any] = field(default_factory=dict)  # ClapTextConfig overrides (random weights)
        audio_config: dict[str, Any] = field(default_factory=dict)  # ClapAudioConfig overrides (random weights)
        sample_rate: int = positive(48000)  # Hz of encode_audio's input; resampled to 48 kHz inside
        max_length: int = positive(512)  # tokens per query at most

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        from transformers import ClapConfig, ClapFeatureExtractor, ClapModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if config.model_dir is None:
            text = {k: v for k, v in ROBERTA_BASE.items() if k != "initializer_range"}
            clap_config = ClapConfig(
                text_config={**text, **config.text_config}, audio_config=dict(config.audio_config), projection_dim=512
            )
            self.model = ClapModel(clap_config)
            self.tokenizer, self.standin_tokenizer = standin_tokenizer(), True
            self.feature_extractor = ClapFeatureExtractor(**LAION_MEL)
        else:
            from sepkit.hub import local_folder  # a hub name (hf://laion/clap-htsat-unfused) -> its cached folder

            folder = Path(local_folder(config.model_dir, "clap-hf: model_dir")).expanduser()
            self.model, self.tokenizer, self.feature_extractor = self._from_dir(folder)
            self.trained = True
        self.model.eval()
        self.embed_dim = self.output_dim = int(self.model.config.projection_dim)
        self.sample_rate = int(config.sample_rate)

    def _from_dir(self, folder: Path):
        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        if self.config.text_config or self.config.audio_config:
            raise SepkitError(
                "clap-hf: text_config/audio_config override random weights only; remove them or model_dir"
            )
        if not (folder / "config.json").is_file():
            raise SepkitError(f"clap-hf: model_dir {folder} has no config.json (a transformers CLAP directory)")
        try:
            model = ClapModel.from_pretrained(str(folder), local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except OSError as exc:
            raise SepkitError(
                f"clap-hf: no usable model and tokenizer in {folder} ({exc}); it needs config.json, weights and "
                "the RoBERTa tokenizer files (vocab.json, merges.txt or tokenizer.json)"
            ) from None
        if (folder / "preprocessor_config.json").is_file():
            features = ClapFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
        else:
            features = ClapFeatureExtractor(**LAION_MEL)
        return model, tokenizer, features

    # --- the model's parts ----------------------------------------------------------
    def text_states(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        out = self.model.text_model(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state, out.pooler_output

    def project_text(self, states: Tensor) -> Tensor:
        return self.model.text_projection(states)

    def log_mels(self, windows: Tensor) -> Tensor:
        """windows [W, 480000] at 48 kHz -> log-mel features [W, 1, 1001, 64] (ClapFeatureExtractor, Slaney mels)."""
        batch = self.feature_extractor(
            [w.detach().cpu().double().numpy() for w in windows],
            sampling_rate=CLAP_SAMPLE_RATE,
            truncation="rand_trunc",  # no-op: every window is exactly 10 s
            padding="repeatpad",
            return_tensors="pt",
        )
        return batch["input_features"].to(device=windows.device, dtype=torch.float32)

    def mel_embeddings(self, mels: Tensor) -> Tensor:
        """log-mels [W, 1, frames, 64] -> CLAP audio embeddings [W, 512] (projected, unit norm)."""
        pooled = self.model.audio_model(input_features=mels).pooler_output
        return F.normalize(self.model.audio_projection(pooled), dim=-1)

    def window_embeddings(self, windows: Tensor) -> Tensor:
        return self.mel_embeddings(self.log_mels(windows))
