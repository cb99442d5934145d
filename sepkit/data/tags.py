"""One vocabulary of sound categories across corpora, so mixtures never pair two sources of the same kind.

Each corpus names its classes its own way: ESC-50 says ``chirping_birds``, AudioSet
``Bird vocalization, bird call, bird song``, FSD50K ``Male_speech_and_man_speaking``.
``TagNormaliser`` maps every such label to one **category** ("bird chirping",
"man speaking") with a synonym table, the job GPT-4 does in HSM-TSS's data pipeline::

    >>> n = TagNormaliser()
    >>> n.normalise("Rain on surface"), n.normalise("Violin, fiddle"), n.normalise("Male_speech_and_man_speaking")
    ('rain', 'violin', 'man speaking')
    >>> n.overlap(["man speaking"], ["Female speech, woman speaking"])   # both in group "speech"
    True

**Groups.** ``categories(tags)`` returns the categories plus their parent groups; two
sources overlap iff these sets intersect. Groups are kept few and narrow, because a
group makes all its members overlap (a "music" group would forbid mixing two
instruments). The built-in groups are ``GROUPS``:

- ``speech``: man speaking, woman speaking, child speaking, conversation (and "speech" itself)

That is the only one: "acoustic guitar" and "electric guitar", or "xylophone" and "marimba",
are different categories and may be mixed.

**Coarse labels** (``COARSE``: "music", "musical instrument", "guitar", "animal", "vehicle", ...)
are ancestors that FSD50K and AudioSet add to every clip. ``normalise_all`` drops
them when a clip has a more specific label, so a violin clip is tagged "violin"
and not also "music" (which would make every instrument clip overlap).

**Unknown labels** become their own category: lower-cased, punctuation stripped,
the first item of a comma list ("Accelerating, revving, vroom" -> "accelerating").

Recipes extend the table with ``TagNormaliser.from_yaml(path)`` or ``extend(mapping)``;
see ``extend`` for the mapping's form.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sepkit.errors import SepkitError

# category -> synonyms (matched after cleaning: lower case, "_" and "-" as spaces, no punctuation).
# fmt: off
SYNONYMS: dict[str, list[str]] = {
    # --- instruments (MUSIC / MUSIC-21 classes, sepkit-mini, AudioSet / FSD50K names) ---
    "accordion": ["accordian", "squeezebox"],
    "acoustic guitar": ["acoustic guitars", "classical guitar", "steel guitar", "spanish guitar"],
    "electric guitar": ["electric guitars", "distorted guitar"],
    "guitar": ["guitars"],
    "bass": ["bass guitar", "electric bass", "double bass", "contrabass", "upright bass", "bass guitars"],
    "cello": ["violoncello", "cellos"],
    "clarinet": ["clarinets", "bass clarinet"],
    "flute": ["flutes", "transverse flute", "piccolo"],
    "saxophone": ["sax", "alto saxophone", "tenor saxophone", "saxophones"],
    "trumpet": ["trumpets", "cornet", "bugle"],
    "tuba": ["tubas", "sousaphone"],
    "violin": ["fiddle", "violins", "violin fiddle"],
    "viola": ["violas"],
    "xylophone": ["xylophones"],
    "marimba": ["marimbas"],
    "glockenspiel": [],
    "vibraphone": ["vibes"],
    "oboe": ["oboes"],
    "piano": ["grand piano", "upright piano", "keyboard musical", "pianos", "electric piano"],
    "drum kit": ["drum set", "drumkit", "drums", "drum", "drummer", "snare drum", "bass drum", "drum kit drum set"],
    "church organ": ["pipe organ", "organ", "church organs", "hammond organ", "electronic organ"],
    "harp": ["harps", "lyre"],
    "erhu": ["chinese violin"],
    "bagpipe": ["bagpipes"],
    "banjo": ["banjos"],
    "bassoon": ["bassoons"],
    "congas": ["conga", "bongo"],
    "guzheng": ["zither"],
    "pipa": [],
    "ukulele": ["ukuleles"],
    "trombone": ["trombones"],
    "french horn": ["horn instrument"],
    "harmonica": ["harmonicas"],
    # --- speech ---
    "man speaking": ["male speech", "male speech man speaking", "man speaks", "man talks", "man talking",
                     "male voice", "male speaker", "men speaking", "men talking", "man speech"],
    "woman speaking": ["female speech", "female speech woman speaking", "woman speaks", "woman talks",
                       "woman talking", "female voice", "female speaker", "women speaking", "women talking"],
    "child speaking": ["child speech", "child speech kid speaking", "kid speaking", "child speaks", "child talks",
                       "children speaking", "kids talking"],
    "speech": ["speaking", "talking", "narration", "monologue", "someone speaking", "people talking", "person speaks",
               "person speaking", "people speaking"],
    "conversation": ["conversations", "chatter", "dialogue"],
    # --- environmental ---
    "rain": ["raindrop", "raindrops", "rain on surface", "rainfall", "drizzle", "downpour", "rain falls",
             "rain falling", "raining", "heavy rain", "light rain", "rain drops"],
    "wind": ["wind noise", "wind noise microphone", "gust", "gusts", "wind blows", "wind blowing", "windy",
             "strong wind", "gusting wind"],
    "engine idling": ["idling", "engine idle", "engine idles", "engine", "engine running", "motor idling",
                      "engine starting"],
    "siren": ["sirens", "police siren", "ambulance siren", "fire engine siren", "emergency vehicle",
              "police car siren", "civil defense siren", "siren wails"],
    "alarm beeping": ["beep", "beeping", "beep bleep", "alarm", "alarms", "alarm clock", "clock alarm", "beeps",
                      "smoke detector", "smoke alarm", "buzzer"],
    "telephone ringing": ["telephone", "phone ringing", "telephone bell ringing", "ringtone", "phone rings",
                          "telephone rings", "telephone dialing", "ringing phone", "phone"],
    "clock ticking": ["tick", "tick tock", "ticking", "clock tick", "clock", "clock ticks", "ticktock"],
    "knocking": ["knock", "knocks", "door knock", "door wood knock", "knocking on door", "knocking on a door"],
    "bird chirping": ["bird", "birds", "chirp", "chirping", "birdsong", "bird song", "bird call", "bird vocalization",
                      "chirping birds", "chirp tweet", "tweet", "birds chirping", "birds chirp", "bird chirps",
                      "birds singing", "bird sings", "birds tweeting"],
    "running water": ["water running", "stream", "water tap faucet", "faucet", "tap water", "water flowing",
                      "flowing water", "water tap", "brook", "creek", "water runs", "water flows", "trickle dribble",
                      "pouring water", "water pouring"],
    "dog barking": ["dog", "dogs", "bark", "barking", "dog barks", "dogs barking", "bow wow", "yip", "woof"],
    "thunder": ["thunderstorm", "thunder rumbles", "thunderclap"],
    "footsteps": ["footstep", "walk footsteps", "walking", "steps"],
    "crackling fire": ["fire crackling", "fire", "crackle", "campfire", "fireplace"],
    "applause": ["clapping", "applauding", "people clapping", "crowd applauding", "hands clapping"],
}
# fmt: on

GROUPS: dict[str, list[str]] = {
    "speech": ["man speaking", "woman speaking", "child speaking", "conversation"],
}

INSTRUMENTS: set[str] = {
    "accordion", "acoustic guitar", "electric guitar", "guitar", "bass", "cello", "clarinet", "flute", "saxophone",
    "trumpet", "tuba", "violin", "viola", "xylophone", "piano", "drum kit", "church organ", "harp", "erhu", "bagpipe",
    "banjo", "bassoon", "congas", "guzheng", "pipa", "ukulele", "trombone", "french horn", "harmonica", "marimba",
    "glockenspiel", "vibraphone", "oboe",
}  # fmt: skip

COARSE: set[str] = {
    "music", "musical instrument", "string instrument", "plucked string instrument", "bowed string instrument",
    "wind instrument", "wind instrument woodwind instrument", "woodwind instrument", "brass instrument", "percussion",
    "keyboard", "guitar", "animal", "domestic animals pets", "wild animals", "livestock farm animals working animals",
    "vehicle", "motor vehicle road", "human voice", "human sounds", "natural sounds", "sounds of things",
    "source ambiguous sounds", "channel environment and background",
    "domestic sounds home sounds", "mechanisms", "liquid", "environmental noise",
}  # fmt: skip

_PUNCT = re.compile(r"[^\w\s,']+|_")
_AND = re.compile(r"\s+and\s+")


def clean_label(label: str) -> str:
    """Lower-case; "_", "-" and punctuation -> spaces; commas kept: "Violin,_Fiddle" -> "violin, fiddle"."""
    text = _PUNCT.sub(" ", str(label).lower()).replace("'", "")
    return ", ".join(" ".join(part.split()) for part in text.split(",") if part.strip())


class TagNormaliser:
    """Maps corpus labels to categories; see the module docstring for groups and coarse labels.

    ``TagNormaliser()`` uses the built-in ``SYNONYMS``, ``GROUPS``, ``INSTRUMENTS`` and ``COARSE``;
    ``TagNormaliser(builtin=False)`` starts empty.
    """

    def __init__(self, builtin: bool = True) -> None:
        self._lookup: dict[str, str] = {}
        self._parents: dict[str, set[str]] = {}
        self.instruments: set[str] = set()
        self.coarse: set[str] = set()
        if builtin:
            self.extend({"synonyms": SYNONYMS, "groups": GROUPS, "instruments": INSTRUMENTS, "coarse": COARSE})

    # --- building the table --------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | os.PathLike | None) -> TagNormaliser:
        """The built-in table extended by the YAML file ``path`` (``None``: built-in only); see ``extend``."""
        normaliser = cls()
        if path is None:
            return normaliser
        import yaml

        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except OSError as exc:
            raise SepkitError(f"cannot read the synonym table {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise SepkitError(f"synonym table {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        return normaliser.extend(data or {}, where=str(path))

    def extend(self, mapping: Mapping[str, Any], where: str = "synonym table") -> TagNormaliser:
        """Add entries in place and return ``self``. Two forms are accepted::

            {"synonyms": {"rain": ["drizzle"]}, "groups": {"water": ["rain", "running water"]},
             "instruments": ["erhu"], "coarse": ["sounds of things"]}
            {"rain": ["drizzle"], "sitar": []}            # flat form: synonyms only

        A synonym already mapped to another category is moved to the new one (recipes win).
        """
        if not isinstance(mapping, Mapping):
            raise SepkitError(f"{where}: expected a mapping of category -> synonyms, got {type(mapping).__name__}")
        sections = {"synonyms", "groups", "instruments", "coarse"}
        if not (set(mapping) & sections):
            mapping = {"synonyms": mapping}
        unknown = sorted(set(mapping) - sections)
        if unknown:
            raise SepkitError(f"{where}: unknown section(s) {', '.join(unknown)}; use {', '.join(sorted(sections))}")
        for category, synonyms in (mapping.get("synonyms") or {}).items():
            self._add_category(category, synonyms, where)
        for group, members in (mapping.get("groups") or {}).items():
            group = self._add_category(group, [], where)
            for member in _as_list(members, f"{where}: group {group!r}"):
                member = self._add_category(member, [], where)
                self._parents.setdefault(member, set()).add(group)
        self.instruments |= {self.normalise(x) for x in _as_list(mapping.get("instruments"), f"{where}: instruments")}
        self.coarse |= {clean_label(x) for x in _as_list(mapping.get("coarse"), f"{where}: coarse")}
        return self

    def _add_category(self, category: str, synonyms, where: str) -> str:
        name = clean_label(category).replace(",", "")
        if not name:
            raise SepkitError(f"{where}: empty category name")
        self._lookup[name] = name
        for synonym in _as_list(synonyms, f"{where}: synonyms of {name!r}"):
            self._lookup[clean_label(synonym).replace(",", "")] = name
        return name

    # --- using it ------------------------------------------------------------------
    def normalise(self, label: str) -> str:
        """One label -> its category: "Rain on surface" -> "rain", "Male speech, man speaking" -> "man speaking"."""
        text = clean_label(label)
        known = self._known(text.replace(",", ""))
        if known:
            return known
        pieces = text.split(", ")
        for piece in pieces:  # AudioSet comma lists: the first known synonym wins
            known = self._known(piece) or self._known_all(_AND.split(piece))
            if known:
                return known
        return pieces[0]

    def normalise_all(self, labels: Iterable[str]) -> list[str]:
        """Labels -> distinct categories in first-seen order; coarse ones are dropped if any other is left."""
        result: list[str] = []
        for label in labels:
            if str(label).strip():
                category = self.normalise(label)
                if category and category not in result:
                    result.append(category)
        specific = [c for c in result if c not in self.coarse]
        return specific or result

    def categories(self, tags: Iterable[str]) -> set[str]:
        """Normalised categories of ``tags`` plus their parent groups; sources overlap iff these intersect."""
        result: set[str] = set()
        for category in self.normalise_all(tags):
            result.add(category)
            result |= self._parents.get(category, set())
        return result

    def overlap(self, a: Iterable[str], b: Iterable[str]) -> bool:
        """Whether two tag lists share a category or group (an untagged source overlaps nothing)."""
        return bool(self.categories(a) & self.categories(b))

    def is_instrument(self, tags: Iterable[str]) -> bool:
        """Whether ``tags`` is non-empty and every category in it is a musical instrument."""
        categories = self.normalise_all(tags)
        return bool(categories) and all(c in self.instruments for c in categories)

    def find_in_text(self, text: str) -> list[str]:
        """Categories whose name or synonym occurs as whole words in a caption, in order of occurrence.

        A keyword spotter standing in for HSM-TSS's GPT-4 tagging: "A man talks while rain falls"
        -> ["man speaking", "rain"]. Longer phrases win over the words inside them.
        """
        words = clean_label(text).replace(",", " ").split()
        found: list[str] = []
        longest = 5
        i = 0
        while i < len(words):
            for length in range(min(longest, len(words) - i), 0, -1):
                phrase = " ".join(words[i : i + length])
                category = self._lookup.get(phrase)
                if category:
                    if category not in found:
                        found.append(category)
                    i += length
                    break
            else:
                i += 1
        return found

    def _known(self, text: str) -> str | None:
        if text in self._lookup:
            return self._lookup[text]
        if text.endswith("s") and text[:-1] in self._lookup:  # plain plurals: "violins"
            return self._lookup[text[:-1]]
        return None

    def _known_all(self, pieces: list[str]) -> str | None:
        """FSD50K writes AudioSet's commas as "_and_": the pieces must all name one category."""
        if len(pieces) < 2:
            return None
        found = {self._known(piece) for piece in pieces}
        return found.pop() if len(found) == 1 and None not in found else None


def _as_list(value, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return [str(v) for v in value]
    raise SepkitError(f"{where}: expected a list of names, got {type(value).__name__}")
