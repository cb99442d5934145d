"""An out-of-tree sepkit plugin: registers one text encoder through the ``sepkit.plugins`` entry point.

This module is what the entry point names. It imports only ``sepkit.hookspecs``
so that ``sepkit plugins`` stays fast: the encoder's module (and torch) is
imported when a recipe builds it.
"""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    registry.register(
        "text_encoder",
        "hashed-ngrams",
        "sepkit_example_plugin.text:HashedNgramTextEncoder",
        summary="example plugin: trainable hashed character n-gram word embeddings",
        example="embed_dim: 16\nbuckets: 512",
    )
