import numpy as np
import pytest
import soundfile as sf

from sepkit.audio import list_audio_files, read_audio, write_audio
from sepkit.errors import SepkitError


def test_read_any_rate_and_channels(tmp_path):
    data = np.random.default_rng(0).uniform(-0.5, 0.5, (1000, 3)).astype(np.float32)
    sf.write(tmp_path / "a.flac", data, 22050)
    wave, sr = read_audio(tmp_path / "a.flac")
    assert sr == 22050 and wave.shape == (3, 1000) and wave.dtype == np.float32
    np.testing.assert_allclose(wave, data.T, atol=1e-4)


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, not audio"), "not readable audio"),
        (lambda p: sf.write(p, np.zeros((0, 1), np.float32), 16000), "no samples"),
        (lambda p: sf.write(p, np.array([0.1, np.inf, 0.2], np.float32), 16000, subtype="FLOAT"), "NaN or infinite"),
        (lambda p: None, "does not exist"),
    ],
)
def test_bad_inputs(tmp_path, make, pattern):
    path = tmp_path / "x.wav"
    make(path)
    with pytest.raises(SepkitError, match=pattern):
        read_audio(path)


def test_write_is_atomic_and_refuses_nan(tmp_path):
    out = tmp_path / "o.wav"
    with pytest.raises(SepkitError, match="NaN"):
        write_audio(out, np.array([[np.nan, 0.0]]), 16000)
    assert list(tmp_path.iterdir()) == []
    write_audio(out, np.zeros((2, 100)), 8000, subtype="PCM_16")
    info = sf.info(out)
    assert (info.channels, info.samplerate, info.frames, info.subtype) == (2, 8000, 100, "PCM_16")
    assert [p.name for p in tmp_path.iterdir()] == ["o.wav"]


def test_write_unknown_format(tmp_path):
    with pytest.raises(SepkitError, match="unknown audio format"):
        write_audio(tmp_path / "o.xyz", np.zeros((1, 10)), 8000)


def test_list_audio_files(tmp_path):
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "b.wav", np.zeros(10), 8000)
    sf.write(tmp_path / "sub" / "a.flac", np.zeros(10), 8000)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_audio_files(tmp_path)] == ["b.wav", "sub/a.flac"]
    with pytest.raises(SepkitError, match="no audio files"):
        list_audio_files(tmp_path / "sub" / "nothing") if (tmp_path / "sub" / "nothing").mkdir() is None else None
