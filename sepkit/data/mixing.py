"""The papers' mixture protocols: which clips are mixed, at which levels, with which instructions.

``draw_mixture`` draws one ``MixtureRecord`` (used by ``write_mixtures`` and by on-the-fly
training datasets); ``write_mixtures`` writes a frozen mixture manifest, optionally rendered.

Levels are set on **energy** (mean square over the mixture length) of the placed excerpts:
the first source keeps gain 1 and the others are gained so that
``10 log10(E_first / E_rest) = snr_db``. A mixture whose peak (of the mixture, any source or
any instruction target) would exceed ``PEAK_LIMIT`` is scaled as a whole with
``MixtureRecord.scale``, which keeps every ratio. Excerpts quieter than ``SILENCE_ENERGY``
are redrawn. Two sources "overlap" iff ``TagNormaliser.categories`` of their tags intersect;
clips without any tag are never drawn (their overlap cannot be checked).

Protocols (``PROTOCOLS``; the choices the papers leave open are marked *ours*):

- ``hsm_tss`` (HSM-TSS): 2 non-overlapping sources, SNR of source 0 vs source 1 uniform in
  [-15, 15] dB; instructions "extract <source 0>" and "remove <source 1>", both with target
  [0] (removing a source leaves the other). Training draws one of them at random.
- ``hybrid_sep`` (Hybrid-Sep): 2-4 sources, the target (source 0) shares no category with any
  other; target-to-rest energy ratio uniform in [-20, 20] dB; *ours*: the other sources are
  first set to equal energies. One instruction: extract the target.
- ``dcase`` (DCASE 2024 task 9 synthetic validation): 2 non-overlapping sources, integer SNR
  in [-15, 15] dB; extract source 0.
- ``music_zeroshot`` (HSM-TSS on MUSIC, after CLIPSep): 2 instrument-only clips of different
  instruments, SNR in [-5, 5] dB; two instructions, extract each.
- ``multilevel`` (OpenSep's multi-level mix-and-separate): 4 mutually non-overlapping sources;
  *ours*: sources 1-3 at uniform [-5, 5] dB relative to source 0, ``snr_db`` records the
  measured source-0-vs-rest ratio; instructions extract each source ([k]) and the pairs
  "extract the A and the B" ([0, 1] and [2, 3]).
- ``mix_and_separate`` (OpenSep's plain mix-and-separate, the ablation's other arm): 2
  non-overlapping sources, *ours*: source 0 vs source 1 uniform in [-5, 5] dB as ``multilevel``
  sets its sources; two instructions, extract each ([0] and [1]).

Descriptions come from a source's captions or its tags (joined: "the dog and the rain"), and
are kept only when the instruction text parses back with ``RuleBasedInstructionParser`` to the
intended task and to the same descriptions the description alone parses to. *Ours*: train
splits use varied templates ("isolate ...", "get rid of ..."); val and test splits use only
"extract ..."/"remove ...", as HSM-TSS evaluates with the simple templates.
"""

from __future__ import annotations

import functools
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from sepkit.data.manifest import (
    ClipCache,
    ClipRecord,
    InstructionRef,
    MixtureRecord,
    SourceRef,
    place_source,
    read_clips,
    write_jsonl,
)
from sepkit.data.tags import TagNormaliser
from sepkit.errors import SepkitError

PEAK_LIMIT = 0.95  # 1.0 minus a margin for float32 rendering and resampling
SILENCE_ENERGY = 1e-8  # mean square below -80 dBFS: the excerpt is redrawn
MAX_ATTEMPTS = 100

EXTRACT_TEMPLATES = (
    "extract {d}", "isolate {d}", "keep only {d}", "separate {d}", "I want {d}", "give me {d}",
    "pull out {d}", "extract {d} from the mixture", "please isolate {d}", "only keep {d}",
)  # fmt: skip
REMOVE_TEMPLATES = (
    "remove {d}", "get rid of {d}", "mute {d}", "filter out {d}", "suppress {d}", "take out {d}",
    "eliminate {d}", "remove {d} from the recording", "please get rid of {d}", "cut out {d}",
)  # fmt: skip
EVAL_SPLITS = ("val", "test")


@dataclass(frozen=True)
class Protocol:
    """A mixture protocol's definition and defaults.

    ``level_db``: range of the drawn level of source 0 against the rest; ``pairwise``: every
    pair of sources must not overlap (else only the target against each other source).
    """

    name: str
    description: str
    num_sources: tuple[int, int]
    level_db: tuple[float, float]
    seconds: float = 10.0
    integer_db: bool = False
    instruments_only: bool = False
    pairwise: bool = True


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("hsm_tss", "HSM-TSS: 2 non-overlapping sources, SNR U[-15, 15] dB, extract one / remove the other",
                 (2, 2), (-15.0, 15.0)),
        Protocol("hybrid_sep", "Hybrid-Sep: 2-4 sources, target keyword distinct, target-to-rest U[-20, 20] dB",
                 (2, 4), (-20.0, 20.0), pairwise=False),
        Protocol("dcase", "DCASE 2024 task 9: 2 sources, integer SNR in [-15, 15] dB, extract the first",
                 (2, 2), (-15.0, 15.0), integer_db=True),
        Protocol("music_zeroshot", "MUSIC zero-shot: 2 different instruments, SNR U[-5, 5] dB, extract each",
                 (2, 2), (-5.0, 5.0), instruments_only=True),
        Protocol("multilevel", "OpenSep multi-level: 4 non-overlapping sources, single- and two-source targets",
                 (4, 4), (-5.0, 5.0)),
        Protocol("mix_and_separate", "OpenSep plain mix-and-separate: 2 non-overlapping sources, U[-5, 5] dB, "
                 "extract each", (2, 2), (-5.0, 5.0)),
    )
}  # fmt: skip


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise SepkitError(f"unknown mixing protocol {name!r}; known protocols: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


@functools.lru_cache(maxsize=1)
def _default_normaliser() -> TagNormaliser:
    return TagNormaliser()


@functools.lru_cache(maxsize=1)
def _parser():
    from sepkit.instructions import RuleBasedInstructionParser

    return RuleBasedInstructionParser()


# --- which clips can be drawn --------------------------------------------------------------
@dataclass
class _Pool:
    clips: list  # the caller's list (kept to check the cache entry is for the same list)
    normaliser: TagNormaliser
    size: int
    indices: np.ndarray  # eligible clip indices
    cats: list[frozenset]  # categories of each eligible clip
    disjoint: int  # how many mutually non-overlapping clips a greedy pass found
    untagged: int


_POOLS: dict[tuple[int, int, bool], _Pool] = {}


def _pool(clips: list[ClipRecord], normaliser: TagNormaliser, instruments_only: bool) -> _Pool:
    """Eligible clips and their categories, computed once per (clip list, normaliser) and cached."""
    key = (id(clips), id(normaliser), instruments_only)
    pool = _POOLS.get(key)
    if pool is not None and pool.clips is clips and pool.normaliser is normaliser and pool.size == len(clips):
        return pool
    indices, cats, untagged = [], [], 0
    for i, clip in enumerate(clips):
        categories = frozenset(normaliser.categories(clip.tags))
        if not categories:
            untagged += 1
        elif not instruments_only or normaliser.is_instrument(clip.tags):
            indices.append(i)
            cats.append(categories)
    used: set[str] = set()
    disjoint = 0
    for c in sorted(set(cats), key=lambda c: (len(c), sorted(c))):
        if not c & used:
            used |= c
            disjoint += 1
    pool = _Pool(clips, normaliser, len(clips), np.asarray(indices, dtype=np.int64), cats, disjoint, untagged)
    if len(_POOLS) >= 8:
        _POOLS.pop(next(iter(_POOLS)))
    _POOLS[key] = pool
    return pool


def _check_feasible(spec: Protocol, pool: _Pool, total: int) -> None:
    needed = spec.num_sources[1] if spec.pairwise else 2
    if pool.disjoint >= needed:
        return
    kind = "instrument clips" if spec.instruments_only else "tagged clips"
    raise SepkitError(
        f"protocol {spec.name} needs {kind} of at least {needed} non-overlapping categories, but the "
        f"{len(pool.indices)} {kind} (of {total} clips, {pool.untagged} untagged) give only {pool.disjoint}; "
        "add clips of other classes or extend the synonym table"
    )


def _pick(rng: np.random.Generator, spec: Protocol, pool: _Pool, count: int) -> list[int] | None:
    """``count`` positions into the pool obeying the protocol's overlap rule, or None if stuck."""
    chosen: list[int] = []
    for _ in range(count):
        against = chosen if spec.pairwise else chosen[:1]
        for _ in range(64):
            j = int(rng.integers(len(pool.indices)))
            if not any(pool.cats[j] & pool.cats[c] for c in against):
                break
        else:  # rejection failed: choose among every compatible clip
            fits = [j for j in range(len(pool.indices)) if not any(pool.cats[j] & pool.cats[c] for c in against)]
            if not fits:
                return None
            j = fits[int(rng.integers(len(fits)))]
        chosen.append(j)
    return chosen


# --- descriptions and instructions ---------------------------------------------------------
def round_trips(text: str, task: str, description: str) -> bool:
    """``text`` parses to ``task`` only, with the descriptions ``description`` alone parses to (as extract).

    The check every generated instruction passes (here and in ``sepkit.data.wording``)."""
    try:
        got, want = _parser().parse(text), _parser().parse(description)
    except SepkitError:
        return False
    return (
        all(i.task == task for i in got)
        and all(i.task == "extract" for i in want)
        and [i.description for i in got] == [i.description for i in want]
    )


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _candidates(clip: ClipRecord, tags: list[str]) -> list[tuple[str, str]]:
    """(description, phrase) pairs: each caption, then the tags last ("dog and rain", "the dog and the rain")."""
    result = []
    for caption in clip.captions:
        text = " ".join(str(caption).split()).rstrip(".!?;: ")
        if text:
            result.append((text, _lower_first(text)))
    if tags:
        result.append((_join(tags), _join([f"the {t}" for t in tags])))
    return result


def clip_descriptions(clip: ClipRecord, normaliser: TagNormaliser | None = None) -> list[str]:
    """The descriptions an instruction about ``clip`` alone can carry: its captions and its tag phrase."""
    tags = (normaliser or _default_normaliser()).normalise_all(clip.tags)
    return [description for description, _ in _candidates(clip, tags)]


def _lower_first(text: str) -> str:
    """ "A dog barks" -> "a dog barks" for use inside a sentence; "TV noise" stays."""
    first = text.split()[0]
    return text if len(first) > 1 and first.isupper() else text[0].lower() + text[1:]


class _Redraw(Exception):
    """This draw cannot be used (silent excerpt, no description that parses back); draw again."""


def _instruction(rng, task: str, parts: list[list[tuple[str, str]]], target: list[int], split: str) -> InstructionRef:
    """An instruction for the sources whose candidate descriptions are ``parts`` (several: joined by "and")."""
    templates = (EXTRACT_TEMPLATES if task == "extract" else REMOVE_TEMPLATES)[: 1 if split in EVAL_SPLITS else None]
    template = templates[int(rng.integers(len(templates)))]
    orders = [[p[int(i)] for i in rng.permutation(len(p))] for p in parts]
    tries = [[order[a % len(order)] for order in orders] for a in range(max(map(len, orders)))]
    for chosen in tries + [[p[-1] for p in parts]]:  # last resort: every source by its tags
        description = " and ".join([chosen[0][0]] + [_lower_first(c[0]) for c in chosen[1:]])
        text = template.format(d=" and ".join(c[1] for c in chosen))
        if round_trips(text, task, description):
            return InstructionRef(task=task, text=text, description=description, target=target)
    raise _Redraw("no description parses back")


def _instructions(rng, spec: Protocol, cands: list[list[tuple[str, str]]], split: str) -> list[InstructionRef]:
    if spec.name == "hsm_tss":
        extract = _instruction(rng, "extract", [cands[0]], [0], split)
        return [extract, _instruction(rng, "remove", [cands[1]], [0], split)]
    if spec.name in ("music_zeroshot", "mix_and_separate"):
        return [_instruction(rng, "extract", [cands[k]], [k], split) for k in range(2)]
    if spec.name == "multilevel":
        singles = [_instruction(rng, "extract", [cands[k]], [k], split) for k in range(4)]
        pairs = [_instruction(rng, "extract", [cands[a], cands[b]], [a, b], split) for a, b in ((0, 1), (2, 3))]
        return singles + pairs
    return [_instruction(rng, "extract", [cands[0]], [0], split)]


# --- levels ----------------------------------------------------------------------------------
def _energy(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def _gains(rng, spec: Protocol, tracks: list[np.ndarray]) -> tuple[list[float], float]:
    """Gains (source 0 keeps 1.0) and the snr_db of source 0 against the rest."""
    low, high = spec.level_db
    energies = [_energy(t) for t in tracks]
    if spec.integer_db:
        snr = float(rng.integers(int(np.ceil(low)), int(np.floor(high)) + 1))
    else:
        snr = float(rng.uniform(low, high))
    if spec.name == "multilevel":
        levels = rng.uniform(low, high, size=len(tracks) - 1)
        gains = [1.0] + [float(np.sqrt(energies[0] * 10 ** (lv / 10) / e)) for lv, e in zip(levels, energies[1:])]
        rest = _energy(sum(g * t.astype(np.float64) for g, t in zip(gains[1:], tracks[1:])))
        if rest < SILENCE_ENERGY * 1e-4:
            raise _Redraw("the other sources cancel out")
        return gains, float(10 * np.log10(energies[0] / rest))
    equal = [float(np.sqrt(energies[0] / e)) for e in energies[1:]]
    rest = _energy(sum(g * t.astype(np.float64) for g, t in zip(equal, tracks[1:])))
    if rest < SILENCE_ENERGY * 1e-4:
        raise _Redraw("the other sources cancel out")
    factor = float(np.sqrt(energies[0] / (rest * 10 ** (snr / 10))))
    return [1.0] + [g * factor for g in equal], snr


def _scale(tracks: list[np.ndarray], gains: list[float], instructions: list[InstructionRef]) -> float:
    """1.0, or the factor that brings the largest peak (mixture, sources, targets) down to PEAK_LIMIT."""
    placed = np.stack([g * t.astype(np.float64) for g, t in zip(gains, tracks)])
    peaks = [np.abs(placed.sum(axis=0)).max(), np.abs(placed).max()]
    peaks += [np.abs(placed[i.target].sum(axis=0)).max() for i in instructions]
    peak = float(max(peaks))
    return PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0


# --- one mixture -----------------------------------------------------------------------------
def draw_mixture(
    protocol: str,
    clips: list[ClipRecord],
    rng: np.random.Generator,
    cache: ClipCache,
    *,
    index: int,
    split: str,
    seconds: float | None = None,
    normaliser: TagNormaliser | None = None,
    path_base: Path | None = None,
) -> MixtureRecord:
    """Draw one mixture of ``clips`` with ``protocol``; audio is read through ``cache``.

    The mixture is ``seconds`` long (default: the protocol's) at ``cache.sample_rate``. Clip
    paths are resolved against ``cache.base_dir`` (the clip manifest's folder); each
    ``SourceRef.path`` is made relative to ``path_base`` when given, else absolute. Clips
    shorter than the mixture are zero-padded; longer ones get a random ``start``. One integer
    is drawn from ``rng`` as the mixture's own seed (``record.seed``); everything else comes
    from ``np.random.default_rng(record.seed)``. Raises SepkitError if the clips cannot
    satisfy the protocol.

    Clips are drawn uniformly among the eligible ones (tagged; instrument-only for
    ``music_zeroshot``). Eligibility is computed once per ``clips`` list object and
    ``normaliser`` and cached, so pass the same list on every call (e.g. from a dataset).
    """
    spec = get_protocol(protocol)
    if not clips:
        raise SepkitError(f"protocol {protocol}: no clips to mix; import or build a corpus first")
    normaliser = normaliser or _default_normaliser()
    seconds = float(seconds if seconds is not None else spec.seconds)
    if seconds <= 0:
        raise SepkitError(f"mixture length must be positive, got {seconds} s")
    seed = int(rng.integers(2**32))
    rng = np.random.default_rng(seed)
    pool = _pool(clips, normaliser, spec.instruments_only)
    _check_feasible(spec, pool, len(clips))
    sr = cache.sample_rate
    num_samples = int(round(seconds * sr))
    problems: Counter = Counter()
    for _ in range(MAX_ATTEMPTS):
        count = int(rng.integers(spec.num_sources[0], spec.num_sources[1] + 1))
        picks = _pick(rng, spec, pool, count)
        if picks is None:
            problems["no compatible clip"] += 1
            continue
        chosen = [clips[int(pool.indices[j])] for j in picks]
        try:
            tracks, starts = zip(*(_excerpt(rng, clip, cache, num_samples) for clip in chosen))
            tags = [normaliser.normalise_all(clip.tags) for clip in chosen]
            instructions = _instructions(rng, spec, [_candidates(c, t) for c, t in zip(chosen, tags)], split)
            gains, snr = _gains(rng, spec, list(tracks))
        except _Redraw as why:
            problems[str(why)] += 1
            continue
        sources = [
            SourceRef(clip_id=c.id, path=_source_path(c, cache, path_base), gain=g, offset=0.0, start=s, tags=t)
            for c, g, s, t in zip(chosen, gains, starts, tags)
        ]
        return MixtureRecord(
            id=f"{protocol}-{split}-{index:06d}",
            protocol=protocol,
            split=split,
            seconds=seconds,
            sample_rate=sr,
            sources=sources,
            instructions=instructions,
            snr_db=snr,
            scale=_scale(list(tracks), gains, instructions),
            seed=seed,
        )
    details = ", ".join(f"{why} ({n}x)" for why, n in problems.most_common())
    raise SepkitError(f"protocol {protocol}: could not draw mixture {index} in {MAX_ATTEMPTS} attempts: {details}")


def _excerpt(rng, clip: ClipRecord, cache: ClipCache, num_samples: int) -> tuple[np.ndarray, float]:
    """(placed float32 [num_samples] at gain 1, start in seconds); a few starts are tried before giving up."""
    audio = cache.load(clip.path)
    sr = cache.sample_rate
    for _ in range(3):
        start = int(rng.integers(audio.size - num_samples + 1)) / sr if audio.size > num_samples else 0.0
        ref = SourceRef(clip_id=clip.id, path=clip.path, gain=1.0, start=start)
        track = place_source(audio, ref, num_samples, sr)
        if _energy(track) >= SILENCE_ENERGY:
            return track, start
        if audio.size <= num_samples:
            break
    raise _Redraw("silent excerpt")


def _source_path(clip: ClipRecord, cache: ClipCache, path_base: Optional[Path]) -> str:
    return cache.source_path(clip.path, path_base)


# --- a manifest ------------------------------------------------------------------------------
def write_mixtures(
    manifest,
    protocol: str,
    pairs: int,
    seed: int,
    out,
    seconds: float | None = None,
    synonyms=None,
    render: bool = False,
) -> dict:
    """Draw ``pairs`` mixtures of the clip ``manifest`` and write ``out/<protocol>_<split>.jsonl``.

    Mixture ``i`` uses ``np.random.default_rng([seed, crc32(split), i])``, so a seed always gives
    the same file byte for byte, and the val and test sets of one seed draw independent levels.
    ``split`` is the clips' split ("mixed" if several). The sample rate is
    the clips' most common one. ``synonyms``: a YAML file extending the tag table. With
    ``render``, also writes ``out/<protocol>_<split>/<id>/mixture.wav`` and ``target_<k>.wav``
    (float32 wav, one per instruction). Returns a summary dict.
    """
    spec = get_protocol(protocol)
    if int(pairs) < 1:
        raise SepkitError(f"--pairs must be at least 1, got {pairs}")
    manifest = Path(manifest)
    clips = read_clips(manifest)
    normaliser = TagNormaliser.from_yaml(synonyms)
    splits = sorted({c.split for c in clips})
    split = splits[0] if len(splits) == 1 else "mixed"
    rates = Counter(int(c.sample_rate) for c in clips)
    sample_rate = max(rates, key=lambda r: (rates[r], r))
    cache = ClipCache(sample_rate, base_dir=manifest.parent)
    out = Path(out)
    path = out / f"{protocol}_{split}.jsonl"
    from tqdm import tqdm

    records = [
        draw_mixture(
            protocol, clips, np.random.default_rng([int(seed), zlib.crc32(split.encode()), i]), cache,
            index=i, split=split,
            seconds=seconds, normaliser=normaliser, path_base=out,
        )
        for i in tqdm(range(int(pairs)), desc=f"mixing {protocol}", unit="mix", disable=None)
    ]  # fmt: skip
    write_jsonl(path, records)
    rendered = _render(records, out, out / f"{protocol}_{split}", sample_rate) if render else None
    snrs = [r.snr_db for r in records if r.snr_db is not None]
    return {
        "protocol": protocol,
        "count": len(records),
        "path": str(path),
        "split": split,
        "seconds": records[0].seconds,
        "sample_rate": sample_rate,
        "snr_db_min": min(snrs),
        "snr_db_max": max(snrs),
        "scaled_to_avoid_clipping": sum(r.scale < 1.0 for r in records),
        "instructions": sum(len(r.instructions) for r in records),
        "clips": len(clips),
        "rendered": str(rendered) if rendered else None,
        "description": spec.description,
    }


def _render(records: list[MixtureRecord], base: Path, folder: Path, sample_rate: int) -> Path:
    from tqdm import tqdm

    from sepkit.audio import write_audio
    from sepkit.data.manifest import instruction_target, render_mixture

    cache = ClipCache(sample_rate, base_dir=base)
    for record in tqdm(records, desc="rendering", unit="mix", disable=None):
        mixture, sources = render_mixture(record, cache)
        write_audio(folder / record.id / "mixture.wav", mixture, sample_rate, subtype="FLOAT")
        for k in range(len(record.instructions)):
            target = instruction_target(record, sources, k)
            write_audio(folder / record.id / f"target_{k}.wav", target, sample_rate, subtype="FLOAT")
    return folder
