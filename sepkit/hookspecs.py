"""The whole plugin contract: one hook.

A plugin is a module listed under the ``sepkit.plugins`` entry-point group that
implements ``sepkit_register``::

    from sepkit.hookspecs import hookimpl

    @hookimpl
    def sepkit_register(registry):
        registry.register("audio_encoder", "mel", "my_plugin.mel:MelEncoder", summary="log-mel frames")

Keep that module free of heavy imports (torch, transformers): targets are
imported only when a recipe builds them.
"""

import pluggy

PROJECT = "sepkit"
ENTRY_POINT_GROUP = "sepkit.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def sepkit_register(registry):
    """Register components: call ``registry.register(kind, name, "module:Class", summary=...)``."""
