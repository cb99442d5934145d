"""``ClapEncoder``: one CLAP model serving as both text encoder and audio encoder.

Text (``encode_text``): queries are tokenised with padding to the longest query of the batch
(LAION-CLAP and AudioSep pad every query to a fixed length, 77 or 512 tokens, and AudioSep
duplicates a single query to a batch of two; with RoBERTa's attention mask both give the same
embeddings at a fraction of the cost). ``pooled`` is CLAP's text embedding as AudioSep uses it:
the text branch's pooler output through the text projection, L2-normalised, [B, 512].
``tokens`` are the last hidden states through the same projection (not normalised), zero at padding.

Audio (``encode_audio``, ``embed_audio``): input at the configured ``sample_rate`` is resampled to
48 kHz and cut into 10 s windows (``windows.py``). Each window gets CLAP's audio embedding
(projected, L2-normalised). ``frames`` [B, windows, 512] holds them (frame rate 0.1 Hz) and
``pooled`` / ``embed_audio`` [B, 512] the clip embedding: the normalised mean of its windows'
embeddings (for clips up to 10 s, exactly CLAP's embedding of the repeat-padded clip).

A text-audio score (``clap_score``) is ``embed_text(texts) @ embed_audio(wave, lengths).T`` row by
row; an audio-audio score (``clap_score_a``) the same with two ``embed_audio`` calls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sepkit.errors import SepkitError
from sepkit.interfaces import AudioEncoder, AudioFeatures, TextEmbedding, TextEncoder

from .windows import WINDOW_SECONDS, cut_windows, to_clap_rate

REPRESENTATION = "clap_embedding"


class ClapEncoder(TextEncoder, AudioEncoder):
    """Both roles of a CLAP model. Subclasses set ``tokenizer``, ``standin_tokenizer`` and implement
    ``text_states``, ``project_text`` and ``window_embeddings``.

    Attributes: ``embed_dim`` = ``output_dim`` = CLAP's joint width (512); ``sample_rate`` (Hz of
    the input wave, from the config); ``frame_rate`` = 0.1 (one frame per 10 s window);
    ``representation`` = "clap_embedding".
    """

    frame_rate = 1.0 / WINDOW_SECONDS
    representation = REPRESENTATION
    tokenizer = None
    standin_tokenizer = False  # True: the byte-level stand-in tokenizer (random weights only)
    trained = False  # True once real (pretrained or checkpoint) weights are loaded

    # --- what a subclass provides -------------------------------------------------
    def text_states(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """ids, mask long [B, N] -> (last hidden states [B, N, H], pooler output [B, H])."""
        raise NotImplementedError(f"{type(self).__name__} must implement text_states")

    def project_text(self, states: Tensor) -> Tensor:
        """[..., H] -> [..., embed_dim]: CLAP's text projection (not normalised)."""
        raise NotImplementedError(f"{type(self).__name__} must implement project_text")

    def window_embeddings(self, windows: Tensor) -> Tensor:
        """windows float [W, 480000] at 48 kHz -> CLAP audio embeddings [W, embed_dim], unit norm."""
        raise NotImplementedError(f"{type(self).__name__} must implement window_embeddings")

    # --- text ---------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> dict[str, Tensor]:
        """B texts -> {"input_ids", "attention_mask"} long [B, N], N = the longest query (<= max_length)."""
        if self.standin_tokenizer and self.trained:
            raise SepkitError(
                f"{type(self).__name__} has trained CLAP weights but no RoBERTa tokenizer (only the byte-level "
                "stand-in for random weights); set the text encoder's text_model_dir (or model_dir) to a local "
                "roberta-base copy with vocab.json and merges.txt"
            )
        batch = self.tokenizer(
            list(texts), padding="longest", truncation=True, max_length=self.config.max_length, return_tensors="pt"
        )
        device = next(self.parameters()).device
        return {"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device)}

    def encode_text(self, texts: list[str]) -> TextEmbedding:
        """B texts -> tokens float [B, N, 512] (0 at padding), mask bool [B, N], pooled float [B, 512] (unit norm)."""
        batch = self.tokenize(texts)
        hidden, pooler = self.text_states(batch["input_ids"], batch["attention_mask"])
        mask = batch["attention_mask"].bool()
        tokens = self.project_text(hidden) * mask[..., None]
        pooled = F.normalize(self.project_text(pooler), dim=-1)
        return TextEmbedding(tokens=tokens, mask=mask, pooled=pooled)

    def embed_text(self, texts: list[str]) -> Tensor:
        """B texts -> CLAP text embeddings float [B, 512], unit norm (``encode_text(texts).pooled``)."""
        return self.encode_text(texts).pooled

    # --- audio --------------------------------------------------------------------
    def encode_audio(self, wave: Tensor, lengths: Tensor) -> AudioFeatures:
        """wave float [B, T] at ``sample_rate``, lengths long [B] -> AudioFeatures(frames [B, windows, 512]
        (one unit-norm embedding per 10 s window, zero past a row's windows), lengths = windows per row,
        frame_rate 0.1, pooled [B, 512] = the clip embedding)."""
        wave48, lengths48 = to_clap_rate(wave.float(), lengths, self.sample_rate)
        windows, counts = cut_windows(wave48, lengths48)
        embeddings = self.window_embeddings(windows)
        rows = torch.split(embeddings, counts.tolist())
        frames = torch.nn.utils.rnn.pad_sequence(list(rows), batch_first=True)
        pooled = F.normalize(torch.stack([r.mean(0) for r in rows]), dim=-1)
        return AudioFeatures(frames=frames, lengths=counts.to(wave.device), frame_rate=self.frame_rate, pooled=pooled)

    def embed_audio(self, wave: Tensor, lengths: Tensor | None = None) -> Tensor:
        """wave float [B, T] mono at ``sample_rate``, lengths long [B] (default T) -> clip embeddings [B, 512]."""
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[-1], dtype=torch.long, device=wave.device)
        return self.encode_audio(wave, lengths).pooled
