"""``LaionClapEncoder`` (``clap-laion``): LAION-CLAP through the ``laion-clap`` package, both roles.

The model is laion_clap's own ``CLAP`` (non-fusion HTSAT audio branch + RoBERTa text branch),
built offline (``laion.py``) and loaded from LAION ``.pt`` files or AudioSep's checkpoint
(``official.py``). Text and audio embeddings are computed as ``encoder.py`` describes: the same
numbers as laion_clap's ``get_text_embedding`` / ``get_audio_embedding`` on the same tokens and
10 s windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch.nn.functional as F
from torch import Tensor

from sepkit.config import positive

from .encoder import ClapEncoder
from .laion import build_clap
from .official import audiosep_state_dict, laion_state_dict, load_clap_state, read_weights_file
from .roberta import resolve_text_branch


class LaionClapEncoder(ClapEncoder):
    """texts -> TextEmbedding (tokens [B, N, 512], pooled [B, 512]); wave [B, T] at ``sample_rate`` ->
    AudioFeatures (frames [B, windows, 512] at 0.1 Hz, pooled [B, 512]); ``embed_audio`` -> [B, 512]."""

    @dataclass
    class Config:
        amodel: str = "HTSAT-base"  # audio branch: HTSAT-base (AudioSep), HTSAT-tiny (630k-audioset-best.pt)
        checkpoint: Optional[str] = None  # LAION .pt file, or AudioSep's .ckpt (its query_encoder part)
        text_model_dir: Optional[str] = None  # local roberta-base (config.json, vocab.json, merges.txt[, weights])
        roberta: dict[str, Any] = field(default_factory=dict)  # RobertaConfig overrides, random weights only
        sample_rate: int = positive(48000)  # Hz of encode_audio's input (AudioSep: 32000); resampled to 48 kHz inside
        max_length: int = positive(512)  # tokens per query at most (AudioSep's truncation length)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        source = resolve_text_branch(config.text_model_dir, config.roberta, "clap-laion")
        self.model, self.model_cfg = build_clap(config.amodel, source)
        self.model.eval()
        self.tokenizer = source.tokenizer
        self.standin_tokenizer = source.standin
        self.trained = source.weights is not None
        self.embed_dim = self.output_dim = int(self.model.joint_embed_shape)
        self.sample_rate = int(config.sample_rate)
        if config.checkpoint:
            if not self.load_official_checkpoint(config.checkpoint):
                raise self._not_clap(config.checkpoint)

    # --- the model's parts ----------------------------------------------------------
    def text_states(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        out = self.model.text_branch(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state, out.pooler_output

    def project_text(self, states: Tensor) -> Tensor:
        return self.model.text_projection(states)

    def window_embeddings(self, windows: Tensor) -> Tensor:
        """windows [W, 480000] at 48 kHz -> [W, 512]: HTSAT's clip embedding, projected, normalised."""
        out = self.model.audio_branch({"waveform": windows}, mixup_lambda=None, device=windows.device)
        return F.normalize(self.model.audio_projection(out["embedding"]), dim=-1)

    # --- weights --------------------------------------------------------------------
    def load_official_checkpoint(self, path: str) -> bool:
        """Load a LAION-CLAP ``.pt`` or the ``query_encoder.model.*`` part of AudioSep's checkpoint.

        Returns False for files in neither layout; raises ``SepkitError`` naming missing/unexpected
        keys (with the file's prefix) when the layout is recognised but does not fit this model.
        """
        payload = read_weights_file(path)
        found = audiosep_state_dict(payload) or laion_state_dict(payload)
        if found is None:
            return False
        state, prefix = found
        kind = "AudioSep query encoder" if prefix.startswith("query_encoder") else "LAION-CLAP checkpoint"
        load_clap_state(self.model, state, prefix, f"{kind} {path}")
        self.trained = True
        return True

    @staticmethod
    def _not_clap(path: str):
        from sepkit.errors import SepkitError

        return SepkitError(
            f"clap-laion checkpoint {path} is neither a LAION-CLAP .pt (state_dict with module.text_branch.*, "
            "module.audio_branch.*) nor an AudioSep checkpoint (query_encoder.model.*)"
        )
