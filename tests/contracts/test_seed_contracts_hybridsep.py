"""The BEATs and Hybrid-Sep components pass the contract suite a third-party plugin runs."""

from sepkit.testing import AudioEncoderContract, DecoderContract, SeparatorContract, SystemContract


class TestBEATs(AudioEncoderContract):
    name = "beats"  # the registry example: a tiny BEATs


class TestHybridSep(SeparatorContract):
    name = "hybrid-sep"  # the registry example: tiny widths, tiny BEATs


class TestWaveformEncoder(AudioEncoderContract):
    name = "waveform"


class TestWaveformDecoder(DecoderContract):
    name = "waveform"


class TestHybridSepACT(SystemContract):
    name = "hybrid-sep-act"
