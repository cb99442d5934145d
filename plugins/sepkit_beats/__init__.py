"""Plugin: BEATs (Chen et al. 2022, microsoft/unilm ``beats``) as an audio encoder.

Registers the audio encoder ``beats``: 768-d patch tokens (16 x 16 patches of a 128-bin Kaldi fbank,
time-major, 50 tokens/s) of 16 kHz audio and their mean; reads the official ``BEATs_iter3*.pt``
(``{'cfg', 'model'}``) given by path, never downloads. This module imports neither torch nor the model.
"""

from sepkit.hookspecs import hookimpl

TINY_ENCODER = (
    "embed_dim: 32\nencoder_layers: 2\nencoder_embed_dim: 32\nencoder_ffn_embed_dim: 64\n"
    "encoder_attention_heads: 4\nconv_pos: 16\nconv_pos_groups: 4\nnum_buckets: 32\nmax_distance: 64"
)


@hookimpl
def sepkit_register(registry):
    registry.register(
        "audio_encoder",
        "beats",
        "sepkit_beats.encoder:BEATsEncoder",
        summary="BEATs iter3 (90 M): 768-d patch tokens (160 ms x 8 mel patches, time-major), 50 tokens/s, "
        "mean-pooled; 16 kHz (official BEATs_iter3*.pt via 'checkpoint')",
        example=TINY_ENCODER,
    )
