"""Plugin sepkit_beats (being written)."""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    pass
