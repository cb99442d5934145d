"""The example plugin passes sepkit's contract for text encoders and runs in a recipe."""

from pathlib import Path

import torch

from sepkit.pipeline import SeparationPipeline
from sepkit.plugins import get_registry
from sepkit.recipe import load_recipe
from sepkit.testing import TextEncoderContract

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "hashed_ngrams_mask.yaml"


class TestHashedNgrams(TextEncoderContract):
    name = "hashed-ngrams"
    config = "embed_dim: 16\nbuckets: 512"


def test_registered_with_its_own_distribution():
    entry = get_registry().get("text_encoder", "hashed-ngrams")
    assert (entry.provider, entry.version) == ("sepkit-example-plugin", "0.1.0")


def test_shared_ngrams_make_similar_words_close():
    encoder = get_registry().build("text_encoder", {"name": "hashed-ngrams", "embed_dim": 64}).eval()
    e = torch.nn.functional.normalize(encoder.encode_text(["barking", "barks", "violin"]).pooled, dim=-1)
    assert e[0] @ e[1] > e[0] @ e[2]


def test_recipe_with_the_plugin_separates(tmp_path):
    torch.manual_seed(0)
    pipeline = SeparationPipeline.from_recipe(load_recipe(str(RECIPE)))
    assert pipeline.separator.query_dim == 64  # handed over from the plugin's embed_dim
    wave = torch.randn(2, 16000 * 3) * 0.1
    (out,) = pipeline.separate([wave], [22050], "remove the dog barking")
    assert out.shape == wave.shape and torch.isfinite(out).all()
    pipeline.save(tmp_path / "m.ckpt")
    payload = torch.load(tmp_path / "m.ckpt", weights_only=True)
    assert payload["plugins"]["sepkit-example-plugin"] == "0.1.0"
    assert any(k.startswith("text_encoder.table") for k in payload["state_dict"])
