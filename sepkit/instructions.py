"""Turn free-text user instructions into (task, description) pairs.

A text-queried separator needs two things from an instruction: *what* sound is
meant (the description, used as the text query) and *whether* to keep it or take
it out (the task). ``RuleBasedInstructionParser`` finds both with a small table
of phrases, no model involved::

    >>> RuleBasedInstructionParser().parse("Please extract the piano and remove the drums!")
    [Instruction(task='extract', description='piano'), Instruction(task='remove', description='drums')]
    >>> describe(RuleBasedInstructionParser().parse("voice and whistle, no wind or rumble"))
    "extract 'voice'; extract 'whistle'; remove 'wind'; remove 'rumble'"
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import NoReturn

from sepkit.errors import SepkitError

TASKS = ("extract", "remove")

ACCEPTED_FORMS = (
    "'extract X' (or isolate, keep (only), separate (out), give me, get, I want, I'd like, pull out, only X); "
    "'remove X' (or delete, mute, suppress, get rid of, filter out, cancel, eliminate, take out, cut out); "
    "'... without X' (or no X, minus X, everything except X); "
    "a bare description 'a dog barking' means extract it; "
    "join sounds with and, or, ',', plus, but: 'keep the speech but remove the music and the wind'"
)

_EXTRACT_PHRASES = (
    "extract",
    "isolate",
    "keep",
    "keep only",
    "only keep",
    "separate",
    "separate out",
    "give me",
    "get",
    "get me",
    "i want",
    "i need",
    "i'd like",
    "i would like",
    "pull out",
    "bring out",
    "enhance",
    "retain",
    "preserve",
    "only",
)
_REMOVE_PHRASES = (
    "remove",
    "delete",
    "mute",
    "suppress",
    "get rid of",
    "filter out",
    "cancel",
    "cancel out",
    "eliminate",
    "erase",
    "exclude",
    "take out",
    "cut out",
    "without",
    "no",
    "not",
    "minus",
    "with no",
    "everything except",
    "everything but",
    "all except",
    "all but",
)
_CONNECTOR_PHRASES = (
    ",",
    "and",
    "or",
    "plus",
    "but",
    "then",
    "also",
    "as well as",
    "along with",
    "together with",
)
_FILLER_PHRASES = (
    "please",
    "kindly",
    "just",
    "can you",
    "could you",
    "would you",
    "will you",
    "i want you to",
    "i would like you to",
    "i'd like you to",
    "i want to",
    "i would like to",
    "i'd like to",
    "i need to",
    "i need you to",
    "help me",
    "thanks",
    "thank you",
)
# "only" right after another verb ("remove only the drums") is just emphasis.
_WEAK_MARKERS = frozenset({"only"})

_PHRASES: dict[tuple[str, ...], str] = {}
for _kind, _phrases in (
    ("extract", _EXTRACT_PHRASES),
    ("remove", _REMOVE_PHRASES),
    ("connector", _CONNECTOR_PHRASES),
    ("filler", _FILLER_PHRASES),
):
    for _phrase in _phrases:
        _PHRASES[tuple(_phrase.split())] = _kind
_LONGEST_PHRASE = max(len(key) for key in _PHRASES)

_ARTICLES = frozenset({"a", "an", "the", "some", "any"})
_TOKEN = re.compile(r"[.,;:!?/]|[\w'-]+")
# Context that says where the sound is, not what it is: "from the mixture", "in this recording", "out of my mix".
_CONTEXT_PREPOSITIONS = frozenset({"from", "in"})
_CONTEXT_DETERMINERS = frozenset({"this", "that", "these", "those", "my", "our", "your"})
_CONTEXT_NOUNS = frozenset(
    {"mixture", "mix", "recording", "audio", "clip", "track", "song", "file", "signal", "input", "sample", "excerpt"}
)
_SOUND = frozenset({"sound", "sounds"})
# How much of the user's text an error message quotes.
_QUOTED_CHARACTERS = 80


class InstructionError(SepkitError):
    """An instruction the parser cannot understand (a ``SepkitError``: the CLI prints it and exits 2)."""


@dataclass(frozen=True)
class Instruction:
    """One thing to do: ``task`` is "extract" or "remove"; ``description`` is the sound, e.g. "dog barking"."""

    task: str
    description: str


class InstructionParser(ABC):
    """Turns a user instruction into one or more ``Instruction`` (task, description).

    A registered component kind (``instruction_parser``), so an LLM-backed parser can
    replace the rule-based one from a recipe. Subclasses define a ``Config`` dataclass.
    """

    @dataclass
    class Config:
        pass

    def __init__(self, config=None) -> None:
        self.config = config

    @abstractmethod
    def parse(self, text: str) -> list[Instruction]:
        """'extract the piano and remove the drums' -> [extract 'piano', remove 'drums'] as Instructions."""


class RuleBasedInstructionParser(InstructionParser):
    """Parse instructions with a fixed table of verbs, negations and connectors.

    * A verb ("extract", "keep only", "remove", "get rid of", ...) or negation
      ("without", "no", "minus", ...) sets the task for every sound that follows,
      until the next verb or negation. Sounds are separated by "and", "or", ",",
      "&", "plus", "but".
    * Text before any verb is extracted, so a bare caption ("a dog barking") is an
      extraction query.
    * Case, punctuation, articles (a, an, the, some, any), politeness ("please",
      "could you") and context ("from the mixture", "in this recording") are
      ignored; "the sound of X" and "X sound(s)" become "X".
    * Repeated instructions are kept once, in first-seen order.

    >>> RuleBasedInstructionParser().parse("Keep the speech but get rid of the music from the recording.")
    [Instruction(task='extract', description='speech'), Instruction(task='remove', description='music')]

    Limitations: the connector words always split, so "drum and bass" becomes
    "drum" and "bass", and "rock and roll music" becomes "rock" and "roll music".
    Other context than the listed one stays in the description ("separate the
    piano from the drums" extracts "piano from drums"), and postfix forms such as
    "drums removed" are not understood (they are extracted).
    """

    def parse(self, text: str) -> list[Instruction]:
        """Return the instructions in ``text`` in order; raise ``InstructionError`` if there are none."""
        if not isinstance(text, str):
            _fail(f"an instruction must be text, not {type(text).__name__}")
        if not text.strip():
            _fail("the instruction is empty")
        instructions: dict[Instruction, None] = {}  # an ordered set: repeats are dropped in linear time
        for task, verb, items in _segments(_drop_context(_tokenize(text))):
            descriptions = [d for d in (_clean(item) for item in items) if d]
            if not descriptions and verb is not None:
                _fail(f"{verb!r} in {_quote(text)} is not followed by a sound to {task}")
            for description in descriptions:
                instructions.setdefault(Instruction(task, description))
        if not instructions:
            _fail(f"no sound is described in {_quote(text)}")
        return list(instructions)


def describe(instructions: list[Instruction]) -> str:
    """Render instructions on one line, e.g. ``"extract 'piano'; remove 'drums'"``.

    >>> describe([Instruction("extract", "piano"), Instruction("remove", "drums")])
    "extract 'piano'; remove 'drums'"
    """
    return "; ".join(f"{i.task} {i.description!r}" for i in instructions)


def _quote(text: str) -> str:
    """``text`` for an error message: quoted, escaped onto one line, and shortened if long."""
    return repr(text if len(text) <= _QUOTED_CHARACTERS else text[: _QUOTED_CHARACTERS - 20] + "...")


def _fail(problem: str) -> NoReturn:
    raise InstructionError(f"cannot understand the instruction: {problem}. Accepted forms: {ACCEPTED_FORMS}")


def _tokenize(text: str) -> list[str]:
    """Lower-case words, with every separating punctuation mark turned into ","."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("&", " and ").replace("+", " plus ")
    tokens = []
    for token in _TOKEN.findall(text):
        token = "," if token in ".,;:!?/" else token.strip("'-")
        if token:
            tokens.append(token)
    return tokens


def _drop_context(tokens: list[str]) -> list[str]:
    """Drop "from the mixture", "in this recording", "out of my mix", ... (articles anywhere inside).

    Done on the tokens, before verbs are looked for, so that the words around the context are
    read as they will be in the description ("i from the mix want" is "i want"). Nested context
    ("in in mix mix") goes too: each context noun closes the context that opened last.
    """
    kept: list[str] = []
    for token in tokens:
        kept.append(token)
        if token not in _CONTEXT_NOUNS and not (token.endswith("s") and token[:-1] in _CONTEXT_NOUNS):
            continue
        start = _skip_articles(kept, len(kept) - 2)
        if start >= 0 and kept[start] in _CONTEXT_DETERMINERS:
            start = _skip_articles(kept, start - 1)
        if start >= 0 and kept[start] in _CONTEXT_PREPOSITIONS:
            del kept[start:]
        elif start >= 1 and kept[start] == "of":
            out = _skip_articles(kept, start - 1)
            if out >= 0 and kept[out] == "out":
                del kept[out:]
    return kept


def _skip_articles(tokens: list[str], index: int) -> int:
    """The index of the last token at or before ``index`` that is not an article (-1 if none)."""
    while index >= 0 and tokens[index] in _ARTICLES:
        index -= 1
    return index


def _phrase_at(tokens: list[str], position: int) -> tuple[str, tuple[str, ...], int]:
    """The longest phrase starting at ``position``: (kind, its words, tokens it takes).

    Articles inside a phrase are passed over ("i the want" is "i want"), as ``_clean`` drops them
    from descriptions; otherwise the words of a description could make a phrase when parsed
    again from ``describe``'s output. Not a phrase: ("word", (token,), 1).
    """
    if tokens[position] in _ARTICLES:  # no phrase starts with one
        return "word", (tokens[position],), 1
    words: list[str] = []
    ends: list[int] = []
    index = position
    while index < len(tokens) and len(words) < _LONGEST_PHRASE:
        if words and tokens[index] in _ARTICLES:
            index += 1
            continue
        words.append(tokens[index])
        index += 1
        ends.append(index)
    for length in range(len(words), 0, -1):
        phrase = tuple(words[:length])
        if phrase in _PHRASES:
            return _PHRASES[phrase], phrase, ends[length - 1] - position
    return "word", (tokens[position],), 1


def _segments(tokens: list[str]) -> list[tuple[str, str | None, list[list[str]]]]:
    """Split tokens into ``(task, verb, items)``; the first segment has verb None (bare text)."""
    segments: list[tuple[str, str | None, list[list[str]]]] = [("extract", None, [[]])]
    has_words = False  # whether the last segment has a word yet
    position = 0
    while position < len(tokens):
        kind, phrase, taken = _phrase_at(tokens, position)
        position += taken
        task, verb, items = segments[-1]
        if kind == "word":
            items[-1].append(phrase[0])
            has_words = True
        elif kind in ("connector", "filler"):
            # A filler ends a description too: "dog please barking" is not the sound "dog barking".
            if items[-1]:
                items.append([])
        elif kind in TASKS:
            name = " ".join(phrase)
            if has_words:
                segments.append((kind, name, [[]]))
                has_words = False
            elif not (name in _WEAK_MARKERS and verb is not None):
                # Two verbs in a row ("only remove", "keep everything except"): the later one wins.
                segments[-1] = (kind, name, [[]])
    return segments


def _clean(words: list[str]) -> str:
    """Drop articles and "sound of": ["the", "sound", "of", "a", "dog"] -> "dog".

    Repeats go too ("sound of sound of dog", "dog sound sound"), so cleaning a clean description
    changes nothing and ``describe``'s output parses back to the same instructions.
    """
    words = [word for word in words if word not in _ARTICLES]
    start = 0
    while len(words) - start > 2 and words[start] in _SOUND and words[start + 1] == "of":
        start += 2
    words = words[start:]
    while len(words) > 1 and words[-1] in _SOUND:
        words.pop()
    return " ".join(words)
