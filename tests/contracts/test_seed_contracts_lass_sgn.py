"""The lass, sgn and bss_extra components pass the contract suite a third-party plugin runs."""

from sepkit.testing import MetricContract, SeparatorContract, TextEncoderContract


class TestBert(TextEncoderContract):
    name = "bert"  # the registry example: a 1-layer 16-d BERT with the stand-in tokenizer


class TestLassResUNet(SeparatorContract):
    name = "lass-resunet"


class TestSGN(SeparatorContract):
    name = "sgn"
    # Not yet padding invariant: its BatchNorm conv U-Net (the paper's) reads the padded frames of the
    # magnitude; measured relative difference 2.9e-4 / 9.5e-3 on rows padded 25/32 -> 40 frames. Masking every
    # level is open work (issue 17 closing note); batched benchmark inference groups chunks by equal length.
    padding_invariant = False


class TestBSSEvalSIR(MetricContract):
    name = "bss_sir"


class TestBSSEvalSAR(MetricContract):
    name = "bss_sar"
