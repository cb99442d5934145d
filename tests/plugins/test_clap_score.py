"""clap_score / clap_score_a: cosines of CLAP embeddings, checked against the encoder's own embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
import yaml

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry

TINY = yaml.safe_load(
    "allow_random_weights: true\nencoder: {name: clap-laion, amodel: HTSAT-tiny, sample_rate: 16000, "
    "roberta: {num_hidden_layers: 1, intermediate_size: 64, vocab_size: 300}}"
)


def build(name):
    torch.manual_seed(0)
    return get_registry().build("metric", {**TINY, "name": name})


def clips(n=2, seconds=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(n, int(16000 * seconds), generator=g)


def test_clap_score_is_the_cosine_of_the_encoders_text_and_audio_embeddings():
    metric = build("clap_score")
    est = clips()
    texts = ["a dog barking", "violin"]
    got = metric.score(est, est, 16000, texts=texts)
    lengths = torch.full((2,), est.shape[-1])
    audio = F.normalize(metric.encoder.embed_audio(est, lengths), dim=-1)
    text = F.normalize(metric.encoder.embed_text(texts), dim=-1)
    want = (audio * text).sum(-1).double()
    assert got.dtype == torch.float64 and got.shape == (2,)
    assert torch.allclose(got, want, atol=1e-5)
    assert bool((got.abs() <= 1 + 1e-6).all())


def test_clap_score_needs_texts():
    metric = build("clap_score")
    with pytest.raises(SepkitError, match="query text"):
        metric.score(clips(), clips(), 16000)


def test_clap_score_a_is_one_for_identical_clips_and_resamples():
    metric = build("clap_score_a")
    ref = clips(seed=1)
    assert torch.allclose(metric.score(ref, ref, 16000), torch.ones(2, dtype=torch.float64), atol=1e-5)
    other = metric.score(clips(seed=2), ref, 16000)
    assert bool((other < 1 - 1e-4).all())
    # the same clip at 32 kHz scores (almost) like at 16 kHz: the metric resamples to the encoder's rate
    import torchaudio.functional as AF

    up = AF.resample(ref, 16000, 32000)
    assert torch.allclose(metric.score(up, up, 32000), torch.ones(2, dtype=torch.float64), atol=1e-5)


def test_refuses_untrained_weights_unless_allowed():
    with pytest.raises(SepkitError, match="needs trained CLAP weights"):
        get_registry().build("metric", {"name": "clap_score", "encoder": TINY["encoder"]})


def test_refuses_an_encoder_without_embeddings():
    with pytest.raises(SepkitError, match="has no embed_audio"):
        get_registry().build(
            "metric", {"name": "clap_score_a", "allow_random_weights": True, "encoder": {"name": "stft"}}
        )


def test_cli_metrics_text_option(tmp_path, sepkit_cli):
    rng = np.random.default_rng(0)
    ref = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    sf.write(tmp_path / "ref.wav", ref, 16000)
    sf.write(tmp_path / "est.wav", ref + 0.01 * rng.standard_normal(16000).astype(np.float32), 16000)
    options = [
        "--option",
        "clap_score.allow_random_weights=true",
        "--option",
        "clap_score.encoder=" + json.dumps(TINY["encoder"]),
    ]
    args = ["metrics", str(tmp_path / "est.wav"), str(tmp_path / "ref.wav"), "--metrics", "clap_score", "--json"]
    missing = sepkit_cli(*args, *options)
    assert missing.returncode == 2 and "--text" in missing.stderr
    result = sepkit_cli(*args, *options, "--text", "a dog barking")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert -1 <= payload["metrics"]["clap_score"] <= 1 and payload["text"] == "a dog barking"
