"""Plugin sepkit_tfcodec (being written)."""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    pass
