"""A stand-in BERT tokenizer and model directory built offline, for tests and smoke runs.

BERT's real tokenizer is a 30,522-piece WordPiece vocabulary that only comes with the model's
files. The stand-in is a small ``transformers.BertTokenizer`` (uncased WordPiece) over BERT's
special tokens at their usual ids (``[PAD]`` 0, ``[UNK]`` 100, ``[CLS]`` 101, ``[SEP]`` 102,
``[MASK]`` 103; unused slots fill the gaps), whole words for common query words, and single
characters plus ``##`` continuation characters for everything else, so every lower-case ASCII
text tokenizes without ``[UNK]``. ``write_standin_bert_dir`` writes it with random ``BertModel``
weights in the Hugging Face layout, which ``bert`` reads with ``from_pretrained``.
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
    "playing melody cello flute trumpet tuba accordion clarinet saxophone xylophone acoustic"
).split()
SPECIAL_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}  # as in bert-base-uncased


def standin_vocabulary(words: tuple[str, ...] | list[str] = WORDS) -> dict[str, int]:
    """{piece: id}: BERT's special ids, ``[unusedK]`` filling ids 1-99, then words and characters."""
    vocab = {f"[unused{i}]": i for i in range(1, 100)}
    vocab.update(SPECIAL_IDS)
    characters = string.ascii_lowercase + string.digits + string.punctuation
    for piece in [*words, *characters, *(f"##{c}" for c in characters)]:
        vocab.setdefault(piece, len(vocab))  # ids 104, 105, ... in order
    return dict(sorted(vocab.items(), key=lambda item: item[1]))


def standin_tokenizer(words: tuple[str, ...] | list[str] = WORDS) -> Any:
    """A ``transformers.BertTokenizer`` (uncased) over ``standin_vocabulary(words)``."""
    from transformers import BertTokenizer

    return BertTokenizer(vocab=standin_vocabulary(words), do_lower_case=True)


def write_standin_bert_dir(path: str | os.PathLike, seed: int = 0, **bert_config: Any) -> Any:
    """Write the stand-in tokenizer and a random ``BertModel`` (``BertConfig(**bert_config)``) to ``path``.

    Returns the model (eval mode). ``vocab_size`` defaults to the tokenizer's size.
    """
    import torch
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = standin_tokenizer()
    config = BertConfig(**{"vocab_size": len(tokenizer), **bert_config})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config).eval()
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return model
