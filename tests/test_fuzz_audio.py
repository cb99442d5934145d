"""Property-based tests of ``read_audio``: whatever the bytes, a clean array or a ``SepkitError``.

Random bytes, random bytes behind a real RIFF/WAVE header (with random fields) or a FLAC/OGG
magic, and valid files truncated or with bytes overwritten: ``read_audio`` returns a finite
float32 ``[channels, samples]`` array with at least one channel and one sample and a positive
sample rate, or raises ``SepkitError``; never another exception.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sepkit.audio import read_audio  # noqa: E402
from sepkit.errors import SepkitError  # noqa: E402


@contextlib.contextmanager
def _fd2_captured():
    """Capture what is written to file descriptor 2 (by C libraries too) into the list yielded."""
    sys.stderr.flush()
    saved = os.dup(2)
    written: list[bytes] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield written
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            written.append(sink.read())


def _read(data: bytes, suffix: str):
    """``read_audio`` of a temporary file holding ``data``; checks the contract and returns the result.

    Nothing may reach stderr: the CLI prints one line for a bad input, and libmpg123 (which
    libsndfile tries on unrecognised bytes) prints notes such as "Illegal Audio-MPEG-Header".
    """
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        with _fd2_captured() as stderr:
            try:
                wave, sample_rate = read_audio(path)
            except SepkitError as exc:
                wave = exc
        assert stderr == [b""], stderr[0].decode(errors="replace")[:300]
        if isinstance(wave, SepkitError):
            assert "\n" not in str(wave)
            return None
    assert isinstance(wave, np.ndarray) and wave.dtype == np.float32 and wave.ndim == 2
    assert wave.shape[0] >= 1 and wave.shape[1] >= 1
    assert np.isfinite(wave).all()
    assert isinstance(sample_rate, int) and sample_rate > 0
    return wave, sample_rate


def _valid_file(fmt: str, subtype: str | None, channels: int, frames: int, sample_rate: int, seed: int) -> bytes:
    import soundfile

    data = np.random.default_rng(seed).uniform(-0.9, 0.9, (frames, channels)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, data, sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _riff_wave(
    fmt_tag: int, channels: int, rate: int, bits: int, data_size: int, payload: bytes, extra: bytes
) -> bytes:
    """A RIFF/WAVE file with the given header fields (any values, even nonsense) and payload."""
    block_align = (channels * bits // 8) & 0xFFFF
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, (rate * block_align) & 0xFFFFFFFF, block_align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt) + len(extra)) + fmt + extra
    body += b"data" + struct.pack("<I", data_size) + payload
    return b"RIFF" + struct.pack("<I", len(body) & 0xFFFFFFFF) + body


SUFFIXES = st.sampled_from([".wav", ".flac", ".ogg", ".aiff", ".mp3", ".au", ""])


@given(data=st.binary(min_size=1, max_size=2048), suffix=SUFFIXES)
def test_random_bytes(data, suffix):
    _read(data, suffix)


@given(
    magic=st.sampled_from(
        [
            b"RIFF\x00\x00\x00\x00WAVE",
            b"RIFF\xff\xff\xff\xffWAVEfmt ",
            b"fLaC",
            b"OggS\x00\x02",
            b"FORM\x00\x00\x00\x00AIFF",
            b"ID3\x03\x00",
            b".snd",
            b"RF64\xff\xff\xff\xffWAVE",
        ]
    ),
    data=st.binary(max_size=2048),
)
def test_random_bytes_behind_a_magic(magic, data):
    suffix = {b"R": ".wav", b"f": ".flac", b"O": ".ogg", b"F": ".aiff", b"I": ".mp3", b".": ".au"}[magic[:1]]
    _read(magic + data, suffix)


@given(
    fmt_tag=st.sampled_from([0, 1, 2, 3, 6, 7, 0x11, 0x55, 0xFFFE, 0xFFFF]),
    channels=st.sampled_from([0, 1, 2, 3, 255, 1024, 1025, 65535]),
    rate=st.sampled_from([0, 1, 8000, 16000, 44100, 2**31 - 1, 2**32 - 1]),
    bits=st.sampled_from([0, 1, 8, 12, 16, 24, 32, 64, 65535]),
    data_size=st.one_of(st.integers(0, 4096), st.just(2**32 - 1)),
    payload=st.binary(max_size=1024),
    extra=st.sampled_from([b"", b"\x00\x00", b"\x16\x00" + bytes(22)]),
)
def test_random_wave_header(fmt_tag, channels, rate, bits, data_size, payload, extra):
    _read(_riff_wave(fmt_tag, channels, rate, bits, data_size, payload, extra), ".wav")


VALID = st.sampled_from(
    [
        ("WAV", "PCM_16", ".wav"),
        ("WAV", "FLOAT", ".wav"),
        ("WAV", "DOUBLE", ".wav"),
        ("WAV", "PCM_U8", ".wav"),
        ("FLAC", "PCM_16", ".flac"),
        ("FLAC", "PCM_24", ".flac"),
        ("OGG", "VORBIS", ".ogg"),
        ("AIFF", "PCM_16", ".aiff"),
    ]
)


@given(
    kind=VALID,
    channels=st.integers(1, 3),
    frames=st.integers(1, 3000),
    seed=st.integers(0, 2**16),
    cut=st.floats(0.0, 1.0),
)
def test_truncated_valid_file(kind, channels, frames, seed, cut):
    fmt, subtype, suffix = kind
    data = _valid_file(fmt, subtype, channels, frames, 16000, seed)
    result = _read(data[: max(1, int(len(data) * cut))], suffix)
    if cut == 1.0:
        assert result is not None and result[0].shape[0] == channels and result[1] == 16000


@given(
    kind=VALID,
    frames=st.integers(1, 2000),
    seed=st.integers(0, 2**16),
    patches=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.binary(min_size=1, max_size=8)), min_size=1, max_size=6
    ),
)
def test_valid_file_with_overwritten_bytes(kind, frames, seed, patches):
    fmt, subtype, suffix = kind
    data = bytearray(_valid_file(fmt, subtype, 2, frames, 22050, seed))
    for where, chunk in patches:
        start = int(where * len(data))
        data[start : start + len(chunk)] = chunk[: len(data) - start]
    _read(bytes(data), suffix)


@pytest.mark.parametrize(
    "header",
    [
        dict(fmt_tag=1, channels=1, rate=0, bits=16),  # sample rate 0
        dict(fmt_tag=3, channels=1, rate=16000, bits=32),  # float samples: NaN payload below
        dict(fmt_tag=1, channels=0, rate=16000, bits=16),  # no channels
    ],
)
def test_wave_header_edge_cases(header):
    payload = struct.pack("<4f", 0.1, float("nan"), 0.2, 0.3)
    _read(_riff_wave(**header, data_size=len(payload), payload=payload, extra=b""), ".wav")
