"""TF-Codec (``tfcodec``): rates, code range, causality, checkpoint layouts, parameter count, training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry
from sepkit.testing import SystemContract

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "channels": [4, 8, 8, 8],
    "tcm_channels": 16,
    "tcm_blocks": 2,
    "latent_dim": 32,
    "num_groups": 4,
    "codebook_size": 64,
}
TINY_RECIPE = str(REPO / "recipes" / "tiny" / "train_tfcodec.yaml")
LOOKAHEAD = 559  # samples: 160 (centred 320-sample window) + 3 hops of 80 (frame combining) + 159 (iSTFT window)


class TestTFCodecSystem(SystemContract):
    name = "tfcodec"


def build(**config):
    return get_registry().build("codec", {"name": "tfcodec", **TINY, **config}).eval()


def test_rates_and_bitrate_at_full_size():
    from sepkit_tfcodec.codec import TFCodec, TFCodecConfig

    codec = TFCodec.__new__(TFCodec)  # the rates only; no weights needed
    codec.frame_rate, codec.num_codebooks, codec.codebook_size = 16000 / (80 * 4), 16, 1024
    assert TFCodecConfig().num_groups == 16 and TFCodecConfig().codebook_size == 1024
    assert codec.frame_rate == 50.0
    assert TFCodec.bitrate.fget(codec) == 8000.0  # 16 x 10 bit x 50 Hz as fixed-length indices


def test_shapes_code_range_lengths():
    codec = build()
    x = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([16000, 7000])
    with torch.no_grad():
        frames = codec.encode(x, lengths)
        out = codec.decode(frames.codes)
    assert frames.codes.shape == (2, 4, 51)  # (16000 / 80 + 1 = 201 STFT frames -> 204) / 4
    assert frames.codes.dtype == torch.long and 0 <= int(frames.codes.min()) and int(frames.codes.max()) < 64
    assert frames.lengths.tolist() == [51, 23]
    assert frames.latents.shape == (2, 51, 4 * 4 * 32 // 4)
    assert out.shape == (2, (51 * 4 - 1) * 80)
    with torch.no_grad():  # decoding the codes again is deterministic; latents are the chosen code vectors
        assert torch.equal(codec.decode(frames.codes), out)
        embedded = codec.net.quantizer.embed(frames.codes).flatten(2)
    assert torch.equal(embedded, frames.latents)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_round_trip_under_autocast_returns_float32(dtype):
    """bf16 training (train.precision=bf16) and bf16 inference: the iSTFT runs in float32 (no complex bf16)."""
    codec = build()
    x = 0.1 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
        wave = codec.net(x)[0]
    assert wave.dtype == torch.float32 and torch.isfinite(wave).all()


def test_causal_within_lookahead():
    codec = build()
    torch.manual_seed(1)
    with torch.no_grad():  # eval-mode BatchNorm is per-channel affine; random running stats make it non-trivial
        for module in codec.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    x = 0.1 * torch.randn(1, 8000)
    cut = 5000
    y = x.clone()
    y[:, cut:] = 0.1 * torch.randn(1, 8000 - cut)
    net = codec.net
    with torch.no_grad():  # the continuous path (encoder -> decoder, the quantiser is per code frame)
        a = net.decode_latents(net.encode_latents(x))
        b = net.decode_latents(net.encode_latents(y))
        codes_a, codes_b = codec.encode(x, torch.tensor([8000])).codes, codec.encode(y, torch.tensor([8000])).codes
    keep = cut - LOOKAHEAD
    tol = 1e-6 * float(a.abs().max())
    assert torch.allclose(a[:, :keep], b[:, :keep], atol=tol), "output before t depends on input after t + lookahead"
    assert (a[:, keep:cut] - b[:, keep:cut]).abs().max() > 10 * tol, "the input change reached nothing: no proof"
    first_changed = (cut - 160) // 80 // 4  # the first code frame whose STFT frames see sample ``cut``
    assert torch.equal(codes_a[..., :first_changed], codes_b[..., :first_changed])


def _train_checkpoint(tmp_path, codec):
    from sepkit_tfcodec.discriminator import MultiScaleMelDiscriminator

    from sepkit.checkpoint import save_checkpoint

    state = {f"codec.{k}": v for k, v in codec.state_dict().items()}
    disc = MultiScaleMelDiscriminator([256], [32], channels=4, layers=2)
    state |= {f"discriminator.{k}": v for k, v in disc.state_dict().items()}
    path = tmp_path / "best.ckpt"
    save_checkpoint(path, recipe={"model": {"codec": {"name": "tfcodec", **TINY}}}, state_dict=state, plugins={})
    return path


def test_reads_training_checkpoint_dropping_discriminator(tmp_path):
    torch.manual_seed(7)
    source = build()
    path = _train_checkpoint(tmp_path, source)
    loaded = build(checkpoint=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    state = {k: v for k, v in source.state_dict().items() if k != "net.out_conv.conv.weight"}
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(SepkitError, match="net.out_conv.conv.weight"):
        build(checkpoint=str(tmp_path / "partial.pt"))
    with pytest.raises(SepkitError, match="not found"):
        build(checkpoint=str(tmp_path / "missing.ckpt"))


@pytest.mark.slow
def test_full_size_parameter_count():
    codec = get_registry().build("codec", {"name": "tfcodec"})
    count = sum(p.numel() for p in codec.parameters())
    assert abs(count - 7.63e6) < 0.01e6, count  # HSM-TSS Table IX: TF-Codec 7.63 M (7,628,428 here)
    assert codec.frame_rate == 50 and codec.num_codebooks == 16 and codec.codebook_size == 1024


def _system(overrides=()):
    from sepkit.recipe import load_recipe
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    recipe = load_recipe(TINY_RECIPE, list(overrides))
    return build_system(recipe, load_train_config(recipe))


def test_training_steps_reduce_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    system = _system()
    optim = {name: torch.optim.Adam(system.parameters_for(name), lr=3e-3) for name in system.optimizer_names}
    t = torch.arange(8000) / 16000
    wave = torch.stack([0.3 * torch.sin(2 * torch.pi * 440 * t), 0.2 * torch.sin(2 * torch.pi * 1000 * t)])
    batch = {"mixture": wave, "target": wave, "lengths": torch.tensor([8000, 8000])}
    system.train()
    losses = []
    for step in range(12):
        for name in system.optimizer_names:
            system.zero_grad(set_to_none=True)
            out = system(batch, step, name)
            out["loss"].backward()
            optim[name].step()
            if name == "generator":
                losses.append(float((out["spectral"] + 0.25 * out["mel"]).detach()))
    assert losses[-1] < 0.8 * losses[0], losses
    system.eval()
    with torch.no_grad():
        metrics = system.validation_step(batch)
    assert set(metrics) == {"loss", "mel_distance", "si_sdr", "lsd", "rms_db", "code_usage", "lsd_audioldm", "mel_psnr"}
    assert all(v.shape == (2,) and bool(torch.isfinite(v).all()) for v in metrics.values())
    from sepkit_metrics.spectral import log_spectral_distance

    with torch.no_grad():  # the metric plugin's LSD of the same round trip (log10 units, ~ lsd in dB / 10)
        estimate = system.codec.decode(system.codec.encode(wave, batch["lengths"]).codes)[:, : wave.shape[-1]]
    assert torch.allclose(metrics["lsd_audioldm"].double(), log_spectral_distance(estimate, wave, 16000), rtol=1e-4)


def test_log_mel_scale_is_level_independent_and_checked():
    from sepkit_tfcodec.losses import multi_window_mel

    torch.manual_seed(0)
    target, estimate = 0.3 * torch.randn(2, 8000), 0.3 * torch.randn(2, 8000)
    mask = torch.ones_like(target)
    linear = multi_window_mel(estimate, target, mask)
    log = multi_window_mel(estimate, target, mask, log=True)
    # scaling both signals scales the linear mel L1 with them and leaves the log-mel L1 unchanged
    assert torch.allclose(multi_window_mel(4 * estimate, 4 * target, mask), 4 * linear, rtol=1e-4)
    assert torch.allclose(multi_window_mel(4 * estimate, 4 * target, mask, log=True), log, atol=1e-4)
    # a 6 dB quieter copy of the target: log-mel L1 is log(2) wherever the mels are above the floor
    half = multi_window_mel(0.5 * target, target, mask, log=True)
    assert torch.allclose(half, torch.full_like(half, float(torch.log(torch.tensor(2.0)))), atol=0.02)
    system = _system(["train.system.mel_scale=log"])
    batch = {"mixture": target, "target": target, "lengths": torch.tensor([8000, 8000])}
    out = system(batch, 0, "generator")
    assert torch.isfinite(out["mel"]) and float(out["mel"]) < 20  # log units, not the linear mels
    with pytest.raises(SepkitError, match="mel_scale must be one of linear, log"):
        _system(["train.system.mel_scale=db"])


def test_rms_db_measures_the_level_error_over_valid_samples():
    from sepkit_tfcodec.losses import rms_db

    target = torch.randn(2, 1000)
    mask = torch.ones_like(target)
    mask[1, 500:] = 0
    estimate = 0.1 * target
    estimate[1, 500:] = 100.0  # padding: not counted
    assert torch.allclose(rms_db(estimate, target, mask), torch.tensor([-20.0, -20.0]), atol=1e-4)


def test_warmup_steps_skip_the_discriminator():
    """Before adversarial_start the discriminator phase runs nothing and leaves the discriminator untouched."""
    torch.manual_seed(0)
    system = _system(["train.system.adversarial_start=5"])
    wave = 0.1 * torch.randn(2, 8000)
    batch = {"mixture": wave, "target": wave, "lengths": torch.tensor([8000, 8000])}
    before = {k: v.clone() for k, v in system.discriminator.state_dict().items()}
    system.train()
    out = system(batch, 0, "discriminator")
    assert float(out["loss"]) == 0.0
    out["loss"].backward()
    assert all(p.grad is None for p in system.discriminator.parameters())
    assert all(torch.equal(v, system.discriminator.state_dict()[k]) for k, v in before.items())
    generator = system(batch, 0, "generator")
    assert "adversarial" not in generator and "feature_matching" not in generator
    assert float(system(batch, 5, "discriminator")["loss"]) > 0.0  # from adversarial_start on it trains
    assert "adversarial" in system(batch, 5, "generator")


def test_system_state_is_codec_and_discriminator_and_needs_a_tfcodec():
    system = _system()
    keys = system.checkpoint_state().keys()
    assert keys and all(k.startswith(("codec.", "discriminator.")) for k in keys)
    assert system.optimizer_names == ("discriminator", "generator")
    with pytest.raises(SepkitError, match="model.codec"):
        _system(["model.codec={name: mulaw}"])


def test_quantizer_initialises_from_data_and_restarts_dead_codes():
    from sepkit_tfcodec.quantizer import GroupVectorQuantizer

    torch.manual_seed(0)
    vq = GroupVectorQuantizer(latent_dim=8, groups=2, codebook_size=16, combine=2, decay=0.9, dead_code_threshold=0.2)
    latents = 5.0 + torch.randn(4, 8, 64)  # far from the uniform [-1, 1] initial codebooks
    vq.train()
    with torch.enable_grad():
        first = vq(latents.requires_grad_())
    assert bool(vq.initialized)
    assert float(vq.usage(first.codes).min()) > 0.5  # data initialisation: codes spread over the batch
    # a code that stops being used is replaced by a batch vector once its average use decays
    vq.codebooks.data[0, 3] = -100.0
    vq.cluster_size[0, 3] = 1.0
    with torch.enable_grad():
        for _ in range(30):
            vq(latents)
    assert float(vq.codebooks[0, 3].min()) > -50.0
    assert first.commitment_loss.item() > 0.0
    vq.eval()
    before = vq.codebooks.clone()
    with torch.no_grad():
        vq(latents)
    assert torch.equal(before, vq.codebooks)  # no updates outside training


def test_a_file_without_the_quantiser_statistics_loads_and_other_missing_keys_are_errors(tmp_path):
    codec = build()
    statistics = ("cluster_size", "embed_sum", "initialized")
    state = {k: v for k, v in codec.state_dict().items() if not k.endswith(statistics)}
    torch.save(state, tmp_path / "inference_only.pt")
    loaded = build(checkpoint=str(tmp_path / "inference_only.pt"))
    assert torch.equal(loaded.net.quantizer.codebooks, codec.net.quantizer.codebooks)
    assert bool(loaded.net.quantizer.initialized)
    del state["net.to_latent.weight"]
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(SepkitError, match="missing keys.*net.to_latent.weight"):
        build(checkpoint=str(tmp_path / "broken.pt"))


def test_multi_resolution_log_stft_sees_harmonics_that_log_mels_average_away():
    """Two tones 60 Hz apart against one tone of their power halfway between: the 64-band mels hold
    either in the same band, the log-STFT's 8 to 31 Hz bins tell them apart (measured: 0.67 against the
    log-mel L1's 0.48, which comes mostly from the window sidelobes)."""
    from sepkit_tfcodec.losses import multi_resolution_log_stft, multi_window_mel

    t = torch.arange(16000) / 16000
    two = 0.3 * (torch.sin(2 * torch.pi * 3000 * t) + torch.sin(2 * torch.pi * 3060 * t))[None]
    one = 0.3 * 2**0.5 * torch.sin(2 * torch.pi * 3030 * t)[None]
    mask = torch.ones_like(two)
    assert float(multi_resolution_log_stft(two, two, mask)) == 0.0
    stft_gap = float(multi_resolution_log_stft(one, two, mask))
    mel_gap = float(multi_window_mel(one, two, mask, log=True))
    assert stft_gap > 1.2 * mel_gap, (stft_gap, mel_gap)
    torch.manual_seed(0)
    noise = 0.3 * torch.randn(1, 16000)  # broadband: every bin above the floor
    half = multi_resolution_log_stft(0.5 * noise, noise, mask)  # |log 0.5|
    assert abs(float(half) - float(torch.log(torch.tensor(2.0)))) < 0.01
    padded, valid = torch.cat([noise, noise], 1), torch.cat([mask, torch.zeros_like(mask)], 1)
    assert float(multi_resolution_log_stft(padded + 5 * (1 - valid), padded, valid)) < 0.05  # padding left out


def test_decoder_only_training_keeps_the_codes_and_adds_the_stft_loss():
    torch.manual_seed(0)
    system = _system(["train.system.train_part=decoder", "train.system.stft_loss_weight=0.25"])
    wave = 0.2 * torch.randn(2, 8000)
    batch = {"mixture": wave, "target": wave, "lengths": torch.tensor([8000, 8000])}
    system.eval()
    with torch.no_grad():
        codes = system.codec.encode(wave, batch["lengths"]).codes

    def coding_state() -> dict:  # encoder weights, batch-norm statistics, codebooks
        modules = system.codec.net.coding_modules()
        return {(i, k): v.clone() for i, m in enumerate(modules) for k, v in m.state_dict().items()}

    coding = coding_state()
    coding_ids = {id(v) for m in system.codec.net.coding_modules() for v in m.state_dict(keep_vars=True).values()}
    decoding_before = {
        k: v.detach().clone() for k, v in system.codec.state_dict(keep_vars=True).items() if id(v) not in coding_ids
    }
    assert decoding_before and system.parameters_for("generator")
    assert all(not p.requires_grad for m in system.codec.net.coding_modules() for p in m.parameters())
    optim = torch.optim.Adam(system.parameters_for("generator"), lr=1e-2)
    system.train()
    assert all(not m.training for m in system.codec.net.coding_modules())
    for step in range(3):
        system.zero_grad(set_to_none=True)
        out = system(batch, step, "generator")
        out["loss"].backward()
        optim.step()
    assert "stft" in out and torch.isfinite(out["stft"])
    after = coding_state()
    assert all(torch.equal(v, after[k]) for k, v in coding.items())
    decoding_after = system.codec.state_dict()
    assert any(not torch.equal(v, decoding_after[k]) for k, v in decoding_before.items())
    system.eval()
    with torch.no_grad():
        assert torch.equal(system.codec.encode(wave, batch["lengths"]).codes, codes)
        metrics = system.validation_step(batch)
    assert torch.isfinite(metrics["loss"]).all()
    with pytest.raises(SepkitError, match="train_part must be one of all, decoder"):
        _system(["train.system.train_part=encoder"])
    with pytest.raises(SepkitError, match="rate_weight shapes the codes"):
        _system(["train.system.train_part=decoder", "train.system.rate_weight=0.001"])
