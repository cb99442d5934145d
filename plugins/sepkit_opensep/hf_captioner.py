"""``HFCaptioner`` (``hf-captioner``): an audio-captioning model of transformers from a local directory.

OpenSep captions mixtures with ms-CLAP's captioner; any speech-to-text style captioner in the
Hugging Face layout (an ``AutoModelForSpeechSeq2Seq``: Whisper-based audio captioners,
Speech2Text, SpeechEncoderDecoder) loads here with ``local_files_only=True``::

    wave float [B, T] at the feature extractor's sampling_rate, lengths long [B]
    -> AutoFeatureExtractor (each row at its own length) -> generate (beam search, max_new_tokens)
    -> AutoTokenizer.batch_decode -> B captions

ms-CLAP itself is not a transformers model and is not supported. ``model_dir`` may also be a hub name
(``hf://OWNER/REPO`` or ``OWNER/REPO``): its snapshot in the Hugging Face cache (``sepkit.hf_local.local_dir``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from omegaconf import MISSING
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.hf_local import local_dir
from sepkit.source_finding import Captioner

EXAMPLE = "a Whisper-based audio captioner with its model, feature extractor and tokenizer files"


class HFCaptioner(Captioner):
    """A local transformers audio captioner; see the module docstring."""

    @dataclass
    class Config:
        model_dir: str = MISSING  # local directory (config, weights, feature extractor, tokenizer) or hub name
        num_beams: int = positive(1)
        max_new_tokens: int = positive(48)
        prefix: Optional[str] = None  # text prompt some captioners expect (passed as decoder prompt ids)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        from transformers import AutoFeatureExtractor, AutoModelForSpeechSeq2Seq, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model_dir = local_dir(config.model_dir, "model_dir", "hf-captioner", EXAMPLE)
        try:
            self.feature_extractor = AutoFeatureExtractor.from_pretrained(str(model_dir), local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            self.model = AutoModelForSpeechSeq2Seq.from_pretrained(str(model_dir), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise SepkitError(f"hf-captioner: no usable audio captioner in {model_dir} ({exc})") from None
        self.model.eval()
        self.model.requires_grad_(False)
        self.sample_rate = int(self.feature_extractor.sampling_rate)

    def caption(self, wave: Tensor, lengths: Tensor) -> list[str]:
        rows = [w[: int(n)].float().cpu().numpy() for w, n in zip(wave, lengths)]
        features = self.feature_extractor(rows, sampling_rate=self.sample_rate, return_tensors="pt")
        device = next(self.model.parameters()).device
        features = {k: v.to(device) for k, v in features.items()}
        kwargs = {}
        if self.config.prefix:
            ids = self.tokenizer(self.config.prefix, add_special_tokens=False, return_tensors="pt")["input_ids"]
            kwargs["decoder_input_ids"] = ids.to(device).expand(len(rows), -1)
        with torch.no_grad():
            out = self.model.generate(
                **features, num_beams=self.config.num_beams, max_new_tokens=self.config.max_new_tokens,
                do_sample=False, **kwargs,
            )  # fmt: skip
        return [" ".join(text.split()) for text in self.tokenizer.batch_decode(out, skip_special_tokens=True)]
