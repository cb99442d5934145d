"""Plugin sepkit_opensep (being written)."""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    pass
