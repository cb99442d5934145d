"""Tests for sepkit.instructions: the rule-based instruction parser."""

import dataclasses

import pytest

from sepkit.errors import SepkitError
from sepkit.instructions import (
    ACCEPTED_FORMS,
    TASKS,
    Instruction,
    RuleBasedInstructionParser,
    describe,
)


def E(description):
    return Instruction("extract", description)


def R(description):
    return Instruction("remove", description)


def parse(text):
    return RuleBasedInstructionParser().parse(text)


EXTRACT_PHRASINGS = [
    "extract the violin",
    "isolate the violin",
    "keep the violin",
    "keep only the violin",
    "only keep the violin",
    "separate the violin",
    "separate out the violin",
    "give me the violin",
    "get the violin",
    "get me the violin",
    "I want the violin",
    "I need the violin",
    "I'd like the violin",
    "I would like the violin",
    "pull out the violin",
    "bring out the violin",
    "enhance the violin",
    "retain the violin",
    "preserve the violin",
    "only the violin",
    "just the violin",
    "give me only the violin",
]

REMOVE_PHRASINGS = [
    "remove the violin",
    "delete the violin",
    "mute the violin",
    "suppress the violin",
    "get rid of the violin",
    "filter out the violin",
    "cancel the violin",
    "cancel out the violin",
    "eliminate the violin",
    "erase the violin",
    "exclude the violin",
    "take out the violin",
    "cut out the violin",
    "without the violin",
    "no violin",
    "not the violin",
    "minus the violin",
    "remove only the violin",
    "only remove the violin",
    "keep everything except the violin",
    "everything but the violin",
    "all but the violin",
    "I want to remove the violin",
    "I would like you to remove the violin",
]


@pytest.mark.parametrize("text", EXTRACT_PHRASINGS)
def test_extraction_phrasings(text):
    assert parse(text) == [E("violin")]


@pytest.mark.parametrize("text", REMOVE_PHRASINGS)
def test_removal_phrasings(text):
    assert parse(text) == [R("violin")]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("violin", [E("violin")]),
        ("a dog barking", [E("dog barking")]),
        ("The Sound of a Dog Barking", [E("dog barking")]),
        ("dog barking sound", [E("dog barking")]),
        ("people talking sounds", [E("people talking")]),
        ("sound", [E("sound")]),
        ("some birds chirping in the distance", [E("birds chirping in distance")]),
        ("hi-hat", [E("hi-hat")]),
        ("a man's voice", [E("man's voice")]),
    ],
)
def test_bare_noun_phrases_are_extracted(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Extract the piano",
        "EXTRACT THE PIANO!",
        "extract piano.",
        "  extract   a   piano  ",
        "extract an piano?",
        "extract some piano",
        "extract any piano",
        "'piano'",
        "\u2018piano\u2019",
        "extract the piano, please",
        "Please extract the piano",
        "Can you extract the piano?",
        "could you please extract the piano",
        "would you kindly extract the piano, thanks",
        "I would like you to extract the piano",
        "i'd like you to extract the piano. thank you!",
        "I want you to extract the piano",
        "just extract the piano",
        "extract the piano from the mixture",
        "extract the piano from this recording",
        "extract the piano from the audio",
        "extract the piano from the clip",
        "extract the piano from the track",
        "extract the piano in the song",
        "extract the piano out of the mix",
        "extract the piano sound",
        "extract the sound of the piano",
    ],
)
def test_case_punctuation_articles_fillers_and_context_are_ignored(text):
    assert parse(text) == [E("piano")]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("extract the piano and remove the drums", [E("piano"), R("drums")]),
        ("voice and whistle, no wind or rumble", [E("voice"), E("whistle"), R("wind"), R("rumble")]),
        ("remove the dog and the cat", [R("dog"), R("cat")]),
        ("keep the speech but remove the music", [E("speech"), R("music")]),
        ("extract the violin without the piano", [E("violin"), R("piano")]),
        ("speech with no music", [E("speech"), R("music")]),
        ("keep the speech but not the music", [E("speech"), R("music")]),
        ("remove the dog, the cat & the bird plus the cow", [R("dog"), R("cat"), R("bird"), R("cow")]),
        ("piano + drums", [E("piano"), E("drums")]),
        ("guitar/bass", [E("guitar"), E("bass")]),
        ("remove the hum; keep the vocals", [R("hum"), E("vocals")]),
        ("Remove the hum. Keep the vocals.", [R("hum"), E("vocals")]),
        ("remove the drums and then extract the bass", [R("drums"), E("bass")]),
        ("isolate the flute as well as the oboe", [E("flute"), E("oboe")]),
        ("keep the flute along with the oboe", [E("flute"), E("oboe")]),
        ("remove the dog from the mixture and the cat", [R("dog"), R("cat")]),
        (
            "Could you please get rid of the wind noise from the recording and keep the birds?",
            [R("wind noise"), E("birds")],
        ),
        ("remove the drums and keep the bass, minus the guitar", [R("drums"), E("bass"), R("guitar")]),
        # Known limitation: connector words always split a description.
        ("rock and roll music", [E("rock"), E("roll music")]),
        ("drum and bass", [E("drum"), E("bass")]),
    ],
)
def test_compound_instructions_in_order(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("extract the piano and the piano", [E("piano")]),
        ("piano, Piano, PIANO!", [E("piano")]),
        ("remove the drums and extract the piano and remove the drums", [R("drums"), E("piano")]),
        ("keep the piano, remove the piano", [E("piano"), R("piano")]),
    ],
)
def test_duplicates_are_dropped_keeping_first_order(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "the instruction is empty"),
        ("   ", "the instruction is empty"),
        ("\t\n", "the instruction is empty"),
        ("!!!", "no sound is described in '!!!'"),
        ("please", "no sound is described in 'please'"),
        ("the", "no sound is described in 'the'"),
        (", and ,", "no sound is described in ', and ,'"),
        ("remove", "'remove' in 'remove' is not followed by a sound to remove"),
        ("extract", "'extract' in 'extract' is not followed by a sound to extract"),
        ("extract the", "'extract' in 'extract the' is not followed by a sound to extract"),
        ("Get rid of.", "'get rid of' in 'Get rid of.' is not followed by a sound to remove"),
        (
            "extract the piano and remove",
            "'remove' in 'extract the piano and remove' is not followed by a sound to remove",
        ),
        (
            "extract the remove the drums",
            "'extract' in 'extract the remove the drums' is not followed by a sound to extract",
        ),
    ],
)
def test_unparseable_instructions_raise(text, problem):
    with pytest.raises(SepkitError) as caught:
        parse(text)
    message = str(caught.value)
    assert problem in message
    assert ACCEPTED_FORMS in message


@pytest.mark.parametrize("value", [None, 5, 2.5, b"extract the piano", ["piano"]])
def test_non_string_input_raises(value):
    with pytest.raises(SepkitError) as caught:
        parse(value)
    message = str(caught.value)
    assert f"an instruction must be text, not {type(value).__name__}" in message
    assert ACCEPTED_FORMS in message


def test_accepted_forms_fit_on_one_line():
    assert "\n" not in ACCEPTED_FORMS
    for word in ("extract", "remove", "without", "and"):
        assert word in ACCEPTED_FORMS


def test_tasks_and_instruction_type():
    assert TASKS == ("extract", "remove")
    instruction = Instruction("extract", "piano")
    assert (instruction.task, instruction.description) == ("extract", "piano")
    with pytest.raises(dataclasses.FrozenInstanceError):
        instruction.task = "remove"
    assert all(i.task in TASKS for i in parse("voice and whistle, no wind or rumble"))


@pytest.mark.parametrize(
    "instructions, expected",
    [
        ([], ""),
        ([E("piano")], "extract 'piano'"),
        ([E("piano"), R("drums")], "extract 'piano'; remove 'drums'"),
        ([R("dog barking"), E("man's voice")], "remove 'dog barking'; extract \"man's voice\""),
    ],
)
def test_describe(instructions, expected):
    assert describe(instructions) == expected


def test_parser_is_reusable():
    parser = RuleBasedInstructionParser()
    assert parser.parse("remove the drums") == [R("drums")]
    assert parser.parse("keep the drums") == [E("drums")]
