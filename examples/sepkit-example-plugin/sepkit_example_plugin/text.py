"""``HashedNgramTextEncoder``: words as sums of hashed character n-grams (the fastText hashing trick).

Each word (with ``<`` and ``>`` marking its ends) is split into character
n-grams; each n-gram is hashed (crc32, stable across runs) into one of
``buckets`` rows of a trainable table, and the word's vector is the mean of its
rows. Tokens are words; ``pooled`` is the mean over words. Needs no pretrained
weights, so it is a small trainable query encoder for experiments.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import torch
from torch import nn

from sepkit.config import positive
from sepkit.interfaces import TextEmbedding, TextEncoder


def char_ngrams(word: str, n: int) -> list[str]:
    """'dog', 3 -> ['<do', 'dog', 'og>']; words shorter than n give the whole marked word."""
    marked = f"<{word}>"
    return [marked[i : i + n] for i in range(max(1, len(marked) - n + 1))]


class HashedNgramTextEncoder(TextEncoder):
    """texts -> tokens float [B, words, embed_dim], mask bool [B, words], pooled float [B, embed_dim]."""

    @dataclass
    class Config:
        embed_dim: int = positive(128)  # sepkit.config ranges: a recipe with embed_dim: 0 is refused at load time
        buckets: int = positive(65536)
        ngram: int = positive(3)
        max_words: int = positive(32)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.embed_dim = config.embed_dim
        self.table = nn.EmbeddingBag(config.buckets, config.embed_dim, mode="mean")
        nn.init.normal_(self.table.weight, std=config.embed_dim**-0.5)

    def _word_ids(self, word: str) -> list[int]:
        return [zlib.crc32(g.encode()) % self.config.buckets for g in char_ngrams(word, self.config.ngram)]

    def encode_text(self, texts: list[str]) -> TextEmbedding:
        words = [(re.findall(r"[\w']+", t.lower()) or ["<empty>"])[: self.config.max_words] for t in texts]
        width = max(len(w) for w in words)
        device = self.table.weight.device
        ids, offsets = [], []
        for row in words:
            for word in row:
                offsets.append(len(ids))
                ids.extend(self._word_ids(word))
        vectors = self.table(torch.tensor(ids, device=device), torch.tensor(offsets, device=device))
        tokens = vectors.new_zeros(len(texts), width, self.embed_dim)
        mask = torch.zeros(len(texts), width, dtype=torch.bool, device=device)
        k = 0
        for i, row in enumerate(words):
            tokens[i, : len(row)] = vectors[k : k + len(row)]
            mask[i, : len(row)] = True
            k += len(row)
        pooled = tokens.sum(1) / mask.sum(1, keepdim=True)
        return TextEmbedding(tokens=tokens, mask=mask, pooled=pooled)
