"""The FLAN-T5 text encoder plugin: contract, local-directory round trip, sizes, vocabulary embeddings."""

from __future__ import annotations

import pytest
import torch

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry
from sepkit.testing import TextEncoderContract

TINY = {"d_model": 32, "num_layers": 2, "num_heads": 4, "d_kv": 8, "d_ff": 64, "vocab_size": 512}
TINY_T5 = {k: v for k, v in TINY.items() if k != "vocab_size"} | {"feed_forward_proj": "gated-gelu"}


class TestFlanT5(TextEncoderContract):
    name = "flan-t5"
    config = "\n".join(f"{k}: {v}" for k, v in TINY.items())


def encoder(**config):
    return get_registry().build("text_encoder", {"name": "flan-t5", **config}).eval()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A Hugging Face directory written offline: the stand-in tokenizer and a random tiny T5 encoder."""
    from sepkit_t5.standin import write_standin_model_dir

    path = tmp_path_factory.mktemp("flan-t5-tiny")
    return path, write_standin_model_dir(path, seed=4, **TINY_T5)


def test_local_directory_round_trip(model_dir):
    from sepkit_t5.standin import standin_tokenizer

    path, model = model_dir
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in path.iterdir()}
    enc = encoder(model_dir=str(path))
    assert enc.embed_dim == 32 and enc.model.config.feed_forward_proj == "gated-gelu"
    loaded = enc.model.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded[key], value), key
    texts = ["Extract the violin", "a dog barking in heavy rain", "no wind"]
    reference = standin_tokenizer()
    assert enc.tokenizer(texts)["input_ids"] == reference(texts)["input_ids"]  # the saved tokenizer reloads as built
    with torch.no_grad():
        out = enc.encode_text(texts)
        for i, text in enumerate(texts):
            ids = torch.tensor([reference(text)["input_ids"]])
            assert ids[0, -1] == reference.eos_token_id == 1 and reference.pad_token_id == 0
            hidden = model(input_ids=ids).last_hidden_state[0]
            n = hidden.shape[0]
            assert out.mask[i].sum() == n and bool(out.mask[i, :n].all())
            torch.testing.assert_close(out.tokens[i, :n], hidden, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(out.pooled[i], hidden.mean(0), rtol=1e-5, atol=1e-5)
    assert bool((out.tokens[~out.mask] == 0).all())


def test_rows_do_not_depend_on_the_batch():
    enc = encoder(**TINY)
    with torch.no_grad():
        batch = enc.encode_text(["violin", "the sound of heavy rain falling on a roof"])
        alone = enc.encode_text(["violin"])
    n = int(alone.mask.sum())
    torch.testing.assert_close(batch.tokens[0, :n], alone.tokens[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batch.pooled[0], alone.pooled[0], rtol=1e-5, atol=1e-5)
    long = encoder(**TINY, max_length=4).encode_text(["the sound of heavy rain falling on a roof"])
    assert long.tokens.shape[1] == 4


def test_task_tokens_are_rows_of_the_vocabulary_embedding(model_dir):
    path, model = model_dir
    enc = encoder(model_dir=str(path))
    tasks = enc.task_token_embeddings()
    assert set(tasks) == {"extract", "remove"}
    table = model.get_input_embeddings().weight
    for word, embedding in tasks.items():
        ids = enc.vocabulary_ids(word)
        assert enc.tokenizer.convert_ids_to_tokens(ids) == [f"▁{word}"]  # one whole-word piece, no </s>
        assert embedding.shape == (1, 32) and torch.equal(embedding, table[ids])
    several = enc.vocabulary_embeddings("xq")
    assert several.shape == (len(enc.vocabulary_ids("xq")), 32) and several.shape[0] >= 2
    with pytest.raises(SepkitError, match="outside the vocabulary"):
        enc.vocabulary_embeddings("extract ü")
    with pytest.raises(SepkitError, match="no pieces"):
        enc.vocabulary_embeddings("")


def test_flan_t5_base_sizes_with_random_weights():
    enc = encoder()  # defaults: FLAN-T5-base (d_model 768, 12 layers, 12 heads, d_kv 64, d_ff 2048, gated-GELU)
    d, ff, layers, vocab = 768, 2048, 12, 32128
    per_layer = 4 * d * d + d + 3 * d * ff + d  # attention q/k/v/o, its norm, gated FF wi_0/wi_1/wo, its norm
    expected = vocab * d + layers * per_layer + 32 * 12 + d  # shared embedding, blocks, relative bias, final norm
    assert sum(p.numel() for p in enc.model.parameters()) == expected == 109_628_544
    assert enc.embed_dim == 768 and enc.model.get_input_embeddings().num_embeddings == vocab
    with torch.no_grad():
        out = enc.encode_text(["extract the violin"])
    assert out.tokens.shape[-1] == 768 and torch.isfinite(out.pooled).all()


def test_clear_errors_for_bad_directories(tmp_path, model_dir):
    with pytest.raises(SepkitError, match="is not a directory"):
        encoder(model_dir=str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SepkitError, match="no usable T5 model"):
        encoder(model_dir=str(tmp_path / "empty"))
    with pytest.raises(SepkitError, match="tokenizer has .* pieces but the model's embedding table only 100"):
        encoder(**{**TINY, "vocab_size": 100})
    path, _ = model_dir
    assert encoder(**TINY, tokenizer_dir=str(path)).tokenizer("violin")["input_ids"][-1] == 1
    with pytest.raises(SepkitError, match="max_length"):
        encoder(**TINY, max_length=1)
