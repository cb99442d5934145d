"""A stand-in T5 tokenizer and model directory built offline, for tests and smoke runs.

FLAN-T5's real tokenizer is a 32k-piece SentencePiece model that only comes with the model's
files. The stand-in is a small T5 Unigram tokenizer (transformers' ``T5Tokenizer`` built from a
vocabulary list through the ``tokenizers`` library, no sentencepiece needed) with T5's special
ids (``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2), whole-word pieces for common query words (including
the task words "extract" and "remove"), and single letters (both cases), digits and
punctuation for everything else. ``write_standin_model_dir`` writes it with random T5
encoder weights in the Hugging Face layout, which ``flan-t5`` reads with ``from_pretrained``.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

WORDS = (
    "extract remove keep isolate separate the a an of and or in on with without no sound sounds noise "
    "dog barking bark cat music speech voice man woman speaking talking rain heavy falling roof wind "
    "violin piano guitar drums bird singing car engine water footsteps door knock siren baby crying "
    "sine tone white"
).split()
SPECIAL = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5


def standin_vocabulary(words: tuple[str, ...] | list[str] = WORDS) -> list[tuple[str, float]]:
    """[(piece, log-probability score)]: T5's special pieces, the word pieces, then characters."""
    vocab: list[tuple[str, float]] = [(piece, 0.0) for piece in SPECIAL] + [("▁", -2.0)]
    seen = {piece for piece, _ in vocab}
    characters = string.ascii_letters + string.digits + string.punctuation
    pieces = [(f"▁{w}", -4.0) for w in words] + [(f"▁{c}", -8.0) for c in characters] + [(c, -9.0) for c in characters]
    for piece, score in pieces:
        if piece not in seen:
            seen.add(piece)
            vocab.append((piece, score))
    return vocab


def standin_tokenizer(words: tuple[str, ...] | list[str] = WORDS) -> Any:
    """A ``transformers.T5Tokenizer`` over ``standin_vocabulary(words)`` (no sentinel ids)."""
    from transformers import T5Tokenizer

    return T5Tokenizer(vocab=standin_vocabulary(words), extra_ids=0)


def write_standin_model_dir(path: str | os.PathLike, seed: int = 0, **t5_config: Any) -> Any:
    """Write the stand-in tokenizer and a random ``T5EncoderModel`` (``T5Config(**t5_config)``) to ``path``.

    Returns the model (eval mode). ``vocab_size`` defaults to the tokenizer's size.
    """
    import torch
    from transformers import T5Config, T5EncoderModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = standin_tokenizer()
    config = T5Config(**{"vocab_size": len(tokenizer), "decoder_start_token_id": 0, **t5_config})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T5EncoderModel(config).eval()
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return model
