"""Plugin sepkit_qaudio (being written)."""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    pass
