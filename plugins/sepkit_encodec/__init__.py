"""Plugin: EnCodec (Défossez et al. 2022) as a codec, two ways.

- ``encodec``: transformers' ``EncodecModel`` (24 kHz, 75 Hz, 1024-code RVQ; ``bandwidth`` picks
  2 to 32 codebooks), from a local folder in the ``facebook/encodec_24khz`` layout or random weights.
- ``audiocraft-encodec``: audiocraft 1.3.0's ``EncodecModel`` (SEANet + RVQ), built from audiocraft's
  model configs or read from its compression-model checkpoint layout.

This module imports neither torch, transformers nor audiocraft.
"""

from sepkit.hookspecs import hookimpl

TINY_HF = "hidden_size: 16\nnum_filters: 4\nupsampling_ratios: [4, 4, 4]\nnum_lstm_layers: 1\ncodebook_size: 64"
TINY_AUDIOCRAFT = (
    "preset: encodec_base_causal\nsample_rate: 16000\nn_filters: 4\nratios: [4, 4, 4]\ndimension: 16\nlstm: 1\n"
    "n_q: 4\nbins: 64\nnum_codebooks: 4"
)


@hookimpl
def sepkit_register(registry):
    registry.register(
        "codec",
        "encodec",
        "sepkit_encodec.hf:HFEncodec",
        summary="EnCodec 24 kHz (transformers EncodecModel, 14.85 M): 75 Hz, 1024-code RVQ, bandwidth 1.5-24 kbps "
        "(local facebook/encodec_24khz folder via 'model_dir')",
        example=TINY_HF,
    )
    registry.register(
        "codec",
        "audiocraft-encodec",
        "sepkit_encodec.audiocraft_codec:AudiocraftEncodec",
        summary="EnCodec through audiocraft 1.3.0 (SEANet + RVQ; presets of its model configs, or its "
        "compression-model checkpoint via 'checkpoint')",
        example=TINY_AUDIOCRAFT,
    )
