"""Training-time rewording of instructions: a synonym and template grammar (recipe ``data.train.wording: grammar``).

A model trained on one corpus's captions and ten instruction templates learns those words; asked
for the same sound in other words it does worse. ``reword(instruction, record, rng)`` redraws the
wording of one ``InstructionRef`` of a training mixture: a verb template (``EXTRACT_VERBS`` /
``REMOVE_VERBS``, more than ``sepkit.data.mixing``'s templates) around a description built, per
described source, from the grammar of its sepkit-mini class (``CLASS_WORDS``: nouns, descriptors and
actions written for sepkit, e.g. "a mellow bowed cello playing low notes") in a frame ("the sound
of ...", "... music"). Sources of other classes get their tag in a frame ("the sound of the dog").

What stays: the task, the target and the sources described (an extraction describes its target
sources, a removal the others). The new text must parse back with the rule parser to that task and
to the descriptions the new description alone parses to (``sepkit.data.mixing.round_trips``);
otherwise the instruction keeps its template wording. A share (``KEEP_TEMPLATE``) of instructions
keeps it anyway, so the corpus's captions are still seen.

The grammar's words are chosen to stay apart from held-out wording tests: none of the paraphrases
that the repository's benchmarks ask with appears here, nor any word of theirs that the corpus's
captions and templates lack (a test checks the lists and drawn outputs against that file; this
module never reads it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from sepkit.data.manifest import InstructionRef, MixtureRecord
from sepkit.data.mini import captions
from sepkit.errors import SepkitError

WORDINGS = ("templates", "grammar")
"""``data.train.wording``: "templates" (the mixing protocol's own wording, unchanged) or "grammar" (this module)."""

KEEP_TEMPLATE = 0.25  # share of instructions that keep the protocol's wording (captions, tags)
ATTEMPTS = 4  # grammar draws tried before keeping the template wording

EXTRACT_VERBS = (
    "extract {d}", "isolate {d}", "keep {d}", "keep only {d}", "only keep {d}", "separate {d}",
    "separate out {d}", "give me {d}", "get me {d}", "get {d}", "I want {d}", "I need {d}", "I'd like {d}",
    "I would like {d}", "pull out {d}", "bring out {d}", "enhance {d}", "retain {d}", "preserve {d}",
    "please extract {d}", "could you isolate {d}", "can you pull out {d}", "just keep {d}",
    "help me extract {d}", "extract {d} from this clip", "isolate {d} in the track",
    "keep only {d} from the audio", "would you separate out {d}", "I'd like you to isolate {d}", "only {d}",
)  # fmt: skip
REMOVE_VERBS = (
    "remove {d}", "delete {d}", "mute {d}", "suppress {d}", "get rid of {d}", "filter out {d}",
    "cancel {d}", "cancel out {d}", "eliminate {d}", "erase {d}", "exclude {d}", "take out {d}",
    "cut out {d}", "without {d}", "no {d}", "minus {d}", "everything except {d}", "everything but {d}",
    "all but {d}", "please remove {d}", "could you mute {d}", "can you get rid of {d}",
    "remove {d} from this recording", "delete {d} in the clip",
    "I want you to remove {d}", "just mute {d}", "kindly suppress {d}", "erase {d} from the audio",
    "help me filter out {d}", "exclude {d} from the mix",
)  # fmt: skip


@dataclass(frozen=True)
class ClassWords:
    """How a class's sound can be named.

    ``nouns``: what makes the sound, with the article a countable noun takes ("a squeezebox") or
    none for a mass or plural noun ("rainfall", "birds"); ``descriptors``: adjectives that can stand
    before the noun; ``actions``: what follows the noun ("playing a waltz", "falling on a roof").
    """

    nouns: tuple[str, ...]
    descriptors: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()


_PLAY = ("playing", "being played", "playing a melody", "playing a tune")
_SPEAK = ("speaking", "talking", "saying a sentence", "reading a sentence", "giving a short speech", "chatting")

CLASS_WORDS: dict[str, ClassWords] = {
    # instruments
    "accordion": ClassWords(("an accordion", "a squeezebox", "a button accordion"),
                            ("wheezy", "folksy", "reedy", "lively"), _PLAY + ("playing a waltz", "playing a polka")),
    "acoustic guitar": ClassWords(("an acoustic guitar", "a classical guitar", "a nylon string guitar",
                                   "a steel string guitar"),
                                  ("gentle", "fingerpicked", "warm", "mellow"),
                                  _PLAY + ("being picked", "playing chords", "picking a melody")),
    "cello": ClassWords(("a cello", "a solo cello"), ("deep", "warm", "mellow", "bowed", "rich"),
                        _PLAY + ("playing low notes", "playing a slow melody")),
    "clarinet": ClassWords(("a clarinet", "a solo clarinet"), ("woody", "smooth", "hollow", "mellow"),
                           _PLAY + ("playing a melody line",)),
    "flute": ClassWords(("a flute", "a wooden flute", "an alto flute", "a solo flute"),
                        ("airy", "breathy", "soft", "high", "light"), _PLAY + ("trilling", "playing a light melody")),
    "saxophone": ClassWords(("a saxophone", "a sax", "an alto sax", "a soprano sax", "a baritone sax"),
                            ("smooth", "jazzy", "honking", "raspy", "sultry"),
                            _PLAY + ("improvising", "playing a jazz line", "playing a smooth phrase")),
    "trumpet": ClassWords(("a trumpet", "a muted trumpet", "a cornet"), ("bright", "brassy", "blaring", "clear"),
                          _PLAY + ("blowing a tune", "playing loud notes")),
    "tuba": ClassWords(("a tuba", "a sousaphone"), ("deep", "low", "heavy", "brassy"),
                       _PLAY + ("playing a bass line", "puffing low notes", "playing a march")),
    "violin": ClassWords(("a violin", "a solo violin"), ("high", "bowed", "sweet", "singing", "lyrical"),
                         _PLAY + ("playing a lyrical line", "playing a slow air")),
    "xylophone": ClassWords(("a xylophone",), ("bright", "wooden", "plinky", "cheerful"),
                            _PLAY + ("playing quick notes", "tinkling a melody")),
    "piano": ClassWords(("a piano", "a grand piano", "a solo piano"), ("soft", "bright", "gentle", "classical"),
                        _PLAY + ("playing chords", "being played softly")),
    "drum kit": ClassWords(("a drum kit", "a drum set", "drums", "a trap set"), ("punchy", "steady", "loud", "tight"),
                           ("playing", "playing a beat", "playing a groove", "playing a rock beat", "pounding")),
    "church organ": ClassWords(("a church organ", "a pipe organ", "an organ"),
                               ("sustained", "solemn", "majestic", "grand"),
                               _PLAY + ("playing chords", "holding a chord", "playing a hymn")),
    "harp": ClassWords(("a harp", "a pedal harp"), ("plucked", "gentle", "shimmering", "delicate"),
                       _PLAY + ("playing arpeggios", "being plucked")),
    "bass": ClassWords(("a bass guitar", "a bass", "a fretless bass"), ("low", "deep", "plucked", "thumping", "funky"),
                       _PLAY + ("playing a bass line", "playing a groove")),
    "trombone": ClassWords(("a trombone", "a solo trombone"), ("brassy", "mellow", "low", "warm"),
                           _PLAY + ("blowing low notes", "playing a melody")),
    "electric guitar": ClassWords(("an electric guitar", "a distorted guitar", "a lead guitar"),
                                  ("overdriven", "distorted", "crunchy", "clean", "amplified"),
                                  _PLAY + ("playing a riff", "playing a solo", "playing power chords")),
    "harmonica": ClassWords(("a harmonica", "a mouth organ"), ("reedy", "plaintive", "bright", "wavering"),
                            _PLAY + ("bending notes",)),
    "marimba": ClassWords(("a marimba",), ("soft", "mellow", "wooden", "resonant"),
                          _PLAY + ("playing rolling notes",)),
    "banjo": ClassWords(("a banjo",), ("twangy", "bright", "plucky", "rapid"),
                        _PLAY + ("being picked", "playing a fast tune", "picking a quick pattern")),
    "oboe": ClassWords(("an oboe", "a solo oboe"), ("nasal", "reedy", "plaintive", "pastoral"),
                       _PLAY + ("playing a pastoral tune",)),
    # speech
    "man speaking": ClassWords(("a man", "a male voice", "a male speaker", "a guy", "a gentleman"),
                               ("calm", "adult", "quiet", "clear"), _SPEAK),
    "woman speaking": ClassWords(("a woman", "a female voice", "a female speaker", "a lady"),
                                 ("calm", "adult", "quiet", "clear"), _SPEAK),
    # environmental sounds
    "rain": ClassWords(("rain", "rainfall", "raindrops", "a rain shower"), ("light", "heavy", "steady", "gentle"),
                       ("falling", "pattering", "falling on a roof", "hitting a window")),
    "wind": ClassWords(("wind", "a breeze", "gusts of wind"), ("strong", "gusty", "cold", "howling"),
                       ("blowing", "howling", "rushing past", "whooshing")),
    "engine idling": ClassWords(("an engine", "a car engine", "a motor", "an idling engine", "a truck engine"),
                                ("rumbling", "idle", "low", "diesel"),
                                ("idling", "running", "ticking over", "humming")),
    "siren": ClassWords(("a siren", "a police siren", "a fire truck siren", "an emergency siren"),
                        ("loud", "distant", "wailing", "piercing"), ("wailing", "sounding", "blaring", "going by")),
    "alarm beeping": ClassWords(("an alarm", "a smoke alarm", "an alarm clock", "a beeper"),
                                ("electronic", "repeated", "piercing", "insistent"),
                                ("beeping", "going off", "sounding")),
    "telephone ringing": ClassWords(("a telephone", "a phone", "an old telephone", "a desk phone"),
                                    ("loud", "old-fashioned", "distant"), ("ringing", "ringing loudly")),
    "clock ticking": ClassWords(("a clock", "a mechanical clock", "a grandfather clock", "a pocket watch"),
                                ("steady", "loud", "quiet", "old"), ("ticking", "tick tocking", "ticking steadily")),
    "knocking": ClassWords(("knocking", "knocks", "a knock", "door knocking"), ("loud", "firm", "repeated", "soft"),
                           ("on a door", "at the door", "on wood", "on a window")),
    "bird chirping": ClassWords(("a bird", "birds", "a small bird", "a sparrow", "a robin"),
                                ("little", "cheerful", "tiny"), ("chirping", "tweeting", "singing", "twittering")),
    "running water": ClassWords(("water", "a stream", "a tap", "a brook", "a fountain"),
                                ("fast", "gentle", "flowing", "trickling"),
                                ("running", "flowing", "trickling", "gushing", "pouring")),
    "thunder": ClassWords(("thunder", "a thunderclap", "a thunderstorm"), ("distant", "loud", "deep", "rolling"),
                          ("rumbling", "crashing", "booming")),
    "crackling fire": ClassWords(("a fire", "a campfire", "a fireplace", "a bonfire", "burning logs"),
                                 ("crackling", "roaring", "small", "cozy"), ("crackling", "burning", "spitting")),
    "applause": ClassWords(("applause", "clapping", "an audience clapping", "a crowd applauding", "handclaps"),
                           ("loud", "polite", "enthusiastic", "warm")),
    "footsteps": ClassWords(("footsteps", "steps", "walking steps"), ("slow", "heavy", "quick", "light"),
                            ("on a wooden floor", "on gravel", "in a hallway", "on a hard floor", "going by")),
}  # fmt: skip

# Frames around a description; "{i}": an instrument's plain name ("violin music"), "{a}": its article.
FRAMES = ("{d}", "{d}", "{d}", "the sound of {d}")
INSTRUMENT_FRAMES = ("{i} music", "the sound of {a} {i}", "music from {a} {i}", "{a} {i} part", "{i} playing")
INSTRUMENT_FRAME_SHARE = 0.2  # of instrument descriptions drawn from INSTRUMENT_FRAMES
_VOWELS = "aeiou"


def _article(noun: str) -> tuple[str, str]:
    """("a" | "an" | "", bare noun): the article a noun entry carries."""
    for article in ("a ", "an "):
        if noun.startswith(article):
            return article.strip(), noun[len(article) :]
    return "", noun


def _indefinite(next_word: str) -> str:
    return "an" if next_word[:1].lower() in _VOWELS else "a"


def _choice(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def phrase(name: str, rng: np.random.Generator) -> str:
    """One description of a source of class ``name`` (a sepkit-mini class or any tag), drawn from the grammar."""
    words = CLASS_WORDS.get(name)
    if words is None:  # a tag sepkit has no grammar for: the tag in a frame
        return _choice(rng, ("{d}", "the {d}", "the sound of {d}", "the sound of the {d}", "{d} sounds")).format(d=name)
    if name in captions.FAMILIES["instrument"] and rng.random() < INSTRUMENT_FRAME_SHARE:
        return _choice(rng, INSTRUMENT_FRAMES).format(i=name, a=_indefinite(name))
    article, noun = _article(_choice(rng, words.nouns))
    if words.descriptors and rng.random() < 0.5:
        noun = f"{_choice(rng, words.descriptors)} {noun}"
    pick = rng.random()
    if article:  # a countable noun: "a"/"an" (by the next word), "the", rarely none
        determiner = _indefinite(noun) if pick < 0.5 else ("the" if pick < 0.9 else "")
    else:  # a mass or plural noun: none, or "the"
        determiner = "the" if pick < 0.3 else ""
    text = f"{determiner} {noun}".strip()
    if words.actions and rng.random() < 0.6:
        text = f"{text} {_choice(rng, words.actions)}"
    return _choice(rng, FRAMES).format(d=text)


def described_sources(instruction: InstructionRef, num_sources: int) -> list[int]:
    """The sources an instruction's description names: its target (extract) or the other sources (remove)."""
    if instruction.task == "extract":
        return list(instruction.target)
    return [i for i in range(num_sources) if i not in instruction.target]


def reword(instruction: InstructionRef, record: MixtureRecord, rng: np.random.Generator) -> InstructionRef:
    """``instruction`` (of ``record``) with a grammar wording, or unchanged (see the module docstring).

    The described sources' classes are their first tags (sepkit-mini's class names); an instruction
    describing an untagged source keeps its wording.
    """
    from sepkit.data.mixing import round_trips

    if rng.random() < KEEP_TEMPLATE:
        return instruction
    described = described_sources(instruction, len(record.sources))
    names = [record.sources[i].tags[0] if record.sources[i].tags else "" for i in described]
    if not names or not all(names):
        return instruction
    verbs = EXTRACT_VERBS if instruction.task == "extract" else REMOVE_VERBS
    for _ in range(ATTEMPTS):
        description = " and ".join(phrase(name, rng) for name in names)
        text = _choice(rng, verbs).format(d=description)
        if round_trips(text, instruction.task, description):
            return dataclasses.replace(instruction, text=text, description=description)
    return instruction


def check_wording(value, where: str) -> str:
    """``data.<split>.wording`` checked: one of ``WORDINGS`` (None: "templates"); SepkitError otherwise."""
    wording = "templates" if value is None else value
    if wording not in WORDINGS:
        raise SepkitError(
            f"bad value for '{where}.wording': {value!r} is not one of {', '.join(WORDINGS)}; fix the recipe"
        )
    return str(wording)
