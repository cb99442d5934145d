"""Plugin: TF-Codec (Jiang, Peng, Lu, "Latent-domain predictive neural speech coding"; microsoft/TF-Codec),
the non-predictive 16 kHz version HSM-TSS decodes its codec tokens with.

Registers the codec ``tfcodec`` (causal power-law-compressed-STFT encoder/decoder, 16 groups x 1024
codes at 50 Hz, 7.63 M parameters) and the training system ``tfcodec`` (GAN training with a
multi-scale mel discriminator). This module imports neither torch nor the model code.
"""

from sepkit.hookspecs import hookimpl

TINY_CODEC = "channels: [4, 8, 8, 8]\ntcm_channels: 16\ntcm_blocks: 2\nlatent_dim: 32\nnum_groups: 4\ncodebook_size: 64"


@hookimpl
def sepkit_register(registry):
    registry.register(
        "codec",
        "tfcodec",
        "sepkit_tfcodec.codec:TFCodec",
        summary="TF-Codec (non-predictive, causal): 16 kHz, 16 groups x 1024 codes at 50 Hz "
        "(8 kbit/s as indices; 6 kbps with entropy coding), 7.63 M parameters",
        example=TINY_CODEC,
    )
    registry.register(
        "system",
        "tfcodec",
        "sepkit_tfcodec.system:TFCodecSystem",
        summary="TF-Codec GAN training of model.codec (tfcodec): power-compressed STFT MSE + multi-window mel L1 "
        "+ VQ losses, LSGAN multi-scale mel discriminator with feature matching",
    )
