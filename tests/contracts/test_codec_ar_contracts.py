"""codec-ar passes the decoder contract: with its registry example (mu-law codec at 100 Hz, one group of 16
codes) and with a 4-group toy codec registered for the test; its training system passes the system contract."""

from __future__ import annotations

import types
from functools import cache

from sepkit.hookspecs import hookimpl
from sepkit.plugins import load_registry
from sepkit.testing import DecoderContract, SystemContract


@hookimpl
def _register_toy_codec(registry):
    registry.register("codec", "toy", "sepkit_codec_ar.toy_codec:ToyCodec", summary="toy G-group codec (tests)")


@cache
def toy_registry():
    plugin = types.ModuleType("codec_ar_contract_codecs")
    plugin.sepkit_register = _register_toy_codec
    return load_registry(extra_plugins=(plugin,))


class TestCodecAR(DecoderContract):
    name = "codec-ar"  # the entry's example: codec {name: mulaw, sample_rate: 100, bits: 4}


class TestCodecARGroups(DecoderContract):
    """Four codebook groups of 16 codes at 50 Hz, 1600 Hz output; sampling with top-k and a seed."""

    name = "codec-ar"
    config = (
        "codec: {name: toy, sample_rate: 1600, hop: 32, num_codebooks: 4, codebook_size: 16}\n"
        "input_dim: 16\nframe_rate: 50\nmel_patches: 8\ndim: 32\ndepth: 2\nheads: 4\nmax_seconds: 2.0\n"
        "sampling: sample\ntop_k: 4\nseed: 3"
    )
    registry_factory = staticmethod(toy_registry)  # the decoder builds its toy codec from this registry


class TestCodecARSystem(SystemContract):
    name = "codec-ar"
