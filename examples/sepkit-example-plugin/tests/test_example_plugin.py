"""The example plugin's components pass sepkit's contracts (text encoder, separator) and run in recipes;
its separator learns to follow the query on a toy task."""

from pathlib import Path

import pytest
import torch

from sepkit.interfaces import AudioFeatures, TextEmbedding
from sepkit.pipeline import SeparationPipeline
from sepkit.plugins import get_registry
from sepkit.recipe import load_recipe
from sepkit.testing import SeparatorContract, TextEncoderContract

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
RECIPE = RECIPES / "hashed_ngrams_mask.yaml"
SEPARATOR_RECIPE = RECIPES / "example_separator.yaml"


class TestHashedNgrams(TextEncoderContract):
    name = "hashed-ngrams"
    config = "embed_dim: 16\nbuckets: 512"


class TestFiLMGRUMask(SeparatorContract):
    """Shapes, checkpoint round trip, determinism, and: different queries give different outputs; a row's
    output does not change when it is batched with longer rows or longer queries (padding)."""

    name = "film-gru-mask"  # config: the entry's example (input_dim 129, query_dim 16, hidden 16)


def test_registered_with_its_own_distribution():
    for kind, name in (("text_encoder", "hashed-ngrams"), ("separator", "film-gru-mask")):
        entry = get_registry().get(kind, name)
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


def test_recipe_with_the_plugins_separator_separates(tmp_path):
    torch.manual_seed(0)
    pipeline = SeparationPipeline.from_recipe(load_recipe(str(SEPARATOR_RECIPE)))
    assert (pipeline.separator.input_dim, pipeline.separator.query_dim) == (129, 64)  # handed over at build time
    wave = torch.randn(1, 16000 * 3) * 0.1
    (out,) = pipeline.separate([wave], [16000], "extract the violin")
    assert out.shape == wave.shape and torch.isfinite(out).all()
    pipeline.save(tmp_path / "m.ckpt")
    payload = torch.load(tmp_path / "m.ckpt", weights_only=True)
    assert payload["plugins"]["sepkit-example-plugin"] == "0.1.0"
    assert any(k.startswith("separator.gru.") for k in payload["state_dict"])


def toy_batch(generator, size: int, frames: int = 30, bins: int = 33):
    """Mixtures of a low-band source (bins < 16) and a high-band source: random complex frames, ragged lengths.

    -> (mixture AudioFeatures [size, frames, bins], sources complex [2, size, frames, bins] (low, high),
    which long [size]: the source each row asks for, 0 or 1).
    """
    low = torch.randn(size, frames, bins, generator=generator, dtype=torch.complex64)
    high = torch.randn(size, frames, bins, generator=generator, dtype=torch.complex64)
    low[..., 16:] = 0
    high[..., :16] = 0
    lengths = torch.randint(frames // 2, frames + 1, (size,), generator=generator)
    valid = (torch.arange(frames)[None, :] < lengths[:, None])[..., None]
    sources = torch.stack([low * valid, high * valid])
    which = torch.randint(0, 2, (size,), generator=generator)
    return AudioFeatures(sources.sum(0), lengths, 50.0), sources, which


def ask(queries: TextEmbedding, which):
    """Row i gets query ``queries[which[i]]``: TextEmbedding [len(which), N, D]."""
    tokens, mask = queries.tokens[which], queries.mask[which]
    return TextEmbedding(tokens, mask, tokens.sum(1) / mask.sum(1, keepdim=True))


def chosen(sources, which):
    """sources [2, B, F, bins], which long [B] -> the chosen source of each row [B, F, bins]."""
    return sources[which, torch.arange(len(which))]


def snr_db(estimate, reference) -> float:
    return float(10 * torch.log10(reference.abs().pow(2).sum() / (estimate - reference).abs().pow(2).sum()))


@pytest.fixture
def one_thread():
    """Tiny tensors train faster on one thread than on contended cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_separator_learns_to_follow_the_query(one_thread):
    """25 Adam steps on the toy task: the low or the high band, as the query says (two random token sequences
    of 3 and 2 tokens). A separator that ignores the query can do no better than half the mixture (3 dB); this
    one extracts whichever source it is asked for."""
    torch.manual_seed(0)
    separator = get_registry().build("separator", {"name": "film-gru-mask", "input_dim": 33, "query_dim": 8})
    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    queries = TextEmbedding(torch.randn(2, 3, 8, generator=g) * mask[..., None], mask, torch.zeros(2, 8))
    optimizer = torch.optim.Adam(separator.parameters(), lr=1e-2)
    for _ in range(25):
        mixture, sources, which = toy_batch(g, size=8)
        estimate = separator.separate(mixture, ask(queries, which), torch.zeros(8, dtype=torch.long)).frames
        loss = (estimate - chosen(sources, which)).abs().pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    separator.eval()
    mixture, sources, which = toy_batch(torch.Generator().manual_seed(99), size=16)
    tasks = torch.zeros(16, dtype=torch.long)
    blind = snr_db(0.5 * mixture.frames, chosen(sources, which))
    assert blind < 3.1, f"half the mixture scores {blind:.1f} dB; the toy task no longer needs the query"
    with torch.no_grad():
        for asked in (which, 1 - which):  # each row asked for one source, then for the other
            estimate = separator.separate(mixture, ask(queries, asked), tasks).frames
            score = snr_db(estimate, chosen(sources, asked))
            assert score > 15.0, f"the asked-for source comes out at {score:.1f} dB SNR (half the mixture: {blind:.1f})"
