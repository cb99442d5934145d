"""The lass plugin: the ``bert`` text encoder and LASS-Net's ``lass-resunet`` separator."""

from __future__ import annotations

import pytest
import torch
from sepkit_lass.standin import write_standin_bert_dir

from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, TextEmbedding
from sepkit.plugins import get_registry
from sepkit.recipe import load_recipe, resolve_components

TINY_BERT = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
             "vocab_size": 300}  # fmt: skip
TINY_SEP = {"input_dim": 129, "query_dim": 16, "cond_dim": 8, "base_channels": 2}

# Measured on github.com/liuxubo717/LASS at commit 8979776 (model/resunet_film.py), torch 2.9.1:
#     m = UNetRes_FiLM(channels=1, cond_embedding_dim=256); sum(p.numel() for p in m.parameters())
# plus the Linear(256, 256) after BERT's [CLS] state (model/text_encoder.py): 65,792.
REFERENCE_UNET = 52_228_323
QUERY_PROJECTION = 256 * 256 + 256


def bert(**options):
    return get_registry().build("text_encoder", {"name": "bert", **TINY_BERT, **options}).eval()


def lass(**options):
    return get_registry().build("separator", {"name": "lass-resunet", **TINY_SEP, **options}).eval()


def frames(batch=2, count=37, bins=129, seed=0) -> AudioFeatures:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, count, bins, generator=g, dtype=torch.complex64)
    return AudioFeatures(x, torch.full((batch,), count), 31.25)


def query(pooled: torch.Tensor) -> TextEmbedding:
    return TextEmbedding(pooled[:, None], torch.ones(pooled.shape[0], 1, dtype=torch.bool), pooled)


# --- bert ---------------------------------------------------------------------------------
def test_bert_starts_with_cls_and_appends_sep_only_if_asked():
    for append_sep in (True, False):
        encoder = bert(append_sep=append_sep)
        ids, mask = encoder.token_ids(["violin", "a dog barking"])
        tok = encoder.tokenizer
        assert (ids[:, 0] == tok.cls_token_id).all()
        last = ids[torch.arange(2), mask.sum(1) - 1]
        assert bool((last == tok.sep_token_id).all()) == append_sep
        assert (ids[mask == 0] == tok.pad_token_id).all()


def test_bert_pooled_is_the_cls_state_by_default():
    encoder = bert(append_sep=False)
    out = encoder.encode_text(["violin", "the sound of heavy rain falling on a roof"])
    assert torch.equal(out.pooled, out.tokens[:, 0])
    mean = bert(append_sep=False, pooling="mean").encode_text(["violin"])
    assert mean.pooled.shape == (1, 16)
    pooler = bert(pooling="pooler")
    assert pooler.model.pooler is not None and encoder.model.pooler is None  # LASS-Net: add_pooling_layer=False


def test_bert_loads_a_local_directory(tmp_path):
    model = write_standin_bert_dir(tmp_path / "bert", seed=3, hidden_size=16, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=32)  # fmt: skip
    encoder = get_registry().build("text_encoder", {"name": "bert", "model_dir": str(tmp_path / "bert")}).eval()
    ids, mask = encoder.token_ids(["a violin"])
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
        assert torch.allclose(encoder.encode_text(["a violin"]).pooled, expected, atol=1e-6)


def test_bert_errors_name_the_problem(tmp_path):
    with pytest.raises(SepkitError, match="not a directory"):
        bert(model_dir=str(tmp_path / "missing"))
    with pytest.raises(SepkitError, match="pooling"):
        bert(pooling="max")


# --- lass-resunet -------------------------------------------------------------------------
def test_full_size_matches_the_reference_parameter_count():
    sep = get_registry().build("separator", {"name": "lass-resunet", "input_dim": 513, "query_dim": 256})
    assert sum(p.numel() for p in sep.query_projection.parameters()) == QUERY_PROJECTION
    assert sum(p.numel() for p in sep.parameters()) == REFERENCE_UNET + QUERY_PROJECTION
    assert sep.encoder_block1.conv_block1.film_res is not None  # shortcut FiLM where channels change
    assert sep.conv_block7.film_res is None


def test_output_is_a_magnitude_mask_on_the_mixture():
    sep = lass()
    mix = frames()
    with torch.no_grad():
        out = sep.separate(mix, query(torch.randn(2, 16)), torch.zeros(2, dtype=torch.long)).frames
    ratio = out / mix.frames
    assert out.shape == mix.frames.shape and out.dtype == torch.complex64
    assert ratio.imag.abs().max() < 1e-5  # the mixture's phase is kept
    assert (ratio.real >= 0).all() and (ratio.real <= 1).all()
    assert torch.allclose(ratio.real[..., -2:], torch.tensor(0.5))  # the 2 bins LASS-Net leaves out


def test_query_conditions_the_mask():
    sep = lass()
    mix = frames()
    tasks = torch.zeros(2, dtype=torch.long)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        a = sep.separate(mix, query(torch.randn(2, 16, generator=g)), tasks).frames
        b = sep.separate(mix, query(torch.randn(2, 16, generator=g)), tasks).frames
    assert not torch.allclose(a, b)


def test_input_dim_must_survive_six_halvings():
    with pytest.raises(SepkitError, match="1 \\+ a multiple of 64"):
        lass(input_dim=128)


def test_recipes_resolve():
    for name in ("recipes/lass.yaml", "recipes/mini/lass.yaml"):
        recipe = load_recipe(name)
        resolve_components(recipe, get_registry())
    full = load_recipe("recipes/lass.yaml")
    assert full.section("text_encoder").hidden_size == 256 and full.section("audio_encoder").sample_rate == 16000
