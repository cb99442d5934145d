"""Every built-in plugin passes the same contract suite a third-party plugin runs."""

from sepkit.testing import (
    AudioEncoderContract,
    CodecContract,
    DecoderContract,
    InstructionParserContract,
    SeparatorContract,
    TextEncoderContract,
)


class TestMiniLM(TextEncoderContract):
    name = "minilm"
    config = "max_length: 32"


class TestSTFT(AudioEncoderContract):
    name = "stft"
    config = "n_fft: 256\nhop_length: 64\nsample_rate: 16000"


class TestISTFT(DecoderContract):
    name = "istft"
    config = "n_fft: 256\nhop_length: 64\nsample_rate: 16000"


class TestMaskNet(SeparatorContract):
    name = "mask-net"
    config = "input_dim: 129\nquery_dim: 24\nhidden: 16\nlayers: 2"


class TestMuLaw(CodecContract):
    name = "mulaw"
    config = "sample_rate: 8000\nbits: 8"


class TestRules(InstructionParserContract):
    name = "rules"
