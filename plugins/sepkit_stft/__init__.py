"""Built-in plugin: STFT analysis (audio encoder) and inverse STFT synthesis (decoder) with torch.stft."""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    registry.register(
        "audio_encoder",
        "stft",
        "sepkit_stft.transforms:STFTEncoder",
        summary="complex STFT frames (torch.stft, Hann, centred)",
        example="n_fft: 256\nhop_length: 64\nsample_rate: 16000",
    )
    registry.register(
        "decoder",
        "istft",
        "sepkit_stft.transforms:ISTFTDecoder",
        summary="inverse STFT of complex frames (torch.istft)",
        example="n_fft: 256\nhop_length: 64\nsample_rate: 16000",
    )
