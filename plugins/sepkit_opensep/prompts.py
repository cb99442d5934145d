"""The few-shot prompt of OpenSep's LLM source parser (arXiv 2409.19270, sec. 3.2) and the parsing of its answer.

OpenSep prompts an instruction-tuned LLM (LLaMA-3-8B-Instruct) with hand-written examples
(5-shot) that turn a mixture caption into its sources, each with detailed audio properties.
The paper's exact wording is not reproduced here: ``FEW_SHOT_EXAMPLES`` and ``INSTRUCTION``
are written in its spirit (caption -> one line per source, ``- <source>: <properties>``),
which is also the format ``parse_source_lines`` reads back.
"""

from __future__ import annotations

import re

from sepkit.source_finding import ParsedSource

INSTRUCTION = (
    "You are an expert in acoustics. An audio caption describes a recording that mixes several sounds. "
    "List every distinct sound source in the caption, one per line, as '- <source>: <description>', where "
    "the description gives the detailed audio properties of that source alone (timbre, pitch, loudness, "
    "rhythm, texture, duration). Do not list a source twice, do not invent sources the caption does not "
    "imply, and write nothing else."
)

FEW_SHOT_EXAMPLES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "a man speaks while a dog barks in the background",
        (
            (
                "man speaking",
                "a man speaking, a low-pitched adult male voice with clear words at a steady conversational pace",
            ),
            (
                "dog barking",
                "a dog barking, short loud sharp barks with a rough timbre repeated at irregular intervals",
            ),
        ),
    ),
    (
        "heavy rain falls on a roof as thunder rumbles",
        (
            ("rain", "heavy rain, dense broadband hiss of many drops hitting a hard surface, steady and continuous"),
            ("thunder", "thunder, very low-frequency rumbling with a loud crack, slowly decaying over several seconds"),
        ),
    ),
    (
        "a violin and a piano play a slow classical piece",
        (
            (
                "violin",
                "a violin, a bowed string instrument with a bright singing tone playing a sustained high melody",
            ),
            ("piano", "a piano, struck strings with percussive attacks and decaying chords across a wide pitch range"),
        ),
    ),
    (
        "birds chirp near a flowing stream",
        (
            ("bird chirping", "birds chirping, short high-pitched whistles and trills in quick irregular bursts"),
            (
                "running water",
                "running water, a continuous bubbling and gurgling broadband noise with soft fluctuations",
            ),
        ),
    ),
    (
        "an engine idles while a siren wails and people clap",
        (
            ("engine idling", "an idling engine, a low steady rumbling hum with a regular pulsing rhythm"),
            ("siren", "a siren, a loud tonal wail sweeping up and down in pitch in a repeating cycle"),
            ("applause", "applause, many hands clapping, a dense crackling noise of short impulsive claps"),
        ),
    ),
)

CAPTION_LABEL = "Caption:"
SOURCES_LABEL = "Sources:"


def format_sources(sources: tuple[tuple[str, str], ...] | list[ParsedSource]) -> str:
    pairs = [(s.name, s.description) if isinstance(s, ParsedSource) else s for s in sources]
    return "\n".join(f"- {name}: {description}" for name, description in pairs)


def build_prompt(caption: str, shots: int = len(FEW_SHOT_EXAMPLES)) -> str:
    """The instruction, ``shots`` worked examples and the caption, ending with "Sources:" for the model to complete."""
    parts = [INSTRUCTION, ""]
    for example_caption, sources in FEW_SHOT_EXAMPLES[:shots]:
        parts += [f"{CAPTION_LABEL} {example_caption}", SOURCES_LABEL, format_sources(sources), ""]
    parts += [f"{CAPTION_LABEL} {' '.join(caption.split())}", SOURCES_LABEL]
    return "\n".join(parts)


_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)]|source\s*\d+\s*[:.)-])\s*(.+?)\s*$", re.IGNORECASE)


def parse_source_lines(text: str) -> list[ParsedSource]:
    """The model's completion -> sources, in order, each name once.

    Reads list items (``- x: y``, ``* x: y``, ``1. x: y``, ``Source 1: x: y``) until a line starting
    a new example ("Caption:" / "Sources:") or a blank line after the list. ``name`` is the text before
    the first colon (the whole item if there is none), lower-cased; ``description`` is the text after it
    (the examples start it with the source itself: "a dog barking, short loud sharp barks ..."), else the name.
    """
    sources: list[ParsedSource] = []
    started = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.lower().startswith((CAPTION_LABEL.lower(), SOURCES_LABEL.lower())):
            if started:
                break
            continue
        if not stripped:
            if started:
                break
            continue
        match = _ITEM.match(stripped)
        item = match.group(1) if match else (stripped if not started else None)
        if item is None:
            break
        name, sep, properties = item.partition(":")
        name = " ".join(name.strip(" .\"'").lower().split())
        properties = " ".join(properties.split()).strip(" .")
        if not name:
            continue
        started = True
        description = properties if sep and properties else name
        if all(s.name != name for s in sources):
            sources.append(ParsedSource(name, description))
    return sources
