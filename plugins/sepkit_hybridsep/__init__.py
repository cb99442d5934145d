"""Plugin: Hybrid-Sep (language-queried separation with pre-trained model fusion and adversarial consistent training).

Registers the separator ``hybrid-sep`` (stage 1: FE + AET predict the target's CLAP audio embedding from the
CLAP text embedding and the mixture; stage 2: PQMF sub-band STFT + frozen BEATs features through an interleaved
TRCNN / FA / TEACA stack; the conditional denoiser for training), the ``waveform`` audio encoder and decoder it
reads and writes, and the training systems ``hybrid-sep-stage1`` (stage 1: FE + AET regress a frozen audio
encoder's embedding of the target) and ``hybrid-sep-act`` (Algorithm 1). This module imports neither torch nor
the model code.
"""

from sepkit.hookspecs import hookimpl

TINY_SEPARATOR = (
    "input_dim: 32\nquery_dim: 24\nembed_dim: 16\nfe_n_fft: 64\nfe_hop: 32\nwidth: 16\nheads: 2\nffn_dim: 32\n"
    "fe_layers: 1\naet_layers: 1\nband_n_fft: 32\nband_hop: 8\nchannels: [8, 8, 8, 8, 8, 8, 8, 8]\n"
    "lstm_hidden: [2, 2, 2, 2, 2, 2, 2, 2]\nfa_heads: 2\nteaca_dim: 8\nteaca_heads: 2\nssl_channels: 2\n"
    "cond_channels: 2\ndisc_ffts: [64, 128]\ndisc_filters: 4\n"
    "beats: {name: beats, embed_dim: 16, encoder_layers: 1, encoder_embed_dim: 16, encoder_ffn_embed_dim: 32, "
    "encoder_attention_heads: 2, conv_pos: 8, conv_pos_groups: 2, num_buckets: 16, max_distance: 32}"
)


@hookimpl
def sepkit_register(registry):
    registry.register(
        "separator",
        "hybrid-sep",
        "sepkit_hybridsep.separator:HybridSepSeparator",
        summary="Hybrid-Sep: FE (3 layers) + AET (32 layers, 512-d) predict the target CLAP audio embedding; ASM "
        "(PQMF 4 bands, band STFT + frozen BEATs, TRCNN/FA/TEACA stack) separates the waveform; CD for training",
        example=TINY_SEPARATOR,
    )
    registry.register(
        "audio_encoder",
        "waveform",
        "sepkit_hybridsep.waveform:WaveformEncoder",
        summary="the waveform itself as frames of hop samples (for waveform separators such as hybrid-sep)",
        example="sample_rate: 16000\nhop: 160",
    )
    registry.register(
        "decoder",
        "waveform",
        "sepkit_hybridsep.waveform:WaveformDecoder",
        summary="waveform frames of hop samples back to the waveform",
        example="sample_rate: 16000\nhop: 160",
    )
    registry.register(
        "system",
        "hybrid-sep-stage1",
        "sepkit_hybridsep.stage1:HybridSepStage1System",
        summary="Hybrid-Sep stage 1: FE + AET trained alone to predict a frozen audio encoder's (T-CLAP's) "
        "embedding of the target from the mixture and the text, L1 loss",
    )
    registry.register(
        "system",
        "hybrid-sep-act",
        "sepkit_hybridsep.system:HybridSepACTSystem",
        summary="Hybrid-Sep adversarial consistent training: LSGAN MS-STFT discriminator, L1 (weight 1) and the "
        "consistency loss of the conditional denoiser on two noisy copies of the target (CT schedules)",
    )
