"""CLAP's RoBERTa text branch, from a local directory or from RoBERTa-base's configuration.

LAION-CLAP's constructor calls ``RobertaModel.from_pretrained('roberta-base')`` and
``RobertaTokenizer.from_pretrained('roberta-base')``, which reach the Hugging Face hub. Here the
text branch comes from ``text_model_dir``, a local copy of roberta-base or its hub name
(``hf://FacebookAI/roberta-base`` or ``FacebookAI/roberta-base``, taken from the Hugging Face cache by
``sepkit.hub``):

- ``config.json`` (required), the RoBERTa sizes;
- ``vocab.json`` + ``merges.txt`` (or ``tokenizer.json``), the byte-level BPE tokenizer;
- ``model.safetensors`` or ``pytorch_model.bin`` (optional): pretrained weights. Without them the
  branch is randomly initialised (a CLAP checkpoint loaded afterwards sets them anyway).

Without a directory, RoBERTa-base's sizes (``ROBERTA_BASE``) give random weights and a stand-in
tokenizer (``standin_tokenizer``: RoBERTa's special ids and one id per UTF-8 byte), which is only
meaningful for random weights: an encoder with trained weights and the stand-in refuses to encode.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from sepkit.errors import SepkitError

# huggingface.co/roberta-base/config.json, written out (transformers.RobertaConfig's defaults differ:
# 512 positions, 2 token types, layer_norm_eps 1e-12)
ROBERTA_BASE: dict[str, Any] = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0, 1, 2, 3 as in roberta-base


@dataclass
class TextBranchSource:
    """Where the RoBERTa text branch comes from.

    config:     ``transformers.RobertaConfig``.
    weights:    the directory whose pretrained weights to read, or None for random weights.
    tokenizer:  a RoBERTa tokenizer (``__call__`` as in transformers).
    standin:    True if ``tokenizer`` is the byte-level stand-in (random weights only).
    """

    config: Any
    weights: Optional[Path]
    tokenizer: Any
    standin: bool

    def build_model(self):
        """``RobertaModel`` (with its pooler) from ``weights`` or randomly initialised from ``config``."""
        from transformers import RobertaModel

        if self.weights is None:
            return RobertaModel(self.config)
        return RobertaModel.from_pretrained(str(self.weights), config=self.config, local_files_only=True)


def byte_level_alphabet() -> list[str]:
    """The 256 characters byte-level BPE (GPT-2, RoBERTa) uses for the bytes 0..255."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1)]
    printable += range(ord("\u00ae"), ord("\u00ff") + 1)
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def standin_vocabulary() -> dict[str, int]:
    """RoBERTa's special tokens (ids 0-3), the 256 byte symbols, then ``<mask>``: 261 ids."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for char in byte_level_alphabet():
        vocab.setdefault(char, len(vocab))
    vocab["<mask>"] = len(vocab)
    return vocab


def standin_tokenizer():
    """A ``RobertaTokenizer`` over single bytes (no merges): RoBERTa's format without its vocabulary."""
    from transformers import RobertaTokenizer

    return RobertaTokenizer(vocab=standin_vocabulary(), merges=[])


def write_roberta_dir(path: str | os.PathLike, weights_seed: Optional[int] = None, **config: Any) -> Path:
    """Write a local RoBERTa directory: ``config.json`` (RoBERTa-base overridden by ``config``) and the
    stand-in tokenizer's ``vocab.json``/``merges.txt``; with ``weights_seed``, also random weights
    (``model.safetensors``). For tests and offline benchmarks."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.json").write_text(json.dumps(standin_vocabulary()))
    (path / "merges.txt").write_text("#version: 0.2\n")
    settings = {"model_type": "roberta", "architectures": ["RobertaModel"], **ROBERTA_BASE, **config}
    (path / "config.json").write_text(json.dumps(settings, indent=1))
    if weights_seed is not None:
        import torch
        from transformers import RobertaConfig, RobertaModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(weights_seed)
            RobertaModel(RobertaConfig(**{k: v for k, v in settings.items() if k != "architectures"})).save_pretrained(
                path
            )
    return path


def resolve_text_branch(text_model_dir: Optional[str], overrides: dict, who: str) -> TextBranchSource:
    """The text branch of component ``who`` from ``text_model_dir`` (see the module docstring) or RoBERTa-base.

    ``overrides``: RobertaConfig fields replacing the directory's or RoBERTa-base's (e.g. a one-layer
    model for tests); not allowed with pretrained weights, whose sizes are fixed.
    """
    from transformers import RobertaConfig, RobertaTokenizer

    overrides = dict(overrides or {})
    if text_model_dir is None:
        return TextBranchSource(RobertaConfig(**{**ROBERTA_BASE, **overrides}), None, standin_tokenizer(), True)
    from sepkit.hub import local_folder  # a hub name (hf://FacebookAI/roberta-base) -> its cached folder

    folder = Path(local_folder(text_model_dir, f"{who}: text_model_dir")).expanduser()
    if not (folder / "config.json").is_file():
        raise SepkitError(
            f"{who}: text_model_dir {folder} has no config.json; give a local copy of roberta-base "
            "(config.json, vocab.json, merges.txt, optionally model.safetensors), or leave text_model_dir "
            "unset for random RoBERTa-base weights"
        )
    weights = folder if any((folder / name).is_file() for name in WEIGHT_FILES) else None
    if weights is not None and overrides:
        raise SepkitError(
            f"{who}: 'roberta' overrides ({', '.join(overrides)}) change the sizes of the pretrained RoBERTa "
            f"in {folder}; remove them or use a directory without weights"
        )
    config = RobertaConfig.from_pretrained(str(folder), local_files_only=True, **overrides)
    has_tokenizer = (folder / "tokenizer.json").is_file() or all(
        (folder / name).is_file() for name in ("vocab.json", "merges.txt")
    )
    if not has_tokenizer:
        raise SepkitError(
            f"{who}: text_model_dir {folder} has no RoBERTa tokenizer; copy roberta-base's vocab.json and "
            "merges.txt (or tokenizer.json) into it"
        )
    tokenizer = RobertaTokenizer.from_pretrained(str(folder), local_files_only=True)
    return TextBranchSource(config, weights, tokenizer, False)
