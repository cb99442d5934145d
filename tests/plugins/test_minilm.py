"""The minilm plugin reproduces sentence-transformers' all-MiniLM-L6-v2 embeddings, offline."""

import pytest
import torch

from sepkit.plugins import get_registry


@pytest.fixture(scope="module")
def encoder():
    return get_registry().build("text_encoder", {"name": "minilm"}).eval()


def test_pooled_equals_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    from sepkit_minilm.encoder import packaged_model_dir

    texts = ["a dog barking", "the sound of heavy rain falling on a tin roof", "violin"]
    reference = SentenceTransformer(packaged_model_dir(), device="cpu").encode(texts, convert_to_tensor=True)
    with torch.no_grad():
        ours = encoder.encode_text(texts)
    torch.testing.assert_close(ours.pooled, reference.cpu(), atol=1e-5, rtol=1e-4)
    assert ours.tokens.shape[:2] == ours.mask.shape and ours.tokens.shape[-1] == 384 == encoder.embed_dim


def test_embeddings_are_semantic(encoder):
    with torch.no_grad():
        e = encoder.encode_text(["a violin playing", "a fiddle melody", "a truck engine idling"]).pooled
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
