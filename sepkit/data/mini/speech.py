"""Speech clips: English sentences spoken by espeak-ng through ``espeakng_loader`` (ctypes).

``espeakng_loader`` ships ``libespeak-ng.so`` and ``espeak-ng-data``. Classes: "man speaking" and
"woman speaking", each with many voice variants (espeak-ng's ``!v`` variants such as ``m1``..``m8``,
``Denis``, ``f1``..``f5``, ``Annie``) and accents (``en-us``, ``en``, ``en-gb-scotland``, ...).

- ``plan(name, rng, split, seconds) -> dict``: voice (``accent+variant``), rate (wpm), pitch, pitch
  range, the sentences (indices into ``SENTENCES``; spoken in order until the clip is full, so the
  last ones may not be heard), the pauses after them and the leading silence.
  Sentences and voice variants are partitioned across train/val/test (``split_pool``), so no
  sentence and no speaker variant is in two splits.
- ``render(name, params, seconds, sample_rate) -> float32 [samples]``: the sentences spoken in
  order, each trimmed of espeak's silences, joined by the planned pauses, cut to ``seconds``; espeak
  synthesises int16 at 22050 Hz, resampled with ``torchaudio.functional.resample``.

espeak-ng is initialised once per process (``Espeak.instance()``, a module-level singleton). It keeps
synthesis state across calls (e.g. its pitch-flutter phase and the random generator), so in one
long-lived process the same request gives different samples depending on what was spoken before.
To make every clip a pure function of its parameters, ``render`` (``isolated=True``) speaks each clip
in a fresh helper process (``python -S -I speech.py``, stdlib only, ~30 ms) that initialises espeak-ng
once and exits; that also keeps espeak-ng out of multiprocessing workers. This module therefore
imports nothing but the standard library at top level.
"""

from __future__ import annotations

import ctypes
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE, ESPEAK_VOLUME, ESPEAK_PITCH, ESPEAK_RANGE = 1, 2, 3, 4

ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS: dict[str, tuple[str, ...]] = {
    "man speaking": (
        "m1",
        "m2",
        "m3",
        "m4",
        "m5",
        "m6",
        "m7",
        "m8",
        "Denis",
        "Marco",
        "travis",
        "victor",
        "michel",
        "Hugo",
        "antonio",
        "sandro",
    ),
    "woman speaking": (
        "f1",
        "f2",
        "f3",
        "f4",
        "f5",
        "Alicia",
        "Andrea",
        "Annie",
        "anika",
        "belinda",
        "linda",
        "steph",
        "steph2",
        "steph3",
        "aunty",
    ),
}
# espeak's pitch and range parameters (0-100, relative to the variant's own pitch) per class.
PITCH = {"man speaking": (25, 60), "woman speaking": (40, 80)}

SENTENCES: tuple[str, ...] = (
    "The bus was late again this morning.",
    "Please put the blue cup back on the shelf.",
    "We walked along the river until it got dark.",
    "My sister bought a new bicycle last week.",
    "The soup needs a little more salt.",
    "Turn left at the bakery and keep going.",
    "He forgot his umbrella at the station.",
    "The meeting has been moved to Thursday.",
    "Could you open the window, please?",
    "The children played football in the park.",
    "I think the train leaves at half past six.",
    "She painted the fence a bright green.",
    "The library closes early on Sundays.",
    "Our neighbours have a very friendly dog.",
    "The coffee machine is broken again.",
    "It rained all night and the roads are flooded.",
    "He reads the newspaper every morning.",
    "The museum has a new exhibition about ships.",
    "Remember to water the plants on Friday.",
    "We need three more chairs for the guests.",
    "The old bridge was built two hundred years ago.",
    "She plays the piano better than anyone I know.",
    "The price of bread has gone up again.",
    "Let me know when you arrive at the hotel.",
    "The garden looks lovely in the spring.",
    "He fixed the kitchen tap with a spanner.",
    "The film starts in about twenty minutes.",
    "I left my keys on the kitchen table.",
    "The shop on the corner sells fresh fruit.",
    "They are planning a trip to the mountains.",
    "The baby finally fell asleep after lunch.",
    "Please speak a little more slowly.",
    "The wind blew the leaves across the yard.",
    "We had pancakes for breakfast today.",
    "The doctor will see you in a moment.",
    "Her brother works at the harbour.",
    "The lights went out during the storm.",
    "Can you help me carry these boxes upstairs?",
    "The cat is sleeping on the warm windowsill.",
    "I would like a ticket to the city centre.",
    "The teacher wrote the answer on the board.",
    "He always whistles when he is cooking.",
    "The lake was calm and very cold.",
    "We should leave before the traffic gets bad.",
    "The printer has run out of paper.",
    "She found an old coin in the sand.",
    "The band played until midnight.",
    "This road leads to the little village.",
    "My grandfather grows tomatoes in his garden.",
    "The parcel should arrive tomorrow afternoon.",
    "The kettle is boiling, shall I make tea?",
    "He ran all the way to catch the bus.",
    "The restaurant was full so we went home.",
    "A small boat sailed slowly past the pier.",
    "The exam results will be posted online.",
    "She keeps her notes in a yellow folder.",
    "The clock in the hall is five minutes fast.",
    "We watched the sunset from the hill.",
    "The farmer sold us a basket of apples.",
    "Please sign your name at the bottom of the page.",
    "The elevator is out of order today.",
    "His new shoes are a size too small.",
    "The river froze during the long winter.",
    "I heard a strange noise in the attic.",
    "They painted a mural on the school wall.",
    "The soup is hot, so be careful.",
    "Our flight was delayed by two hours.",
    "The market is busy on Saturday mornings.",
    "She learned to swim when she was five.",
    "The phone battery is almost empty.",
    "We planted a cherry tree in the garden.",
    "The post office is next to the bank.",
    "He told a funny story at dinner.",
    "The snow made everything quiet and white.",
    "Please close the door when you leave.",
    "The team won the match in the last minute.",
    "I need to buy milk on the way home.",
    "The castle stands on top of a steep hill.",
    "The puppy chewed one of my slippers.",
    "We can meet outside the cinema at eight.",
    "The bread in this bakery is still warm.",
    "She sent a postcard from the seaside.",
    "The heating comes on at six every evening.",
    "My uncle repairs old radios as a hobby.",
    "The path through the forest is muddy.",
    "He painted the boat before the summer.",
    "The street was full of people and music.",
    "I can't find the remote control anywhere.",
    "The sun came out after the heavy shower.",
    "Let's take a short break and have a snack.",
)

_HELPER_TIMEOUT = 120.0


def _split_partition(count: int) -> dict[str, list[int]]:
    """Fixed partition of ``range(count)`` into train/val/test (~70/15/15, val and test >= 1), seed-independent."""
    import random

    order = list(range(count))
    random.Random(20240601).shuffle(order)
    held = max(1, round(0.15 * count))
    return {"val": sorted(order[:held]), "test": sorted(order[held : 2 * held]), "train": sorted(order[2 * held :])}


def split_pool(name: str, split: str) -> tuple[list[int], list[str]]:
    """(sentence indices, voice variants) that clips of class ``name`` in ``split`` may use."""
    sentences = _split_partition(len(SENTENCES))[split]
    variants = [VARIANTS[name][i] for i in _split_partition(len(VARIANTS[name]))[split]]
    return sentences, variants


def plan(name: str, rng, split: str, seconds: float) -> dict:
    """Draw a clip's parameters (JSON-serialisable, the clip's provenance) from ``rng``."""
    sentences, variants = split_pool(name, split)
    accent = ACCENTS[int(rng.integers(len(ACCENTS)))]
    variant = variants[int(rng.integers(len(variants)))]
    count = math.ceil(seconds / 1.5) + 1  # more than enough: a sentence lasts ~1.5-3 s
    picks = rng.choice(sentences, size=count, replace=count > len(sentences))
    lo, hi = PITCH[name]
    return {
        "generator": "espeak-ng",
        "voice": f"{accent}+{variant}",
        "accent": accent,
        "variant": variant,
        "rate_wpm": int(rng.integers(130, 201)),
        "pitch": int(rng.integers(lo, hi + 1)),
        "pitch_range": int(rng.integers(30, 91)),
        "sentences": [int(i) for i in picks],
        "pauses": [round(float(p), 3) for p in rng.uniform(0.15, 0.6, count)],
        "lead": round(float(rng.uniform(0.0, 0.2)), 3),
    }


# ----------------------------------------------------------------------------- espeak-ng via ctypes


def library_paths() -> tuple[str, str]:
    """(path of libespeak-ng, path of espeak-ng-data) from ``espeakng_loader``; SepkitError if unavailable."""
    from sepkit.errors import SepkitError

    try:
        import espeakng_loader
    except ImportError:
        raise SepkitError(
            "sepkit-mini speaks its speech clips with espeak-ng; install it with `pip install espeakng-loader`"
        ) from None
    lib = espeakng_loader.get_library_path()
    try:
        data = espeakng_loader.get_data_path()
    except RuntimeError as exc:
        raise SepkitError(f"{exc}; reinstall with `pip install --force-reinstall espeakng-loader`") from None
    if not Path(lib).is_file():
        raise SepkitError(f"{lib} is missing; reinstall with `pip install --force-reinstall espeakng-loader`")
    return lib, data


class Espeak:
    """espeak-ng loaded with ctypes and initialised once per process (``Espeak.instance``).

    ``speak(text, voice, rate, pitch, pitch_range) -> bytes``: int16 little-endian mono samples at
    ``self.sample_rate`` (22050 Hz).
    """

    _instance: Espeak | None = None

    def __init__(self, lib_path: str, data_path: str) -> None:
        lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        # espeak-ng accepts the folder that holds espeak-ng-data, or that folder itself.
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, str(Path(data_path).parent).encode(), 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate}) with data at {data_path}")
        self.sample_rate = int(rate)
        self._lib = lib
        self._chunks: list[bytes] = []
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        self._callback = callback_type(self._collect)  # kept referenced: espeak holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def instance(cls, lib_path: str | None = None, data_path: str | None = None) -> Espeak:
        """The process's espeak-ng (initialised on first use)."""
        if cls._instance is None:
            if lib_path is None or data_path is None:
                lib_path, data_path = library_paths()
            cls._instance = cls(lib_path, data_path)
        return cls._instance

    def _collect(self, wav, count, events) -> int:
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0: continue synthesis

    def speak(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int = 1) -> bytes:
        lib = self._lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        lib.espeak_SetParameter(ESPEAK_RATE, int(rate), 0)
        lib.espeak_SetParameter(ESPEAK_PITCH, int(pitch), 0)
        lib.espeak_SetParameter(ESPEAK_RANGE, int(pitch_range), 0)
        lib.espeak_SetParameter(ESPEAK_VOLUME, 100, 0)
        lib.espeak_ng_SetRandSeed(int(seed))
        data = text.encode("utf-8") + b"\0"
        self._chunks = []
        status = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        return b"".join(self._chunks)


def _speak_all(espeak: Espeak, request: dict) -> list[bytes]:
    return [
        espeak.speak(text, request["voice"], request["rate"], request["pitch"], request["pitch_range"], seed=i + 1)
        for i, text in enumerate(request["texts"])
    ]


def _helper_main() -> None:
    """Helper process: argv = lib path, data path; stdin = JSON request; stdout = rate, then length-prefixed PCM."""
    espeak = Espeak.instance(sys.argv[1], sys.argv[2])
    request = json.loads(sys.stdin.read())
    out = sys.stdout.buffer
    pcm = _speak_all(espeak, request)
    out.write(struct.pack("<II", espeak.sample_rate, len(pcm)))
    for chunk in pcm:
        out.write(struct.pack("<I", len(chunk)))
        out.write(chunk)
    out.flush()


def synthesize(texts: list[str], voice: str, rate: int, pitch: int, pitch_range: int, isolated: bool = True):
    """Speak ``texts`` -> (list of float32 [samples] in [-1, 1], espeak's sample rate).

    ``isolated=True`` runs espeak-ng in a fresh helper process, so the result depends only on the
    arguments; ``isolated=False`` uses this process's ``Espeak.instance()`` (faster, but the samples
    then depend on what this process spoke before).
    """
    import numpy as np

    from sepkit.errors import SepkitError

    lib_path, data_path = library_paths()
    request = {"texts": list(texts), "voice": voice, "rate": rate, "pitch": pitch, "pitch_range": pitch_range}
    if not isolated:
        espeak = Espeak.instance(lib_path, data_path)
        pcm, sample_rate = _speak_all(espeak, request), espeak.sample_rate
    else:
        proc = subprocess.run(
            [sys.executable, "-S", "-I", str(Path(__file__).resolve()), lib_path, data_path],
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
        )
        if proc.returncode != 0:
            reason = proc.stderr.decode(errors="replace").strip().splitlines()
            raise SepkitError(f"espeak-ng failed for voice {voice!r}: {reason[-1] if reason else proc.returncode}")
        buf = proc.stdout
        sample_rate, count = struct.unpack_from("<II", buf, 0)
        pos, pcm = 8, []
        for _ in range(count):
            (size,) = struct.unpack_from("<I", buf, pos)
            pcm.append(buf[pos + 4 : pos + 4 + size])
            pos += 4 + size
    waves = [np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768.0 for chunk in pcm]
    return waves, int(sample_rate)


def _trim(wave, sample_rate: int, threshold: float = 0.01):
    """Cut leading/trailing silence (below ``threshold`` x peak), keeping 10 ms before and 60 ms after."""
    import numpy as np

    if wave.size == 0:
        return wave
    loud = np.nonzero(np.abs(wave) > threshold * (np.abs(wave).max() + 1e-12))[0]
    if loud.size == 0:
        return wave[:0]
    a = max(0, loud[0] - int(0.01 * sample_rate))
    b = min(wave.size, loud[-1] + int(0.06 * sample_rate))
    return wave[a:b]


def render(name: str, params: dict, seconds: float, sample_rate: int = 16000, isolated: bool = True):
    """Render a planned clip: float32 [round(seconds * sample_rate)] mono, not normalised."""
    import numpy as np
    import torch
    import torchaudio.functional as AF

    texts = [SENTENCES[i] for i in params["sentences"]]
    waves, es_rate = synthesize(
        texts, params["voice"], params["rate_wpm"], params["pitch"], params["pitch_range"], isolated=isolated
    )
    target = int(round(seconds * es_rate))
    parts, total = [np.zeros(int(params["lead"] * es_rate), np.float32)], 0
    total = parts[0].size
    i = 0
    while total < target and i < 4 * len(waves):  # cycle through the sentences if they run short
        k = i % len(waves)
        spoken = _trim(waves[k], es_rate)
        pause = np.zeros(int(params["pauses"][k] * es_rate), np.float32)
        parts += [spoken, pause]
        total += spoken.size + pause.size
        i += 1
    speech = np.concatenate(parts)[:target]
    speech = np.pad(speech, (0, target - speech.size))
    with torch.no_grad():
        out = AF.resample(torch.from_numpy(speech), es_rate, sample_rate).numpy()
    num = int(round(seconds * sample_rate))
    out = np.pad(out[:num], (0, max(0, num - out.size)))
    fade = min(num, int(0.02 * sample_rate))
    if fade:
        out[num - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out.astype(np.float32)


if __name__ == "__main__":
    _helper_main()
