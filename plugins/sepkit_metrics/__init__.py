"""Built-in plugin: the signal metrics the seed papers report (SDR, SDRi, SI-SDR, SI-SDRi, bss_eval SDR, LSD, PSNR)."""

from sepkit.hookspecs import hookimpl

_METRICS = (
    ("sdr", "sdr:SDR", "plain SNR as DCASE 2024 Task 9 / AudioSep compute it (dB)"),
    ("sdri", "sdr:SDRi", "SDR(estimate) - SDR(mixture) (dB)"),
    ("si_sdr", "sdr:SISDR", "scale-invariant SDR, Le Roux et al. 2019 (dB; no mean removal by default)"),
    ("si_sdri", "sdr:SISDRi", "SI-SDR(estimate) - SI-SDR(mixture) (dB)"),
    ("bss_sdr", "sdr:BSSEvalSDR", "bss_eval SDR with a 512-tap projection filter (fast_bss_eval)"),
    ("lsd", "spectral:LSD", "log-spectral distance as audioldm-eval 0.0.3 computes it"),
    ("psnr", "spectral:MelPSNR", "PSNR of 64-bin log-mel spectrograms as audioldm-eval 0.0.3 computes it (dB)"),
)


@hookimpl
def sepkit_register(registry):
    for name, target, summary in _METRICS:
        registry.register("metric", name, f"sepkit_metrics.{target}", summary=summary)
