"""Plugin: HSM-TSS's semantic-to-acoustic decoder (H3), an autoregressive codec-token transformer.

Registers the decoder ``codec-ar`` (prefix-LM transformer, 12 layers / 8 heads / 1024 wide by
default, over AudioMAE patch tokens, generating all G codebook groups of a codec frame per step,
then the ``codec:`` sub-section's codec decodes) and its training system ``codec-ar``
(teacher-forced cross-entropy on the target's codec tokens given the target's AudioMAE tokens), and
``codec-ar-separated`` (ours: the same loss given the frozen separation stages' estimate of the target).
This module imports neither torch nor the model code.
"""

from sepkit.hookspecs import hookimpl

# A small instance built from a codec every sepkit install has (mu-law at 100 Hz: 100 steps/s, 16 codes).
TINY_DECODER = (
    "codec: {name: mulaw, sample_rate: 100, bits: 4}\ninput_dim: 16\nframe_rate: 50\nmel_patches: 8\n"
    "dim: 32\ndepth: 2\nheads: 4\nmax_seconds: 2.0"
)


@hookimpl
def sepkit_register(registry):
    registry.register(
        "decoder",
        "codec-ar",
        "sepkit_codec_ar.decoder:CodecARDecoder",
        summary="HSM-TSS H3: AR transformer (12 x 1024, 8 heads) generating codec tokens (all groups per step) "
        "from an AudioMAE-token prefix, then the 'codec' sub-section's decoder",
        example=TINY_DECODER,
    )
    registry.register(
        "system",
        "codec-ar",
        "sepkit_codec_ar.system:CodecARSystem",
        summary="trains model.decoder (codec-ar): teacher-forced cross-entropy on the target's codec tokens "
        "given the target's frozen audio-encoder tokens",
    )
    registry.register(
        "system",
        "codec-ar-separated",
        "sepkit_codec_ar.separated:SeparatedCodecARSystem",
        summary="ours: fine-tunes model.decoder (codec-ar) on the frozen separator's estimates of drawn mixtures "
        "(the input it gets at inference), target codec tokens as labels",
    )
