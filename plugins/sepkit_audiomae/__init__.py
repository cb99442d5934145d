"""Plugin: AudioMAE (Huang et al. 2022, facebookresearch/AudioMAE) as an audio encoder, and its MAE pretraining.

Registers the audio encoder ``audiomae`` (ViT-B/16 over a 1024 x 128 Kaldi fbank; reads the
official ``pretrained.pth`` given by path, never downloads weights) and the training system
``mae`` (masked-autoencoder pretraining with a multi-window local-global attention decoder,
as HSM-TSS and MW-MAE use). This module imports neither torch nor the model code.
"""

from sepkit.hookspecs import hookimpl

TINY_ENCODER = "embed_dim: 64\ndepth: 2\nnum_heads: 4\ntarget_frames: 128\nnum_mel_bins: 32"


@hookimpl
def sepkit_register(registry):
    registry.register(
        "audio_encoder",
        "audiomae",
        "sepkit_audiomae.encoder:AudioMAEEncoder",
        summary="AudioMAE ViT-B/16: 512 patch tokens (64 time x 8 mel, time-major) of 768-d over 10.24 s, "
        "50 tokens/s (official pretrained.pth via 'checkpoint')",
        example=TINY_ENCODER,
    )
    registry.register(
        "system",
        "mae",
        "sepkit_audiomae.system:MAEPretrainingSystem",
        summary="AudioMAE masked-autoencoder pretraining of model.audio_encoder (audiomae) on audio clips: "
        "mask ratio 0.8, multi-window decoder, normalised-patch MSE on masked patches",
    )
