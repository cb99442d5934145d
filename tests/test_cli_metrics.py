"""`sepkit metrics` through a subprocess: JSON keys, values, and errors."""

import json

import numpy as np
import soundfile as sf


def test_metrics_json_and_errors(sepkit_cli, tmp_path):
    rng = np.random.default_rng(0)
    ref = 0.1 * rng.standard_normal(16000)
    sf.write(tmp_path / "ref.wav", ref, 16000, subtype="FLOAT")
    sf.write(tmp_path / "est.wav", ref + 0.01 * rng.standard_normal(16000), 16000, subtype="FLOAT")
    sf.write(tmp_path / "mix.wav", ref + 0.1 * rng.standard_normal(16000), 16000, subtype="FLOAT")
    proc = sepkit_cli(
        "metrics", tmp_path / "est.wav", tmp_path / "ref.wav", "--mixture", tmp_path / "mix.wav", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result["metrics"]) == {"sdr", "sdri", "si_sdr", "si_sdri", "lsd", "psnr"}
    assert 19 < result["metrics"]["sdr"] < 21 and 19 < result["metrics"]["sdri"] < 21

    without_mix = sepkit_cli("metrics", tmp_path / "est.wav", tmp_path / "ref.wav", "--json")
    assert without_mix.returncode == 0 and json.loads(without_mix.stdout)["skipped"] == ["sdri", "si_sdri"]

    asked = sepkit_cli("metrics", tmp_path / "est.wav", tmp_path / "ref.wav", "--metrics", "sdri")
    assert asked.returncode == 2 and "--mixture" in asked.stderr

    unknown = sepkit_cli("metrics", tmp_path / "est.wav", tmp_path / "ref.wav", "--metrics", "pesq")
    assert unknown.returncode == 2 and "unknown metric 'pesq'" in unknown.stderr

    (tmp_path / "bad.wav").write_text("not audio")
    bad = sepkit_cli("metrics", tmp_path / "bad.wav", tmp_path / "ref.wav")
    assert bad.returncode == 2 and "not readable audio" in bad.stderr and "Traceback" not in bad.stderr


def test_metric_options(sepkit_cli, tmp_path):
    rng = np.random.default_rng(1)
    ref = 0.1 * rng.standard_normal(16000)
    sf.write(tmp_path / "ref.wav", ref, 16000, subtype="FLOAT")
    sf.write(tmp_path / "est.wav", ref + 0.3, 16000, subtype="FLOAT")  # an offset: zero_mean removes it
    args = ("metrics", tmp_path / "est.wav", tmp_path / "ref.wav", "--metrics", "si_sdr", "--json")
    plain = json.loads(sepkit_cli(*args).stdout)["metrics"]["si_sdr"]
    zero_mean = json.loads(sepkit_cli(*args, "--option", "si_sdr.zero_mean=true").stdout)["metrics"]["si_sdr"]
    assert zero_mean > plain + 10
    kl = sepkit_cli("metrics", tmp_path / "est.wav", tmp_path / "ref.wav", "--metrics", "kl")
    assert kl.returncode == 2 and "Cnn14_16k_mAP=0.438.pth" in kl.stderr
    bad = sepkit_cli(*args, "--option", "zero_mean=true")
    assert bad.returncode == 2 and "METRIC.KEY=VALUE" in bad.stderr
