"""Tests of sepkit.testing: the plugin contract kit.

Tiny fake components (source in ``FAKES``) are written into a pytester directory
and registered with ``load_registry(extra_plugins=...)``; generated contract test
modules are run with ``pytester.inline_run`` and the outcome of each contract test
is checked: correct components pass, each deliberately broken one fails the test
that covers its defect. ``run_check_plugin`` is checked end to end on a fake
installed distribution (a ``.dist-info`` directory on ``sys.path``).
"""

import os
import sys
import textwrap

import pytest
import torch

from sepkit.errors import SepkitError
from sepkit.testing import (
    ComponentContract,
    SeparatorContract,
    contract_module_source,
    make_ragged_wave_batch,
    run_check_plugin,
)
from sepkit.testing.check_plugin import plugin_entries

pytest_plugins = ["pytester"]

FAKES = '''
"""Tiny fake components for the contract-kit tests (linear layers on 160-sample frames at 8 kHz)."""
import socket
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sepkit.hookspecs import hookimpl
from sepkit.interfaces import (AudioEncoder, AudioFeatures, Codec, CodecFrames, Decoder, Separator,
                               TextEmbedding, TextEncoder)


def frame(wave, hop):
    """wave [B, T] -> frames [B, ceil(T / hop), hop] (zero-padded)."""
    frames = -(-wave.shape[1] // hop)
    return F.pad(wave, (0, frames * hop - wave.shape[1])).reshape(wave.shape[0], frames, hop)


class TinyText(TextEncoder):
    @dataclass
    class Config:
        embed_dim: int = 8
        vocab: int = 32

    def __init__(self, config):
        super().__init__(config)
        self.embed_dim = config.embed_dim
        self.table = nn.Embedding(config.vocab, config.embed_dim)

    def encode_text(self, texts):
        ids = [[sum(map(ord, w)) % self.config.vocab for w in t.split()] for t in texts]
        n = max(len(i) for i in ids)
        mask = torch.tensor([[j < len(i) for j in range(n)] for i in ids])
        tokens = self.table(torch.tensor([i + [0] * (n - len(i)) for i in ids])) * mask[..., None]
        pooled = tokens.sum(1) / mask.sum(1, keepdim=True)
        return TextEmbedding(tokens, mask, pooled)


class TinyAudio(AudioEncoder):
    @dataclass
    class Config:
        output_dim: int = 6
        hop: int = 160

    sample_rate = 8000
    representation = "tiny"

    def __init__(self, config):
        super().__init__(config)
        self.output_dim = config.output_dim
        self.frame_rate = self.sample_rate / config.hop
        self.proj = nn.Linear(config.hop, config.output_dim)

    def encode_audio(self, wave, lengths):
        frames = self.proj(frame(wave, self.config.hop))
        return AudioFeatures(frames, -(-lengths // self.config.hop), self.frame_rate)


class TinySeparator(Separator):
    @dataclass
    class Config:
        dim: int = 6
        query_dim: int = 8
        complex: bool = False

    tasks = ("extract", "remove")

    def __init__(self, config):
        super().__init__(config)
        self.consumes = self.produces = "complex_tiny" if config.complex else "tiny"
        self.input_dim = self.output_dim = config.dim
        self.query_dim = config.query_dim
        self.film = nn.Linear(config.query_dim, config.dim)

    def mask(self, mixture, query):
        return torch.sigmoid(self.film(query.pooled))[:, None, :]

    def separate(self, mixture, query, tasks):
        mask = self.mask(mixture, query)
        mask = torch.where(tasks[:, None, None] == 1, 1 - mask, mask)
        return AudioFeatures(mixture.frames * mask, mixture.lengths.clone(), mixture.frame_rate)


class TinyDecoder(Decoder):
    @dataclass
    class Config:
        input_dim: int = 6
        hop: int = 160

    consumes = "tiny"
    sample_rate = 8000

    def __init__(self, config):
        super().__init__(config)
        self.input_dim = config.input_dim
        self.frame_rate = self.sample_rate / config.hop
        self.proj = nn.Linear(config.input_dim, config.hop)

    def decode(self, features, num_samples=None):
        wave = self.proj(features.frames.real).flatten(1)
        if num_samples is not None:
            wave = F.pad(wave, (0, max(0, num_samples - wave.shape[1])))[:, :num_samples]
        return wave


class TinyCodec(Codec):
    @dataclass
    class Config:
        num_codebooks: int = 2
        codebook_size: int = 16
        hop: int = 160

    sample_rate = 8000

    def __init__(self, config):
        super().__init__(config)
        self.num_codebooks, self.codebook_size = config.num_codebooks, config.codebook_size
        self.frame_rate = self.sample_rate / config.hop
        self.proj = nn.Linear(config.hop, config.num_codebooks)
        self.books = nn.Embedding(config.num_codebooks * config.codebook_size, config.hop)

    def encode(self, wave, lengths):
        level = (torch.tanh(10 * self.proj(frame(wave, self.config.hop))) + 1) / 2
        codes = (level * (self.codebook_size - 1)).round().long().transpose(1, 2)
        return CodecFrames(codes, -(-lengths // self.config.hop))

    def decode(self, codes):
        offsets = torch.arange(self.num_codebooks)[None, :, None] * self.codebook_size
        return self.books(codes + offsets).sum(1).flatten(1)


class TinyMetric:
    """A metric that is not an nn.Module: a Config, two flags and ``score``."""

    higher_is_better = False
    needs_mixture = False

    @dataclass
    class Config:
        eps: float = 1e-8

    def __init__(self, config):
        self.config = config

    def score(self, estimate, reference, sample_rate, mixture=None):
        return ((estimate - reference) ** 2).mean(-1) + self.config.eps


# --- deliberately broken ---------------------------------------------------------
class WrongDimAudio(TinyAudio):
    def __init__(self, config):
        super().__init__(config)
        self.output_dim = config.output_dim + 1  # declared width disagrees with the frames


class WrongRateAudio(TinyAudio):
    def __init__(self, config):
        super().__init__(config)
        self.frame_rate = 2 * self.frame_rate  # declares twice the frames it produces


class ShortSightedAudio(TinyAudio):
    def encode_audio(self, wave, lengths):  # reflection padding needs more than 80 samples; min_samples says 1
        return super().encode_audio(torch.nn.functional.pad(wave[:, None], (80, 80), mode="reflect")[:, 0], lengths)


class OverflowCodec(TinyCodec):
    def encode(self, wave, lengths):
        frames = super().encode(wave, lengths)
        return CodecFrames(frames.codes + self.codebook_size, frames.lengths)  # codes beyond codebook_size

    def decode(self, codes):
        return super().decode(codes.clamp(max=self.codebook_size - 1))


class NoisyText(TinyText):
    def encode_text(self, texts):
        out = super().encode_text(texts)
        noise = 0.01 * torch.randn_like(out.tokens) * out.mask[..., None]  # random in eval mode
        return TextEmbedding(out.tokens + noise, out.mask, out.pooled)


class UnpaddedText(TinyText):
    def encode_text(self, texts):
        out = super().encode_text(texts)
        return TextEmbedding(out.tokens, torch.ones_like(out.mask), out.pooled)


class DirtyPaddingText(TinyText):
    def encode_text(self, texts):
        out = super().encode_text(texts)
        return TextEmbedding(out.tokens + 1.0, out.mask, out.pooled)  # padding positions are not zero


class ForgetfulSeparator(TinySeparator):
    def __init__(self, config):
        super().__init__(config)
        self.register_buffer("secret", torch.randn(config.dim), persistent=False)  # not in the checkpoint

    def mask(self, mixture, query):
        return super().mask(mixture, query) * torch.sigmoid(self.secret)


class SloppyDecoder(TinyDecoder):
    def decode(self, features, num_samples=None):
        return super().decode(features)  # ignores num_samples


class PhoningHomeDecoder(TinyDecoder):
    def __init__(self, config):
        super().__init__(config)
        try:
            socket.create_connection(("127.0.0.1", 9), timeout=0.05).close()
        except OSError:
            pass


COMPONENTS = [
    ("text_encoder", "tiny-text", "TinyText", "embed_dim: 8"),
    ("audio_encoder", "tiny-audio", "TinyAudio", "output_dim: 6"),
    ("separator", "tiny-sep", "TinySeparator", "dim: 6\\nquery_dim: 8"),
    ("decoder", "tiny-dec", "TinyDecoder", "input_dim: 6"),
    ("codec", "tiny-codec", "TinyCodec", "num_codebooks: 2\\ncodebook_size: 16"),
    ("metric", "tiny-metric", "TinyMetric", ""),
    ("audio_encoder", "wrong-dim", "WrongDimAudio", ""),
    ("audio_encoder", "wrong-rate", "WrongRateAudio", ""),
    ("audio_encoder", "short-sighted", "ShortSightedAudio", ""),
    ("codec", "overflow", "OverflowCodec", ""),
    ("text_encoder", "noisy", "NoisyText", ""),
    ("text_encoder", "unpadded", "UnpaddedText", ""),
    ("text_encoder", "dirty-padding", "DirtyPaddingText", ""),
    ("separator", "forgetful", "ForgetfulSeparator", ""),
    ("decoder", "sloppy", "SloppyDecoder", ""),
    ("decoder", "phoning-home", "PhoningHomeDecoder", ""),
]


@hookimpl
def sepkit_register(registry):
    for kind, name, cls, example in COMPONENTS:
        registry.register(kind, name, f"{__name__}:{cls}", summary="fake", example=example)
'''

HEADER = """
import fake_sepkit_components
from sepkit.plugins import load_registry
from sepkit.testing import *

REGISTRY = load_registry(extra_plugins=(fake_sepkit_components,))
"""

GENERIC_TESTS = {
    "test_discoverable_through_entry_point",
    "test_importing_plugin_does_not_import_target",
    "test_plugin_registration_does_not_import_torch",
    "test_builds_from_yaml_snippet",
    "test_unknown_config_key_is_rejected",
    "test_state_dict_roundtrips_through_checkpoint",
    "test_eval_mode_is_deterministic",
    "test_no_network",
}
ENTRY_POINT_TESTS = {t for t in GENERIC_TESTS if "entry_point" in t or "import" in t}


def contract_class(contract, name, extra=""):
    """Source of a ``Test...`` contract subclass for the fake component ``name``."""
    class_name = "Test" + "".join(part.title() for part in name.split("-"))
    body = f"    name = {name!r}\n    registry_factory = staticmethod(lambda: REGISTRY)\n"
    return f"\nclass {class_name}({contract}):\n{body}{textwrap.indent(textwrap.dedent(extra), '    ')}\n"


def run_contracts(pytester, *classes):
    """Run a generated module of contract classes; return ``{"TestX::test_y": "passed"|"failed"|"skipped"}``."""
    pytester.makepyfile(fake_sepkit_components=FAKES)
    pytester.makepyfile(test_contracts=HEADER + "".join(classes))
    pytester.syspathinsert()
    reprec = pytester.inline_run("-p", "no:cacheprovider")
    outcomes = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        key = report.nodeid.split("::", 1)[1]
        if report.failed or report.skipped or (report.when == "call" and key not in outcomes):
            outcomes[key] = report.outcome
    return outcomes


def outcomes_of(outcomes, class_name, outcome):
    return {k.split("::")[1] for k, v in outcomes.items() if k.startswith(class_name + "::") and v == outcome}


# --- correct components pass ------------------------------------------------------------
@pytest.mark.parametrize(
    "contract, name, kind_tests",
    [
        (
            "TextEncoderContract",
            "tiny-text",
            {"test_text_embedding_shapes", "test_mask_marks_each_texts_tokens", "test_padding_tokens_are_zero"},
        ),
        (
            "AudioEncoderContract",
            "tiny-audio",
            {
                "test_declares_attributes",
                "test_output_shapes",
                "test_frame_count_matches_frame_rate",
                "test_encodes_its_shortest_input",
            },
        ),
        (
            "SeparatorContract",
            "tiny-sep",
            {
                "test_declares_attributes",
                "test_output_shapes",
                "test_different_queries_give_different_outputs",
                "test_batch_padding_does_not_change_output",
            },
        ),
        (
            "DecoderContract",
            "tiny-dec",
            {"test_declares_attributes", "test_output_shape", "test_num_samples_trims_or_pads"},
        ),
        ("CodecContract", "tiny-codec", {"test_declares_attributes", "test_encode_codes", "test_decode_shape"}),
    ],
)
def test_correct_component_passes_its_contract(pytester, contract, name, kind_tests):
    outcomes = run_contracts(pytester, contract_class(contract, name))
    class_name = "Test" + "".join(part.title() for part in name.split("-"))
    assert outcomes_of(outcomes, class_name, "failed") == set(), outcomes
    assert outcomes_of(outcomes, class_name, "passed") == (GENERIC_TESTS - ENTRY_POINT_TESTS) | kind_tests
    # Not installed (registered through extra_plugins): the entry-point tests skip.
    assert outcomes_of(outcomes, class_name, "skipped") == ENTRY_POINT_TESTS


def test_config_attribute_overrides_the_example(pytester):
    """``config`` replaces the entry's example: the same separator checked on complex frames."""
    extra = """
    config = "dim: 5\\nquery_dim: 8\\ncomplex: true"

    def test_really_complex(self):
        assert self.build().consumes == "complex_tiny"
    """
    outcomes = run_contracts(pytester, contract_class("SeparatorContract", "tiny-sep", extra))
    assert outcomes_of(outcomes, "TestTinySep", "failed") == set(), outcomes
    assert "test_really_complex" in outcomes_of(outcomes, "TestTinySep", "passed")
    assert "test_output_shapes" in outcomes_of(outcomes, "TestTinySep", "passed")


def test_kind_without_contract_gets_the_generic_one(pytester):
    outcomes = run_contracts(pytester, contract_class("ComponentContract", "tiny-metric", 'kind = "metric"\n'))
    assert outcomes_of(outcomes, "TestTinyMetric", "failed") == set(), outcomes
    assert outcomes_of(outcomes, "TestTinyMetric", "passed") == {
        "test_builds_from_yaml_snippet",
        "test_unknown_config_key_is_rejected",
        "test_no_network",
    }
    assert {"test_state_dict_roundtrips_through_checkpoint", "test_eval_mode_is_deterministic"} <= outcomes_of(
        outcomes, "TestTinyMetric", "skipped"
    )


def test_contract_bases_are_not_collected(pytester):
    """Importing the contracts, or an intermediate ``...Contract`` subclass, collects no tests."""
    extra_base = "\nclass MyBaseContract(SeparatorContract):\n    frame_rate = 25.0\n"
    outcomes = run_contracts(pytester, extra_base)
    assert outcomes == {}


# --- broken components fail the specific test ---------------------------------------------
@pytest.mark.parametrize(
    "contract, name, failing",
    [
        ("AudioEncoderContract", "wrong-dim", {"test_output_shapes"}),
        ("AudioEncoderContract", "wrong-rate", {"test_frame_count_matches_frame_rate"}),
        ("AudioEncoderContract", "short-sighted", {"test_encodes_its_shortest_input"}),
        ("CodecContract", "overflow", {"test_encode_codes"}),
        (
            "TextEncoderContract",
            "noisy",
            {"test_eval_mode_is_deterministic", "test_state_dict_roundtrips_through_checkpoint"},
        ),
        ("TextEncoderContract", "unpadded", {"test_mask_marks_each_texts_tokens"}),
        ("TextEncoderContract", "dirty-padding", {"test_padding_tokens_are_zero"}),
        ("SeparatorContract", "forgetful", {"test_state_dict_roundtrips_through_checkpoint"}),
        ("DecoderContract", "sloppy", {"test_num_samples_trims_or_pads"}),
        ("DecoderContract", "phoning-home", {"test_no_network"}),
    ],
)
def test_broken_component_fails_the_relevant_test(pytester, contract, name, failing):
    outcomes = run_contracts(pytester, contract_class(contract, name))
    class_name = "Test" + "".join(part.title() for part in name.split("-"))
    assert outcomes_of(outcomes, class_name, "failed") == failing, outcomes


def test_unknown_key_test_fails_if_the_registry_accepts_it(pytester):
    """The contract's own check bites: a registry that silently drops unknown keys fails it."""
    extra = """
    def registry(self):
        class Lenient:
            def get(self, kind, name):
                return REGISTRY.get(kind, name)

            def build(self, kind, section, where=""):
                section = {k: v for k, v in section.items() if k != "definitely_not_a_key"}
                return REGISTRY.build(kind, section, where=where)

        return Lenient()
    """
    outcomes = run_contracts(pytester, contract_class("DecoderContract", "tiny-dec", extra))
    assert outcomes_of(outcomes, "TestTinyDec", "failed") == {"test_unknown_config_key_is_rejected"}, outcomes


# --- helpers and fixtures -------------------------------------------------------------------
def test_make_ragged_wave_batch_is_seeded_and_zero_padded():
    wave, lengths = make_ragged_wave_batch(8000)
    assert wave.dtype == torch.float32 and lengths.dtype == torch.long
    assert lengths.tolist() == [4000, 6400, 8800] and wave.shape == (3, 8800)
    assert float(wave[0, 4000:].abs().sum()) == 0 and float(wave[0, :4000].abs().sum()) > 0
    again, _ = make_ragged_wave_batch(8000)
    assert torch.equal(wave, again)
    five, five_lengths = make_ragged_wave_batch(1000, batch=5, seconds=[0.1, 0.2, 0.3, 0.4, 0.5], seed=3)
    assert five.shape == (5, 500) and five_lengths.tolist() == [100, 200, 300, 400, 500]


def test_pytest_plugin_fixtures(pytester, monkeypatch):
    pytester.makepyfile(
        """
        import socket
        import pytest

        def test_registry(sepkit_registry):
            assert "separator" in sepkit_registry.kinds

        def test_ragged(ragged_wave_batch):
            wave, lengths = ragged_wave_batch(16000, batch=3)
            assert wave.shape == (3, 17600) and len(set(lengths.tolist())) == 3

        def test_blocked(no_network):
            with pytest.raises(RuntimeError, match="network access in a contract test"):
                socket.create_connection(("127.0.0.1", 9))
            with pytest.raises(RuntimeError, match="network access in a contract test"):
                socket.socket().connect(("127.0.0.1", 9))
        """
    )
    # Load the module explicitly (autoload off), whether or not the pytest11 entry point is installed.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest("-p", "sepkit.testing.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


# --- check-plugin ---------------------------------------------------------------------------
DIST_PLUGIN = """
from sepkit.hookspecs import hookimpl

@hookimpl
def sepkit_register(registry):
    registry.register("audio_encoder", "tiny-audio", "fake_sepkit_components:TinyAudio", example="output_dim: 4")
    registry.register("codec", "tiny-codec", "fake_sepkit_components:TinyCodec", example="num_codebooks: 1")
    registry.register("metric", "tiny-metric", "fake_sepkit_components:TinyMetric")
"""


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """An installed distribution ``sepkit-fakeplug 0.3`` (a .dist-info on sys.path and PYTHONPATH)."""
    (tmp_path / "fake_sepkit_components.py").write_text(FAKES)
    (tmp_path / "fakeplug_plugin.py").write_text(DIST_PLUGIN)
    info = tmp_path / "sepkit_fakeplug-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sepkit-fakeplug\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[sepkit.plugins]\nfakeplug = fakeplug_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setattr("sepkit.plugins._registry", None)
    for switch in ("SEPKIT_STRICT_PLUGINS", "SEPKIT_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.delenv(switch, raising=False)
    return "sepkit-fakeplug"


def test_contract_module_source_has_one_class_per_component(fake_distribution):
    source = contract_module_source(plugin_entries("Sepkit_Fakeplug"))
    assert "class TestAudioEncoderTinyAudio(AudioEncoderContract):" in source
    assert "class TestCodecTinyCodec(CodecContract):" in source
    assert "class TestMetricTinyMetric(MetricContract):" in source
    compile(source, "generated", "exec")


def test_check_plugin_runs_every_contract_of_an_installed_distribution(fake_distribution, capfd):
    code = run_check_plugin(fake_distribution, ["-q"])
    out = capfd.readouterr().out
    assert code == 0, out
    assert "failed" not in out and " passed" in out
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 1 and "TinyMetric is not an nn.Module" in skips[0], out  # every other test ran


def test_check_plugin_reports_failures_through_the_exit_code(fake_distribution, tmp_path, capfd):
    plugin = tmp_path / "fakeplug_plugin.py"
    plugin.write_text(DIST_PLUGIN.replace("TinyCodec", "OverflowCodec"))
    code = run_check_plugin(fake_distribution, ["-q", "-k", "Codec"])
    out = capfd.readouterr().out
    assert code == 1, out
    assert "test_encode_codes" in out


def test_check_plugin_rejects_a_distribution_without_components(fake_distribution):
    with pytest.raises(SepkitError) as info:
        run_check_plugin("no-such-distribution")
    assert "no-such-distribution" in str(info.value) and "sepkit-fakeplug 0.3" in str(info.value)


def test_plugin_importing_its_target_fails_the_import_contract(fake_distribution, tmp_path, capfd):
    plugin = tmp_path / "fakeplug_plugin.py"
    plugin.write_text("import fake_sepkit_components\n" + DIST_PLUGIN)
    code = run_check_plugin(fake_distribution, ["-q", "-k", "TinyAudio and import"])
    out = capfd.readouterr().out
    assert code == 1, out
    assert (
        "test_importing_plugin_does_not_import_target" in out
        and "test_plugin_registration_does_not_import_torch" in out
    )


def test_contract_classes_are_exported():
    assert issubclass(SeparatorContract, ComponentContract)
    assert SeparatorContract.__test__ is False and ComponentContract.__test__ is False
    contracts = sys.modules["sepkit.testing.contracts"]
    assert contracts.contract_for("metric") is contracts.MetricContract
    assert contracts.contract_for("captioner") is ComponentContract
