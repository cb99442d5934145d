"""The lass, sgn and bss_extra components pass the contract suite a third-party plugin runs."""

from sepkit.testing import MetricContract, SeparatorContract, TextEncoderContract


class TestBert(TextEncoderContract):
    name = "bert"  # the registry example: a 1-layer 16-d BERT with the stand-in tokenizer


class TestLassResUNet(SeparatorContract):
    name = "lass-resunet"


class TestSGN(SeparatorContract):
    name = "sgn"


class TestBSSEvalSIR(MetricContract):
    name = "bss_sir"


class TestBSSEvalSAR(MetricContract):
    name = "bss_sar"
