"""Property-based tests of the rule-based instruction parser (sepkit.instructions).

* Any text (unicode, control characters, very long strings, streams of the parser's own
  vocabulary) gives instructions or the parser's own error, ``InstructionError`` (a
  ``SepkitError``), whose message is one line of bounded length; never another exception.
* Instructions written in the accepted forms with random target phrases parse to what was
  written (for phrases of ordinary words), and parsing what ``describe`` prints gives the same
  instructions back (for any phrases).
"""

from __future__ import annotations

import time

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sepkit.errors import SepkitError  # noqa: E402
from sepkit.instructions import (  # noqa: E402
    _CONNECTOR_PHRASES,
    _EXTRACT_PHRASES,
    _FILLER_PHRASES,
    _REMOVE_PHRASES,
    TASKS,
    Instruction,
    InstructionError,
    RuleBasedInstructionParser,
    describe,
)

PARSER = RuleBasedInstructionParser()
ARTICLES = ("a", "an", "the", "some", "any")
CONTEXT_WORDS = (
    "from",
    "in",
    "out",
    "of",
    "this",
    "that",
    "these",
    "those",
    "my",
    "our",
    "your",
    "mixture",
    "mix",
    "recording",
    "audio",
    "clip",
    "track",
    "song",
    "file",
    "signal",
    "input",
    "sample",
    "excerpt",
    "mixes",
    "recordings",
    "sound",
    "sounds",
)
PHRASES = _EXTRACT_PHRASES + _REMOVE_PHRASES + _CONNECTOR_PHRASES + _FILLER_PHRASES
VOCABULARY = sorted({w for phrase in PHRASES for w in phrase.split()} | set(ARTICLES) | set(CONTEXT_WORDS))


def _parse(text):
    """Parse ``text``; None for the parser's own error (checked to be one bounded line)."""
    try:
        instructions = PARSER.parse(text)
    except InstructionError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message and len(message) < 2000, message[:300]
        return None
    assert instructions and all(isinstance(i, Instruction) for i in instructions)
    for instruction in instructions:
        assert instruction.task in TASKS
        assert instruction.description and instruction.description == " ".join(instruction.description.split())
    assert len(set(instructions)) == len(instructions)
    return instructions


def test_instruction_error_is_a_sepkit_error():
    assert issubclass(InstructionError, SepkitError)
    with pytest.raises(InstructionError):
        PARSER.parse("")


# --- any text ----------------------------------------------------------------------------------

VOCABULARY_STREAM = st.lists(
    st.one_of(
        st.sampled_from(VOCABULARY + list(PHRASES)),
        st.sampled_from(list(".,;:!?/&+'\"-\u2019\u2018")),
        st.text(alphabet="abcxyz'-", min_size=1, max_size=5),
    ),
    max_size=40,
).map(" ".join)


@given(text=st.one_of(st.text(), st.text(alphabet=st.characters(codec="utf-8"), max_size=300), VOCABULARY_STREAM))
def test_any_text_parses_or_raises_the_parsers_error(text):
    _parse(text)


@given(text=st.text(alphabet=st.characters(categories=("Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "P", "S")), max_size=200))
def test_control_and_punctuation_only(text):
    _parse(text + " violin")
    _parse(text)


def test_very_long_instructions_are_fast():
    """Thousands of sounds, a megabyte of one word, or of punctuation: each well under a second or two."""
    texts = [
        ", ".join(f"w{i}" for i in range(20000)),
        "remove " + " and ".join(f"w{i}" for i in range(20000)),
        "x" * 1_000_000,
        "!" * 200_000,
        "the " * 100_000,
        "in " * 50_000 + "mix " * 50_000,
        "sound of " * 50_000 + "dog" + " sound" * 50_000,
        "i the " * 50_000 + "want " * 10,
        "keep " * 100_000,
    ]
    for text in texts:
        start = time.perf_counter()
        _parse(text)
        assert time.perf_counter() - start < 5, text[:40]
    assert len(PARSER.parse(texts[0])) == 20000


def test_error_message_quotes_long_text_briefly():
    with pytest.raises(InstructionError) as caught:
        PARSER.parse("!" * 100_000)
    assert len(str(caught.value)) < 2000 and "..." in str(caught.value)


# --- accepted forms with random target phrases --------------------------------------------------

BARE_FORMS = ("{}", "the sound of the {}", "{} sound", "a {} in the recording")  # extraction before any verb
EXTRACT_FORMS = BARE_FORMS + (
    "extract {}",
    "isolate the {}",
    "keep only the {}",
    "separate out {}",
    "give me the {}",
    "I want the {}",
    "I'd like a {}",
    "pull out the {}",
    "only the {}",
    "keep the {} from the mixture",
    "extract the sound of {}",
    "keep the {} sounds",
)
REMOVE_FORMS = (
    "remove the {}",
    "delete {}",
    "mute the {}",
    "get rid of the {}",
    "filter out some {}",
    "cancel the {}",
    "eliminate {}",
    "take out the {}",
    "without the {}",
    "no {}",
    "minus the {}",
    "everything except the {}",
    "remove the {} from this recording",
)
JOINS = (" and ", ", ", " or ", " plus ", " but ", "; ", ". ", " & ", " + ", " / ", " as well as ")
FILLERS = ("", "please ", "could you ", "can you please ", "I would like you to ")

# Words of no meaning to the parser, in several scripts.
ORDINARY_WORD = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzéüßçøåñабвгдαβγ日本語0123456789"),
    min_size=1,
    max_size=8,
).filter(lambda w: w not in VOCABULARY and not w.isdigit())
ANY_WORD = st.one_of(
    ORDINARY_WORD,
    st.sampled_from(VOCABULARY),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=6),
)


def _render(parts, extract_first_bare, filler, joins):
    """Text in the accepted forms: [(task, words, form index)] joined with connectors."""
    pieces = []
    for n, (task, words, form) in enumerate(parts):
        forms = EXTRACT_FORMS if task == "extract" else REMOVE_FORMS
        template = forms[form % len(forms)]
        if task == "extract" and (n > 0 or not extract_first_bare) and template in BARE_FORMS:
            template = "extract the {}"  # a bare phrase is an extraction only before any verb
        pieces.append(template.format(" ".join(words)))
    text = pieces[0]
    for n, piece in enumerate(pieces[1:]):
        text += joins[n % len(joins)] + piece
    return filler + text


PARTS = st.lists(
    st.tuples(st.sampled_from(TASKS), st.lists(ORDINARY_WORD, min_size=1, max_size=3), st.integers(0, 15)),
    min_size=1,
    max_size=4,
)


@given(
    parts=PARTS,
    bare=st.booleans(),
    filler=st.sampled_from(FILLERS),
    joins=st.lists(st.sampled_from(JOINS), min_size=1, max_size=3),
)
def test_accepted_forms_parse_to_what_was_written(parts, bare, filler, joins):
    text = _render(parts, bare, filler, joins)
    expected = []
    for task, words, _ in parts:
        instruction = Instruction(task, " ".join(words).lower())
        if instruction not in expected:
            expected.append(instruction)
    assert PARSER.parse(text) == expected, text


@given(
    parts=st.lists(
        st.tuples(st.sampled_from(TASKS), st.lists(ANY_WORD, min_size=1, max_size=4), st.integers(0, 15)),
        min_size=1,
        max_size=4,
    ),
    bare=st.booleans(),
    filler=st.sampled_from(FILLERS),
    joins=st.lists(st.sampled_from(JOINS), min_size=1, max_size=3),
)
def test_describe_then_parse_gives_the_same_instructions(parts, bare, filler, joins):
    instructions = _parse(_render(parts, bare, filler, joins))
    assume(instructions is not None)
    assert PARSER.parse(describe(instructions)) == instructions


@given(text=VOCABULARY_STREAM)
def test_describe_then_parse_for_any_parsed_text(text):
    instructions = _parse(text)
    assume(instructions is not None)
    assert PARSER.parse(describe(instructions)) == instructions


@pytest.mark.parametrize(
    "text",
    [
        "i the want dog",  # an article between the words of a phrase ("i want")
        "i from the mix want dog",  # context between them
        "i please want dog",  # a filler between them
        "sound of sound of dog",
        "dog sound sound",
        "x from in mix mix",
        "x out the of the mix y",
        "in in mix mix violin",
        "keep the only violin",
    ],
)
def test_describe_round_trip_examples(text):
    instructions = PARSER.parse(text)
    assert PARSER.parse(describe(instructions)) == instructions
