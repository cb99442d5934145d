"""Class tags and caption templates of sepkit-mini.

Every class has exactly one primary tag, a plain lower-case word or phrase equal to the class
name (``"violin"``, ``"acoustic guitar"``, ``"man speaking"``, ``"rain"``), and at least three
captions, written the way AudioCaps / Clotho describe a sound. Every clip of a class carries all
of its class's captions. ``FAMILIES`` groups the classes (instrument / speech / environment).
"""

from __future__ import annotations

import re

INSTRUMENT_CAPTIONS: dict[str, list[str]] = {
    "accordion": [
        "an accordion playing a melody",
        "someone playing the accordion",
        "accordion music",
        "a squeezebox playing a folk tune",
    ],
    "acoustic guitar": [
        "an acoustic guitar being played",
        "someone playing the acoustic guitar",
        "acoustic guitar music",
        "a guitarist picking notes on an acoustic guitar",
    ],
    "cello": [
        "a cello playing a melody",
        "someone playing the cello",
        "cello music",
        "a low bowed string instrument playing",
    ],
    "clarinet": [
        "a clarinet playing a melody",
        "someone playing the clarinet",
        "clarinet music",
        "a woodwind instrument playing a tune",
    ],
    "flute": [
        "a flute playing a melody",
        "someone playing the flute",
        "flute music",
        "a high breathy woodwind melody",
    ],
    "saxophone": [
        "a saxophone playing a melody",
        "someone playing the saxophone",
        "saxophone music",
        "a sax playing a jazzy tune",
    ],
    "trumpet": [
        "a trumpet playing a melody",
        "someone playing the trumpet",
        "trumpet music",
        "a bright brass instrument playing",
    ],
    "tuba": [
        "a tuba playing low notes",
        "someone playing the tuba",
        "tuba music",
        "a deep brass instrument playing a bass line",
    ],
    "violin": [
        "a violin playing a melody",
        "someone playing the violin",
        "violin music",
        "a solo violin being bowed",
    ],
    "xylophone": [
        "a xylophone playing a melody",
        "someone playing the xylophone",
        "xylophone music",
        "mallets striking wooden bars",
    ],
    "piano": [
        "a piano playing",
        "someone playing the piano",
        "piano music",
        "a pianist playing chords and a melody",
    ],
    "drum kit": [
        "a drum kit playing a beat",
        "someone playing the drums",
        "drums and cymbals playing a rhythm",
        "a drummer playing a groove",
    ],
    "church organ": [
        "a church organ playing",
        "someone playing the pipe organ",
        "organ music",
        "sustained organ chords",
    ],
    "harp": [
        "a harp being played",
        "someone plucking the harp",
        "harp music",
        "arpeggios played on a harp",
    ],
    "bass": [
        "a bass guitar playing a bass line",
        "someone playing the bass",
        "bass guitar music",
        "low plucked bass notes",
    ],
    "trombone": [
        "a trombone playing a melody",
        "someone playing the trombone",
        "trombone music",
        "a low brass instrument playing a tune",
    ],
    "electric guitar": [
        "an electric guitar being played",
        "someone playing the electric guitar",
        "electric guitar music",
        "an amplified guitar playing",
    ],
    "harmonica": [
        "a harmonica playing a melody",
        "someone playing the harmonica",
        "harmonica music",
        "a mouth organ playing a tune",
    ],
    "marimba": [
        "a marimba playing a melody",
        "someone playing the marimba",
        "marimba music",
        "soft mallets on wooden bars",
    ],
    "banjo": [
        "a banjo being played",
        "someone picking a banjo",
        "banjo music",
        "a twangy plucked string instrument",
    ],
    "oboe": [
        "an oboe playing a melody",
        "someone playing the oboe",
        "oboe music",
        "a nasal double reed instrument playing",
    ],
}

SPEECH_CAPTIONS: dict[str, list[str]] = {
    "man speaking": [
        "a man speaking",
        "a man talks",
        "a male voice saying a sentence",
        "a man reading aloud",
    ],
    "woman speaking": [
        "a woman speaking",
        "a woman talks",
        "a female voice saying a sentence",
        "a woman reading aloud",
    ],
}

ENVIRONMENT_CAPTIONS: dict[str, list[str]] = {
    "rain": [
        "rain falling",
        "the sound of rain",
        "raindrops pattering on a surface",
        "steady rainfall",
    ],
    "wind": [
        "wind blowing",
        "the sound of wind gusting",
        "strong wind howling",
        "a gusty breeze",
    ],
    "engine idling": [
        "an engine idling",
        "a car engine running at idle",
        "the rumble of an idling motor",
        "a vehicle engine ticking over",
    ],
    "siren": [
        "a siren wailing",
        "an emergency vehicle siren",
        "a police siren sounding",
        "the sound of a siren",
    ],
    "alarm beeping": [
        "an alarm beeping",
        "a repeated electronic beep",
        "a smoke alarm going off",
        "an alarm clock beeping",
    ],
    "telephone ringing": [
        "a telephone ringing",
        "a phone rings",
        "the sound of a ringing telephone",
        "an old phone bell ringing",
    ],
    "clock ticking": [
        "a clock ticking",
        "the ticking of a clock",
        "a mechanical clock tick tocking",
        "steady ticking",
    ],
    "knocking": [
        "someone knocking on a door",
        "knocking",
        "knuckles rapping on wood",
        "a knock at the door",
    ],
    "bird chirping": [
        "a bird chirping",
        "birds singing",
        "the sound of birdsong",
        "small birds tweeting",
    ],
    "running water": [
        "water running",
        "a stream of flowing water",
        "water pouring from a tap",
        "the babbling of a brook",
    ],
    "thunder": [
        "thunder rumbling",
        "a thunderclap",
        "the rumble of distant thunder",
        "a thunderstorm",
    ],
    "crackling fire": [
        "a fire crackling",
        "the crackle of burning wood",
        "a campfire burning",
        "logs crackling in a fireplace",
    ],
    "applause": [
        "people clapping",
        "applause from an audience",
        "a crowd applauding",
        "hands clapping",
    ],
    "footsteps": [
        "footsteps",
        "someone walking",
        "a person walking on a hard floor",
        "the sound of steps",
    ],
}

FAMILIES: dict[str, list[str]] = {
    "instrument": list(INSTRUMENT_CAPTIONS),
    "speech": list(SPEECH_CAPTIONS),
    "environment": list(ENVIRONMENT_CAPTIONS),
}

CAPTIONS: dict[str, list[str]] = {**INSTRUMENT_CAPTIONS, **SPEECH_CAPTIONS, **ENVIRONMENT_CAPTIONS}

# One primary tag per class: the class name itself.
TAGS: dict[str, list[str]] = {name: [name] for name in CAPTIONS}


def class_slug(name: str) -> str:
    """Folder and id form of a class name: ``"acoustic guitar"`` -> ``"acoustic-guitar"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def family_of(name: str) -> str:
    """``"instrument"``, ``"speech"`` or ``"environment"``; KeyError for an unknown class."""
    for family, names in FAMILIES.items():
        if name in names:
            return family
    raise KeyError(name)
