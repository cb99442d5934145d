"""The BEATs and Hybrid-Sep components pass the contract suite a third-party plugin runs."""

from sepkit.testing import AudioEncoderContract, DecoderContract, SeparatorContract, SystemContract


class TestBEATs(AudioEncoderContract):
    name = "beats"  # the registry example: a tiny BEATs


class TestHybridSep(SeparatorContract):
    name = "hybrid-sep"  # the registry example: tiny widths, tiny BEATs
    # Not yet padding invariant: the feature extractor and BEATs take lengths, but the waveform TRCNN stack
    # reads the padded samples; measured relative difference 7.8e-2 / 6.4e-2 (open work).
    padding_invariant = False


class TestWaveformEncoder(AudioEncoderContract):
    name = "waveform"


class TestWaveformDecoder(DecoderContract):
    name = "waveform"


class TestHybridSepACT(SystemContract):
    name = "hybrid-sep-act"
