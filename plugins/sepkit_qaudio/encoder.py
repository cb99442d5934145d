"""``QAudioEncoder`` (registered as ``qaudio``, text_encoder and audio_encoder): Q-Audio (HSM-TSS sec. III-B2).

A Q-Former (``qformer.QFormer``, 2 layers, 768, 12 heads, one learnable query) over two frozen
encoders named by sub-sections: ``audio_encoder`` (default ``{name: audiomae}``, giving patch
tokens [B, N, 768]) and ``text_encoder`` (default ``{name: flan-t5}``), each built from the
registry with its own keys (``checkpoint``, ``model_dir``, ...). They are always frozen (no
gradients, eval mode). ``checkpoint`` loads a sepkit checkpoint of the ``qaudio`` training system
(Q-Former weights only, ``weights.load_qformer_checkpoint``).

``part`` picks what is built: ``audio`` (AudioMAE + the query side of the Q-Former), ``text``
(the text encoder + the text side), or ``both`` (default; needed for training, ``embed_text`` with
``embed_audio``, and ``sepkit evaluate``). A separation recipe that uses Q-Audio as both audio
encoder (``part: audio``) and text encoder (``part: text``) so holds FLAN-T5 once and AudioMAE
once; only the Q-Former's shared self-attention and embedding LayerNorm (about 4.7 M of its
30 M parameters at full size) exist in both, so ``sepkit complexity`` counts exactly what is in
memory.

As audio encoder (wave float [B, T] at the audio encoder's rate, 16 kHz for AudioMAE):
``frames``/``lengths``/``frame_rate``/``representation`` are the frozen audio encoder's output
unchanged (AudioMAE: ``"audiomae_patches"`` [B, 512, 768], 50 tokens/s); ``pooled`` is the
global feature G [B, hidden] (the paper's C_g feature, G_mix / G_tgt): the last layer's output
hidden state at the query position, with the query attending only to itself and (by
cross-attention) to the audio tokens that cover the clip (``mask_audio_padding``); not projected,
not normalised.

As text encoder: ``tokens`` [B, N, hidden] are the text branch's last-layer outputs at the N
token positions of the frozen text encoder (a learnt [CLS] is prepended, and the text sees only
text: BLIP-2's unimodal mask), zero at padding; ``mask`` is the frozen encoder's; ``pooled``
[B, hidden] is the [CLS] position's output (BLIP-2's text feature before ``text_proj``).
``task_token_embeddings()``: the frozen encoder's vocabulary rows of each task word [L, text_dim]
through ``vocab_input`` (the projection ITG trains on vocabulary rows), after [CLS] and positions,
and through the text branch alone (unimodal mask; each word on its own), dropping the [CLS]
output: [L, hidden], in the same space as the caption tokens and not dependent on the caption.

``embed_text(texts)`` / ``embed_audio(wave, lengths)``: the ITC embeddings [B, 256], unit norm
(``text_proj`` of the [CLS] output; ``audio_proj`` of the query output), for retrieval and CLAP-style
scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from sepkit.config import fraction, positive
from sepkit.errors import SepkitError
from sepkit.interfaces import TASKS, AudioEncoder, AudioFeatures, TextEmbedding, TextEncoder
from sepkit.registry import Registry

from .qformer import PARTS, QFormer


def _default_audio_encoder() -> dict[str, Any]:
    return {"name": "audiomae"}


def _default_text_encoder() -> dict[str, Any]:
    return {"name": "flan-t5"}


@dataclass
class QAudioConfig:
    part: str = "both"  # audio | text | both: which frozen encoder and which side of the Q-Former are built
    checkpoint: Optional[str] = None  # a sepkit checkpoint of the 'qaudio' training system (Q-Former weights)
    audio_encoder: dict = field(default_factory=_default_audio_encoder)  # frozen; its own keys (checkpoint, ...)
    text_encoder: dict = field(default_factory=_default_text_encoder)  # frozen; its own keys (model_dir, ...)
    hidden: int = positive(768)  # Q-Former width (C_g, and the text tokens' width)
    num_layers: int = positive(2)  # the paper's 2 layers (self-attention + cross-attention each)
    num_heads: int = positive(12)
    ffn_dim: int = positive(3072)
    itc_dim: int = positive(256)  # width of the contrastive embeddings (embed_text / embed_audio)
    max_text_tokens: int = positive(512)  # learnt text positions, including [CLS]
    dropout: float = fraction(0.1)
    mask_audio_padding: bool = True  # the query ignores audio tokens past the clip's end (AudioMAE pads to 10.24 s)


class QAudioEncoder(TextEncoder, AudioEncoder):
    """Q-Audio: text tokens [B, N, hidden] / pooled [B, hidden]; audio frames = frozen AudioMAE tokens,
    pooled = G [B, hidden]; ``embed_text``/``embed_audio`` [B, itc_dim]. See the module docstring."""

    Config = QAudioConfig
    representation = "audiomae_patches"

    def __init__(self, config: QAudioConfig, registry: Registry) -> None:
        """``registry`` builds the frozen ``audio_encoder`` / ``text_encoder`` sub-sections."""
        super().__init__(config)

        if config.part not in PARTS:
            raise SepkitError(f"qaudio: part must be one of {', '.join(PARTS)}, got {config.part!r}")
        if config.hidden % config.num_heads:
            raise SepkitError(f"qaudio: hidden {config.hidden} must be divisible by num_heads {config.num_heads}")
        self.part = config.part
        self.has_audio, self.has_text = config.part in ("audio", "both"), config.part in ("text", "both")
        audio_dim = text_dim = 1
        if self.has_audio:
            self.audio_encoder = self._frozen(registry, "audio_encoder", config.audio_encoder)
            audio_dim = int(self.audio_encoder.output_dim)
            self.sample_rate = int(self.audio_encoder.sample_rate)
            self.output_dim = audio_dim
            self.frame_rate = float(self.audio_encoder.frame_rate)
            self.representation = str(self.audio_encoder.representation)
        if self.has_text:
            self.text_encoder = self._frozen(registry, "text_encoder", config.text_encoder)
            text_dim = int(self.text_encoder.embed_dim)
            max_length = getattr(getattr(self.text_encoder, "config", None), "max_length", None)
            if isinstance(max_length, int) and max_length + 1 > config.max_text_tokens:
                raise SepkitError(
                    f"qaudio: the text encoder gives up to {max_length} tokens but max_text_tokens is "
                    f"{config.max_text_tokens} (one more is needed for [CLS]); raise max_text_tokens or lower "
                    "text_encoder.max_length"
                )
        self.embed_dim = config.hidden
        self.qformer = QFormer(
            part=config.part,
            hidden=config.hidden,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            ffn_dim=config.ffn_dim,
            audio_dim=audio_dim,
            text_dim=text_dim,
            itc_dim=config.itc_dim,
            max_text_tokens=config.max_text_tokens,
            dropout=config.dropout,
        )
        if config.checkpoint:
            from .weights import load_qformer_checkpoint

            load_qformer_checkpoint(config.checkpoint, self.qformer)

    @staticmethod
    def _frozen(registry, kind: str, section: Any):
        if not isinstance(section, dict) or not isinstance(section.get("name"), str):
            raise SepkitError(
                f"qaudio: '{kind}' must be a sub-section naming a registered {kind}, e.g. {{name: "
                f"{'audiomae' if kind == 'audio_encoder' else 'flan-t5'}}}, got {section!r}"
            )
        if section["name"] == "qaudio":
            raise SepkitError(f"qaudio: its '{kind}' cannot be qaudio itself; name the frozen encoder underneath")
        return registry.build_frozen(kind, section, where=f"qaudio.{kind}")

    def train(self, mode: bool = True) -> QAudioEncoder:
        """The frozen encoders stay in eval mode."""
        super().train(mode)
        for name in ("audio_encoder", "text_encoder"):
            if name in self._modules:
                self._modules[name].eval()
        return self

    def _need(self, side: str, what: str) -> None:
        has = self.has_audio if side == "audio" else self.has_text
        if not has:
            raise SepkitError(
                f"qaudio built with part: {self.part} has no {side} side, so it cannot {what}; "
                f"use part: {side} or part: both"
            )

    # --- frozen inputs -----------------------------------------------------------------------
    def audio_tokens(self, wave: Tensor, lengths: Tensor) -> tuple[AudioFeatures, Tensor, Tensor]:
        """wave [B, T] at ``sample_rate``, lengths long [B] -> (the frozen encoder's AudioFeatures,
        tokens [B, S, audio_dim] for cross-attention, mask bool [B, S] of the tokens covering the clip)."""
        self._need("audio", "encode audio")
        with torch.no_grad():
            features = self.audio_encoder.encode_audio(wave, lengths)
        frames = features.frames
        per_frame = 1
        if frames.dim() > 3:  # a patch grid [B, F, P, D]: every patch of a valid frame is valid
            per_frame = int(torch.tensor(frames.shape[2:-1]).prod())
            frames = frames.reshape(frames.shape[0], -1, frames.shape[-1])
        if self.config.mask_audio_padding:
            valid = features.lengths.to(frames.device)[:, None] * per_frame
            mask = torch.arange(frames.shape[1], device=frames.device)[None] < valid
        else:
            mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
        return features, frames.detach(), mask

    def text_states(self, texts: list[str]) -> TextEmbedding:
        """The frozen text encoder's TextEmbedding of ``texts`` (tokens [B, N, text_dim], mask [B, N])."""
        self._need("text", "encode text")
        with torch.no_grad():
            out = self.text_encoder.encode_text(list(texts))
        return TextEmbedding(out.tokens.detach(), out.mask, out.pooled.detach())

    def vocabulary(self) -> tuple[Any, Tensor]:
        """(tokenizer, input embedding table [V, text_dim]) of the frozen text encoder, for ITG."""
        self._need("text", "give its vocabulary")
        tokenizer = getattr(self.text_encoder, "tokenizer", None)
        model = getattr(self.text_encoder, "model", None)
        table = model.get_input_embeddings() if model is not None and hasattr(model, "get_input_embeddings") else None
        if tokenizer is None or table is None:
            raise SepkitError(
                f"qaudio: audio-grounded text generation needs a text encoder with .tokenizer and "
                f".model.get_input_embeddings() (flan-t5, minilm); {type(self.text_encoder).__name__} has not; "
                "pick one of those or set train.system.itg_weight: 0"
            )
        return tokenizer, table.weight

    # --- audio role ---------------------------------------------------------------------------
    def query_output(self, wave: Tensor, lengths: Tensor) -> tuple[AudioFeatures, Tensor]:
        """(frozen AudioFeatures, G float [B, hidden]: the query's last-layer output, unimodal mask)."""
        features, tokens, mask = self.audio_tokens(wave, lengths)
        query, _ = self.qformer(audio=tokens, audio_mask=mask, mode="unimodal")
        return features, query[:, 0]

    def encode_audio(self, wave: Tensor, lengths: Tensor) -> AudioFeatures:
        """wave float [B, T] at ``sample_rate`` -> frames = the frozen encoder's, pooled = G [B, hidden]."""
        features, global_feature = self.query_output(wave, lengths)
        return AudioFeatures(
            frames=features.frames, lengths=features.lengths, frame_rate=features.frame_rate, pooled=global_feature
        )

    def embed_audio(self, wave: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """wave float [B, T] at ``sample_rate`` -> ITC audio embeddings float [B, itc_dim], unit norm."""
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[-1], dtype=torch.long, device=wave.device)
        _, global_feature = self.query_output(wave, lengths)
        return F.normalize(self.qformer.audio_proj(global_feature), dim=-1)

    # --- text role ----------------------------------------------------------------------------
    def text_branch(self, states: TextEmbedding) -> tuple[Tensor, Tensor]:
        """Frozen states -> ([CLS] output [B, hidden], token outputs [B, N, hidden], zero at padding)."""
        x, mask = self.qformer.text_inputs(states.tokens, states.mask)
        _, out = self.qformer(text=x, text_mask=mask, mode="unimodal")
        return out[:, 0], out[:, 1:] * states.mask[..., None].to(out.dtype)

    def encode_text(self, texts: list[str]) -> TextEmbedding:
        """B texts -> tokens float [B, N, hidden] (zero at padding), mask bool [B, N], pooled [B, hidden] ([CLS])."""
        states = self.text_states(texts)
        pooled, tokens = self.text_branch(states)
        return TextEmbedding(tokens=tokens, mask=states.mask, pooled=pooled)

    def embed_text(self, texts: list[str]) -> Tensor:
        """B texts -> ITC text embeddings float [B, itc_dim], unit norm."""
        pooled, _ = self.text_branch(self.text_states(texts))
        return F.normalize(self.qformer.text_proj(pooled), dim=-1)

    def task_token_embeddings(self, tasks: tuple[str, ...] = TASKS) -> dict[str, Tensor]:
        """{task word: float [L, hidden]}: its vocabulary rows through ``vocab_input`` and the text branch."""
        self._need("text", "give task token embeddings")
        with torch.no_grad():
            table = self.text_encoder.task_token_embeddings(tasks)
        out = {}
        for task, rows in table.items():
            rows = rows.detach().to(self.qformer.vocab_input.weight.dtype)[None]
            x, mask = self.qformer.vocab_inputs(rows, torch.ones(rows.shape[:2], dtype=torch.bool, device=rows.device))
            _, states = self.qformer(text=x, text_mask=mask, mode="unimodal")
            out[task] = states[0, 1:]
        return out

    def forward(self, texts: list[str]) -> TextEmbedding:
        return self.encode_text(texts)
