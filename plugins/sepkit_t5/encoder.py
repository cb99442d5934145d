"""``FlanT5TextEncoder`` (registered as ``flan-t5``): the encoder of FLAN-T5 through transformers.

texts -> T5 tokenizer (with the closing ``</s>``, padded to the longest, at most ``max_length``)
-> ``T5EncoderModel`` -> TextEmbedding(tokens = last hidden states (after the final layer norm)
[B, N, d_model], zero at padding; mask [B, N]; pooled = mean of the real tokens [B, d_model]).

Weights and tokenizer: ``model_dir``, a local directory in the Hugging Face layout (e.g. a copy
of ``google/flan-t5-base``: d_model 768, 12 layers, 12 heads, gated-GELU, 32,128-piece
vocabulary), read with ``from_pretrained(model_dir, local_files_only=True)``; nothing is
downloaded. Without ``model_dir`` the encoder has random weights of the configured size (the
defaults are FLAN-T5-base's) and the tokenizer comes from ``tokenizer_dir``, or, if that is
not given either, is the small stand-in of ``sepkit_t5.standin`` (for tests and smoke runs).

HSM-TSS's task tokens (sec. III-F) are "pretrained token representations from T5's
vocabulary": ``vocabulary_embeddings("extract")`` returns the rows of the model's input
embedding table (``shared``) for the word's pieces, [L, d_model], and ``task_token_embeddings``
does so for each task word.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import positive, ranged
from sepkit.errors import SepkitError
from sepkit.hf_local import load_local, local_dir
from sepkit.interfaces import TASKS, TextEmbedding, TextEncoder


@dataclass
class FlanT5Config:
    model_dir: Optional[str] = None  # local HF directory (config.json, weights, tokenizer); None: random weights
    tokenizer_dir: Optional[str] = None  # tokenizer only (default: model_dir; else the stand-in tokenizer)
    max_length: int = ranged(128, low=2)  # tokens per text, including </s>
    # sizes of the random-weight model (ignored with model_dir); defaults: FLAN-T5-base
    vocab_size: int = positive(32128)
    d_model: int = positive(768)
    num_layers: int = positive(12)
    num_heads: int = positive(12)
    d_kv: int = positive(64)
    d_ff: int = positive(2048)
    feed_forward_proj: str = "gated-gelu"


class FlanT5TextEncoder(TextEncoder):
    """texts -> tokens float [B, N, d_model] (zero at padding), mask bool [B, N], pooled float [B, d_model]."""

    Config = FlanT5Config

    def __init__(self, config: FlanT5Config) -> None:
        super().__init__(config)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if config.max_length < 2:
            raise SepkitError(f"flan-t5: max_length must be >= 2 (a token and </s>), got {config.max_length}")
        self.model = self._load_model(config)
        self.tokenizer = self._load_tokenizer(config)
        vocab = self.model.get_input_embeddings().num_embeddings
        if len(self.tokenizer) > vocab:
            raise SepkitError(
                f"flan-t5: the tokenizer has {len(self.tokenizer)} pieces but the model's embedding table only "
                f"{vocab}; use the tokenizer that belongs to the model (or a larger vocab_size)"
            )
        self.embed_dim = int(self.model.config.d_model)

    @staticmethod
    def _check_dir(path: str, key: str) -> Path:
        return local_dir(path, key, "flan-t5", "google/flan-t5-base: config.json, model.safetensors, tokenizer files")

    def _load_model(self, config: FlanT5Config):
        from transformers import T5Config, T5EncoderModel

        if config.model_dir is None:
            t5 = T5Config(
                vocab_size=config.vocab_size,
                d_model=config.d_model,
                num_layers=config.num_layers,
                num_heads=config.num_heads,
                d_kv=config.d_kv,
                d_ff=config.d_ff,
                feed_forward_proj=config.feed_forward_proj,
                tie_word_embeddings=False,
                decoder_start_token_id=0,
            )
            return T5EncoderModel(t5)
        folder = self._check_dir(config.model_dir, "model_dir")
        return load_local(
            lambda path: T5EncoderModel.from_pretrained(path, local_files_only=True), folder, "flan-t5", "T5 model"
        )

    def _load_tokenizer(self, config: FlanT5Config):
        from transformers import AutoTokenizer

        source = config.tokenizer_dir or config.model_dir
        if source is None:
            from .standin import standin_tokenizer

            return standin_tokenizer()
        folder = self._check_dir(source, "tokenizer_dir" if config.tokenizer_dir else "model_dir")
        return load_local(
            lambda path: AutoTokenizer.from_pretrained(path, local_files_only=True), folder, "flan-t5", "tokenizer"
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode_text(self, texts: list[str]) -> TextEmbedding:
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.config.max_length, return_tensors="pt"
        ).to(self.device)
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].bool()
        tokens = hidden * mask[..., None]
        pooled = tokens.sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        return TextEmbedding(tokens=tokens, mask=mask, pooled=pooled)

    def vocabulary_ids(self, text: str) -> list[int]:
        """The vocabulary ids of ``text``'s pieces, without ``</s>`` (e.g. "extract" -> its 1-3 pieces)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise SepkitError(f"flan-t5: {text!r} has no pieces in the vocabulary")
        unk = self.tokenizer.unk_token_id
        if unk is not None and unk in ids:
            raise SepkitError(f"flan-t5: {text!r} contains pieces outside the vocabulary (<unk>)")
        return list(ids)

    def vocabulary_embeddings(self, text: str) -> Tensor:
        """float [L, d_model]: rows of the model's input embedding table (``shared``) for ``text``'s L pieces.

        These are the pretrained token embeddings, not contextual encoder states; gradients reach
        the table unless the model is frozen.
        """
        table = self.model.get_input_embeddings()
        return table(torch.tensor(self.vocabulary_ids(text), device=table.weight.device))

    def task_token_embeddings(self, tasks: tuple[str, ...] = TASKS) -> dict[str, Tensor]:
        """{task word: float [L, d_model]} for HSM-TSS's task tokens (default: sepkit's tasks, extract/remove)."""
        return {task: self.vocabulary_embeddings(task) for task in tasks}
