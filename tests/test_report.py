import numpy as np
import pytest
from PIL import Image

from sepkit.report.page import write_page
from sepkit.report.spectrogram import colour_map, spectrogram_image, write_png, write_spectrogram

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_rgb(path):
    """The PNG's pixels as uint8 RGB [height, width, 3], decoded by Pillow (not by the code under test)."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def tone(freq, sr=16000, seconds=1.0):
    return np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)


def test_png_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    write_png(tmp_path / "x.png", image)
    np.testing.assert_array_equal(read_rgb(tmp_path / "x.png"), image)


def test_write_png_refuses_what_is_not_rgb(tmp_path):
    with pytest.raises(ValueError, match="RGB"):
        write_png(tmp_path / "x.png", np.zeros((4, 4), dtype=np.uint8))


def test_spectrogram_puts_a_tone_at_its_frequency():
    sr = 16000
    image = spectrogram_image(tone(2000, sr), sr, height=256)
    brightness = image.astype(float).sum(axis=(1, 2))
    row = int(np.argmax(brightness))  # row 0 is the top (8 kHz), row 255 the bottom (0 Hz)
    assert abs((255 - row) / 255 * 8000 - 2000) < 100


def test_colour_map_gets_brighter():
    lum = colour_map(np.linspace(0, 1, 50)).astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(lum) > 0)


@pytest.mark.parametrize("freq", [1000, 6000])
def test_written_spectrogram_is_a_small_png_with_the_tone_at_its_height(tmp_path, freq):
    sr = 16000
    write_spectrogram(tmp_path / "s.png", tone(freq, sr), sr)
    pixels = read_rgb(tmp_path / "s.png")
    assert pixels.shape == (160, 300, 3)  # the size report.html shows, so pages stay light
    assert (tmp_path / "s.png").stat().st_size < 60_000
    brightness = pixels.astype(float).sum(axis=(1, 2))
    assert brightness.max() > 3 * np.median(brightness)  # a bright line on a dark background, not blank
    row = int(np.argmax(brightness))  # row 0 at the top is 8 kHz, row 159 at the bottom 0 Hz
    assert abs((159.5 - row) / 160 * 8000 - freq) < 100


def test_spectrograms_sharing_a_reference_compare_by_eye(tmp_path):
    sr = 16000
    loud, quiet = tone(2000, sr), 0.01 * tone(2000, sr)  # 40 dB apart
    write_spectrogram(tmp_path / "loud.png", loud, sr)
    write_spectrogram(tmp_path / "quiet_own.png", quiet, sr)  # scaled to its own maximum: looks the same
    reference = 20 * np.log10(np.abs(np.fft.rfft(loud[:1024] * np.hanning(1025)[:-1])).max())
    write_spectrogram(tmp_path / "quiet_shared.png", quiet, sr, reference_db=reference)
    names = ("loud", "quiet_own", "quiet_shared")
    mean = {name: read_rgb(tmp_path / f"{name}.png").astype(float).mean() for name in names}
    assert abs(mean["loud"] - mean["quiet_own"]) < 2
    assert mean["quiet_shared"] < mean["loud"] - 5


def test_silence_is_drawn_dark_not_as_an_error(tmp_path):
    write_spectrogram(tmp_path / "s.png", np.zeros(16000), 16000, reference_db=0.0)
    pixels = read_rgb(tmp_path / "s.png")
    assert pixels.shape == (160, 300, 3) and pixels.max() < 20  # the colour map's darkest end


def test_page_links_relative_files(tmp_path):
    (tmp_path / "a").mkdir()
    write_page(tmp_path / "r.html", "t <x>", [("s", [("mix", str(tmp_path / "a/m.png"), str(tmp_path / "a/m.wav"))])])
    text = (tmp_path / "r.html").read_text()
    assert "src='a/m.png'" in text and "src='a/m.wav'" in text and "t &lt;x&gt;" in text
