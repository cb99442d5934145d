"""The OpenSep plugin: its kinds, the LLM and table source parsers, the tagger captioner, the
U-Net separator, the tagger training system, ``enumerate_sources`` and ``sepkit separate --all``."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, TextEmbedding
from sepkit.plugins import get_registry

TAGS = ["violin", "rain", "siren"]
TABLE = {
    "violin": "a violin, a bright bowed string melody",
    "rain": "rain, a dense steady hiss of drops",
    "siren": "a siren, a loud wail sweeping in pitch",
}


def build(kind: str, **section):
    return get_registry().build(kind, section, where=kind)


@pytest.fixture
def table_file(tmp_path) -> Path:
    import yaml

    path = tmp_path / "properties.yaml"
    path.write_text(yaml.safe_dump(TABLE))
    return path


# --- kinds ---------------------------------------------------------------------------------
def test_kinds_and_components_are_registered():
    registry = get_registry()
    assert {"captioner", "source_parser", "system"} <= set(registry.kinds)
    assert {e.name for e in registry.entries("captioner")} >= {"hf-captioner", "tagger-captioner"}
    assert {e.name for e in registry.entries("source_parser")} >= {"llm-parser", "table-parser"}
    assert registry.get("separator", "opensep-unet").target == "sepkit_opensep.separator:OpenSepUNetSeparator"
    assert registry.get("system", "tagger").provider == registry.get("separator", "opensep-unet").provider
    from sepkit.source_finding import Captioner, SourceParser

    assert issubclass(registry.load_class("captioner", "tagger-captioner"), Captioner)
    assert issubclass(registry.load_class("source_parser", "llm-parser"), SourceParser)


# --- LLM output parsing and prompt -----------------------------------------------------------
def test_parse_source_lines_reads_list_items_and_stops_at_the_next_example():
    from sepkit_opensep.prompts import parse_source_lines

    text = (
        " - Dog barking: a dog barking, short loud barks\n"
        "* man speaking: a low male voice.\n"
        "3. Rain\n"
        "- dog barking: repeated\n"
        "\n"
        "Caption: something else\nSources:\n- thunder: rumbling\n"
    )
    sources = parse_source_lines(text)
    assert [s.name for s in sources] == ["dog barking", "man speaking", "rain"]
    assert sources[0].description == "a dog barking, short loud barks"
    assert sources[1].description == "a low male voice"
    assert sources[2].description == "rain"  # no properties: the name is the query
    assert parse_source_lines("Source 1: siren: a wail\nSource 2: wind: whoosh")[1].name == "wind"
    assert parse_source_lines("") == []


def test_prompt_has_the_examples_and_ends_with_the_caption():
    from sepkit_opensep.prompts import FEW_SHOT_EXAMPLES, build_prompt, parse_source_lines

    prompt = build_prompt("a  cat meows\n", shots=2)
    assert prompt.endswith("Caption: a cat meows\nSources:")
    assert prompt.count("Caption:") == 3 and FEW_SHOT_EXAMPLES[1][0] in prompt and FEW_SHOT_EXAMPLES[2][0] not in prompt
    # every example answer parses back to its sources
    for _, answer in FEW_SHOT_EXAMPLES:
        block = "\n".join(f"- {n}: {d}" for n, d in answer)
        assert [(s.name, s.description) for s in parse_source_lines(block)] == list(answer)


def _tiny_tokenizer(folder: Path, words: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = ["[PAD]", "[UNK]", "<s>", "</s>"] + sorted(set(words) - {"[PAD]", "[UNK]", "<s>", "</s>"})
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>", eos_token="</s>"
    )
    fast.save_pretrained(folder)
    return fast


def test_llm_parser_runs_a_tiny_random_gpt2_and_parses_a_stubbed_generation(tmp_path, monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel

    words = "- : dog barking a short loud barks rain hiss Caption Sources".split()
    tokenizer = _tiny_tokenizer(tmp_path, words)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=2048, n_embd=16, n_layer=1, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    parser = build("source_parser", name="llm-parser", model_dir=str(tmp_path), max_new_tokens=6)
    first = parser.generate(parser.prompt("a dog barks in the rain"))
    assert first == parser.generate(parser.prompt("a dog barks in the rain"))  # greedy: deterministic
    assert isinstance(parser.parse("a dog barks in the rain"), list)

    seen = []

    def fake_generate(prompt):
        seen.append(prompt)
        return "- dog barking: a dog barking, short loud barks\n- rain: steady hiss\n\nCaption: next"

    monkeypatch.setattr(parser, "generate", fake_generate)
    sources = parser.parse("a dog barks in the rain")
    assert [(s.name, s.description) for s in sources] == [
        ("dog barking", "a dog barking, short loud barks"),
        ("rain", "steady hiss"),
    ]
    assert seen[0].endswith("Caption: a dog barks in the rain\nSources:")
    assert parser.parse("  ") == []


def test_llm_parser_and_hf_captioner_need_a_model_directory(tmp_path):
    with pytest.raises(SepkitError, match="llm-parser: model_dir .* is not a directory"):
        build("source_parser", name="llm-parser", model_dir=str(tmp_path / "missing"))
    with pytest.raises(SepkitError, match="hf-captioner: model_dir .* is not a directory"):
        build("captioner", name="hf-captioner", model_dir=str(tmp_path / "missing"))
    with pytest.raises(SepkitError, match="hf-captioner: no usable audio captioner"):
        build("captioner", name="hf-captioner", model_dir=str(tmp_path))


def test_hf_captioner_runs_a_tiny_random_whisper(tmp_path, monkeypatch):
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    tokenizer = _tiny_tokenizer(tmp_path, ["a", "dog", "barks"])
    config = WhisperConfig(
        vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80, max_target_positions=32,
        pad_token_id=0, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2, suppress_tokens=[],
        begin_suppress_tokens=[],
    )  # fmt: skip
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).save_pretrained(tmp_path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp_path)
    captioner = build("captioner", name="hf-captioner", model_dir=str(tmp_path), max_new_tokens=4)
    assert captioner.sample_rate == 16000
    wave = torch.randn(2, 8000) * 0.1
    captions = captioner.caption(wave, torch.tensor([8000, 4000]))
    assert len(captions) == 2 and all(isinstance(c, str) for c in captions)
    ids = tokenizer(["<s> a dog barks </s>"] * 2, add_special_tokens=False, return_tensors="pt")["input_ids"]
    monkeypatch.setattr(captioner.model, "generate", lambda **kwargs: ids)
    assert captioner.caption(wave, torch.tensor([8000, 4000])) == ["a dog barks", "a dog barks"]


# --- table parser ------------------------------------------------------------------------------
def test_table_parser_expands_each_known_tag_in_order(table_file, tmp_path):
    from sepkit_opensep.table_parser import find_tags

    parser = build("source_parser", name="table-parser", table=str(table_file))
    sources = parser.parse("A mixture of rain, Violin and a dog")
    assert [(s.name, s.description) for s in sources] == [("rain", TABLE["rain"]), ("violin", TABLE["violin"])]
    assert parser.parse("a mixture of nothing known") == []
    assert find_tags("electric guitar and guitar solo", ["guitar", "electric guitar"]) == ["electric guitar", "guitar"]
    assert find_tags("rainfall and sirens", ["rain", "siren"]) == []  # whole words only
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just a list\n")
    with pytest.raises(SepkitError, match="must be a non-empty mapping"):
        build("source_parser", name="table-parser", table=str(bad))
    with pytest.raises(SepkitError, match="not found"):
        build("source_parser", name="table-parser", table=str(tmp_path / "nope.yaml"))


# --- tagger captioner --------------------------------------------------------------------------
def test_pick_tags_thresholds_clips_and_pads():
    from sepkit_opensep.tagger_captioner import join_names, pick_tags

    p = torch.tensor([0.6, 0.2, 0.9])
    assert pick_tags(p, TAGS, 0.5, 4, 1) == ["siren", "violin"]
    assert pick_tags(p, TAGS, 0.5, 1, 1) == ["siren"]
    assert pick_tags(p, TAGS, 0.95, 4, 1) == ["siren"]  # nothing over the threshold: the most probable
    assert pick_tags(p, TAGS, 0.95, 4, 0) == []
    assert pick_tags(p, TAGS, 0.1, 4, 1) == ["siren", "violin", "rain"]
    assert join_names(["a", "b", "c"]) == "a, b and c"


def test_tagger_captioner_emits_a_mixture_caption(monkeypatch):
    captioner = build("captioner", name="tagger-captioner", tags=TAGS, channels=[4], threshold=0.5)
    wave = torch.randn(2, 8000) * 0.1
    assert captioner.probabilities(wave, torch.tensor([8000, 6000])).shape == (2, 3)
    fixed = torch.tensor([[0.7, 0.8, 0.1], [0.1, 0.2, 0.3]])
    monkeypatch.setattr(captioner, "probabilities", lambda w, n: fixed)
    assert captioner.caption(wave, torch.tensor([8000, 6000])) == ["a mixture of rain and violin", "a mixture of siren"]
    with pytest.raises(SepkitError, match="needs 'checkpoint'"):
        build("captioner", name="tagger-captioner")
    with pytest.raises(SepkitError, match="not found; train the tagger"):
        build("captioner", name="tagger-captioner", checkpoint="/nonexistent/best.ckpt")


def test_tagger_captioner_reads_a_tagger_checkpoint(tmp_path):
    from sepkit_opensep.tagger import SourceTagger, TaggerConfig

    from sepkit.checkpoint import save_checkpoint

    torch.manual_seed(3)
    tagger = SourceTagger(TaggerConfig(tags=TAGS, channels=[4, 8], n_mels=32)).eval()
    system = {"name": "tagger", "tags": TAGS, "channels": [4, 8], "n_mels": 32}
    path = tmp_path / "best.ckpt"
    save_checkpoint(path, {"train": {"system": system}}, tagger.state_dict(), {})
    captioner = build("captioner", name="tagger-captioner", checkpoint=str(path))
    wave = torch.randn(1, 8000) * 0.1
    expected = torch.sigmoid(tagger(wave, torch.tensor([8000])))
    assert captioner.tags == TAGS
    torch.testing.assert_close(captioner.probabilities(wave, torch.tensor([8000])), expected)


# --- separator ---------------------------------------------------------------------------------
def _separator(**overrides):
    section = {"input_dim": 33, "query_dim": 16, "base_channels": 4, "channel_multipliers": [1, 2], "heads": 2}
    torch.manual_seed(0)
    return build("separator", name="opensep-unet", **{**section, **overrides}).eval()


def _query(tokens: torch.Tensor, mask: torch.Tensor) -> TextEmbedding:
    return TextEmbedding(tokens * mask[..., None], mask, tokens.mean(1))


def test_separator_shapes_and_text_conditioning():
    sep = _separator(attention_levels=3)
    frames = torch.randn(2, 37, 33, dtype=torch.complex64)
    mixture = AudioFeatures(frames, torch.tensor([37, 20]), 100.0)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    g = torch.Generator().manual_seed(1)
    text_a, text_b = torch.randn(2, 5, 16, generator=g), torch.randn(2, 5, 16, generator=g)
    tasks = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        out = sep.separate(mixture, _query(text_a, mask), tasks)
        other = sep.separate(mixture, _query(text_b, mask), tasks)
        padded = text_a.clone()
        padded[1, 3:] = 100.0  # masked tokens must not matter
        same = sep.separate(mixture, _query(padded, mask), tasks)
    assert out.frames.shape == frames.shape and out.frames.dtype == torch.complex64
    assert torch.equal(out.lengths, mixture.lengths) and out.frame_rate == 100.0
    assert (out.frames - other.frames).abs().max() > 1e-4  # the text changes the estimate
    torch.testing.assert_close(same.frames, out.frames)
    assert bool((out.frames.abs() <= frames.abs() + 1e-5).all())  # a mask in [0, 1] on the mixture
    assert sum(m is not None for m in sep.down_attention) == 2 and sep.bottleneck_attention is not None


def test_separator_rejects_bad_sizes():
    with pytest.raises(SepkitError, match="input_dim 32 must be 1 \\+ a multiple of 4"):
        _separator(input_dim=32)
    with pytest.raises(SepkitError, match="divisible by heads=3"):
        _separator(heads=3)
    with pytest.raises(SepkitError, match="complex STFT frames"):
        _separator().separate(
            AudioFeatures(torch.randn(1, 8, 33), torch.tensor([8]), 100.0),
            _query(torch.randn(1, 2, 16), torch.ones(1, 2, dtype=torch.bool)),
            torch.zeros(1, dtype=torch.long),
        )


# --- tagger training system --------------------------------------------------------------------
def _clip_manifest(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    lines = []
    for k, tag in enumerate(TAGS + ["wind"]):
        for i in range(2):
            path = folder / "audio" / f"{k}-{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (0.1 * rng.standard_normal(6000)).astype("float32"), 16000)
            lines.append(json.dumps({"id": f"{k}-{i}", "path": f"audio/{k}-{i}.wav", "tags": [tag], "split": "train"}))
    manifest = folder / "clips.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_tagger_system_trains_on_tagged_mixtures(tmp_path):
    from sepkit_opensep.system import TaggerSystem, TaggerSystemConfig

    from sepkit.train.config import DataConfig, SplitConfig, TrainConfig

    manifest = _clip_manifest(tmp_path)
    config = TaggerSystemConfig(tags=TAGS + ["wind"], channels=[4, 8], n_mels=32, max_sources=3)
    system = TaggerSystem(config, SimpleNamespace(source="test"), TrainConfig(), get_registry())
    data = DataConfig(train=SplitConfig(clips=str(manifest), protocol="multilevel", length=4, seconds=0.25))
    dataset = system.build_dataset("train", data, tmp_path, seed=0)
    items = [dataset[i] for i in range(4)]
    assert all(1 <= item["labels"].sum() <= 3 and item["mixture"].shape == (4000,) for item in items)
    assert np.array_equal(dataset[2]["mixture"], items[2]["mixture"])  # (seed, epoch, index) decides
    batch = system.collate(items)
    loss = system.training_step(batch, step=0)["loss"]
    loss.backward()
    assert loss.item() > 0 and system.tagger.head.weight.grad is not None
    with torch.no_grad():
        metrics = system.validation_step(batch)
    assert set(metrics) == {"loss", "f1", "exact"} and metrics["f1"].shape == (4,)
    assert set(system.checkpoint_state()) == set(system.tagger.state_dict())
    with pytest.raises(SepkitError, match="tags is empty"):
        TaggerSystem(TaggerSystemConfig(), SimpleNamespace(source="test"), TrainConfig(), get_registry())


# --- enumerate_sources and separate --all ----------------------------------------------------
def _tiny_recipe(folder: Path, table_file: Path, with_model: bool) -> Path:
    model = (
        "model:\n"
        "  text_encoder: {name: minilm, freeze: true, max_length: 16}\n"
        "  audio_encoder: {name: stft, n_fft: 64, hop_length: 16, sample_rate: 16000}\n"
        "  separator: {name: opensep-unet, base_channels: 4, channel_multipliers: [1, 2], heads: 2}\n"
        "  decoder: {name: istft, n_fft: 64, hop_length: 16, sample_rate: 16000}\n"
        if with_model
        else "model: {}\n"
    )
    text = (
        "name: tiny-opensep\n" + model + "eval:\n"
        f"  captioner: {{name: tagger-captioner, tags: [{', '.join(TAGS)}], channels: [4], threshold: 0.5}}\n"
        f"  source_parser: {{name: table-parser, table: {table_file.name}}}\n"
        "inference: {device: cpu, chunk_seconds: 4.0, overlap_seconds: 0.5}\n"
    )
    path = folder / "tiny_opensep.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def fixed_tags(monkeypatch):
    from sepkit_opensep.tagger_captioner import TaggerCaptioner

    monkeypatch.setattr(TaggerCaptioner, "probabilities", lambda self, w, n: torch.tensor([[0.9, 0.6, 0.2]]))


def test_enumerate_sources_on_a_tiny_recipe(tmp_path, table_file, fixed_tags):
    from sepkit.recipe import load_recipe
    from sepkit.source_finding import build_source_finder, can_enumerate

    recipe = load_recipe(str(_tiny_recipe(tmp_path, table_file, with_model=False)))  # the table path is relative
    wave = torch.randn(2, 11025) * 0.1  # stereo at 22.05 kHz: downmixed and resampled to the captioner's 16 kHz
    assert can_enumerate(recipe)
    report = build_source_finder(recipe, get_registry()).find(wave, 22050)
    assert [s.description for s in report.sources] == [TABLE["violin"], TABLE["rain"]]
    assert report.as_dict()["caption"] == "a mixture of violin and rain"
    (tmp_path / "plain.yaml").write_text("model: {}\n")
    assert not can_enumerate(load_recipe(str(tmp_path / "plain.yaml")))
    with pytest.raises(SepkitError, match="names no captioner"):
        build_source_finder(load_recipe(str(tmp_path / "plain.yaml")), get_registry())


def test_separate_all_writes_each_source_the_residual_and_a_json(tmp_path, table_file, fixed_tags):
    from sepkit.cli.separate_all import run_all

    recipe = _tiny_recipe(tmp_path, table_file, with_model=True)
    wave = (0.1 * np.random.default_rng(0).standard_normal((4000, 2))).astype("float32")
    sf.write(tmp_path / "mix.wav", wave, 8000)
    args = Namespace(
        input=str(tmp_path / "mix.wav"), output=str(tmp_path / "out"), recipe=str(recipe), ckpt=None,
        device="cpu", dtype=None, batch_size=None, query=None,
    )  # fmt: skip
    assert run_all(args) == 0
    folder = tmp_path / "out" / "mix"
    report = json.loads((folder / "sources.json").read_text())
    assert report["caption"] == "a mixture of violin and rain"
    assert [s["name"] for s in report["sources"]] == ["violin", "rain"]
    assert report["sources"][0]["description"] == TABLE["violin"]
    parts = [sf.read(folder / s["file"])[0] for s in report["sources"]]
    residual, rate = sf.read(folder / report["residual"])
    assert rate == 8000 and residual.shape == wave.shape and all(p.shape == wave.shape for p in parts)
    np.testing.assert_allclose(residual + sum(parts), wave, atol=2e-4)  # 16-bit files
    args.query = ["violin"]
    with pytest.raises(SepkitError, match="either --all or --query"):
        run_all(args)


def test_the_ablation_recipes_differ_only_in_the_training_protocol():
    from omegaconf import OmegaConf

    from sepkit.recipe import load_recipe

    multilevel, plain = (OmegaConf.to_container(load_recipe(f"recipes/mini/{n}.yaml").config, resolve=True)
                         for n in ("opensep", "opensep_plain"))  # fmt: skip
    assert multilevel["data"]["train"].pop("protocol") == "multilevel"
    assert plain["data"]["train"].pop("protocol") == "mix_and_separate"
    assert plain["data"]["val"]["protocol"] == "multilevel"  # both arms are selected on the same mixtures
    for key in ("name", "description", "checkpoint"):
        multilevel.pop(key, None), plain.pop(key, None)
    assert multilevel == plain
