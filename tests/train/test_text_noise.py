"""Training-time noise on text embeddings (sepkit/train/text_noise.py, train.system.text_noise)."""

import pytest
import torch

from sepkit.interfaces import TextEmbedding
from sepkit.train.text_noise import NoisyTextEmbeddings, add_relative_noise


def embedding(batch=4, length=6, dim=16, valid=4):
    tokens = torch.randn(batch, length, dim)
    mask = torch.zeros(batch, length, dtype=torch.bool)
    mask[:, :valid] = True
    return TextEmbedding(tokens=tokens * mask[..., None], mask=mask, pooled=torch.randn(batch, dim) * 3.0)


def test_noise_is_relative_to_each_embedding_and_padding_stays_zero():
    torch.manual_seed(0)
    e = embedding(batch=2000)
    noisy = add_relative_noise(e, 0.6)
    assert noisy.tokens.shape == e.tokens.shape and noisy.pooled.shape == e.pooled.shape
    assert torch.equal(noisy.mask, e.mask)
    assert torch.all(noisy.tokens[:, 4:] == 0), "padding got noise"
    ratio = (noisy.pooled - e.pooled).pow(2).mean(-1).sqrt() / e.pooled.pow(2).mean(-1).sqrt()
    # s ~ U(0, 0.6) per row: ratios spread over [0, ~0.6], mean ~0.3
    assert 0.25 < float(ratio.mean()) < 0.35 and float(ratio.max()) < 0.9 and float(ratio.min()) < 0.05


def test_only_active_while_training():
    e = embedding()
    noisy = NoisyTextEmbeddings(lambda texts: e, 0.5)
    assert noisy(["a"]) is e, "inactive noise must pass the embedding through"
    noisy.active = True
    out = noisy(["a"])
    assert not torch.equal(out.pooled, e.pooled)
    assert NoisyTextEmbeddings(lambda texts: e, 0.0).__call__(["a"]) is e
    with pytest.raises(ValueError):
        NoisyTextEmbeddings(lambda texts: e, -1.0)
