"""Instrument clips: random scale-based music rendered with tinysoundfont from the General MIDI
soundfont ``TimGM6mb.sf2`` that ``pretty_midi`` ships, or from other General MIDI soundfonts.

A clip is planned, then rendered:

- ``plan(name, rng) -> dict``: draws everything that characterises the clip (GM program, style,
  tempo, key, scale, loudness and a ``melody_seed``) from a seeded ``numpy.random.Generator``;
  the dict is JSON-serialisable and becomes the clip's provenance.
- ``compose(params, seconds) -> list[Note]``: the notes, drawn from ``melody_seed`` alone (a
  random walk over the scale in the instrument's comfortable register, arpeggios and strums over
  a chord progression, bass lines, or drum-kit patterns of kick/snare/hats/toms).
- ``render(params, seconds, sample_rate) -> float32 [samples]``: mono audio at ``sample_rate``
  (16 kHz in sepkit-mini); a pure function of ``params`` (and of the soundfont file it names).

Other soundfonts (``sepkit data mini --soundfont PATH``): ``open_soundfont(path)`` checks a file and
``with_soundfont(name, params, soundfont)`` re-targets a planned clip to it: the clip's provenance then
names the soundfont by file name and sha256 (``soundfont``, ``soundfont_sha256``), never by path. A
soundfont that lacks the drawn preset falls back, explicitly, to the first voice of the instrument it
has (``program_fallback_from`` records the drawn program; ``general_midi_fallbacks`` lists them before a
build starts); one that has no voice of some instrument is refused. Refused too: FluidR3-derived
soundfonts (kept unseen so that independent held-out tests stay meaningful) and the soundfonts held out
for a sepkit-mini test set (``HELD_OUT_SOUNDFONTS``).

tinysoundfont's pip package declares ``pyaudio`` (for live playback) as a dependency, which does not
build everywhere; sepkit only renders offline, so install it with ``pip install --no-deps tinysoundfont``.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

from sepkit.errors import SepkitError

SOUNDFONT_NAME = "TimGM6mb.sf2"
DRUM_CHANNEL = 9
DRUM_BANK = 128

# Soundfonts sepkit-mini never trains on: sha256 -> (file name, Debian package, the test set it is held out for).
HELD_OUT_SOUNDFONTS: dict[str, tuple[str, str, str]] = {
    "39bff96eee3dcfbce9665e3968701b894ca2136c7d0bd580281b2bbf59e80392": (
        "OPL-3_FM_128M.sf2",
        "opl3-soundfont",
        "mini-unseen",
    ),
}
# FluidR3 and its derivatives (Debian's fluid-soundfont-gm/-gs, fluidr3mono-gm-soundfont,
# musescore-general-soundfont*) stay unseen by sepkit-mini, by file name or by the name in the file.
_FLUIDR3 = re.compile(r"fluid|musescore[ _-]?general", re.IGNORECASE)

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "natural minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
}
# The seven-note scale whose triads harmonise each scale (for chords, arpeggios and bass lines).
_PARENT = {"major pentatonic": "major", "minor pentatonic": "natural minor", "blues": "natural minor"}
KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 0, 4), (1, 4, 0, 0), (0, 6, 5, 4))

# Note lengths in beats and their weights, per rhythmic character.
RHYTHMS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fast": ((0.25, 0.5, 0.75, 1.0, 1.5), (3, 5, 1, 2, 0.5)),
    "medium": ((0.25, 0.5, 0.75, 1.0, 1.5, 2.0), (1, 4, 1, 4, 1, 2)),
    "slow": ((0.5, 1.0, 1.5, 2.0, 3.0), (2, 4, 1, 3, 1)),
}


@dataclass(frozen=True)
class Instrument:
    """One instrument class: GM ``voices`` as (program, lowest MIDI key, highest MIDI key), its styles.

    ``sustained``: notes are held for their written length (bowed, blown); otherwise they are struck
    or plucked and left to ring. ``drums``: ``voices`` are drum-kit presets of bank 128.
    """

    name: str
    voices: tuple[tuple[int, int, int], ...]
    styles: tuple[str, ...]
    rhythm: str = "medium"
    tempo: tuple[int, int] = (72, 150)
    sustained: bool = True
    drums: bool = False


INSTRUMENTS: dict[str, Instrument] = {
    i.name: i
    for i in (
        Instrument("accordion", ((21, 53, 84), (23, 53, 84)), ("melody", "chords")),
        Instrument("acoustic guitar", ((24, 40, 76), (25, 40, 76)), ("arpeggio", "strum", "melody"), sustained=False),
        Instrument("cello", ((42, 38, 69),), ("melody",), rhythm="slow", tempo=(60, 120)),
        Instrument("clarinet", ((71, 52, 84),), ("melody",)),
        Instrument("flute", ((73, 62, 91),), ("melody",)),
        Instrument("saxophone", ((64, 58, 86), (65, 51, 80), (66, 46, 75), (67, 38, 67)), ("melody",), tempo=(70, 160)),
        Instrument("trumpet", ((56, 55, 79),), ("melody",)),
        Instrument("tuba", ((58, 29, 55),), ("melody", "bassline"), rhythm="slow", tempo=(60, 120)),
        Instrument("violin", ((40, 57, 88),), ("melody",)),
        Instrument("xylophone", ((13, 65, 96),), ("melody", "arpeggio"), rhythm="fast", sustained=False),
        Instrument("piano", ((0, 36, 96), (1, 36, 96)), ("chords", "arpeggio", "melody"), sustained=False),
        Instrument(
            "drum kit",
            ((0, 35, 81), (8, 35, 81), (16, 35, 81), (32, 35, 81)),
            ("drums",),
            tempo=(80, 160),
            sustained=False,
            drums=True,
        ),
        Instrument("church organ", ((19, 36, 88),), ("chords", "melody"), rhythm="slow", tempo=(56, 100)),
        Instrument("harp", ((46, 36, 91),), ("arpeggio", "melody"), sustained=False),
        Instrument("bass", ((32, 28, 55), (33, 28, 55), (34, 28, 55)), ("bassline",), sustained=False),
        Instrument("trombone", ((57, 40, 70),), ("melody",), rhythm="slow"),
        Instrument(
            "electric guitar",
            ((27, 40, 81), (29, 40, 81), (30, 40, 81)),
            ("melody", "strum", "arpeggio"),
            sustained=False,
        ),
        Instrument("harmonica", ((22, 60, 86),), ("melody",)),
        Instrument("marimba", ((12, 45, 84),), ("melody", "arpeggio"), rhythm="fast", sustained=False),
        Instrument("banjo", ((105, 48, 81),), ("arpeggio", "strum"), rhythm="fast", sustained=False),
        Instrument("oboe", ((68, 58, 88),), ("melody",)),
    )
}


@dataclass(frozen=True)
class Note:
    """One note: onset and length in seconds, MIDI key, velocity 1-127."""

    start: float
    length: float
    key: int
    velocity: int


@dataclass(frozen=True)
class Soundfont:
    """A General MIDI soundfont file: ``path`` (where it is read, never recorded), ``sha256`` of its bytes,
    ``info``: the text fields of its INFO chunk (``INAM`` name, ``ICOP`` copyright, ``IENG`` engineer, ...)."""

    path: Path
    sha256: str
    info: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        """The file name: what a clip's provenance records."""
        return self.path.name

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def soundfont_path() -> Path:
    """Path of ``TimGM6mb.sf2`` inside the installed ``pretty_midi``; SepkitError if it is missing."""
    try:
        import pretty_midi
    except ImportError:
        raise SepkitError(
            "sepkit-mini renders instruments from the soundfont that pretty_midi ships; install it with "
            "`pip install pretty_midi`"
        ) from None
    path = Path(pretty_midi.__file__).parent / SOUNDFONT_NAME
    if not path.is_file():
        raise SepkitError(f"{path} is missing; reinstall pretty_midi with `pip install --force-reinstall pretty_midi`")
    return path


def _import_tinysoundfont():
    try:
        import tinysoundfont
    except ImportError:
        raise SepkitError(
            "sepkit-mini renders instruments with tinysoundfont; install it with "
            "`pip install --no-deps tinysoundfont` (--no-deps: its optional pyaudio dependency does not build here)"
        ) from None
    return tinysoundfont


@lru_cache(maxsize=2)
def _soundfont_bytes(path: Optional[str] = None) -> bytes:
    """The bytes of the soundfont at ``path`` (None: TimGM6mb); the two last used stay in memory."""
    return Path(path).read_bytes() if path is not None else soundfont_path().read_bytes()


def check_available() -> None:
    """Raise SepkitError (with the pip command that fixes it) unless the soundfont and tinysoundfont load."""
    tsf = _import_tinysoundfont()
    synth = tsf.Synth(samplerate=16000)
    synth.sfload(_soundfont_bytes())


def preset_name(program: int, drums: bool = False, path: Optional[str] = None) -> str:
    """The soundfont's name for a GM program (bank 0) or drum kit (bank 128); ``path`` None: TimGM6mb."""
    return _preset_names(path)[(DRUM_BANK if drums else 0, program)]


@lru_cache(maxsize=4)
def _preset_names(path: Optional[str] = None) -> dict[tuple[int, int], str]:
    """(bank, program) -> preset name of every GM melodic (bank 0) and drum (bank 128) preset the soundfont has."""
    tsf = _import_tinysoundfont()
    synth = tsf.Synth(samplerate=16000)
    sfid = synth.sfload(_soundfont_bytes(path))
    names = {}
    for bank in (0, DRUM_BANK):
        for program in range(128):
            name = synth.sfpreset_name(sfid, bank, program)
            if name:
                names[(bank, program)] = name
    return names


def info_fields(path: Path) -> dict[str, str]:
    """The text fields of an SF2 file's INFO list; SepkitError if the file is not a RIFF sfbk soundfont."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24 or head[:4] != b"RIFF" or head[8:12] != b"sfbk" or head[12:16] != b"LIST":
            raise SepkitError(
                f"--soundfont {path} is not an SF2 soundfont (no RIFF 'sfbk' header); give a General MIDI .sf2 file"
            )
        size = struct.unpack("<I", head[16:20])[0]
        data = f.read(min(size - 4, 1 << 20)) if head[20:24] == b"INFO" else b""  # size counts "INFO"
    fields, i = {}, 0
    while i + 8 <= len(data):
        key, n = struct.unpack("<4sI", data[i : i + 8])
        value = data[i + 8 : i + 8 + n]
        i += 8 + n + (n & 1)
        if key not in (b"ifil", b"iver"):
            text = value.split(b"\0", 1)[0].decode("latin-1").strip()
            if text:
                fields[key.decode("latin-1")] = text
    return fields


def default_soundfont() -> Soundfont:
    """TimGM6mb.sf2 from pretty_midi: what every clip is rendered from unless ``--soundfont`` adds others."""
    path = soundfont_path()
    return Soundfont(path, hashlib.sha256(_soundfont_bytes()).hexdigest(), info_fields(path))


def open_soundfont(path) -> Soundfont:
    """Check a ``--soundfont`` file and describe it; SepkitError naming the problem and the fix.

    Refused: a missing or non-SF2 file, one tinysoundfont cannot load, a FluidR3-derived soundfont,
    a soundfont held out for a test set (``HELD_OUT_SOUNDFONTS``).
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise SepkitError(f"--soundfont {path}: no such file; give the path of a General MIDI .sf2 soundfont")
    info = info_fields(path)
    if _FLUIDR3.search(path.name) or _FLUIDR3.search(info.get("INAM", "")):
        raise SepkitError(
            f"--soundfont {path.name} is FluidR3-derived ({info.get('INAM', path.name)}); sepkit-mini never renders "
            "from FluidR3 soundfonts, which stay unseen for independent held-out tests: use another one, e.g. "
            "Debian's csound-soundfont (docs/testsets.md)"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest in HELD_OUT_SOUNDFONTS:
        name, package, testset = HELD_OUT_SOUNDFONTS[digest]
        raise SepkitError(
            f"--soundfont {path.name} is {name} from Debian's {package}, held out for the test set {testset}: "
            "a corpus rendered from it would train on the test timbres; use another soundfont (docs/testsets.md)"
        )
    try:
        _preset_names(str(path))
    except SepkitError:
        raise
    except Exception as exc:
        raise SepkitError(f"--soundfont {path}: tinysoundfont cannot load it ({exc}); give a valid .sf2 file") from None
    return Soundfont(path, digest, info)


def general_midi_fallbacks(soundfont: Soundfont) -> dict[str, str]:
    """instrument -> which of its voices ``soundfont`` lacks and what it renders instead (empty: none lacks).

    SepkitError if the soundfont has no voice at all of some instrument (it is not a General MIDI set).
    """
    names = _preset_names(str(soundfont.path))
    fallbacks = {}
    for inst in INSTRUMENTS.values():
        bank = DRUM_BANK if inst.drums else 0
        missing = [p for p, _, _ in inst.voices if (bank, p) not in names]
        if len(missing) == len(inst.voices):
            raise SepkitError(
                f"--soundfont {soundfont.name} has no preset for {inst.name} (bank {bank}, programs "
                f"{', '.join(map(str, missing))}): it is not a General MIDI soundfont; give a GM .sf2"
            )
        if missing:
            used = _fallback_program(inst, names)
            fallbacks[inst.name] = (
                f"bank {bank} program(s) {', '.join(map(str, missing))} missing: rendered with program {used} instead"
            )
    return fallbacks


def _fallback_program(inst: Instrument, names: dict[tuple[int, int], str]) -> int:
    bank = DRUM_BANK if inst.drums else 0
    return next(p for p, _, _ in inst.voices if (bank, p) in names)


def with_soundfont(name: str, params: dict, soundfont: Soundfont) -> dict:
    """``params`` (from ``plan``) re-targeted to ``soundfont``: its file name and sha256, its preset name,
    and, if it lacks the planned preset, the instrument's first voice it has (``program_fallback_from``:
    the planned program). Everything else (melody, tempo, key, register, ...) is unchanged."""
    inst = INSTRUMENTS[name]
    names = _preset_names(str(soundfont.path))
    program = int(params["program"])
    extra = {}
    if (params["bank"], program) not in names:
        extra["program_fallback_from"] = program
        program = _fallback_program(inst, names)
    result = {}
    for key, value in params.items():
        result[key] = value
        if key == "soundfont":
            result[key] = soundfont.name
            result["soundfont_sha256"] = soundfont.sha256
    result["program"] = program
    result["preset"] = names[(params["bank"], program)]
    result.update(extra)
    return result


def plan(name: str, rng: np.random.Generator) -> dict:
    """Draw a clip's parameters for instrument ``name``: JSON-serialisable, the clip's provenance."""
    inst = INSTRUMENTS[name]
    program, low, high = inst.voices[int(rng.integers(len(inst.voices)))]
    scale = str(rng.choice(list(SCALES)))
    return {
        "generator": "tinysoundfont",
        "soundfont": SOUNDFONT_NAME,
        "bank": 128 if inst.drums else 0,
        "program": int(program),
        "preset": preset_name(program, inst.drums),
        "style": str(rng.choice(inst.styles)),
        "tempo_bpm": int(rng.integers(inst.tempo[0], inst.tempo[1] + 1)),
        "key": KEYS[int(rng.integers(12))],
        "scale": scale,
        "register": [int(low), int(high)],
        "velocity": int(rng.integers(64, 112)),
        "melody_seed": int(rng.integers(2**62)),
    }


def _scale_keys(params: dict, low: int, high: int, scale: str | None = None) -> np.ndarray:
    root = KEYS.index(params["key"])
    steps = SCALES[scale or params["scale"]]
    return np.array([k for k in range(low, high + 1) if (k - root) % 12 in steps])


def _chord(params: dict, degree: int, low: int) -> list[int]:
    """Root-position triad on scale ``degree`` of the parent scale, root at or above ``low``."""
    parent = SCALES[_PARENT.get(params["scale"], params["scale"])]
    root = KEYS.index(params["key"])
    pcs = [(root + parent[(degree + i) % 7] + 12 * ((degree + i) // 7)) for i in (0, 2, 4)]
    base = pcs[0] % 12
    bottom = low + (base - low) % 12
    return [bottom + (p - pcs[0]) for p in pcs]


def _velocity(rng: np.random.Generator, base: int, accent: bool, spread: float = 8.0) -> int:
    return int(np.clip(base + (10 if accent else 0) + rng.normal(0.0, spread), 25, 127))


def _melody(params, inst, rng, seconds, low, high, beat) -> list[Note]:
    keys = _scale_keys(params, low, high)
    values, weights = RHYTHMS[inst.rhythm]
    p = np.asarray(weights, float) / np.sum(weights)
    idx = int(rng.integers(len(keys) // 4, max(len(keys) // 4 + 1, 3 * len(keys) // 4)))
    steps = np.array([-4, -3, -2, -1, 0, 1, 2, 3, 4])
    step_p = np.array([0.3, 0.6, 2.0, 4.0, 0.8, 4.0, 2.0, 0.6, 0.3])
    step_p /= step_p.sum()
    legato = float(rng.uniform(0.8, 1.0))
    notes, t, pos, rested = [], float(rng.uniform(0.0, 0.12)), 0.0, False
    while t < seconds:
        dur = float(rng.choice(values, p=p)) * beat
        if notes and not rested and rng.random() < 0.1:  # a rest: at most one beat, never two in a row
            t += min(dur, beat)
            pos += min(dur, beat) / beat
            rested = True
            continue
        rested = False
        idx += int(rng.choice(steps, p=step_p))
        if idx < 0 or idx >= len(keys):  # reflect at the edges of the register
            idx = -idx if idx < 0 else 2 * (len(keys) - 1) - idx
            idx = int(np.clip(idx, 0, len(keys) - 1))
        length = dur * legato if inst.sustained else max(dur, float(rng.uniform(0.4, 1.2)))
        accent = abs(pos - round(pos)) < 1e-6 and round(pos) % 2 == 0
        notes.append(Note(t, length, int(keys[idx]), _velocity(rng, params["velocity"], accent)))
        t += dur
        pos += dur / beat
    return notes


def _progression(rng) -> tuple[int, ...]:
    return PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]


def _arpeggio(params, inst, rng, seconds, low, high, beat) -> list[Note]:
    prog = _progression(rng)
    sub = float(rng.choice([0.5, 0.25])) if inst.rhythm != "fast" else 0.25
    bar_beats = int(rng.choice([2, 4]))
    span = min(high, low + int(rng.integers(19, 26)))
    pattern = str(rng.choice(["up", "down", "updown", "random"]))
    bass_low = low + int(rng.integers(0, 6))
    notes, t, step = [], float(rng.uniform(0.0, 0.08)), 0
    while t < seconds:
        chord_ix = int((step * sub) // bar_beats) % len(prog)
        triad = _chord(params, prog[chord_ix], bass_low)
        tones = sorted({k + 12 * o for k in triad for o in range(4) if bass_low <= k + 12 * o <= span})
        n = len(tones)
        i = step % max(1, (2 * n - 2) if pattern == "updown" else n)
        if pattern == "up":
            key = tones[i]
        elif pattern == "down":
            key = tones[n - 1 - i]
        elif pattern == "updown":
            key = tones[i if i < n else 2 * n - 2 - i]
        else:
            key = tones[int(rng.integers(n))]
        ring = sub * beat * float(rng.uniform(2.0, 6.0))
        notes.append(Note(t, ring, int(key), _velocity(rng, params["velocity"] - 6, i == 0, 6.0)))
        t += sub * beat
        step += 1
    return notes


def _strum(params, inst, rng, seconds, low, high, beat) -> list[Note]:
    prog = _progression(rng)
    grid = [k for k in range(8) if k in (0, 4) or rng.random() < 0.6]  # eighth-note slots per bar that strum
    notes, bar, t0 = [], 0, float(rng.uniform(0.0, 0.08))
    while t0 + bar * 4 * beat < seconds:
        triad = _chord(params, prog[bar % len(prog)], low + int(rng.integers(0, 5)))
        voicing = sorted({k + 12 * o for k in triad for o in range(3) if low <= k + 12 * o <= min(high, low + 22)})
        for j_slot, slot in enumerate(grid):
            t = t0 + bar * 4 * beat + slot * 0.5 * beat
            ring = ((grid + [8])[j_slot + 1] - slot) * 0.5 * beat * 0.95  # rings until the next strum
            down = slot % 2 == 0
            order = voicing if down else voicing[::-1]
            gap = float(rng.uniform(0.008, 0.025))
            for j, key in enumerate(order):
                vel = _velocity(rng, params["velocity"] - (0 if down else 12), slot == 0, 5.0)
                notes.append(Note(t + j * gap, ring, int(key), vel))
        bar += 1
    return notes


def _chords(params, inst, rng, seconds, low, high, beat) -> list[Note]:
    prog = _progression(rng)
    bar_beats = int(rng.choice([2, 4]))
    split = low + (high - low) // 2
    notes, bar, t0 = [], 0, float(rng.uniform(0.0, 0.08))
    while t0 + bar * bar_beats * beat < seconds:
        t = t0 + bar * bar_beats * beat
        triad = _chord(params, prog[bar % len(prog)], max(low, split - 14))
        for key in triad + [triad[0] - 12]:
            if low <= key <= high:
                held = bar_beats * beat * (0.97 if inst.sustained else 1.3)
                notes.append(Note(t, held, int(key), _velocity(rng, params["velocity"] - 12, False, 4.0)))
        bar += 1
    melody = _melody(params, inst, rng, seconds, split, high, beat)
    return notes + melody


def _bassline(params, inst, rng, seconds, low, high, beat) -> list[Note]:
    prog = _progression(rng)
    walk = rng.random() < 0.5
    notes, t, step = [], float(rng.uniform(0.0, 0.08)), 0
    sub = 1.0 if walk else float(rng.choice([0.5, 1.0]))
    while t < seconds:
        chord_ix = int((step * sub) // 4) % len(prog)
        triad = _chord(params, prog[chord_ix], low + int(rng.integers(0, 3)))
        within = int(step % max(1, int(4 / sub)))
        if within == 0:
            key = triad[0]
        elif walk:
            key = int(rng.choice(triad + [triad[0] + 12, triad[0] + 2]))
        else:
            key = int(rng.choice([triad[0], triad[2], triad[0] + 12]))
        key = int(np.clip(key, low, high))
        length = sub * beat * (0.9 if inst.sustained else float(rng.uniform(0.7, 1.0)))
        notes.append(Note(t, length, key, _velocity(rng, params["velocity"], within == 0, 6.0)))
        t += sub * beat
        step += 1
    return notes


# General MIDI percussion keys.
KICK, SNARE, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 42, 44, 46, 49, 51
TOMS = (50, 48, 47, 45, 43, 41)
KICK_PATTERNS = ((0, 8), (0, 6, 8), (0, 10), (0, 3, 8, 11), (0, 4, 8, 12), (0, 7, 10), (0, 8, 9, 14))


def _drums(params, inst, rng, seconds, low, high, beat) -> list[Note]:
    """Sixteenth-note grid: kick template + extras, backbeat snare + ghost notes, hats or ride, tom fills."""
    sixteenth = beat / 4
    kicks = set(KICK_PATTERNS[int(rng.integers(len(KICK_PATTERNS)))])
    kicks |= {int(s) for s in range(16) if rng.random() < 0.06}
    hat_key = int(rng.choice([CLOSED_HAT, CLOSED_HAT, PEDAL_HAT, RIDE]))
    hat_steps = {"8ths": range(0, 16, 2), "16ths": range(16), "4ths": range(0, 16, 4)}[
        str(rng.choice(["8ths", "8ths", "16ths", "4ths"]))
    ]
    open_hat = rng.random() < 0.4
    swing = float(rng.uniform(0.1, 0.3)) if rng.random() < 0.3 else 0.0
    fill_every = int(rng.choice([2, 4]))
    notes, bar, t0 = [], 0, float(rng.uniform(0.0, 0.05))
    base = params["velocity"]
    while t0 + bar * 16 * sixteenth < seconds:
        fill = (bar + 1) % fill_every == 0 and rng.random() < 0.6
        for s in range(16):
            t = t0 + (bar * 16 + s) * sixteenth + (swing * sixteenth if s % 4 == 2 else 0.0)
            if fill and s >= 12:
                tom = TOMS[min(len(TOMS) - 1, (s - 12) + int(rng.integers(0, 3)))]
                notes.append(Note(t, 0.4, tom, _velocity(rng, base, True, 6.0)))
                continue
            if s in kicks:
                notes.append(Note(t, 0.4, KICK, _velocity(rng, base + 6, s == 0, 5.0)))
            if s in (4, 12):
                notes.append(Note(t, 0.4, SNARE, _velocity(rng, base + 4, True, 5.0)))
            elif rng.random() < 0.07:
                notes.append(Note(t, 0.2, SNARE, int(rng.integers(25, 50))))
            if s in hat_steps:
                key = OPEN_HAT if open_hat and s == 14 else hat_key
                notes.append(Note(t, 0.3, key, _velocity(rng, base - 14, s % 4 == 0, 7.0)))
        if bar == 0 and rng.random() < 0.5:
            notes.append(Note(t0, 1.5, CRASH, _velocity(rng, base, True, 4.0)))
        bar += 1
    return notes


_STYLES = {
    "melody": _melody,
    "arpeggio": _arpeggio,
    "strum": _strum,
    "chords": _chords,
    "bassline": _bassline,
    "drums": _drums,
}


def compose(name: str, params: dict, seconds: float) -> list[Note]:
    """The clip's notes (onsets in [0, seconds)), drawn from ``params["melody_seed"]`` only."""
    inst = INSTRUMENTS[name]
    rng = np.random.default_rng(params["melody_seed"])
    low, high = params["register"]
    beat = 60.0 / params["tempo_bpm"]
    notes = _STYLES[params["style"]](params, inst, rng, seconds, low, high, beat)
    return [n for n in notes if n.start < seconds]


def render(
    name: str, params: dict, seconds: float, sample_rate: int = 16000, soundfont: Optional[str] = None
) -> np.ndarray:
    """Render a planned clip: float32 [round(seconds * sample_rate)] mono, not normalised.

    ``soundfont``: the path of the file ``params["soundfont"]`` names (None: TimGM6mb.sf2 from pretty_midi).
    """
    tsf = _import_tinysoundfont()
    inst = INSTRUMENTS[name]
    expected = SOUNDFONT_NAME if soundfont is None else Path(soundfont).name
    if params["soundfont"] != expected:
        raise SepkitError(
            f"clip planned for soundfont {params['soundfont']} cannot render from {expected}; pass its path"
        )
    num = int(round(seconds * sample_rate))
    synth = tsf.Synth(samplerate=sample_rate)
    sfid = synth.sfload(_soundfont_bytes(None if soundfont is None else str(soundfont)))
    chan = DRUM_CHANNEL if inst.drums else 0
    synth.program_select(chan, sfid, params["bank"], params["program"], inst.drums)

    notes = sorted(compose(name, params, seconds), key=lambda n: (n.start, n.key))
    # A repeated key ends the previous note at the new onset, so a note-off never cuts a later note.
    ends: dict[int, tuple[int, int]] = {}
    events: list[tuple[int, int, int, int]] = []  # (sample, 0 = off / 1 = on, key, velocity)
    for n in notes:
        on = int(round(n.start * sample_rate))
        off = on + max(1, int(round(n.length * sample_rate)))
        if n.key in ends and ends[n.key][1] > on:
            index, _ = ends[n.key]
            events[index] = (on, 0, n.key, 0)
        events.append((on, 1, n.key, n.velocity))
        ends[n.key] = (len(events), off)
        events.append((off, 0, n.key, 0))
    events.sort()

    out = np.zeros((num, 2), dtype=np.float32)
    pos = 0
    for sample, kind, key, velocity in events:
        sample = min(sample, num)
        if sample > pos:
            out[pos:sample] = np.frombuffer(synth.generate(sample - pos), dtype=np.float32).reshape(-1, 2)
            pos = sample
        if pos >= num:
            break
        if kind:
            synth.noteon(chan, key, velocity)
        else:
            synth.noteoff(chan, key)
    if pos < num:
        out[pos:] = np.frombuffer(synth.generate(num - pos), dtype=np.float32).reshape(-1, 2)
    return out.mean(axis=1).astype(np.float32)
