"""An out-of-tree sepkit plugin: registers a text encoder and a separator through the ``sepkit.plugins`` entry point.

This module is what the entry point names. It imports only ``sepkit.hookspecs``
so that ``sepkit plugins`` stays fast: a component's module (and torch) is
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
    registry.register(
        "separator",
        "film-gru-mask",
        "sepkit_example_plugin.separator:FiLMGRUMaskSeparator",
        summary="example plugin: FiLM-conditioned bidirectional GRU magnitude mask on complex STFT frames",
        example="input_dim: 129\nquery_dim: 16\nhidden: 16",
    )
