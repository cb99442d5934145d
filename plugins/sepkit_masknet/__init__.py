"""Built-in plugin: a small FiLM-conditioned magnitude-mask separator on STFT frames."""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    registry.register(
        "separator",
        "mask-net",
        "sepkit_masknet.separator:MaskNetSeparator",
        summary="FiLM-conditioned convolutional magnitude mask on complex STFT frames",
        example="input_dim: 129\nquery_dim: 16\nhidden: 32\nlayers: 2",
    )
