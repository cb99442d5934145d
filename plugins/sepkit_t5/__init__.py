"""Plugin: FLAN-T5's encoder (Chung et al. 2022) as a text encoder, through transformers' ``T5EncoderModel``.

Reads a local Hugging Face directory (``google/flan-t5-base``: 768-d, 12 layers) with
``from_pretrained(model_dir)``; it never downloads. Without a directory it builds random weights
of the configured size (tests, smoke runs). This module imports neither torch nor transformers.
"""

from sepkit.hookspecs import hookimpl

TINY_T5 = "d_model: 32\nnum_layers: 2\nnum_heads: 4\nd_kv: 8\nd_ff: 64\nvocab_size: 512"


@hookimpl
def sepkit_register(registry):
    registry.register(
        "text_encoder",
        "flan-t5",
        "sepkit_t5.encoder:FlanT5TextEncoder",
        summary="FLAN-T5 encoder (T5EncoderModel from a local directory, e.g. flan-t5-base, 768-d): token "
        "states, mean-pooled; vocabulary embeddings of task words ('extract', 'remove')",
        example=TINY_T5,
    )
