"""Plugin: LASS-Net (Liu et al. 2022, "Separate What You Describe"): a BERT text encoder and its
FiLM-conditioned ResUNet magnitude-mask separator. Imports neither torch nor transformers."""

from sepkit.hookspecs import hookimpl

TINY_BERT = "hidden_size: 16\nnum_hidden_layers: 1\nnum_attention_heads: 2\nintermediate_size: 32\nvocab_size: 300"


@hookimpl
def sepkit_register(registry):
    registry.register(
        "text_encoder",
        "bert",
        "sepkit_lass.bert:BertTextEncoder",
        summary="BERT encoder (BertModel from a local directory, e.g. prajjwal1/bert-mini as LASS-Net uses): "
        "last hidden states; pooled = the [CLS] state (or pooler / mean)",
        example=TINY_BERT,
    )
    registry.register(
        "separator",
        "lass-resunet",
        "sepkit_lass.separator:LASSNetSeparator",
        summary="LASS-Net's ResUNet: MLP-FiLM conditioned residual UNet, sigmoid magnitude mask with the mixture "
        "phase on complex STFT frames (full size: n_fft 1024 / hop 512 at 16 kHz, 256-d BERT-mini query)",
        # a reduced-width instance of the same architecture (n_fft 256 -> 129 bins) for quick tests
        example="input_dim: 129\nquery_dim: 16\ncond_dim: 8\nbase_channels: 2",
    )
