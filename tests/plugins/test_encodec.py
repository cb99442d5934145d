"""EnCodec codecs: transformers (``encodec``) and audiocraft (``audiocraft-encodec``): shapes, code range,
bandwidth, the official folder / checkpoint layouts and their errors, full-size parameter counts."""

from __future__ import annotations

import pytest
import torch

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry

TINY_HF = {
    "hidden_size": 16,
    "num_filters": 4,
    "upsampling_ratios": [4, 4, 4],
    "num_lstm_layers": 1,
    "codebook_size": 64,
}
TINY_AC = {"sample_rate": 16000, "n_filters": 4, "ratios": [4, 4, 4], "dimension": 16, "lstm": 1, "n_q": 4, "bins": 64}


def build(name, **config):
    return get_registry().build("codec", {"name": name, **config}).eval()


def wave(rate, seconds=(0.5, 0.3), seed=0):
    g = torch.Generator().manual_seed(seed)
    n = int(rate * max(seconds))
    x = 0.1 * torch.randn(len(seconds), n, generator=g)
    lengths = torch.tensor([int(rate * s) for s in seconds])
    return x * (torch.arange(n)[None] < lengths[:, None]), lengths


# --- transformers EncodecModel --------------------------------------------------------------------
def test_hf_shapes_code_range_and_latents():
    codec = build("encodec", **TINY_HF, bandwidth=6.0)
    assert codec.sample_rate == 24000 and codec.frame_rate == 24000 / 64
    x, lengths = wave(24000)
    with torch.no_grad():
        frames = codec.encode(x, lengths)
        out = codec.decode(frames.codes)
    assert frames.codes.shape == (2, codec.num_codebooks, -(-x.shape[1] // 64))
    assert 0 <= int(frames.codes.min()) and int(frames.codes.max()) < 64
    assert frames.lengths.tolist() == [-(-n // 64) for n in lengths.tolist()]
    assert frames.latents.shape == (2, frames.codes.shape[2], 16)
    assert out.shape == (2, frames.codes.shape[2] * 64)


@pytest.mark.parametrize("bandwidth,groups", [(1.5, 2), (3.0, 4), (6.0, 8), (12.0, 16), (24.0, 32)])
def test_hf_bandwidth_sets_codebooks(bandwidth, groups):
    codec = build("encodec", bandwidth=bandwidth, num_lstm_layers=1, num_filters=4)  # 24 kHz rates, 75 Hz
    assert codec.frame_rate == 75 and codec.num_codebooks == groups


def test_hf_bad_bandwidth_is_a_clear_error():
    with pytest.raises(SepkitError, match="target_bandwidths"):
        build("encodec", **TINY_HF, bandwidth=5.0)


def test_hf_official_folder_roundtrip(tmp_path):
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(3)
    reference = EncodecModel(EncodecConfig(**TINY_HF)).eval()
    reference.save_pretrained(tmp_path / "encodec_24khz")
    codec = build("encodec", model_dir=str(tmp_path / "encodec_24khz"))
    x, lengths = wave(24000)
    with torch.no_grad():
        codes = reference.encode(x[:, None], bandwidth=6.0).audio_codes[0]
        assert torch.equal(codec.encode(x, torch.full((2,), x.shape[1])).codes, codes)
        assert torch.allclose(codec.decode(codes), reference.decode(codes[None], [None]).audio_values[:, 0])


def test_hf_missing_folder_and_conflicting_sizes(tmp_path):
    with pytest.raises(SepkitError, match="no config.json"):
        build("encodec", model_dir=str(tmp_path / "nope"))
    with pytest.raises(SepkitError, match="drop them"):
        build("encodec", model_dir=str(tmp_path), num_filters=4)


@pytest.mark.slow
def test_hf_full_size_parameter_count():
    codec = build("encodec")
    count = sum(p.numel() for p in codec.parameters())
    assert abs(count - 14.85e6) < 0.01e6, count  # HSM-TSS Table IX: EnCodec 14.85 M


# --- audiocraft EncodecModel ----------------------------------------------------------------------
def test_importing_plugin_does_not_import_audiocraft():
    import subprocess
    import sys

    code = "import sepkit_encodec, sys; print('audiocraft' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_audiocraft_shapes_and_code_range():
    codec = build("audiocraft-encodec", **TINY_AC, num_codebooks=3)
    assert codec.frame_rate == 250 and codec.num_codebooks == 3 and codec.codebook_size == 64
    x, lengths = wave(16000)
    with torch.no_grad():
        frames = codec.encode(x, lengths)
        out = codec.decode(frames.codes)
    assert frames.codes.shape == (2, 3, x.shape[1] // 64)
    assert 0 <= int(frames.codes.min()) and int(frames.codes.max()) < 64
    assert frames.latents.shape == (2, frames.codes.shape[2], 16)
    assert out.shape == (2, frames.codes.shape[2] * 64)


def test_audiocraft_exported_checkpoint_roundtrip(tmp_path):
    from sepkit_encodec.audiocraft_codec import write_random_checkpoint

    path = tmp_path / "encodec.th"
    reference = write_random_checkpoint(path, seed=5, **TINY_AC)
    reference.set_num_codebooks(4)
    codec = build("audiocraft-encodec", checkpoint=str(path), sample_rate=16000, num_codebooks=4)
    x, lengths = wave(16000)
    with torch.no_grad():
        codes, _ = reference.encode(x[:, None])
        assert torch.equal(codec.encode(x, lengths).codes, codes)
        assert torch.allclose(codec.decode(codes), reference.decode(codes)[:, 0])


def test_audiocraft_solver_checkpoint_with_pickled_cfg_is_refused(tmp_path):
    from sepkit_encodec.audiocraft_codec import write_random_checkpoint

    path = tmp_path / "checkpoint.th"
    write_random_checkpoint(path, solver_layout=True, **TINY_AC)
    with pytest.raises(SepkitError, match="export_encodec"):
        build("audiocraft-encodec", checkpoint=str(path), sample_rate=16000, num_codebooks=4)


def test_audiocraft_checkpoint_errors(tmp_path):
    with pytest.raises(SepkitError, match="not found"):
        build("audiocraft-encodec", checkpoint=str(tmp_path / "missing.th"))
    torch.save({"model": {}}, tmp_path / "other.th")
    with pytest.raises(SepkitError, match="compression-model layout"):
        build("audiocraft-encodec", checkpoint=str(tmp_path / "other.th"))
    with pytest.raises(SepkitError, match="preset"):
        build("audiocraft-encodec", preset="nope")
    with pytest.raises(SepkitError, match="num_codebooks"):
        build("audiocraft-encodec", **TINY_AC, num_codebooks=5)


@pytest.mark.slow
def test_audiocraft_full_size_builds():
    codec = build("audiocraft-encodec")  # encodec_base_causal, 24 kHz, 32-codebook RVQ, 8 used
    assert codec.frame_rate == 75 and codec.codebook_size == 1024 and codec.num_codebooks == 8
    assert abs(sum(p.numel() for p in codec.parameters()) - 14.68e6) < 0.01e6
