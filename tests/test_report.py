import struct
import zlib

import numpy as np

from sepkit.report.page import write_page
from sepkit.report.spectrogram import colour_map, spectrogram_image, write_png


def read_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks.setdefault(kind, b"")
        chunks[kind] += body
        pos += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[r * (3 * width + 1) + 1 : (r + 1) * (3 * width + 1)] for r in range(height)]
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width, 3)


def test_png_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    write_png(tmp_path / "x.png", image)
    np.testing.assert_array_equal(read_png(tmp_path / "x.png"), image)


def test_spectrogram_puts_a_tone_at_its_frequency():
    sr = 16000
    tone = np.sin(2 * np.pi * 2000 * np.arange(sr) / sr)
    image = spectrogram_image(tone, sr, height=256)
    brightness = image.astype(float).sum(axis=(1, 2))
    row = int(np.argmax(brightness))  # row 0 is the top (8 kHz), row 255 the bottom (0 Hz)
    assert abs((255 - row) / 255 * 8000 - 2000) < 100


def test_colour_map_gets_brighter():
    lum = colour_map(np.linspace(0, 1, 50)).astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(lum) > 0)


def test_page_links_relative_files(tmp_path):
    (tmp_path / "a").mkdir()
    write_page(tmp_path / "r.html", "t <x>", [("s", [("mix", str(tmp_path / "a/m.png"), str(tmp_path / "a/m.wav"))])])
    text = (tmp_path / "r.html").read_text()
    assert "src='a/m.png'" in text and "src='a/m.wav'" in text and "t &lt;x&gt;" in text
