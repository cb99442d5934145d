"""Plugin: SGN, the Semantic Grouping Network (Mo & Tian 2024): learnable class tokens grouping the
mixture's features by category and guiding one mask per class; text queries pick the class. Registers
the separator ``sgn`` and the training system ``sgn`` (SGN's all-sources and class-token losses)."""

from sepkit.hookspecs import hookimpl

# a reduced instance of the same architecture for quick tests; its class names are embedded by a tiny random BERT
TINY_SGN = (
    "input_dim: 129\nquery_dim: 16\nclass_names: [violin, cello, flute]\n"
    "class_text_encoder: {name: bert, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, "
    "intermediate_size: 32, vocab_size: 300}\n"
    "base_channels: 4\nchannel_multipliers: [1, 2, 4]\nmask_channels: 4\nembed_dim: 16\nnum_layers: 1\nnum_heads: 2"
)


@hookimpl
def sepkit_register(registry):
    registry.register(
        "separator",
        "sgn",
        "sepkit_sgn.separator:SGNSeparator",
        summary="Semantic Grouping Network: learnable class tokens group mixture features by category and give "
        "one mask per class in a pass; the text query picks the nearest class name",
        example=TINY_SGN,
    )
    registry.register(
        "system",
        "sgn",
        "sepkit_sgn.system:SGNSystem",
        summary="SGN's own objective on batches with every source (data.<split>.sources: true): L1 of each present "
        "class's masked mixture magnitude against its source + class_weight x BCE of the class tokens' presence",
    )
