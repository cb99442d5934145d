"""``BertTextEncoder`` (registered as ``bert``): a BERT encoder through transformers' ``BertModel``.

texts -> BERT WordPiece tokenizer (``[CLS]`` first; ``[SEP]`` last unless ``append_sep`` is off;
padded to the longest, at most ``max_length``) -> ``BertModel`` -> TextEmbedding:

- tokens: last hidden states [B, N, hidden_size], zero at padding;
- mask:   bool [B, N];
- pooled: [B, hidden_size], by ``pooling``: ``cls`` (default) the last hidden state of ``[CLS]``,
  what LASS-Net conditions on (its ``Text_Encoder`` builds BERT with ``add_pooling_layer=False``
  and takes ``output[:, 0, :]``); ``pooler`` BERT's pooler (tanh(Linear([CLS]))); ``mean`` the
  mean of the real tokens.

LASS-Net (github.com/liuxubo717/LASS, ``model/text_encoder.py``) uses ``prajjwal1/bert-mini``
(4 layers, hidden 256, 4 heads, intermediate 1024), tokenizes ``"[CLS] " + caption`` with
``add_special_tokens=False`` (so no ``[SEP]``: ``append_sep: false``) and fine-tunes BERT with the
separator. Its extra ``Linear(256, 256) + ReLU`` on the [CLS] state is part of the separator here
(``lass-resunet``'s ``query_projection``), so the encoder stays a plain BERT.

Weights and tokenizer: ``model_dir``, a local directory in the Hugging Face layout (a copy of
``prajjwal1/bert-mini`` or ``bert-base-uncased``), read with ``from_pretrained(model_dir,
local_files_only=True)``; nothing is downloaded. Without ``model_dir`` the encoder has random
weights of the configured size (the defaults are bert-base's) and the tokenizer comes from
``tokenizer_dir``, or, if that is not given either, is the small stand-in of
``sepkit_lass.standin`` (tests and smoke runs only).

``load_official_checkpoint`` reads the BERT weights of LASS-Net's released ``LASSNet.pt``
(``module.text_embedder.bert_layer.*``; ``sepkit_lass.official``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import fraction, positive, ranged
from sepkit.errors import SepkitError
from sepkit.hf_local import load_local, local_dir
from sepkit.interfaces import TASKS, TextEmbedding, TextEncoder

POOLINGS = ("cls", "pooler", "mean")


@dataclass
class BertConfig:
    model_dir: Optional[str] = None  # local HF directory (config.json, weights, vocab.txt); None: random weights
    tokenizer_dir: Optional[str] = None  # tokenizer only (default: model_dir; else the stand-in tokenizer)
    max_length: int = ranged(512, low=2)  # tokens per text, [CLS] (and [SEP]) included
    pooling: str = "cls"  # cls | pooler | mean (see the module docstring)
    append_sep: bool = True  # end each text with [SEP] (BERT's format); LASS-Net: false
    # sizes of the random-weight model (ignored with model_dir); defaults: bert-base-uncased
    vocab_size: int = positive(30522)
    hidden_size: int = positive(768)
    num_hidden_layers: int = positive(12)
    num_attention_heads: int = positive(12)
    intermediate_size: int = positive(3072)
    dropout: float = fraction(0.1)  # hidden and attention dropout (train mode only); LASS-Net: 0.1


class BertTextEncoder(TextEncoder):
    """texts -> tokens float [B, N, hidden] (zero at padding), mask bool [B, N], pooled float [B, hidden]."""

    Config = BertConfig

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if config.pooling not in POOLINGS:
            raise SepkitError(f"bert: pooling {config.pooling!r} is not one of {', '.join(POOLINGS)}")
        if config.max_length < 2:
            raise SepkitError(f"bert: max_length must be >= 2 ([CLS] and a token), got {config.max_length}")
        self.model = self._load_model(config)
        self.tokenizer = self._load_tokenizer(config)
        vocab = self.model.get_input_embeddings().num_embeddings
        if len(self.tokenizer) > vocab:
            raise SepkitError(
                f"bert: the tokenizer has {len(self.tokenizer)} pieces but the model's embedding table only {vocab}; "
                "use the tokenizer that belongs to the model (or a larger vocab_size)"
            )
        self.embed_dim = int(self.model.config.hidden_size)

    @staticmethod
    def _check_dir(path: str, key: str) -> Path:
        return local_dir(path, key, "bert", "prajjwal1/bert-mini: config.json, model weights, vocab.txt")

    def _load_model(self, config: BertConfig):
        from transformers import BertConfig as HFBertConfig
        from transformers import BertModel

        pooler = config.pooling == "pooler"
        dropout = {"hidden_dropout_prob": config.dropout, "attention_probs_dropout_prob": config.dropout}
        if config.model_dir is None:
            hf = HFBertConfig(
                vocab_size=config.vocab_size,
                hidden_size=config.hidden_size,
                num_hidden_layers=config.num_hidden_layers,
                num_attention_heads=config.num_attention_heads,
                intermediate_size=config.intermediate_size,
                **dropout,
            )
            return BertModel(hf, add_pooling_layer=pooler)
        folder = self._check_dir(config.model_dir, "model_dir")
        return load_local(
            lambda path: BertModel.from_pretrained(path, local_files_only=True, add_pooling_layer=pooler, **dropout),
            folder,
            "bert",
            "BERT model",
        )

    def _load_tokenizer(self, config: BertConfig):
        from transformers import AutoTokenizer

        source = config.tokenizer_dir or config.model_dir
        if source is None:
            from .standin import standin_tokenizer

            return standin_tokenizer()
        folder = self._check_dir(source, "tokenizer_dir" if config.tokenizer_dir else "model_dir")
        return load_local(
            lambda path: AutoTokenizer.from_pretrained(path, local_files_only=True), folder, "bert", "tokenizer"
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def token_ids(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """(input_ids long [B, N], attention_mask long [B, N]): [CLS] text-pieces [SEP]?, right-padded with [PAD]."""
        cls, sep, pad = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.pad_token_id
        room = self.config.max_length - 1 - int(self.config.append_sep)
        pieces = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        rows = [[cls, *ids[:room], *([sep] if self.config.append_sep else [])] for ids in pieces]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return ids.to(self.device), mask.to(self.device)

    def encode_text(self, texts: list[str]) -> TextEmbedding:
        ids, attention = self.token_ids(texts)
        out = self.model(input_ids=ids, attention_mask=attention)
        mask = attention.bool()
        tokens = out.last_hidden_state * mask[..., None]
        if self.config.pooling == "cls":
            pooled = out.last_hidden_state[:, 0]
        elif self.config.pooling == "pooler":
            pooled = out.pooler_output
        else:
            pooled = tokens.sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        return TextEmbedding(tokens=tokens, mask=mask, pooled=pooled)

    def load_official_checkpoint(self, path: str) -> bool:
        """Load the BERT of LASS-Net's ``LASSNet.pt`` (``module.text_embedder.bert_layer.*``) into ``model``.

        Returns False if the file is not in LASS-Net's layout; raises ``SepkitError`` naming the
        keys if it is but does not fit this BERT. See ``sepkit_lass.official``. The file holds no
        tokenizer: with the stand-in one (no ``model_dir``/``tokenizer_dir``) a warning says so.
        """
        from .official import load_official_checkpoint

        if not load_official_checkpoint(self, "text_encoder", path):
            return False
        if self.config.tokenizer_dir is None and self.config.model_dir is None:
            warnings.warn(
                f"bert: LASS-Net's weights from {path} are loaded, but the tokenizer is sepkit's small stand-in, "
                "so real queries tokenize wrongly; set model.text_encoder.tokenizer_dir=prajjwal1/bert-mini "
                "(or model_dir=prajjwal1/bert-mini)",
                UserWarning,
                stacklevel=2,
            )
        return True

    def task_token_embeddings(self, tasks: tuple[str, ...] = TASKS) -> dict[str, Tensor]:
        """{task word: float [L, hidden]}: rows of the word-piece embedding table for each task word's pieces."""
        table = self.model.get_input_embeddings()
        out = {}
        for task in tasks:
            ids = self.tokenizer(task, add_special_tokens=False)["input_ids"]
            if not ids or self.tokenizer.unk_token_id in ids:
                raise SepkitError(f"bert: {task!r} has no word pieces in the vocabulary")
            out[task] = table(torch.tensor(ids, device=table.weight.device))
        return out
