import pytest
import torch

from sepkit.errors import SepkitError
from sepkit.pipeline import SeparationPipeline
from sepkit.recipe import load_recipe

TINY = "tiny/stft_mask"


@pytest.fixture(scope="module")
def pipeline():
    torch.manual_seed(0)
    return SeparationPipeline.from_recipe(load_recipe(TINY)).eval()


def si_sdr(estimate, reference):
    alpha = (estimate * reference).sum() / reference.pow(2).sum()
    target = alpha * reference
    return 10 * torch.log10(target.pow(2).sum() / (estimate - target).pow(2).sum())


def test_output_keeps_rate_channels_and_length(pipeline):
    stereo = torch.randn(2, 44100 + 17) * 0.1
    mono = torch.randn(8000) * 0.1
    out = pipeline.separate([stereo, mono], [44100, 8000], "extract the violin")
    assert out[0].shape == stereo.shape and out[1].shape == (1, 8000)
    assert all(torch.isfinite(o).all() for o in out)


def test_frozen_text_encoder_is_not_stored(pipeline):
    keys = pipeline.checkpoint_state().keys()
    assert keys and all(k.startswith("separator.") for k in keys)  # stft/istft have no persistent state
    assert not any(p.requires_grad for p in pipeline.text_encoder.parameters())
    assert all(p.requires_grad for p in pipeline.separator.parameters())


def test_remove_is_mixture_minus_extraction(pipeline):
    mix = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([16000, 12000])
    with torch.no_grad():
        extracted = pipeline(mix, lengths, ["dog", "dog"], torch.tensor([0, 0]))
        mixed_tasks = pipeline(mix, lengths, ["dog", "dog"], torch.tensor([0, 1]))
    torch.testing.assert_close(mixed_tasks[0], extracted[0])
    torch.testing.assert_close(mixed_tasks[1], mix[1] - extracted[1])


def test_compound_instruction_sums_extractions_then_removes(pipeline):
    wave = torch.randn(1, 16000) * 0.1
    (piano,) = pipeline.separate([wave], [16000], "extract the piano")
    (drums,) = pipeline.separate([wave], [16000], "extract the drums")
    (both,) = pipeline.separate([wave], [16000], "extract the piano and the drums")
    torch.testing.assert_close(both, piano + drums, atol=1e-5, rtol=1e-4)
    (removed,) = pipeline.separate([wave], [16000], "remove the drums")
    torch.testing.assert_close(removed, wave - drums, atol=1e-5, rtol=1e-4)


def test_chunked_inference_matches_whole_input():
    torch.manual_seed(0)
    whole = SeparationPipeline.from_recipe(load_recipe(TINY, ["inference.chunk_seconds=100"])).eval()
    chunked = SeparationPipeline.from_recipe(
        load_recipe(TINY, ["inference.chunk_seconds=1.5", "inference.overlap_seconds=0.25"])
    )
    chunked.load_checkpoint_state(whole.checkpoint_state(), "test")
    wave = torch.randn(1, 16000 * 6) * 0.1
    (a,) = whole.separate([wave], [16000], "violin")
    (b,) = chunked.separate([wave], [16000], "violin")
    assert si_sdr(b[0], a[0]) > 30


def test_short_input_same_chunked_or_not():
    torch.manual_seed(0)
    p = SeparationPipeline.from_recipe(load_recipe(TINY, ["inference.chunk_seconds=2"])).eval()
    wave = torch.randn(1, 16000) * 0.1
    (a,) = p.separate([wave], [16000], "violin")
    with torch.no_grad():
        b = p(wave, torch.tensor([16000]), ["violin"], torch.tensor([0]))
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_bfloat16_autocast_runs_close_to_float32(pipeline):
    wave = torch.randn(1, 16000) * 0.1
    (fp32,) = pipeline.separate([wave], [16000], "violin", dtype="float32")
    (bf16,) = pipeline.separate([wave], [16000], "violin", dtype="bfloat16")
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16).all()
    assert si_sdr(bf16[0], fp32[0]) > 15


def test_incompatible_components_named_with_values():
    overrides = ["model.decoder.n_fft=512"]
    with pytest.raises(
        SepkitError, match=r"decoder 'istft' has input_dim=257 but separator 'mask-net' has output_dim=129"
    ):
        SeparationPipeline.from_recipe(load_recipe(TINY, overrides))
    with pytest.raises(
        SepkitError, match=r"decoder 'istft' has frame_rate=.* but audio_encoder 'stft' has frame_rate="
    ):
        SeparationPipeline.from_recipe(load_recipe(TINY, ["model.decoder.hop_length=32"]))


def test_explicit_dim_disagreeing_with_encoder_is_named():
    with pytest.raises(
        SepkitError, match=r"separator 'mask-net' has query_dim=10 but text_encoder 'minilm' has embed_dim=384"
    ):
        SeparationPipeline.from_recipe(load_recipe(TINY, ["model.separator.query_dim=10"]))


def test_checkpoint_roundtrip(tmp_path, pipeline):
    path = tmp_path / "model.ckpt"
    pipeline.save(path)
    payload = torch.load(path, weights_only=True)
    assert set(payload) >= {"recipe", "state_dict", "sepkit_version", "plugins"}
    assert payload["plugins"] == {"sepkit": __import__("sepkit").__version__}
    assert payload["recipe"]["model"]["separator"]["name"] == "mask-net"
    torch.manual_seed(123)
    other = SeparationPipeline.from_recipe(load_recipe(TINY)).eval()
    wave = torch.randn(1, 8000) * 0.1
    before = other.separate([wave], [16000], "violin")[0]
    other.load(path)
    after = other.separate([wave], [16000], "violin")[0]
    expected = pipeline.separate([wave], [16000], "violin")[0]
    assert not torch.allclose(before, expected)
    torch.testing.assert_close(after, expected)


def test_build_pipeline_is_deterministic_without_a_checkpoint():
    from sepkit.pipeline import build_pipeline

    torch.manual_seed(1)
    a = build_pipeline(load_recipe(TINY)).checkpoint_state()
    torch.manual_seed(2)
    b = build_pipeline(load_recipe(TINY)).checkpoint_state()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    after = torch.rand(1)
    torch.manual_seed(2)
    assert torch.equal(after, torch.rand(1))  # the caller's random stream is left as it was


def test_official_checkpoint_is_offered_to_every_component(tmp_path):
    """One release may hold several components' weights (AudioSep: separator and CLAP query encoder)."""
    p = SeparationPipeline.from_recipe(load_recipe(TINY))
    seen = []
    p.separator.load_official_checkpoint = lambda path: seen.append("separator") or True
    p.text_encoder.load_official_checkpoint = lambda path: seen.append("text_encoder") or True
    p.load_official_checkpoint(tmp_path / "release.ckpt", ValueError("not a sepkit checkpoint"))
    assert sorted(seen) == ["separator", "text_encoder"]
    p.separator.load_official_checkpoint = lambda path: False
    p.text_encoder.load_official_checkpoint = lambda path: False
    with pytest.raises(SepkitError, match="no component of this recipe"):
        p.load_official_checkpoint(tmp_path / "release.ckpt", ValueError("not a sepkit checkpoint"))


def test_encode_descriptions_encodes_each_distinct_text_once_in_row_order():
    from sepkit.interfaces import TextEmbedding, encode_descriptions

    calls = []

    def encode_text(texts):
        calls.append(list(texts))
        n = len(texts)
        pooled = torch.tensor([[float(len(t))] for t in texts])
        return TextEmbedding(pooled[:, None].expand(n, 2, 1).clone(), torch.ones(n, 2, dtype=torch.bool), pooled)

    out = encode_descriptions(encode_text, ["bb", "a", "bb", "cccc"])
    assert calls == [["a", "bb", "cccc"]]  # one call, distinct texts only
    assert out.pooled[:, 0].tolist() == [2.0, 1.0, 2.0, 4.0] and out.tokens.shape == (4, 2, 1)
    assert out.mask.shape == (4, 2)
