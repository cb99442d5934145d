"""The papers' test sets as named, frozen specifications, and the sepkit-mini sets that build here.

A test set is a frozen mixture manifest: ``build_testset(spec, out, corpora)`` writes
``out/<spec.file_name>`` and the same spec and clip manifests always give the same file, byte
for byte. Every mixture is drawn by ``sepkit.data.mixing.draw_mixture``, the code
``sepkit data mix`` runs, with the same per-mixture seeding; mixture ``i`` depends only on
the spec and ``i`` (never on ``pairs``), so a smaller build is the first lines of the full one.

``TESTSETS`` (``sepkit data testset --list``; docs/testsets.md says where each number comes from):

- ``hsm_tss-audiocaps``, ``hsm_tss-clotho``, ``hsm_tss-fsd50k``: HSM-TSS sec. IV-B1 and Table I,
  500 pairs of each corpus's test clips, 10 s, 16 kHz.
- ``hsm_tss-3sets``: HSM-TSS's "3 Sets": a clip pool with an equal number of randomly sampled
  clips from each of the three test sets, then 1000 mixtures of that pool. The paper mixes
  across corpora on purpose ("Mixing sources from different datasets can account for
  distribution biases"), so two sources of one mixture may come from different corpora.
- ``music-zeroshot``: HSM-TSS on MUSIC after CLIPSep: 500 pairs of test-split clips of two
  different instruments, [-5, 5] dB, 10 s.
- ``dcase``: DCASE 2024 task 9's synthetic validation protocol (3000 mixtures, 10 s, 16 kHz)
  on Clotho v2 evaluation clips, as sepkit has no importer for the DCASE clips.
- ``hybrid_sep-keyword``: Hybrid-Sep's keyword-audio test data: 600 mixtures of 4 AudioSet
  evaluation clips, 1 target.
- ``mini-*``: the sepkit-mini versions, read from ``data/mini`` and written by ``make mini-data`` to
  ``data/mixes`` (``MINI_MIXES_DIR``), where ``--testset NAME`` finds them. Both folders are relative
  to the data root (``data_root()``): ``$SEPKIT_DATA_ROOT`` if set, else the working directory (the
  repository's root when run as the README does), never the folder sepkit is installed in.
- ``mini-unseen``: ``mini-hsm_tss`` (same seed, pairs and draws) with every instrument clip re-rendered
  from a soundfont no sepkit-mini corpus trains on (``HeldOutSoundfont``: Debian's opl3-soundfont,
  which no PyPI package ships, so ``--soundfont PATH`` must give it and ``make mini-data`` does not
  build this set). Its instructions are the templates' wordings; unseen wording is applied when
  scoring (``evaluate_mini.py --paraphrases`` in the repository's benchmarks folder), as for
  ``mini-hsm_tss``.

Pooled sets (several ``ClipSource``s) first draw the pool: from each source, the tagged
clips (of its ``group``, if any) are sampled without replacement, the same number from each.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from sepkit.errors import SepkitError

MINI_MIXES_DIR = "data/mixes"  # where `make mini-data` writes the mini sets (relative to data_root())
DATA_ROOT_VARIABLE = "SEPKIT_DATA_ROOT"  # the folder holding data/mini and data/mixes; unset: the working directory
SEEDINGS = ("seed-split-index", "seed-index")
MAX_COUNT_ATTEMPTS = 64  # draws tried per mixture when a set fixes the number of sources


def data_root() -> Path:
    """The folder the mini sets' paths (``data/mini/...``, ``data/mixes/...``) are relative to.

    ``$SEPKIT_DATA_ROOT`` if set, else the working directory: ``make mini-data`` writes ``data/`` in
    the repository's root, where the README's commands run. Not the install location: an installed
    sepkit has no ``data/`` beside it.
    """
    return Path(os.environ.get(DATA_ROOT_VARIABLE) or os.getcwd())


# --- the specification ---------------------------------------------------------------------
@dataclass(frozen=True)
class HeldOutSoundfont:
    """A General MIDI soundfont a test set renders its instrument clips from, and no corpus trains on.

    ``file_name`` and ``sha256``: the file ``--soundfont`` must give (checked); ``package``: the Debian
    package that ships it; ``inside``: its path inside the package.
    """

    file_name: str
    sha256: str
    package: str
    inside: str

    def how_to_get(self, folder: str = "/tmp/sf") -> str:
        """The commands that fetch the file, and the --soundfont option they make possible."""
        return (
            f"mkdir -p {folder} && cd {folder} && apt-get download {self.package} && "
            f"dpkg-deb -x {self.package}_*.deb . (no root needed), then pass --soundfont {folder}/{self.inside}"
        )


@dataclass(frozen=True)
class ClipSource:
    """Where a test set's clips come from.

    ``corpus``: the key of ``--corpus KEY=MANIFEST``; ``role``: what these clips are in the set;
    ``made_by``: the command that writes the manifest (named in errors); ``default``: the
    manifest relative to ``data_root()`` (mini sets), None when it must be given;
    ``group``: keep only clips of this tag group (``CLIP_GROUPS``), None for every clip.
    """

    corpus: str
    role: str
    made_by: str
    default: Optional[str] = None
    group: Optional[str] = None


@dataclass(frozen=True)
class TestSetSpec:
    """A named frozen test set.

    ``protocol``: a ``sepkit.data.mixing.PROTOCOLS`` name; ``sources``: one ``ClipSource``, or
    several whose clips are pooled in equal numbers (``clips_per_source`` each; None: as many as
    the smallest source has); ``pairs``: number of mixtures; ``seed``: the set's seed;
    ``seconds``: mixture length; ``description``: one line citing the paper;
    ``sample_rate``: of the mixtures (None: the clips' most common one, as ``sepkit data mix``);
    ``sources_per_mixture``: a fixed number of sources within the protocol's range (draws with
    another number are redrawn; None: the protocol's own choice); ``file_name``: the manifest's
    name in the output folder (None: ``<name>.jsonl``); ``seeding``: mixture ``i``'s random
    generator, ``"seed-split-index"`` = ``default_rng([seed, crc32(split), i])`` as ``sepkit data
    mix`` does, or ``"seed-index"`` = ``default_rng([seed, i])``, what ``sepkit data mix`` did
    before the split was added (kept for the two mini sets built then, so their files and the
    results computed on them stay valid); ``soundfont``: a held-out soundfont: the set's sepkit-mini
    instrument clips are re-rendered from it (same plans, ``build.rerender_instruments``) into
    ``out/<name>-clips/`` before mixing, and a build needs its path (``--soundfont``).
    """

    __test__ = False  # not a pytest test class

    name: str
    protocol: str
    sources: tuple[ClipSource, ...]
    pairs: int
    seed: int
    seconds: float
    description: str
    sample_rate: Optional[int] = None
    sources_per_mixture: Optional[int] = None
    clips_per_source: Optional[int] = None
    file_name: Optional[str] = None
    seeding: str = "seed-split-index"
    soundfont: Optional[HeldOutSoundfont] = None

    @property
    def output_name(self) -> str:
        """The manifest's file name in the output folder."""
        return self.file_name or f"{self.name}.jsonl"

    @property
    def pooled(self) -> bool:
        """Whether the clips are a balanced pool of several sources."""
        return len(self.sources) > 1

    @property
    def is_mini(self) -> bool:
        """Whether every manifest it needs has a default under ``data_root()`` (a sepkit-mini set)."""
        return all(s.default is not None for s in self.sources)

    @property
    def corpora(self) -> dict[str, ClipSource]:
        """corpus key -> its first source: the manifests ``--corpus`` may give."""
        result: dict[str, ClipSource] = {}
        for source in self.sources:
            result.setdefault(source.corpus, source)
        return result


# --- tag groups for pooled sets --------------------------------------------------------------
CLIP_GROUPS: dict[str, tuple[str, Callable]] = {
    # name -> (what it is, predicate(normalised categories incl. groups, normaliser)); the groups are disjoint
    "instruments": ("clips whose every category is a musical instrument",
                    lambda cats, n: bool(cats) and all(c in n.instruments for c in cats)),
    "speech": ("clips with a speech category (man, woman, child speaking, conversation)",
               lambda cats, n: "speech" in cats),
    "environment": ("tagged clips with no instrument and no speech category",
                    lambda cats, n: bool(cats) and "speech" not in cats and not cats & set(n.instruments)),
}  # fmt: skip


# --- the table -------------------------------------------------------------------------------
def _imported(corpus: str, title: str, folder: str) -> ClipSource:
    return ClipSource(
        corpus=corpus,
        role=f"{title} test clips",
        made_by=f"sepkit data import {corpus} --root {folder} --out DIR",
    )


def _mini(split: str, group: Optional[str] = None) -> ClipSource:
    role = f"sepkit-mini {split} clips" + (f", {group} group" if group else "")
    return ClipSource(f"mini_{split}", role, "make mini-data", default=f"data/mini/{split}.jsonl", group=group)


def _held_out(sha256: str, package: str, inside: str) -> HeldOutSoundfont:
    from sepkit.data.mini.instruments import HELD_OUT_SOUNDFONTS

    file_name = HELD_OUT_SOUNDFONTS[sha256][0]  # what `sepkit data mini --soundfont` refuses
    return HeldOutSoundfont(file_name, sha256, package, f"{inside}/{file_name}")


# The OPL3 FM set: no timbre in common with TimGM6mb.sf2, unlike csound's GM bank, which renders many
# instruments with TimGM6mb's own samples (docs/testsets.md has the measurement).
OPL3_FM = _held_out(
    "39bff96eee3dcfbce9665e3968701b894ca2136c7d0bd580281b2bbf59e80392", "opl3-soundfont", "usr/share/sounds/sf2"
)
AUDIOCAPS = _imported("audiocaps", "AudioCaps", "AUDIOCAPS_DIR")
CLOTHO = _imported("clotho", "Clotho v2 (evaluation split)", "CLOTHO_DIR")
FSD50K = _imported("fsd50k", "FSD50K (eval split)", "FSD50K_DIR")
MUSIC = _imported("music", "MUSIC (CLIPSep's test list)", "MUSIC_DIR")
AUDIOSET = _imported("audioset", "AudioSet (eval segments)", "AUDIOSET_DIR")

TESTSETS: dict[str, TestSetSpec] = {
    s.name: s
    for s in (
        # the papers' sets: clip manifests from `sepkit data import`, passed with --corpus KEY=MANIFEST
        TestSetSpec("hsm_tss-audiocaps", "hsm_tss", (AUDIOCAPS,), 500, 1, 10.0,
                    "HSM-TSS sec. IV-B1, Table I: 500 AudioCaps test pairs, SNR [-15, 15] dB, extract/remove",
                    sample_rate=16000),
        TestSetSpec("hsm_tss-clotho", "hsm_tss", (CLOTHO,), 500, 2, 10.0,
                    "HSM-TSS sec. IV-B1, Table I: 500 Clotho v2 evaluation pairs, SNR [-15, 15] dB, extract/remove",
                    sample_rate=16000),
        TestSetSpec("hsm_tss-fsd50k", "hsm_tss", (FSD50K,), 500, 3, 10.0,
                    "HSM-TSS sec. IV-B1, Table I: 500 FSD50K eval pairs, SNR [-15, 15] dB, extract/remove",
                    sample_rate=16000),
        TestSetSpec("hsm_tss-3sets", "hsm_tss",
                    tuple(replace(s, role=s.role + ", a third of the clip pool") for s in (AUDIOCAPS, CLOTHO, FSD50K)),
                    1000, 4, 10.0,
                    "HSM-TSS IV-B1, Table I '3 Sets': equal clips of each test set pooled, 1000 pairs across corpora",
                    sample_rate=16000),
        TestSetSpec("music-zeroshot", "music_zeroshot", (MUSIC,), 500, 5, 10.0,
                    "HSM-TSS IV-B1 after CLIPSep: MUSIC test split, 2 different instruments, [-5, 5] dB, 500 pairs",
                    sample_rate=16000),
        TestSetSpec("dcase", "dcase", (CLOTHO,), 3000, 6, 10.0,
                    "DCASE 2024 task 9 synthetic validation protocol (Hybrid-Sep's DE-S): 3000 pairs, integer SNR "
                    "[-15, 15] dB, on Clotho v2 evaluation clips", sample_rate=16000),
        TestSetSpec("hybrid_sep-keyword", "hybrid_sep", (AUDIOSET,), 600, 7, 10.0,
                    "Hybrid-Sep sec. 3 keyword-audio test data: 600 mixtures of 4 AudioSet eval clips, 1 target, "
                    "target-to-rest [-20, 20] dB", sample_rate=44100, sources_per_mixture=4),
        # sepkit-mini versions: data/mini manifests, written by `make mini-data` to data/mixes
        TestSetSpec("mini-hsm_tss", "hsm_tss", (_mini("test"),), 500, 2, 4.0,
                    "sepkit-mini version of HSM-TSS's per-corpus sets: 500 test pairs, SNR [-15, 15] dB, 4 s",
                    file_name="hsm_tss_test.jsonl", seeding="seed-index"),
        TestSetSpec("mini-hsm_tss-val", "hsm_tss", (_mini("val"),), 200, 1, 4.0,
                    "sepkit-mini HSM-TSS validation set: 200 val pairs, SNR [-15, 15] dB, 4 s",
                    file_name="hsm_tss_val.jsonl", seeding="seed-index"),
        TestSetSpec("mini-3sets", "hsm_tss", tuple(_mini("test", g) for g in CLIP_GROUPS), 300, 4, 4.0,
                    "sepkit-mini analogue of HSM-TSS '3 Sets': equal test clips from the instrument, speech and "
                    "environment tag groups pooled, 300 pairs"),
        TestSetSpec("mini-music_zeroshot", "music_zeroshot", (_mini("test"),), 500, 5, 4.0,
                    "sepkit-mini version of HSM-TSS's MUSIC zero-shot set: 500 pairs of two different instruments, "
                    "[-5, 5] dB, 4 s"),
        TestSetSpec("mini-dcase", "dcase", (_mini("test"),), 500, 6, 4.0,
                    "sepkit-mini version of the DCASE 2024 task 9 protocol: 500 pairs, integer SNR [-15, 15] dB, 4 s"),
        TestSetSpec("mini-hybrid_sep", "hybrid_sep", (_mini("test"),), 600, 7, 4.0,
                    "sepkit-mini version of Hybrid-Sep's keyword-audio set: 600 mixtures of 4 sources, 1 target, "
                    "[-20, 20] dB, 4 s", sources_per_mixture=4),
        # mini-hsm_tss's draws, instrument clips re-rendered from a held-out soundfont (--soundfont)
        TestSetSpec("mini-unseen", "hsm_tss", (_mini("test"),), 500, 2, 4.0,
                    "mini-hsm_tss with every instrument clip re-rendered from a soundfont no sepkit-mini corpus "
                    "trains on (the OPL3 FM set): unseen timbres, the same mixtures otherwise",
                    seeding="seed-index", soundfont=OPL3_FM),
    )
}  # fmt: skip


def get_testset(name: str) -> TestSetSpec:
    """The spec named ``name``; raises SepkitError listing the known names."""
    if name not in TESTSETS:
        known = ", ".join(TESTSETS)
        raise SepkitError(f"unknown test set {name!r}; known test sets: {known} (sepkit data testset --list)")
    return TESTSETS[name]


def check_spec(spec: TestSetSpec) -> None:
    """Raise SepkitError if ``spec`` does not fit its protocol (sources per mixture, seconds, pairs, groups)."""
    from sepkit.data.mixing import get_protocol

    protocol = get_protocol(spec.protocol)
    low, high = protocol.num_sources
    problems = []
    if spec.sources_per_mixture is not None and not low <= spec.sources_per_mixture <= high:
        problems.append(f"{spec.sources_per_mixture} sources per mixture, but {spec.protocol} draws {low}-{high}")
    if spec.seconds <= 0 or spec.pairs < 1:
        problems.append(f"seconds ({spec.seconds}) and pairs ({spec.pairs}) must be positive")
    if spec.seeding not in SEEDINGS:
        problems.append(f"seeding {spec.seeding!r} is not one of {', '.join(SEEDINGS)}")
    problems += [f"unknown clip group {s.group!r}" for s in spec.sources if s.group and s.group not in CLIP_GROUPS]
    if problems:
        raise SepkitError(f"test set {spec.name}: " + "; ".join(problems))


# --- which manifests a build reads -----------------------------------------------------------
def resolve_corpora(spec: TestSetSpec, given: Mapping[str, str] | None = None) -> dict[str, Path]:
    """corpus key -> clip manifest: ``given`` (from ``--corpus``) first, else the source's default.

    Raises SepkitError naming the command that writes a missing manifest.
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(spec.corpora))
    if unknown:
        raise SepkitError(
            f"test set {spec.name} reads no corpus {', '.join(unknown)}; it reads --corpus "
            + ", ".join(f"{key}=MANIFEST" for key in spec.corpora)
        )
    result = {}
    for key, source in spec.corpora.items():
        if key in given:
            path = Path(given[key])
            if not path.is_file():
                raise SepkitError(
                    f"--corpus {key}={path}: no such file; write the {source.role} with `{source.made_by}`"
                )
        elif source.default is not None:
            path = data_root() / source.default
            if not path.is_file():
                raise SepkitError(
                    f"test set {spec.name} needs {source.default} ({source.role}), which is not built yet "
                    f"(looked in {data_root()}); run `{source.made_by}` in the repository and run from its root "
                    f"(or set {DATA_ROOT_VARIABLE}), or pass --corpus {key}=MANIFEST"
                )
        else:
            raise SepkitError(
                f"test set {spec.name} needs the {source.role}: write them with `{source.made_by}` "
                f"(it writes DIR/{key}_test.jsonl) and pass --corpus {key}=DIR/{key}_test.jsonl"
            )
        result[key] = path
    return result


# --- building --------------------------------------------------------------------------------
def _absolute(clips: list, manifest: Path) -> list:
    """The clips with paths resolved against their manifest's folder (pooled clips come from several)."""
    from sepkit.data.manifest import resolve_path

    return [replace(c, path=os.path.abspath(resolve_path(c.path, manifest.parent))) for c in clips]


def balanced_pool(spec: TestSetSpec, clips_by_corpus: dict[str, list], normaliser) -> list:
    """The balanced clip pool: the same number of sampled tagged clips from each source, in manifest order."""
    eligible = []
    for source in spec.sources:
        accept = CLIP_GROUPS[source.group][1] if source.group else (lambda cats, n: bool(cats))
        clips = clips_by_corpus[source.corpus]
        eligible.append([c for c in clips if accept(normaliser.categories(c.tags), normaliser)])
    count = spec.clips_per_source or min(len(e) for e in eligible)
    short = [f"{s.role}: {len(e)}" for s, e in zip(spec.sources, eligible) if len(e) < max(count, 1)]
    if short:
        raise SepkitError(
            f"test set {spec.name} pools {max(count, 1)} tagged clips from each source, but some have fewer "
            f"({'; '.join(short)}); import the complete test split"
        )
    pool = []
    for source, clips in zip(spec.sources, eligible):
        rng = np.random.default_rng([spec.seed, zlib.crc32(f"pool/{source.corpus}/{source.group}".encode())])
        pool += [clips[int(j)] for j in sorted(rng.choice(len(clips), size=count, replace=False))]
    return pool


def mixture_rng(spec: TestSetSpec, split: str, index: int, attempt: int = 0) -> np.random.Generator:
    """Mixture ``index``'s generator (``spec.seeding``); ``attempt`` > 0 only to redraw the source count."""
    if spec.seeding == "seed-index":
        entropy = [int(spec.seed), index]
    else:
        entropy = [int(spec.seed), zlib.crc32(split.encode()), index]
    return np.random.default_rng(entropy + ([attempt] if attempt else []))


def _draw(spec: TestSetSpec, clips: list, cache, index: int, split: str, normaliser, out: Path):
    from sepkit.data.mixing import draw_mixture

    for attempt in range(MAX_COUNT_ATTEMPTS):
        record = draw_mixture(
            spec.protocol, clips, mixture_rng(spec, split, index, attempt), cache,
            index=index, split=split, seconds=spec.seconds, normaliser=normaliser, path_base=out,
        )  # fmt: skip
        if spec.sources_per_mixture is None or len(record.sources) == spec.sources_per_mixture:
            return record
    raise SepkitError(
        f"test set {spec.name}: mixture {index} drew no {spec.sources_per_mixture}-source mixture in "
        f"{MAX_COUNT_ATTEMPTS} draws; the clips have too few non-overlapping categories"
    )


def check_soundfont(spec: TestSetSpec, soundfont) -> Optional[Path]:
    """The ``--soundfont`` path a build of ``spec`` uses (None for a set that renders nothing).

    SepkitError, saying how to get the file, when ``spec`` needs a held-out soundfont and ``soundfont``
    is missing or not that file (by sha256); SepkitError too when a set that renders nothing is given one.
    """
    held = spec.soundfont
    if held is None:
        if soundfont:
            needing = ", ".join(s.name for s in TESTSETS.values() if s.soundfont) or "none"
            raise SepkitError(
                f"test set {spec.name} renders no clips, so it takes no --soundfont (sets that do: {needing})"
            )
        return None
    get = f"get it with `{held.how_to_get()}`"
    if not soundfont:
        raise SepkitError(
            f"test set {spec.name} renders its instrument clips from the held-out soundfont {held.file_name} "
            f"(Debian's {held.package}, in no PyPI package): {get}"
        )
    path = Path(soundfont).expanduser()
    if not path.is_file():
        raise SepkitError(f"--soundfont {path}: no such file; {get}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != held.sha256:
        raise SepkitError(
            f"--soundfont {path} is not the soundfont test set {spec.name} is defined with ({held.file_name}, sha256 "
            f"{held.sha256[:16]}..., got {digest[:16]}...); {get}"
        )
    return path.resolve()


def _rerendered(spec: TestSetSpec, clips_by_corpus: dict[str, list], soundfont: Path, out: Path, progress: bool):
    """``clips_by_corpus`` with every sepkit-mini instrument clip re-rendered from ``soundfont`` into
    ``out/<spec.name>-clips``; and a summary of what was rendered."""
    from sepkit.data.mini import build, instruments

    font = instruments.Soundfont(soundfont, spec.soundfont.sha256, instruments.info_fields(soundfont))
    folder = out / f"{spec.name}-clips"
    result, count = {}, 0
    for key, clips in clips_by_corpus.items():
        result[key], rendered = build.rerender_instruments(clips, font, folder, progress=progress)
        count += rendered
    soundfont_summary = {"name": font.name, "sha256": font.sha256}
    return result, {"soundfont": soundfont_summary, "rerendered": count, "clips_folder": str(folder)}


def build_testset(
    spec: TestSetSpec,
    out,
    corpora: Mapping[str, str] | None = None,
    progress: bool = True,
    soundfont=None,
) -> dict:
    """Write ``out/<spec.output_name>`` (atomically); ``corpora``: ``--corpus`` key -> clip manifest;
    ``soundfont``: the held-out soundfont's path, for a set that has one (``spec.soundfont``).

    Returns a JSON-ready summary (path, sha256, counts, levels). Raises SepkitError for a
    missing manifest, an unknown corpus key, a missing or wrong soundfont or clips that cannot
    satisfy the protocol; then no manifest is written (a set with a soundfont may have re-rendered
    its clips by then).
    """
    from tqdm import tqdm

    from sepkit.data.manifest import ClipCache, read_clips, write_jsonl
    from sepkit.data.mixing import get_protocol
    from sepkit.data.tags import TagNormaliser

    check_spec(spec)
    soundfont = check_soundfont(spec, soundfont)
    manifests = resolve_corpora(spec, corpora)
    normaliser = TagNormaliser.from_yaml(None)
    clips_by_corpus = {key: _absolute(read_clips(path), path) for key, path in manifests.items()}
    out = Path(out)
    rendered = {}
    if soundfont is not None:
        clips_by_corpus, rendered = _rerendered(spec, clips_by_corpus, soundfont, out, progress)
    clips = balanced_pool(spec, clips_by_corpus, normaliser) if spec.pooled else clips_by_corpus[spec.sources[0].corpus]
    splits = sorted({c.split for c in clips})
    split = splits[0] if len(splits) == 1 else "mixed"
    rates = Counter(int(c.sample_rate) for c in clips)
    sample_rate = spec.sample_rate or max(rates, key=lambda r: (rates[r], r))
    cache = ClipCache(sample_rate)
    indices = tqdm(range(spec.pairs), desc=f"test set {spec.name}", unit="mix", disable=None if progress else True)
    records = [_draw(spec, clips, cache, i, split, normaliser, out) for i in indices]
    path = out / spec.output_name
    write_jsonl(path, records)
    snrs = [r.snr_db for r in records if r.snr_db is not None]
    counts = Counter(len(r.sources) for r in records)
    return {
        "name": spec.name,
        "protocol": spec.protocol,
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "count": len(records),
        "split": split,
        "seconds": spec.seconds,
        "sample_rate": sample_rate,
        "snr_db_min": min(snrs),
        "snr_db_max": max(snrs),
        "level_db_range": list(get_protocol(spec.protocol).level_db),
        "sources_per_mixture": {str(k): v for k, v in sorted(counts.items())},
        "clips": len(clips),
        "corpora": {key: str(p) for key, p in manifests.items()},
        **rendered,
        "description": spec.description,
    }


# --- the table as text ------------------------------------------------------------------------
def needs(spec: TestSetSpec) -> str:
    """What a build reads: the ``data/mini`` manifests of a mini set, else the --corpus options it needs."""
    if spec.is_mini:
        held = f" --soundfont {spec.soundfont.file_name}" if spec.soundfont else ""
        return ", ".join(sorted({s.default for s in spec.sources})) + held
    return " ".join(f"--corpus {key}={key}_test.jsonl" for key in spec.corpora)


def table_rows() -> list[list[str]]:
    """One row per test set: name, protocol, pairs, seconds, level range (dB), sources, needs."""
    from sepkit.data.mixing import get_protocol

    rows = []
    for spec in TESTSETS.values():
        protocol = get_protocol(spec.protocol)
        low, high = protocol.num_sources
        count = spec.sources_per_mixture or (f"{low}" if low == high else f"{low}-{high}")
        level = f"{protocol.level_db[0]:g}..{protocol.level_db[1]:g}"
        rows.append([spec.name, spec.protocol, str(spec.pairs), f"{spec.seconds:g}", level, str(count), needs(spec)])
    return rows


def format_table() -> str:
    """``sepkit data testset --list``: the table in aligned columns."""
    header = ["name", "protocol", "pairs", "seconds", "dB", "sources", "needs"]
    rows = [header] + table_rows()
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)
