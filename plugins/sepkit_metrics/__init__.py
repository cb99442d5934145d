"""Built-in plugin: the signal metrics the seed papers report (SDR, SDRi, SI-SDR, SI-SDRi, bss_eval SDR, LSD, PSNR)."""

from sepkit.hookspecs import hookimpl

_METRICS = (
    ("sdr", "sdr:SDR", "plain SNR as DCASE 2024 Task 9 / AudioSep compute it (dB)"),
    ("sdri", "sdr:SDRi", "SDR(estimate) - SDR(mixture) (dB)"),
    ("si_sdr", "sdr:SISDR", "scale-invariant SDR, Le Roux et al. 2019 (dB; no mean removal by default)"),
    ("si_sdri", "sdr:SISDRi", "SI-SDR(estimate) - SI-SDR(mixture) (dB)"),
    ("bss_sdr", "sdr:BSSEvalSDR", "bss_eval SDR with a 512-tap projection filter (fast_bss_eval)"),
    ("bss_sir", "bss_extra:BSSEvalSIR", "bss_eval SIR of the estimate against [reference, mixture - reference]"),
    ("bss_sar", "bss_extra:BSSEvalSAR", "bss_eval SAR of the estimate against [reference, mixture - reference]"),
    ("lsd", "spectral:LSD", "log-spectral distance as audioldm-eval 0.0.3 computes it"),
    ("psnr", "spectral:MelPSNR", "PSNR of 64-bin log-mel spectrograms as audioldm-eval 0.0.3 computes it (dB)"),
    ("kl", "kl:KL", "KL(reference || estimate) of PANNs CNN14 softmax-over-logits class distributions"),
    ("fad", "fad:FAD", "Frechet distance of Gaussian fits to an audio encoder's frame embeddings (set level)"),
    ("clap_score", "clap_score:ClapScore", "cosine of CLAP text (query) and audio (estimate) embeddings"),
    ("clap_score_a", "clap_score:ClapScoreA", "cosine of CLAP audio embeddings of reference and estimate"),
    ("afsim", "afsim:AFSim", "audio-foundation-model embedding similarity (its encoder plugin is not available here)"),
)


_TINY_CLAP = (
    "allow_random_weights: true\nencoder: {name: clap-laion, amodel: HTSAT-tiny, sample_rate: 16000, "
    "roberta: {num_hidden_layers: 1, intermediate_size: 64, vocab_size: 300}}"
)

# Small configs that build without downloaded weights, for contract tests (sepkit check-plugin).
_EXAMPLES = {
    "kl": "allow_random_weights: true\nencoder: {name: panns-cnn14, base_channels: 4}",
    "fad": "allow_random_weights: true\nencoder: {name: panns-cnn14, base_channels: 4}",
    "clap_score": _TINY_CLAP,
    "clap_score_a": _TINY_CLAP,
}
_UNAVAILABLE = {"afsim": "needs an audio-foundation-model embedding plugin that cannot be loaded offline"}


@hookimpl
def sepkit_register(registry):
    for name, target, summary in _METRICS:
        registry.register(
            "metric",
            name,
            f"sepkit_metrics.{target}",
            summary=summary,
            example=_EXAMPLES.get(name, ""),
            unavailable=_UNAVAILABLE.get(name, ""),
        )
