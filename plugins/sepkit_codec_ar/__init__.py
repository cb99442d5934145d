"""Plugin sepkit_codec_ar (being written)."""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    pass
