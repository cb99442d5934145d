"""The Hybrid-Sep plugin: PQMF, sub-band STFT, each module's shapes, TEACA conditioning, the tiny separator end to
end (and its ablations), the conditional denoiser, the MS-STFT discriminator, the ACT schedules and losses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, TextEmbedding
from sepkit.plugins import get_registry

REPO_ROOT = Path(__file__).resolve().parents[2]

torch.set_num_threads(1)


def tiny_config(**overrides) -> dict:
    import sepkit_hybridsep

    return {**yaml.safe_load(sepkit_hybridsep.TINY_SEPARATOR), **overrides}


def separator(**overrides):
    torch.manual_seed(0)
    return get_registry().build("separator", {"name": "hybrid-sep", **tiny_config(**overrides)}).eval()


def inputs(batch=2, frames=40, hop=32, query_dim=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    wave = 0.1 * torch.randn(batch, frames, hop, generator=g)
    lengths = torch.tensor([frames] + [frames - 8] * (batch - 1))
    query = TextEmbedding(
        torch.randn(batch, 2, query_dim, generator=g),
        torch.ones(batch, 2, dtype=torch.bool),
        torch.randn(batch, query_dim, generator=g),
    )
    return AudioFeatures(wave, lengths, 500.0), query


# --- PQMF and the sub-band STFT ------------------------------------------------------------------------
def test_pqmf_reconstructs_nearly_perfectly():
    from sepkit_hybridsep.pqmf import PQMF

    pqmf = PQMF(4, 62, 0.142, 9.0)
    x = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    bands = pqmf.analysis(x)
    assert bands.shape == (2, 4, 2000)
    y = pqmf.synthesis(bands)
    error = 10 * torch.log10((y - x)[:, 100:-100].pow(2).mean() / x.pow(2).mean())
    assert y.shape == x.shape and float(error) < -35.0


def test_pqmf_puts_a_tone_in_its_band():
    from sepkit_hybridsep.pqmf import PQMF

    t = torch.arange(16000) / 16000
    for freq, band in ((1000.0, 0), (3000.0, 1), (5000.0, 2), (7000.0, 3)):
        energy = PQMF().analysis(torch.sin(2 * torch.pi * freq * t)[None]).pow(2).mean(-1)[0]
        assert int(energy.argmax()) == band and float(energy[band] / energy.sum()) > 0.95


def test_band_stft_round_trip_and_layout():
    from sepkit_hybridsep.bandstft import BandSTFT
    from sepkit_hybridsep.pqmf import PQMF

    stft = BandSTFT(PQMF(), 256, 64)
    x = torch.randn(1, 16000, generator=torch.Generator().manual_seed(1)) * 0.1
    spec = stft(x)
    assert spec.shape == (1, 8, 1 + 4000 // 64, 128)  # 4 bands x (real, imag), frames, 128 bins
    y = stft.inverse(spec, 16000)
    error = 10 * torch.log10((y - x)[:, 200:-200].pow(2).mean() / x.pow(2).mean())
    assert float(error) < -20.0  # the dropped Nyquist bin of each band costs a little


# --- modules -------------------------------------------------------------------------------------------
def test_trcnn_strides_frequency_and_keeps_time():
    from sepkit_hybridsep.trcnn import TRCNN

    x = torch.randn(2, 8, 5, 16)
    assert TRCNN(8, 12, 2, 3, transpose=False)(x).shape == (2, 12, 5, 8)
    assert TRCNN(8, 4, 2, 3, transpose=True)(x).shape == (2, 4, 5, 32)


def test_trcnn_without_activation_outputs_below_the_gelu_floor():
    from sepkit_hybridsep.trcnn import TRCNN

    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 16)
    gelu, linear = TRCNN(8, 4, 2, 3, transpose=True), TRCNN(8, 4, 2, 3, transpose=True, activation=False)
    linear.load_state_dict(gelu.state_dict())
    with torch.no_grad():
        conv = linear.conv(x)
        # the conv path alone: GELU's floor is about -0.17; without it the values are the convolution's
        assert float(torch.nn.functional.gelu(conv).min()) > -0.18 and float(conv.min()) < -0.5
        assert not torch.allclose(gelu(x), linear(x))


def test_complex_multiply_is_per_band_complex_product():
    from sepkit_hybridsep.asm import complex_multiply

    g = torch.Generator().manual_seed(0)
    spec, mask = torch.randn(2, 8, 3, 4, generator=g), torch.randn(2, 8, 3, 4, generator=g)
    out = complex_multiply(spec, mask)

    def as_complex(x):
        return torch.view_as_complex(x.reshape(2, 4, 2, 3, 4).permute(0, 1, 3, 4, 2).contiguous())

    torch.testing.assert_close(as_complex(out), as_complex(spec) * as_complex(mask))
    unit = torch.zeros_like(mask)
    unit[:, 0::2] = 1.0  # real part 1, imaginary part 0 in every band
    torch.testing.assert_close(complex_multiply(spec, unit), spec)


def test_input_compression_keeps_phase_and_raises_magnitude():
    from sepkit_hybridsep.asm import compress

    g = torch.Generator().manual_seed(0)
    spec = torch.randn(2, 8, 5, 16, generator=g)
    out = compress(spec, 0.3)
    s, o = spec.reshape(2, 4, 2, 5, 16), out.reshape(2, 4, 2, 5, 16)
    torch.testing.assert_close(o.square().sum(2).sqrt(), s.square().sum(2).sqrt().pow(0.3), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(torch.atan2(o[:, :, 1], o[:, :, 0]), torch.atan2(s[:, :, 1], s[:, :, 0]))
    torch.testing.assert_close(compress(spec, 1.0), spec)
    plain, compressed = separator(), separator(input_compression=0.3)
    compressed.load_state_dict(plain.state_dict())  # the same weights: only the stack's input differs
    features, query, task = *inputs(), torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        a, b = plain.separate(features, query, task).frames, compressed.separate(features, query, task).frames
    assert bool(torch.isfinite(b).all()) and not torch.allclose(a, b)


def test_mask_output_passes_the_mixture_through_a_unit_mask():
    """output: mask multiplies the mixture's band spectra: a stack that outputs the unit mask returns the mixture."""
    sep = separator(output="mask", linear_output=True)
    features, query = inputs()
    wave = features.frames.reshape(2, -1)
    stack = sep.asm.stack

    def unit_mask(x, embedding=None):
        out = torch.zeros(x.shape[0], 8, x.shape[2], x.shape[3])
        out[:, 0::2] = 1.0
        return out, []

    stack.forward = unit_mask
    with torch.no_grad():
        estimate, _ = sep.asm(wave, torch.randn(2, sep.embed_dim), sep.ssl_features(wave, torch.tensor([1280, 1280])))
        round_trip = sep.asm.band_stft.inverse(sep.asm.band_stft(wave), wave.shape[-1])  # Nyquist bins dropped
    torch.testing.assert_close(estimate, round_trip)
    assert float((estimate - wave).pow(2).mean() / wave.pow(2).mean()) < 0.1


def test_fa_is_shape_preserving_and_mixes_along_frequency():
    from sepkit_hybridsep.fa import FrequencyAttention

    fa = FrequencyAttention(8, heads=2, kernel=9).eval()
    x = torch.randn(2, 8, 5, 16)
    y = fa(x)
    assert y.shape == x.shape
    x2 = x.clone()
    x2[..., 0] += torch.randn(2, 8, 5)  # changing one bin changes the others of the same frame only
    y2 = fa(x2)
    assert not torch.allclose(y2[:, :, :, 5], y[:, :, :, 5])
    x3 = x.clone()
    x3[:, :, 0] += torch.randn(2, 8, 16)
    torch.testing.assert_close(fa(x3)[:, :, 1:], y[:, :, 1:])


def test_teaca_conditioning_changes_the_output():
    from sepkit_hybridsep.teaca import TEACA

    torch.manual_seed(0)
    teaca = TEACA(channels=8, embed_dim=16, dim=16, heads=4).eval()
    x = torch.randn(2, 8, 5, 6)
    a, b = torch.randn(2, 16), torch.randn(2, 16)
    assert teaca(x, a).shape == x.shape
    assert (teaca(x, a) - teaca(x, b)).abs().max() > 1e-3
    torch.testing.assert_close(teaca(x, a), teaca(x, a.clone()))


def test_fe_and_aet_shapes_and_unit_embedding():
    from sepkit_hybridsep.aet import AudioEmbeddingTransformer
    from sepkit_hybridsep.fe import FeatureExtractor

    fe = FeatureExtractor(64, 32, 16, 1, 2, 32).eval()
    aet = AudioEmbeddingTransformer(24, 12, 16, 2, 2, 32).eval()
    wave = torch.randn(2, 1280)
    frames, padding = fe(wave, torch.tensor([1280, 640]))
    assert frames.shape == (2, 41, 16) and padding.sum(1).tolist() == [0, 20]
    e = aet(torch.randn(2, 24), frames, padding)
    assert e.shape == (2, 12)
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(2))


def test_stack_maps_and_the_denoiser_shapes():
    sep = separator()
    features, query = inputs()
    with torch.no_grad():
        out, maps = sep.separate_with_maps(features, query)
        # tiny: 32-point band STFT -> 16 bins; the last four TRCNNs run at 2, 4, 8, 16 bins
        assert [tuple(m.shape[1:2]) + tuple(m.shape[3:]) for m in maps] == [(8, 2), (8, 4), (8, 8), (8, 16)]
        wave = features.frames.reshape(2, -1)
        denoised = sep.denoise(wave, maps)
    assert out.frames.shape == features.frames.shape and denoised.shape == wave.shape
    assert bool(torch.isfinite(denoised).all())


# --- the separator end to end --------------------------------------------------------------------------
def test_tiny_separator_end_to_end_and_query_dependence():
    sep = separator()
    features, query = inputs()
    with torch.no_grad():
        out = sep.separate(features, query, torch.zeros(2, dtype=torch.long))
        other = TextEmbedding(query.tokens, query.mask, torch.randn(2, 24, generator=torch.Generator().manual_seed(9)))
        out2 = sep.separate(features, other, torch.zeros(2, dtype=torch.long))
    assert out.frames.shape == (2, 40, 32) and out.lengths.tolist() == [40, 32]
    assert bool((out.frames.reshape(2, -1)[1, 32 * 32 :] == 0).all())  # zero past the row's length
    assert not torch.equal(out.frames, out2.frames)  # the query conditions the output (through the AET)
    one_stage = separator(stages=1)
    with torch.no_grad():
        a = one_stage.separate(features, query, torch.zeros(2, dtype=torch.long)).frames
        b = one_stage.separate(features, other, torch.zeros(2, dtype=torch.long)).frames
    assert (a - b).abs().max() > 1e-5  # the text embedding straight into the TEACA modules
    parts = sep.part_parameters()
    assert set(parts) == {"fe", "aet", "asm", "denoiser", "discriminator", "beats"}


@pytest.mark.parametrize(
    "ablation",
    [
        {"stages": 1},
        {"beats": None},
        {"denoiser": False, "discriminator": False},
        {"output": "mask", "linear_output": True},
    ],
)
def test_ablations_build_and_run(ablation):
    sep = separator(**ablation)
    features, query = inputs()
    with torch.no_grad():
        out = sep.separate(features, query, torch.zeros(2, dtype=torch.long))
    assert out.frames.shape == (2, 40, 32)
    if "stages" in ablation:
        assert not hasattr(sep, "aet") and sep.embed_dim == 24
    if "beats" in ablation:
        assert sep.beats is None


def test_bad_configs_are_named():
    with pytest.raises(SepkitError, match="2 \\* subbands"):
        separator(channels=[8, 8, 8, 8, 8, 8, 8, 6])
    with pytest.raises(SepkitError, match="band_n_fft"):
        separator(band_n_fft=24)
    with pytest.raises(SepkitError, match="stages"):
        separator(stages=3)
    with pytest.raises(SepkitError, match="output must be one of spectrum, mask"):
        separator(output="ratio")


def test_waveform_encoder_decoder_are_inverse():
    reg = get_registry()
    enc = reg.build("audio_encoder", {"name": "waveform", "hop": 160})
    dec = reg.build("decoder", {"name": "waveform", "hop": 160})
    wave = torch.randn(2, 1000)
    f = enc.encode_audio(wave, torch.tensor([1000, 500]))
    assert f.frames.shape == (2, 7, 160) and f.lengths.tolist() == [7, 4]
    torch.testing.assert_close(dec.decode(f, num_samples=1000), wave)


def test_full_size_parameter_counts():
    """FE / AET / ASM at the published size (paper: 40 M / 415 M / 25 M), built on the meta device."""
    from sepkit_hybridsep.separator import HybridSepSeparator

    with torch.device("meta"):
        sep = HybridSepSeparator(HybridSepSeparator.Config(), get_registry())
    parts = sep.part_parameters()
    assert parts["fe"] == 39_241_344 and parts["aet"] == 416_284_672 and parts["asm"] == 20_551_632
    assert parts["beats"] == 90_311_792


# --- ACT: discriminator, schedules, losses -------------------------------------------------------------
def test_ms_stft_discriminator_and_lsgan_losses():
    from sepkit_hybridsep.discriminator import MultiScaleSTFTDiscriminator, discriminator_loss, generator_loss

    d = MultiScaleSTFTDiscriminator((128, 256, 64), filters=4)
    real, fake = d(torch.randn(2, 4000)), d(torch.randn(2, 4000))
    assert len(real) == 3 and all(len(r) == 6 and r[-1].shape[1] == 1 for r in real)
    assert real[0][-1].shape[2] == 1 + (4000 - 128) // 32  # frames of the 128-point STFT (hop 32, not centred)
    loss = discriminator_loss(real, fake)
    assert loss.dim() == 0 and bool(torch.isfinite(loss)) and bool(torch.isfinite(generator_loss(fake)))
    ones = [[torch.ones(1)]]
    assert float(discriminator_loss(ones, [[torch.zeros(1)]])) == 0.0 and float(generator_loss(ones)) == 0.0


def test_consistency_schedules():
    from sepkit_hybridsep.schedules import consistency_weight, discretisation, karras_sigmas, sample_sigma

    assert discretisation(0, 100) == 2 and discretisation(100, 100) == 151
    assert all(discretisation(k, 100) <= discretisation(k + 1, 100) for k in range(100))
    sigmas = karras_sigmas(10, 0.002, 0.5)
    assert abs(float(sigmas[0]) - 0.002) < 1e-6 and abs(float(sigmas[-1]) - 0.5) < 1e-6
    s = sample_sigma(64, 50, 100, 0.002, 0.5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (64,) and float(s.min()) >= 0.002 - 1e-6 and float(s.max()) <= 0.5 + 1e-6
    assert 0.9 < consistency_weight(0, 100, 1.0) < consistency_weight(100, 100, 1.0) < 1.0


def tiny_act_system(recipe_file: str, extra: tuple[str, ...] = ()):
    """The ``hybrid-sep-act`` system of a mini recipe at the tiny widths, adversarial from the first step
    (``extra``: more dotlist overrides)."""
    from sepkit.recipe import load_recipe
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    tiny = tiny_config()
    overrides = [f"model.separator.{k}={v}" for k, v in tiny.items() if k not in ("beats", "input_dim", "query_dim")]
    overrides = [o.replace("'", "") for o in overrides]
    # adversarial from the first step (Algorithm 1 as published; the mini recipe warms up without it), and FE and
    # AET trained along (the mini recipe is stage 2 and keeps them frozen)
    overrides += ["model.audio_encoder.hop=32", "train.steps=10", "train.system.adversarial_start=0",
                  "train.system.stage1=train", *extra]  # fmt: skip
    recipe = load_recipe(recipe_file, overrides)
    torch.manual_seed(0)
    return build_system(recipe, load_train_config(recipe))


@pytest.fixture(scope="module")
def act_system():
    return tiny_act_system("recipes/mini/hybrid_sep.yaml")


def act_batch(seed: int, lengths: tuple[int, int], tasks: tuple[int, int]) -> dict:
    """Two 1600-sample rows (target plus noise), captions "a dog barking" and "rain"."""
    g = torch.Generator().manual_seed(seed)
    target = 0.1 * torch.randn(2, 1600, generator=g)
    return {
        "mixture": target + 0.1 * torch.randn(2, 1600, generator=g),
        "target": target,
        "lengths": torch.tensor(lengths),
        "description": ["a dog barking", "rain"],
        "task": torch.tensor(tasks),
    }


def test_act_system_losses_finite_on_a_tiny_batch(act_system):
    system = act_system.train()
    batch = act_batch(seed=0, lengths=(1600, 1200), tasks=(0, 1))
    d = system.training_step(batch, 3, "discriminator")
    assert set(d) == {"loss"} and bool(torch.isfinite(d["loss"]))
    d["loss"].backward()
    disc = system.parameters_for("discriminator")
    assert any(p.grad is not None for p in disc)
    system.zero_grad()
    out = system.training_step(batch, 3, "generator")
    assert {"l1", "adversarial", "consistency", "loss"} <= set(out)
    assert all(bool(torch.isfinite(v)) for v in out.values())
    out["loss"].backward()
    sep = system.pipeline.separator
    assert sep.denoiser.stack.trcnn[0].conv.weight.grad is not None  # CD is trained by the consistency loss
    assert sep.aet.head.weight.grad is not None and sep.asm.stack.teaca[0].query.weight.grad is not None
    assert {id(p) for p in disc}.isdisjoint(id(p) for p in system.parameters_for("generator"))
    assert all(not p.requires_grad for p in sep.beats.parameters())
    metrics = system.validation_step(batch)
    assert set(metrics) >= {"loss", "si_sdr", "si_sdri"} and metrics["loss"].shape == (2,)


def test_act_reconstruction_warm_up_before_adversarial_start(act_system):
    """Before train.system.adversarial_start: no discriminator update and no adversarial term; from it on, both."""
    system = act_system.train()
    batch = act_batch(seed=1, lengths=(1600, 1600), tasks=(0, 0))
    previous = system.config.adversarial_start
    system.config.adversarial_start = 5
    try:
        system.zero_grad()
        idle = system.training_step(batch, 4, "discriminator")
        assert float(idle["loss"]) == 0.0
        idle["loss"].backward()
        assert all(p.grad is None for p in system.parameters_for("discriminator"))
        warm = system.training_step(batch, 4, "generator")
        assert "adversarial" not in warm and "l1" in warm
        assert "adversarial" in system.training_step(batch, 5, "generator")
        assert float(system.training_step(batch, 5, "discriminator")["loss"]) > 0
    finally:
        system.config.adversarial_start = previous
        system.zero_grad()


def test_without_act_every_step_is_l1_alone():
    """train.system.act: false (the ablation): no discriminator phase, no adversarial or consistency term."""
    system = tiny_act_system("recipes/mini/hybrid_sep_no_act.yaml").train()
    assert system.config.act is False and not system.use_consistency
    batch = act_batch(seed=2, lengths=(1600, 1600), tasks=(0, 1))
    idle = system.training_step(batch, 7, "discriminator")
    assert float(idle["loss"]) == 0.0
    out = system.training_step(batch, 7, "generator")
    assert set(out) == {"l1", "loss"} and torch.equal(out["loss"], system.config.l1_weight * out["l1"])


def test_init_stage1_loads_only_fe_and_aet_into_a_wider_separator(tmp_path):
    """train.system.init: stage1 takes FE and AET from a checkpoint whose ASM is narrower; init: all refuses it."""
    from sepkit.checkpoint import save_checkpoint
    from sepkit.errors import SepkitError

    narrow = tiny_act_system("recipes/mini/hybrid_sep_hsm.yaml")
    ckpt = tmp_path / "stage1.ckpt"
    save_checkpoint(ckpt, {}, narrow.checkpoint_state(), {})
    wider = ("model.separator.channels=[16,16,16,16,16,16,16,8]", "model.separator.lstm_hidden=[4,4,4,4,4,4,4,2]")
    with pytest.raises(SepkitError, match="shape"):
        tiny_act_system("recipes/mini/hybrid_sep_hsm.yaml", (*wider, "train.system.init=all")).init_from(str(ckpt))
    wide = tiny_act_system("recipes/mini/hybrid_sep_hsm.yaml", (*wider, "train.system.init=stage1"))
    fresh_asm = {k: v.clone() for k, v in wide.separator.asm.state_dict().items()}
    wide.init_from(str(ckpt))
    for name in ("fe", "aet"):
        ours, theirs = getattr(wide.separator, name).state_dict(), getattr(narrow.separator, name).state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert all(torch.equal(v, fresh_asm[k]) for k, v in wide.separator.asm.state_dict().items())
    with pytest.raises(SepkitError, match="train.system.init"):
        tiny_act_system("recipes/mini/hybrid_sep_hsm.yaml", ("train.system.init=everything",))
    with pytest.raises(SepkitError, match="one-stage"):
        tiny_act_system("recipes/mini/hybrid_sep_hsm.yaml", ("model.separator.stages=1", "train.system.init=stage1"))


def test_the_act_ablation_recipes_differ_only_in_act():
    from omegaconf import OmegaConf

    from sepkit.recipe import load_recipe

    act, plain = (OmegaConf.to_container(load_recipe(f"recipes/mini/{n}.yaml").config, resolve=True)
                  for n in ("hybrid_sep", "hybrid_sep_no_act"))  # fmt: skip
    assert plain["train"]["system"].pop("act") is False
    assert act["train"]["system"].pop("act", True) is True
    for key in ("name", "description", "checkpoint"):
        act.pop(key, None), plain.pop(key, None)
    assert act == plain


def test_the_44k_recipe_resolves_and_its_settings_separate_at_44k():
    """recipes/hybrid_sep_44k.yaml (full band); its rate settings run on the mini widths at 44.1 kHz."""
    from sepkit.pipeline import SeparationPipeline
    from sepkit.recipe import load_recipe, resolve_components

    full = load_recipe(str(REPO_ROOT / "recipes" / "hybrid_sep_44k.yaml"))
    resolve_components(full, get_registry())
    assert full.section("audio_encoder").sample_rate == 44100 and full.section("audio_encoder").hop == 441
    overrides = [
        "checkpoint=null",
        "model.audio_encoder.sample_rate=44100",
        "model.audio_encoder.hop=441",
        "model.separator.fe_n_fft=1024",
        "model.separator.fe_hop=882",
        "model.separator.band_n_fft=128",
        "model.separator.band_hop=64",
    ]
    pipeline = SeparationPipeline.from_recipe(load_recipe("mini/hybrid_sep", overrides)).eval()
    assert pipeline.sample_rate == 44100
    mixture = 0.1 * torch.randn(1, 44100, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        (out,) = pipeline.separate([mixture], [44100], "extract a dog barking")
    assert out.shape == mixture.shape and bool(torch.isfinite(out).all())
