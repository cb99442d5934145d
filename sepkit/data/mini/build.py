"""``build_mini``: render sepkit-mini into a folder, with manifests and licences.

Layout of ``out``::

    audio/<class-slug>/<class-slug>-<split>-<NNNN>.wav   mono, 16 kHz, PCM_16
    train.jsonl, val.jsonl, test.jsonl                   ClipRecord manifests (paths relative to out)
    LICENSES.md                                          the licence of every asset
    .sepkit-mini.json                                    build stamp (version, seed, seconds)

Rendering uses the "spawn" start method, so a script that calls ``build_mini`` must guard its entry
point with ``if __name__ == "__main__":`` (the ``sepkit`` command does).

Every clip is a pure function of (seed, split, class, index): its parameters are drawn from
``numpy.random.default_rng(SeedSequence([seed, split code, crc32(class name), index]))`` in ``plan_corpus``
and rendered in a pool of 2 worker processes ("spawn" context). Building twice with the same seed
gives byte-identical wavs and manifests. Re-running skips clips whose wav exists and verifies
(readable, mono, 16 kHz, right length, finite, not silent) and re-renders the others; clips of a
build with another seed, length, version or set of soundfonts are deleted first, as are clips the
plan no longer holds.

Extra General MIDI soundfonts (``soundfonts``, ``sepkit data mini --soundfont PATH``, repeatable): each
instrument clip draws which soundfont renders it, uniformly among TimGM6mb.sf2 and the extra ones, from
its own generator ``SeedSequence([seed, split code, crc32(class name), index, SOUNDFONT_STREAM])``; the
clip's other parameters are the same draws as without extras, so a clip that draws TimGM6mb sounds
exactly as in a corpus built without them. Its provenance names the soundfont (``soundfont``,
``soundfont_sha256``; ``program_fallback_from`` when the soundfont lacks the planned preset, see
``instruments.with_soundfont``). Without extras nothing changes: the same bytes as before they existed.

Levels: each clip is peak-normalised to a level drawn uniformly in [-6, -1] dBFS (recorded as
``provenance["peak_dbfs"]``); a clip whose RMS after normalisation is below -50 dBFS counts as
silent, which is an error (no generator produces one).

Splits per class, with n = clips per class: n = 2 -> 1 train, 0 val, 1 test; n >= 3 -> val and test
get max(1, round(0.1 n)) each and train the rest (100 -> 80/10/10, the default; 3 -> 1/1/1).
n < 2 is rejected. Empty splits still get their (empty) manifest.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Optional

import numpy as np

from sepkit.data.mini import captions, environment, instruments, speech
from sepkit.errors import SepkitError

SAMPLE_RATE = 16000
DEFAULT_CLIPS_PER_CLASS = 100  # 80 train / 10 val / 10 test; ~2 min on 2 cores
SPLITS = ("train", "val", "test")
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
PEAK_DBFS = (-6.0, -1.0)
RMS_FLOOR_DBFS = -50.0
BUILD_VERSION = 1  # bump when a generator changes its output: older builds are then re-rendered
STAMP = ".sepkit-mini.json"
WORKERS = 2
IN_PROCESS_BELOW = 12  # fewer clips than this to render: no worker pool (spawning one takes seconds)
SOUNDFONT_STREAM = 1  # the last SeedSequence word of a clip's soundfont draw (its other draws have none)
_CLIP_NAME = re.compile(r"^[a-z0-9-]+-(train|val|test)-\d{4}\.wav$")


def class_names() -> list[str]:
    """All sepkit-mini classes: instruments, then speech, then environmental sounds."""
    return [name for family in captions.FAMILIES.values() for name in family]


def split_counts(clips_per_class: int) -> dict[str, int]:
    """Clips per split for one class (see the module docstring); SepkitError if fewer than 2."""
    n = int(clips_per_class)
    if n < 2:
        raise SepkitError(
            f"--clips-per-class {n} is too small: each class needs at least 2 clips (1 train, 1 test); use 3 or "
            "more to also get a validation split"
        )
    if n == 2:
        return {"train": 1, "val": 0, "test": 1}
    held = max(1, round(0.1 * n))
    return {"train": n - 2 * held, "val": held, "test": held}


def _class_code(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def clip_rng(seed: int, split: str, name: str, index: int) -> np.random.Generator:
    """The generator a clip's parameters are drawn from: seeded by (seed, split, class, index)."""
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES[split], _class_code(name), index]))


def soundfont_rng(seed: int, split: str, name: str, index: int) -> np.random.Generator:
    """The generator that draws which soundfont renders an instrument clip (only when there are several)."""
    entropy = [seed, SPLIT_CODES[split], _class_code(name), index, SOUNDFONT_STREAM]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def plan_corpus(
    seed: int, clips_per_class: int, seconds: float, soundfonts: Sequence[instruments.Soundfont] = ()
) -> list[dict]:
    """Every clip to build, in manifest order: dicts with id, name, family, split, path, seconds, params.

    ``soundfonts``: extra General MIDI soundfonts; TimGM6mb.sf2 and each of them are equally likely to
    render an instrument clip, whose job then also holds ``soundfont_path`` (read by the renderer, never
    written to a manifest).
    """
    jobs = []
    counts = split_counts(clips_per_class)
    fonts = [instruments.default_soundfont(), *soundfonts] if soundfonts else []
    for name in class_names():
        family = captions.family_of(name)
        slug = captions.class_slug(name)
        for split in SPLITS:
            for index in range(counts[split]):
                rng = clip_rng(seed, split, name, index)
                font = None
                if family == "instrument":
                    params = instruments.plan(name, rng)
                    if fonts:
                        font = fonts[int(soundfont_rng(seed, split, name, index).integers(len(fonts)))]
                        params = instruments.with_soundfont(name, params, font)
                elif family == "speech":
                    params = speech.plan(name, rng, split, seconds)
                else:
                    params = environment.plan(name, rng)
                clip_id = f"{slug}-{split}-{index:04d}"
                provenance = {
                    "family": family,
                    **params,
                    "peak_dbfs": round(float(rng.uniform(*PEAK_DBFS)), 2),
                    "build_seed": int(seed),
                    "index": index,
                }
                job = {
                    "id": clip_id,
                    "name": name,
                    "family": family,
                    "split": split,
                    "path": f"audio/{slug}/{clip_id}.wav",
                    "seconds": float(seconds),
                    "provenance": provenance,
                }
                if font is not None:
                    job["soundfont_path"] = str(font.path)
                jobs.append(job)
    return jobs


# ----------------------------------------------------------------------------- rendering (worker side)


def _dbfs(x: float) -> float:
    return 20.0 * float(np.log10(max(x, 1e-12)))


def render_clip(job: dict) -> np.ndarray:
    """A planned clip's audio: float32 [round(seconds * 16000)], peak at ``provenance["peak_dbfs"]``."""
    name, params, seconds = job["name"], job["provenance"], job["seconds"]
    if job["family"] == "instrument":
        wave = instruments.render(name, params, seconds, SAMPLE_RATE, job.get("soundfont_path"))
    elif job["family"] == "speech":
        wave = speech.render(name, params, seconds, SAMPLE_RATE)
    else:
        wave = environment.render(name, params, seconds, SAMPLE_RATE)
    wave = np.asarray(wave, dtype=np.float64)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if not np.isfinite(wave).all() or peak <= 0:
        raise RuntimeError(f"clip {job['id']}: the generator produced silence or non-finite samples (a bug)")
    wave = wave * (10.0 ** (params["peak_dbfs"] / 20.0) / peak)
    rms = _dbfs(float(np.sqrt(np.mean(wave**2))))
    if rms < RMS_FLOOR_DBFS:
        raise RuntimeError(f"clip {job['id']}: RMS {rms:.1f} dBFS is below the {RMS_FLOOR_DBFS} dBFS floor (a bug)")
    return wave.astype(np.float32)


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _render_to_file(out: str, job: dict) -> str:
    from sepkit.audio import write_audio

    write_audio(Path(out) / job["path"], render_clip(job), SAMPLE_RATE, subtype="PCM_16")
    return job["id"]


# ----------------------------------------------------------------------------- build (main side)


def verify_clip(path: Path, seconds: float) -> bool:
    """True if ``path`` is a readable mono 16 kHz wav of the right length, finite and not silent."""
    import soundfile

    try:
        info = soundfile.info(str(path))
        if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.frames != int(round(seconds * SAMPLE_RATE)):
            return False
        data, _ = soundfile.read(str(path), dtype="float32")
    except Exception:
        return False
    if data.ndim != 1 or not np.isfinite(data).all():
        return False
    return _dbfs(float(np.sqrt(np.mean(data.astype(np.float64) ** 2)))) >= RMS_FLOOR_DBFS


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SepkitError(f"--out {out} is a file; give a folder for the corpus")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".sepkit-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SepkitError(f"cannot write to --out {out} ({exc.strerror or exc}); choose a writable folder") from None


def _check_assets() -> None:
    instruments.check_available()
    speech.library_paths()


def open_soundfonts(paths: Sequence[str | os.PathLike]) -> list[instruments.Soundfont]:
    """The extra soundfonts of ``--soundfont`` (checked by ``instruments.open_soundfont`` and for General MIDI
    voices); SepkitError for one given twice or the default TimGM6mb.sf2 given again."""
    default = instruments.default_soundfont()
    seen = {default.sha256: f"{default.name} (the default, always used)"}
    fonts = []
    for path in paths:
        font = instruments.open_soundfont(path)
        if font.sha256 in seen:
            raise SepkitError(f"--soundfont {path} has the same bytes as {seen[font.sha256]}; give each soundfont once")
        seen[font.sha256] = str(path)
        instruments.general_midi_fallbacks(font)  # refuses a soundfont without some instrument
        fonts.append(font)
    return fonts


# What sepkit knows of the soundfonts docs/testsets.md names: sha256 -> licence lines for LICENSES.md.
KNOWN_SOUNDFONTS: dict[str, str] = {
    "39bff96eee3dcfbce9665e3968701b894ca2136c7d0bd580281b2bbf59e80392": (
        "OPL-3 FM 128M by **Zandro Reveille** (2009), a General MIDI set of Yamaha YMF262 (OPL3) FM voices, "
        "from Debian's `opl3-soundfont` package: **CC-BY-SA-4.0** (Creative Commons Attribution-ShareAlike 4.0); "
        "audio rendered from it is an adaptation under the same licence"
    ),
    "9f39fc53bd3a1a69f13cb486838944eded358b3b6e8afbd6c1c2c33675b2034b": (
        "GM GS Bank, the General MIDI bank that Csound ships (`samples/sf_GMbank.sf2`), from Debian's "
        "`csound-soundfont` package: **public domain** (the file's licence field says so)"
    ),
}


def soundfont_licence(soundfont: instruments.Soundfont) -> str:
    """One Markdown list item naming ``soundfont`` (file, sha256, size, its own name and copyright) and its licence."""
    info = soundfont.info
    own = "; ".join(f"{label}: {info[key]}" for key, label in (("INAM", "name"), ("ICOP", "copyright")) if key in info)
    licence = KNOWN_SOUNDFONTS.get(
        soundfont.sha256, "not known to sepkit: check the soundfont's own terms before sharing audio rendered from it"
    )
    return (
        f"- **{soundfont.name}** (sha256 `{soundfont.sha256}`, {soundfont.size} bytes"
        + (f"; {own}" if own else "")
        + f"): {licence}.\n"
    )


def _licences_text(soundfonts: Sequence[instruments.Soundfont] = ()) -> str:
    """LICENSES.md; ``soundfonts``: the extra soundfonts of the corpus (without them: the text it always had)."""
    sf2 = instruments.soundfont_path()
    extra = ""
    if soundfonts:
        extra = (
            "- Extra General MIDI soundfonts (`sepkit data mini --soundfont`); each instrument clip's provenance\n"
            "  names the soundfont that rendered it (`soundfont`, `soundfont_sha256`):\n"
            + "".join("  " + soundfont_licence(sf) for sf in soundfonts)
        )
    return f"""# sepkit-mini: asset licences

sepkit-mini is generated offline from assets that PyPI packages ship, plus sepkit's own code.

## Instrument clips (families "instrument")

- Rendered from the General MIDI soundfont **TimGM6mb.sf2** ({sf2.stat().st_size} bytes), as shipped
  inside the `pretty_midi` package (`pretty_midi/{sf2.name}`).
- `pretty_midi` itself declares the **MIT** licence (Colin Raffel); its package metadata carries no separate
  licence file for the soundfont.
- TimGM6mb was made by **Tim Brechbill** and is distributed with MuseScore under the **GPL-2.0** (GNU General
  Public License version 2); treat the soundfont, and audio rendered from it, as derived from a GPL-2.0 asset.
{extra}- Rendered with **tinysoundfont** (Python bindings of TinySoundFont, MIT licence).
- Notes, melodies, rhythms and drum patterns are generated by sepkit code (random, scale-based).

## Speech clips ("man speaking", "woman speaking")

- Synthesised with **eSpeak NG** (`libespeak-ng` and `espeak-ng-data`, shipped by the `espeakng-loader`
  package): **GPL-3.0-or-later**.
- The sentences are written for sepkit (`sepkit/data/mini/speech.py`).

## Environmental clips (rain, wind, siren, ...)

- Generated procedurally by sepkit code (`sepkit/data/mini/environment.py`, numpy and scipy); no recorded
  audio is used. They carry sepkit's licence.

Captions and tags: written for sepkit (`sepkit/data/mini/captions.py`).
"""


def _remove_clip_files(out: Path, keep: set[str]) -> int:
    """Delete sepkit-mini clip wavs under ``out/audio`` whose relative path is not in ``keep``."""
    removed = 0
    audio = out / "audio"
    if not audio.is_dir():
        return 0
    for folder in audio.iterdir():
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            rel = f"audio/{folder.name}/{path.name}"
            if _CLIP_NAME.match(path.name) and rel not in keep:
                path.unlink()
                removed += 1
    return removed


def build_mini(
    out: str | os.PathLike,
    seed: int = 0,
    clips_per_class: Optional[int] = None,
    seconds: float = 4.0,
    workers: int = WORKERS,
    progress: bool = True,
    soundfonts: Sequence[str | os.PathLike] = (),
) -> dict[str, Any]:
    """Build (or complete) sepkit-mini in ``out``; returns a JSON-serialisable summary.

    ``clips_per_class`` defaults to ``DEFAULT_CLIPS_PER_CLASS`` (100: 80 train / 10 val / 10 test);
    ``seconds`` is every clip's length; ``workers`` processes render (0: all in this process);
    ``soundfonts``: paths of extra General MIDI soundfonts (module docstring).
    """
    from tqdm import tqdm

    from sepkit.data.manifest import ClipRecord, write_jsonl

    started = time.perf_counter()
    if clips_per_class is None:
        clips_per_class = DEFAULT_CLIPS_PER_CLASS
    if int(seed) < 0:
        raise SepkitError(f"--seed {seed} is negative; give a seed >= 0")
    if not (0.25 <= float(seconds) <= 60.0):
        raise SepkitError(f"--seconds {seconds} is out of range; give a clip length between 0.25 and 60 seconds")
    split_counts(clips_per_class)
    out = Path(out)
    _prepare_out(out)
    _check_assets()
    fonts = open_soundfonts(soundfonts)

    jobs = plan_corpus(int(seed), int(clips_per_class), float(seconds), fonts)
    stamp = {"version": BUILD_VERSION, "seed": int(seed), "seconds": float(seconds), "sample_rate": SAMPLE_RATE}
    if fonts:
        stamp["soundfonts"] = [{"name": f.name, "sha256": f.sha256} for f in fonts]
    stamp_path = out / STAMP
    removed = 0
    if stamp_path.is_file():
        try:
            old = json.loads(stamp_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old != stamp:  # clips from another build: none of them can be reused
            removed += _remove_clip_files(out, keep=set())
    stamp_path.write_text(json.dumps(stamp, sort_keys=True) + "\n", encoding="utf-8")
    removed += _remove_clip_files(out, keep={job["path"] for job in jobs})

    todo = [job for job in jobs if not verify_clip(out / job["path"], job["seconds"])]
    bar = tqdm(total=len(todo), desc="sepkit-mini", unit="clip", mininterval=0.5, disable=not progress or not todo)
    try:
        if workers <= 0 or len(todo) < IN_PROCESS_BELOW:
            for job in todo:
                _render_to_file(str(out), job)
                bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init) as pool:
                futures = [pool.submit(_render_to_file, str(out), job) for job in todo]
                try:
                    for future in as_completed(futures):
                        future.result()
                        bar.update(1)
                except BaseException:  # a failed clip or Ctrl-C: drop the queued clips, keep the finished ones
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()

    bad = [job["id"] for job in todo if not verify_clip(out / job["path"], job["seconds"])]
    if bad:
        raise RuntimeError(f"{len(bad)} clip(s) failed verification after rendering: {', '.join(bad[:5])}")

    per_split: dict[str, list[ClipRecord]] = {split: [] for split in SPLITS}
    per_class: dict[str, dict[str, int]] = {}
    for job in jobs:
        name = job["name"]
        per_split[job["split"]].append(
            ClipRecord(
                id=job["id"],
                path=job["path"],
                seconds=job["seconds"],
                sample_rate=SAMPLE_RATE,
                tags=list(captions.TAGS[name]),
                captions=list(captions.CAPTIONS[name]),
                split=job["split"],
                provenance=job["provenance"],
            )
        )
        per_class.setdefault(name, {split: 0 for split in SPLITS})[job["split"]] += 1
    for split in SPLITS:
        write_jsonl(out / f"{split}.jsonl", per_split[split])
    from sepkit.atomic import atomic_path

    with atomic_path(out / "LICENSES.md") as tmp:
        tmp.write_text(_licences_text(fonts), encoding="utf-8")

    summary = {
        "out": str(out),
        "seed": int(seed),
        "seconds": float(seconds),
        "sample_rate": SAMPLE_RATE,
        "clips_per_class": int(clips_per_class),
        "classes": len(per_class),
        "tags": len({tag for name in per_class for tag in captions.TAGS[name]}),
        "clips": {split: len(per_split[split]) for split in SPLITS},
        "per_class": per_class,
        "rendered": len(todo),
        "reused": len(jobs) - len(todo),
        "removed": removed,
        "manifests": {split: str(out / f"{split}.jsonl") for split in SPLITS},
        "seconds_taken": round(time.perf_counter() - started, 2),
    }
    if fonts:
        summary["soundfonts"] = _soundfont_summary(jobs, fonts)
    return summary


def _soundfont_summary(jobs: list[dict], fonts: list[instruments.Soundfont]) -> list[dict]:
    """Per soundfont (the default first): name, sha256, instrument clips it rendered, its preset fallbacks."""
    rendered = Counter(job["provenance"].get("soundfont_sha256") for job in jobs if job["family"] == "instrument")
    return [
        {
            "name": font.name,
            "sha256": font.sha256,
            "instrument_clips": rendered[font.sha256],
            "fallbacks": instruments.general_midi_fallbacks(font),
        }
        for font in [instruments.default_soundfont(), *fonts]
    ]


# ----------------------------------------------------------------------------- held-out renderings


def rerender_instruments(
    clips: list, soundfont: instruments.Soundfont, out: str | os.PathLike, progress: bool = True
) -> tuple[list, int]:
    """The clips with every sepkit-mini instrument clip re-rendered from ``soundfont`` into ``out``.

    ``clips``: ClipRecords of a sepkit-mini manifest with absolute paths. An instrument clip (provenance
    ``generator: tinysoundfont``) keeps its plan (notes, tempo, key, register, level) and id; only the
    soundfont changes (``instruments.with_soundfont``: file name and sha256 in its provenance). Its wav goes
    to ``out/audio/<class-slug>/<id>.wav`` and its record to ``out/<split>.jsonl`` (paths relative to
    ``out``); ``out/LICENSES.md`` names the soundfont. Other clips are returned as they are. Returns
    (clips in the same order, number re-rendered); SepkitError if no clip is an instrument clip.
    """
    from dataclasses import replace

    from tqdm import tqdm

    from sepkit.atomic import atomic_path
    from sepkit.audio import write_audio
    from sepkit.data.manifest import write_jsonl

    out = Path(out)
    result, written = [], {}
    todo = [c for c in clips if c.provenance.get("generator") == "tinysoundfont" and c.tags[:1]]
    if not todo:
        raise SepkitError(
            "no sepkit-mini instrument clip (provenance generator 'tinysoundfont') among the clips to re-render; "
            "give a sepkit-mini manifest (make mini-data writes data/mini/test.jsonl)"
        )
    ids = {c.id for c in todo}
    for clip in tqdm(clips, desc=f"rendering from {soundfont.name}", unit="clip", disable=not progress):
        if clip.id not in ids:
            result.append(clip)
            continue
        name = clip.tags[0]
        if name not in instruments.INSTRUMENTS:
            raise SepkitError(
                f"clip {clip.id}: {name!r} is not a sepkit-mini instrument; is the manifest sepkit-mini's?"
            )
        rel = f"audio/{captions.class_slug(name)}/{clip.id}.wav"
        job = {
            "id": clip.id,
            "name": name,
            "family": "instrument",
            "split": clip.split,
            "path": rel,
            "seconds": float(clip.seconds),
            "provenance": instruments.with_soundfont(name, clip.provenance, soundfont),
            "soundfont_path": str(soundfont.path),
        }
        write_audio(out / rel, render_clip(job), SAMPLE_RATE, subtype="PCM_16")
        record = replace(clip, path=rel, sample_rate=SAMPLE_RATE, provenance=job["provenance"])
        written.setdefault(clip.split, []).append(record)
        result.append(replace(record, path=str((out / rel).resolve())))
    for split, records in written.items():
        write_jsonl(out / f"{split}.jsonl", records)
    with atomic_path(out / "LICENSES.md") as tmp:
        tmp.write_text(
            "# Instrument clips re-rendered from a held-out soundfont\n\n"
            "sepkit-mini instrument clips (their plans as in the corpus), rendered with tinysoundfont from:\n\n"
            + soundfont_licence(soundfont)
            + "\nThe clips they replace, and the rest of the corpus, are described by the corpus's own LICENSES.md.\n",
            encoding="utf-8",
        )
    return result, len(todo)
