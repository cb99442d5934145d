"""Plugin: PANNs CNN14 (Kong et al. 2020) as an audio encoder and AudioSet tagger.

Reads the official checkpoints of qiuqiangkong/audioset_tagging_cnn (``Cnn14_16k_mAP=0.438.pth``
at 16 kHz, ``Cnn14_mAP=0.431.pth`` at 32 kHz) given by path; it never downloads weights.
"""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    registry.register(
        "audio_encoder",
        "panns-cnn14",
        "sepkit_panns.cnn14:Cnn14Encoder",
        summary="PANNs CNN14 AudioSet tagger: 2048-d frames at 3.125 Hz, clip embedding, 527 logits "
        "(official .pth via 'checkpoint')",
        example="base_channels: 4",
    )
