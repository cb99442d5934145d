"""The CLAP plugin: contracts for both roles of clap-laion and clap-hf, padding to the longest query,
AudioSep/LAION checkpoint layouts, the LAION -> transformers key conversion, and the recipes."""

import time

import pytest
import torch
import yaml
from sepkit_clap import TINY_HF, TINY_LAION

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry
from sepkit.testing import AudioEncoderContract, TextEncoderContract
from sepkit.testing.contracts import perturb_state

TINY_ROBERTA = yaml.safe_load(TINY_LAION)["roberta"]


class TestClapLaionText(TextEncoderContract):
    name = "clap-laion"


class TestClapLaionAudio(AudioEncoderContract):
    name = "clap-laion"


class TestClapHFText(TextEncoderContract):
    name = "clap-hf"


class TestClapHFAudio(AudioEncoderContract):
    name = "clap-hf"


def build(kind="text_encoder", name="clap-laion", seed=0, **config):
    base = yaml.safe_load(TINY_LAION if name == "clap-laion" else TINY_HF)
    torch.manual_seed(seed)
    return get_registry().build(kind, {"name": name, **base, **config}).eval()


@pytest.fixture(scope="module")
def laion():
    encoder = build()
    perturb_state(encoder.model)  # non-default batch-norm statistics, biases etc., so every mapping shows
    return encoder


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory):
    from sepkit_clap.roberta import write_roberta_dir

    return write_roberta_dir(tmp_path_factory.mktemp("roberta"), **TINY_ROBERTA)


# --- text ---------------------------------------------------------------------------------
def official_text_embedding(encoder, texts):
    """AudioSep's CLAP_Encoder._get_text_embed: one query duplicated to two, every query padded to 512 tokens."""
    batch = list(texts) * 2 if len(texts) == 1 else list(texts)
    tokens = encoder.tokenizer(batch, padding="max_length", truncation=True, max_length=512, return_tensors="pt")
    pooler = encoder.model.text_branch(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    embedding = torch.nn.functional.normalize(encoder.model.text_projection(pooler.pooler_output), dim=-1)
    return embedding[: len(texts)]


def test_padding_to_the_longest_query_equals_official_512_padding(laion):
    for texts in (["a man is speaking while birds chirp"], ["violin", "the sound of heavy rain falling on a tin roof"]):
        with torch.no_grad():
            ours = laion.encode_text(texts)
            official = official_text_embedding(laion, texts)
        assert ours.tokens.shape[1] == max(len(t) for t in texts) + 2 < 512  # bytes + <s> </s>
        torch.testing.assert_close(ours.pooled, official, atol=1e-5, rtol=0)
        assert torch.allclose(ours.pooled.norm(dim=-1), torch.ones(len(texts)))


def test_embed_text_and_tokens(laion):
    with torch.no_grad():
        out = laion.encode_text(["a dog barking", "violin"])
        assert torch.equal(laion.embed_text(["a dog barking", "violin"]), out.pooled)
    assert out.tokens.shape == (2, 15, 512) and out.mask.sum(1).tolist() == [15, 8]
    assert (out.tokens[1, 8:] == 0).all() and laion.embed_dim == laion.output_dim == 512


def test_standin_tokenizer_refuses_trained_weights(laion):
    laion.trained = True
    try:
        with pytest.raises(SepkitError, match="text_model_dir"):
            laion.encode_text(["violin"])
    finally:
        laion.trained = False


def test_text_model_dir_gives_the_tokenizer(roberta_dir, tmp_path):
    encoder = build(text_model_dir=str(roberta_dir), roberta={})
    assert not encoder.standin_tokenizer and encoder.model.text_branch.config.num_hidden_layers == 1
    assert encoder.tokenizer("violin")["input_ids"] == build().tokenizer("violin")["input_ids"]
    (tmp_path / "config.json").write_text((roberta_dir / "config.json").read_text())
    with pytest.raises(SepkitError, match="no RoBERTa tokenizer.*vocab.json"):
        build(text_model_dir=str(tmp_path), roberta={})
    with pytest.raises(SepkitError, match="no config.json"):
        build(text_model_dir=str(tmp_path / "missing"), roberta={})


# --- audio --------------------------------------------------------------------------------
def test_audio_windows_and_clip_embedding(laion):
    from sepkit_clap.windows import cut_windows, repeat_pad

    assert repeat_pad(torch.arange(3.0), 8).tolist() == [0, 1, 2, 0, 1, 2, 0, 0]
    wave = 0.1 * torch.randn(2, 48000 * 12, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([48000 * 12, 48000 * 3])
    with torch.no_grad():
        out = laion.encode_audio(wave, lengths)
        alone = laion.embed_audio(wave[1:, : 48000 * 3])  # padding past a row's length changes nothing
        laion.sample_rate = 16000
        try:
            resampled = laion.encode_audio(wave[:, ::3], lengths // 3)  # 16 kHz input is resampled to 48 kHz
        finally:
            laion.sample_rate = 48000
    assert resampled.lengths.tolist() == [2, 1] and torch.isfinite(resampled.pooled).all()
    assert out.frames.shape == (2, 2, 512) and out.lengths.tolist() == [2, 1] and out.frame_rate == 0.1
    assert (out.frames[1, 1] == 0).all()
    torch.testing.assert_close(out.pooled[1], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.pooled[0], torch.nn.functional.normalize(out.frames[0].mean(0), dim=0))
    windows, counts = cut_windows(torch.ones(1, 480001), torch.tensor([480001]))
    assert counts.tolist() == [2] and windows[1].sum() == 480000  # one sample, repeated over the window


# --- official layouts ---------------------------------------------------------------------
def audiosep_checkpoint(path, encoder, extra=None, drop=None):
    """AudioSep's Lightning layout: query_encoder.model.<CLAP keys> (+ old position_ids) and a separator key."""
    from sepkit_clap.official import clap_state_to_file_layout

    state = clap_state_to_file_layout(encoder.model.state_dict(), "query_encoder.model.")
    state["ss_model.base.bn0.weight"] = torch.ones(3)
    state.update(extra or {})
    for key in drop or ():
        del state[key]
    torch.save({"state_dict": state, "epoch": 1, "global_step": 4000000}, path)
    return path


def test_loads_audiosep_query_encoder(laion, tmp_path):
    path = audiosep_checkpoint(tmp_path / "audiosep_base_4M_steps.ckpt", laion)
    fresh = build(seed=1)
    assert fresh.load_official_checkpoint(str(path)) is True and fresh.trained
    for key, value in laion.model.state_dict().items():
        assert torch.equal(fresh.model.state_dict()[key], value), key
    bad = audiosep_checkpoint(
        tmp_path / "bad.ckpt", laion, extra={"query_encoder.model.text_branch.extra.weight": torch.zeros(1)},
        drop=["query_encoder.model.audio_projection.2.bias"],
    )  # fmt: skip
    with pytest.raises(SepkitError, match=r"missing keys: query_encoder\.model\.audio_projection\.2\.bias.*"
                       r"unexpected keys: query_encoder\.model\.text_branch\.extra\.weight"):  # fmt: skip
        fresh.load_official_checkpoint(str(bad))
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    assert fresh.load_official_checkpoint(str(other)) is False


def test_loads_laion_pt_layout(laion, roberta_dir, tmp_path):
    from sepkit_clap.official import clap_state_to_file_layout

    path = tmp_path / "630k-audioset-best.pt"
    state = clap_state_to_file_layout(laion.model.state_dict(), "module.")
    torch.save({"epoch": 45, "name": "run", "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    fresh = build(checkpoint=str(path), text_model_dir=str(roberta_dir), roberta={})  # its vocabulary: the stand-in's
    with torch.no_grad():
        torch.testing.assert_close(fresh.embed_text(["violin"]), laion.embed_text(["violin"]), atol=0, rtol=0)
    with pytest.raises(SepkitError, match="mis-shaped keys"):
        build(checkpoint=str(path), roberta={**TINY_ROBERTA, "intermediate_size": 32})
    with pytest.raises(SepkitError, match="trained CLAP weights but no RoBERTa tokenizer"):
        build(checkpoint=str(path)).encode_text(["violin"])


# --- LAION -> transformers ----------------------------------------------------------------
class FixedMel(torch.nn.Module):
    """Stands in for HTSAT's torchlibrosa front end: returns the given log-mels whatever the wave."""

    def __init__(self, mels):
        super().__init__()
        self.mels = mels

    def forward(self, x):
        return self.mels


def test_laion_to_transformers_conversion_gives_equal_embeddings(laion):
    """Text: same tokens -> same embedding. Audio: the two front ends differ (torchlibrosa float32 conv STFT
    vs transformers' numpy float64 STFT), so both models get the same log-mel features."""
    import copy

    from sepkit_clap.convert import hf_config_from_laion, load_laion_into_hf
    from sepkit_clap.roberta import ROBERTA_BASE
    from transformers import ClapModel

    hf = build(name="clap-hf")
    hf.model = ClapModel(hf_config_from_laion("HTSAT-tiny", {**ROBERTA_BASE, **TINY_ROBERTA})).eval()
    load_laion_into_hf(hf.model, laion.model.state_dict())
    texts = ["a dog barking", "the sound of heavy rain falling on a roof", "violin"]
    with torch.no_grad():
        torch.testing.assert_close(hf.encode_text(texts).pooled, laion.encode_text(texts).pooled, atol=1e-5, rtol=0)
        torch.testing.assert_close(hf.encode_text(texts).tokens, laion.encode_text(texts).tokens, atol=1e-4, rtol=0)
        windows = 0.1 * torch.randn(2, 480000, generator=torch.Generator().manual_seed(3))
        mels = hf.log_mels(windows)
        assert mels.shape == (2, 1, 1001, 64)
        official = copy.deepcopy(laion)
        official.model.audio_branch.spectrogram_extractor = torch.nn.Identity()
        official.model.audio_branch.logmel_extractor = FixedMel(mels)
        torch.testing.assert_close(hf.mel_embeddings(mels), official.window_embeddings(windows), atol=1e-5, rtol=0)


# --- the pipeline and the recipes -----------------------------------------------------------
def test_pipeline_loads_both_parts_of_an_audiosep_checkpoint(laion, roberta_dir, tmp_path):
    """`sepkit separate --ckpt audiosep_base_4M_steps.ckpt`: the separator and clap-laion each read their part."""
    from sepkit_clap.official import clap_state_to_file_layout

    from sepkit.pipeline import build_pipeline
    from sepkit.recipe import load_recipe
    from sepkit_resunet.official import official_key_shapes, to_official_key

    recipe_path = tmp_path / "tiny_audiosep_clap.yaml"
    recipe_path.write_text(
        "model:\n"
        f"  text_encoder: {{name: clap-laion, freeze: true, amodel: HTSAT-tiny, text_model_dir: {roberta_dir}}}\n"
        "  audio_encoder: {name: stft, n_fft: 256, hop_length: 64, sample_rate: 16000}\n"
        "  separator: {name: resunet30, base_channels: 4}\n"
        "  decoder: {name: istft, n_fft: 256, hop_length: 64, sample_rate: 16000}\n"
        "inference: {chunk_seconds: 2.0, overlap_seconds: 0.25}\n"
    )
    recipe = load_recipe(str(recipe_path))
    separator = get_registry().build("separator", {"name": "resunet30", "input_dim": 129, "query_dim": 512,
                                                   "base_channels": 4})  # fmt: skip
    generator = torch.Generator().manual_seed(5)
    state = {}
    for key, shape in official_key_shapes(separator).items():
        value = 0.5 + torch.rand(shape, generator=generator) if "running_var" in key else 0.1 * torch.randn(shape)
        state[f"ss_model.{key}"] = value if shape else torch.tensor(0)
    state.update(clap_state_to_file_layout(laion.model.state_dict(), "query_encoder.model."))
    path = tmp_path / "audiosep_base_4M_steps.ckpt"
    torch.save({"state_dict": state, "epoch": 0, "global_step": 0}, path)
    pipeline = build_pipeline(recipe, checkpoint=str(path))
    for key, value in pipeline.separator.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(value, state[f"ss_model.{to_official_key(key)}"]), key
    with torch.no_grad():
        torch.testing.assert_close(pipeline.text_encoder.embed_text(["violin"]), laion.embed_text(["violin"]))
        out = pipeline.separate([0.1 * torch.randn(1, 8000)], [16000], "extract the violin")
    assert out[0].shape == (1, 8000) and torch.isfinite(out[0]).all()


def test_mini_audiosep_keeps_minilm_and_its_separator():
    from sepkit.recipe import load_recipe

    mini = load_recipe("mini/audiosep")
    assert dict(mini.section("text_encoder")) == {"name": "minilm", "freeze": True, "max_length": 32}
    assert mini.section("separator").base_channels == 8 and mini.section("audio_encoder").sample_rate == 16000
    full = load_recipe("audiosep")
    assert full.section("text_encoder").name == "clap-laion"


@pytest.mark.slow
def test_full_size_audiosep_query_encoder_builds_and_times_padding():
    """HTSAT-base + RoBERTa-base (random, RoBERTa config only), as recipes/audiosep.yaml builds it."""
    encoder = get_registry().build("text_encoder", {"name": "clap-laion"}).eval()
    parameters = sum(p.numel() for p in encoder.model.parameters())
    assert encoder.model_cfg["audio_cfg"]["model_name"] == "base" and parameters > 150_000_000
    texts = ["a man is speaking while birds chirp"]
    with torch.no_grad():
        start = time.perf_counter()
        ours = encoder.encode_text(texts).pooled
        longest = time.perf_counter() - start
        start = time.perf_counter()
        official = official_text_embedding(encoder, texts)
        padded = time.perf_counter() - start
    torch.testing.assert_close(ours, official, atol=1e-5, rtol=0)
    print(f"full-size text encoding: longest-padded {longest * 1000:.0f} ms, 2 x 512-padded {padded * 1000:.0f} ms")
    assert longest < padded


def test_clap_hf_reads_a_local_directory(tmp_path):
    hf = build(name="clap-hf")
    perturb_state(hf.model)
    hf.model.save_pretrained(tmp_path)
    hf.tokenizer.save_pretrained(tmp_path)
    hf.feature_extractor.save_pretrained(tmp_path)
    loaded = get_registry().build("text_encoder", {"name": "clap-hf", "model_dir": str(tmp_path)}).eval()
    assert loaded.trained and not loaded.standin_tokenizer
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed_text(["violin"]), hf.embed_text(["violin"]), atol=1e-6, rtol=0)
    with pytest.raises(SepkitError, match="no config.json"):
        get_registry().build("text_encoder", {"name": "clap-hf", "model_dir": str(tmp_path / "missing")})
