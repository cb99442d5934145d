"""Every built-in plugin passes the same contract suite a third-party plugin runs."""

from sepkit.testing import (
    AudioEncoderContract,
    CodecContract,
    DecoderContract,
    InstructionParserContract,
    MetricContract,
    SeparatorContract,
    SystemContract,
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


class TestSDR(MetricContract):
    name = "sdr"


class TestSDRi(MetricContract):
    name = "sdri"


class TestSISDR(MetricContract):
    name = "si_sdr"


class TestSISDRi(MetricContract):
    name = "si_sdri"


class TestBSSEvalSDR(MetricContract):
    name = "bss_sdr"


class TestLSD(MetricContract):
    name = "lsd"


class TestMelPSNR(MetricContract):
    name = "psnr"


class TestAFSim(MetricContract):
    """A placeholder: building it must fail with a clear message (the contract checks that it does)."""

    name = "afsim"


class TestClapScore(MetricContract):
    name = "clap_score"


class TestClapScoreA(MetricContract):
    name = "clap_score_a"


class TestSeparationSystem(SystemContract):
    name = "separation"
