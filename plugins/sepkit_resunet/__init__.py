"""Plugin: AudioSep's ResUNet30 separator (FiLM-conditioned ResUNet on complex STFT frames) and its official weights."""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    registry.register(
        "separator",
        "resunet30",
        "sepkit_resunet.separator:ResUNet30Separator",
        summary="AudioSep's ResUNet30: FiLM-conditioned ResUNet magnitude mask + phase rotation on complex STFT frames "
        "(full size: n_fft 2048 / hop 320 at 32 kHz, 512-d query); loads AudioSep checkpoints",
        # A reduced-width instance of the same architecture (n_fft 256 -> 129 bins) for quick tests;
        # the full-size default is base_channels 32 with input_dim 1025.
        example="input_dim: 129\nquery_dim: 16\nbase_channels: 4",
    )
