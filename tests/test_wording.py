"""The wording grammar (sepkit.data.wording): apart from the held-out paraphrases, parseable, faithful to the
task and the described source, and wired as data.train.wording."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import yaml

from sepkit.data import wording
from sepkit.data.dataset import dataset_from_config
from sepkit.data.manifest import ClipRecord, InstructionRef, MixtureRecord, SourceRef, write_jsonl
from sepkit.data.mini import captions
from sepkit.data.mini.build import class_names
from sepkit.data.mixing import EXTRACT_TEMPLATES, REMOVE_TEMPLATES, round_trips
from sepkit.errors import SepkitError
from sepkit.instructions import RuleBasedInstructionParser

REPO = Path(__file__).resolve().parents[1]
PARAPHRASES = yaml.safe_load((REPO / "benchmarks" / "paraphrases.yaml").read_text())
PARSER = RuleBasedInstructionParser()
DRAWS = 200  # phrases drawn per class


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+(?:['-][a-z]+)*", text.lower()))


def _grammar_texts() -> list[str]:
    """Every string of the grammar's lists."""
    texts = list(wording.EXTRACT_VERBS + wording.REMOVE_VERBS + wording.FRAMES + wording.INSTRUMENT_FRAMES)
    for words in wording.CLASS_WORDS.values():
        texts += list(words.nouns + words.descriptors + words.actions)
    return texts


@pytest.fixture(scope="module")
def drawn() -> dict[str, list[str]]:
    rng = np.random.default_rng(0)
    return {name: [wording.phrase(name, rng) for _ in range(DRAWS)] for name in class_names()}


# --- apart from the held-out paraphrases -----------------------------------------------------------------
def test_no_paraphrase_appears_in_the_grammar_or_its_outputs(drawn):
    outputs = [t for phrases in drawn.values() for t in phrases]
    rng = np.random.default_rng(1)
    outputs += [v.format(d=wording.phrase(n, rng)) for v in wording.EXTRACT_VERBS for n in PARAPHRASES]
    for paraphrase in PARAPHRASES.values():
        low = paraphrase.lower()
        assert not [t for t in _grammar_texts() + outputs if low in t.lower()], paraphrase


def test_no_new_word_of_a_paraphrase_is_in_the_grammars_descriptions(drawn):
    """A paraphrase's words that no caption, class name or template has stay unseen in training too."""
    seen = set()
    for name, caps in captions.CAPTIONS.items():
        seen |= _words(name) | set().union(*map(_words, caps))
    seen |= set().union(*map(_words, EXTRACT_TEMPLATES + REMOVE_TEMPLATES))
    new = set().union(*map(_words, PARAPHRASES.values())) - seen
    assert {"fiddle", "downpour", "violoncello", "landline", "narrator"} <= new  # the check has teeth
    described = [t for w in wording.CLASS_WORDS.values() for t in w.nouns + w.descriptors + w.actions]
    described += list(wording.FRAMES + wording.INSTRUMENT_FRAMES) + [t for p in drawn.values() for t in p]
    leaks = sorted({word for text in described for word in _words(text) & new})
    assert not leaks, leaks


def test_the_module_never_reads_the_paraphrase_file():
    source = inspect.getsource(wording)
    assert "paraphrases.yaml" not in source and "open(" not in source and "read_text" not in source


# --- complete and parseable ----------------------------------------------------------------------------
def test_every_sepkit_mini_class_has_a_grammar():
    assert set(wording.CLASS_WORDS) == set(class_names())
    assert len(wording.EXTRACT_VERBS) > len(EXTRACT_TEMPLATES) and len(wording.REMOVE_VERBS) > len(REMOVE_TEMPLATES)


def test_every_phrase_is_one_sound_to_extract(drawn):
    for name, phrases in drawn.items():
        assert len(set(phrases)) >= 20, name  # varied
        for text in set(phrases):
            parsed = PARSER.parse(text)
            assert len(parsed) == 1 and parsed[0].task == "extract", (name, text, parsed)


@pytest.mark.parametrize("task", ["extract", "remove"])
def test_every_verb_template_parses_to_its_task(task):
    verbs = wording.EXTRACT_VERBS if task == "extract" else wording.REMOVE_VERBS
    for verb in verbs:
        for description in ("the violin", "a heavy rain shower falling on a roof", "violin music"):
            assert round_trips(verb.format(d=description), task, description), verb


# --- rewording an instruction --------------------------------------------------------------------------
def _record(tags: list[list[str]], instructions: list[InstructionRef]) -> MixtureRecord:
    sources = [SourceRef(clip_id=f"c{i}", path=f"{i}.wav", gain=1.0, tags=t) for i, t in enumerate(tags)]
    return MixtureRecord("m", "hsm_tss", "train", 1.0, 16000, sources, instructions, snr_db=0.0)


def _vocabulary(name: str) -> set[str]:
    words = wording.CLASS_WORDS[name]
    return set().union(*map(_words, words.nouns + words.descriptors + words.actions)) | _words(name)


def test_reword_keeps_the_task_target_and_described_source():
    extract = InstructionRef("extract", "extract the violin", "violin", [0])
    remove = InstructionRef("remove", "remove the rain", "rain", [0])
    record = _record([["violin"], ["rain"]], [extract, remove])
    common = {"the", "a", "an", "sound", "of", "music", "from", "part", "playing", "falling", "on", "steady"}
    changed = 0
    rng = np.random.default_rng(5)
    for _ in range(300):
        for instruction, own, other in ((extract, "violin", "rain"), (remove, "rain", "violin")):
            new = wording.reword(instruction, record, rng)
            assert (new.task, new.target) == (instruction.task, instruction.target)
            assert round_trips(new.text, new.task, new.description)
            words = _words(new.description) - common
            assert words <= _vocabulary(own) | {"sounds"} and not words & (_vocabulary(other) - _vocabulary(own))
            changed += new != instruction
    assert 0.65 * 600 < changed < 0.85 * 600  # KEEP_TEMPLATE (0.25) of them keep the template wording


def test_reword_is_reproducible_and_falls_back_when_it_cannot_parse_back(monkeypatch):
    instruction = InstructionRef("extract", "extract the violin", "violin", [0])
    record = _record([["violin"], ["rain"]], [instruction])
    first = [wording.reword(instruction, record, np.random.default_rng(s)) for s in range(20)]
    assert first == [wording.reword(instruction, record, np.random.default_rng(s)) for s in range(20)]
    monkeypatch.setattr(wording, "phrase", lambda name, rng: "the violin and no rain")  # splits into two tasks
    assert all(wording.reword(instruction, record, np.random.default_rng(s)) == instruction for s in range(20))
    untagged = _record([[], ["rain"]], [instruction])
    monkeypatch.undo()
    assert all(wording.reword(instruction, untagged, np.random.default_rng(s)) == instruction for s in range(20))


def test_other_tags_get_a_frame_around_the_tag():
    rng = np.random.default_rng(2)
    phrases = {wording.phrase("dog barking", rng) for _ in range(50)}
    assert "dog barking" in phrases and all("dog barking" in p for p in phrases) and len(phrases) > 2


# --- data.train.wording --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    records = []
    for i, name in enumerate(("violin", "rain", "man speaking", "piano")):
        wave = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * np.arange(16000) / 16000)
        soundfile.write(str(folder / f"{i}.wav"), wave.astype(np.float32), 16000, subtype="FLOAT")
        records.append(ClipRecord(f"c{i}", f"{i}.wav", 1.0, 16000, [name], captions.CAPTIONS[name], "train"))
    write_jsonl(folder / "train.jsonl", records)
    return folder / "train.jsonl"


def _section(manifest, **extra):
    base = dict(mixtures=None, shards=None, clips=str(manifest), protocol="hsm_tss", length=40, seconds=1.0,
                instruction=None, sources=False)  # fmt: skip
    return SimpleNamespace(**{**base, **extra})


def test_grammar_wording_changes_descriptions_only(clips):
    templates = dataset_from_config(_section(clips), "train", 16000, None, 0)
    grammar = dataset_from_config(_section(clips, wording="grammar"), "train", 16000, None, 0)
    captioned = set().union(*map(set, captions.CAPTIONS.values())) | set(captions.CAPTIONS)
    new = 0
    for i in range(len(templates)):
        a, b = templates[i], grammar[i]
        assert a["task"] == b["task"] and np.array_equal(a["mixture"], b["mixture"])
        assert np.array_equal(a["target"], b["target"])
        new += b["description"] not in captioned and "the " + b["description"] not in captioned
    assert new > len(templates) // 2
    assert [grammar[i]["description"] for i in range(5)] == [grammar[i]["description"] for i in range(5)]


def test_wording_values_are_checked(clips):
    with pytest.raises(SepkitError, match="'data.train.wording': 'fancy' is not one of templates, grammar"):
        dataset_from_config(_section(clips, wording="fancy"), "train", 16000, None, 0)
    with pytest.raises(SepkitError, match="data.val: augment and wording are for training data only"):
        dataset_from_config(_section(clips, wording="grammar"), "val", 16000, None, 0)
