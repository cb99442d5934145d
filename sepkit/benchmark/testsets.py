"""Which frozen mixture manifest ``--testset`` means, and what a benchmark needs to know about it.

``--testset`` is either a mixture manifest (JSONL written by ``sepkit data mix`` or
``sepkit data testset``) or the name of a sepkit-mini test set (``MINI_TESTSETS``: the
``mini-*`` entries of ``sepkit.data.testsets.TESTSETS``), which ``make mini-data`` builds
under ``data/mixes/``, read relative to ``sepkit.data.testsets.data_root()`` (``$SEPKIT_DATA_ROOT``,
else the working directory).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from sepkit.data.manifest import MixtureRecord, read_mixtures
from sepkit.data.testsets import DATA_ROOT_VARIABLE, MINI_MIXES_DIR, TESTSETS, data_root
from sepkit.errors import SepkitError

# name -> manifest path relative to data_root() (as written by `make mini-data`), e.g.
# "mini-hsm_tss" -> "data/mixes/hsm_tss_test.jsonl", "mini-dcase" -> "data/mixes/mini-dcase.jsonl"
MINI_TESTSETS = {spec.name: f"{MINI_MIXES_DIR}/{spec.output_name}" for spec in TESTSETS.values() if spec.is_mini}


@dataclass
class TestSet:
    """A loaded mixture manifest. ``records`` keep the manifest's order; ``sha256`` is the file's."""

    __test__ = False  # not a pytest test class

    name: str  # the name or path given on the command line
    path: Path
    records: list[MixtureRecord]
    sha256: str

    @property
    def protocols(self) -> list[str]:
        return sorted({r.protocol for r in self.records})

    @property
    def instruction_types(self) -> list[str]:
        """The instruction tasks the manifest has, "extract" before "remove"."""
        present = {i.task for r in self.records for i in r.instructions}
        return [t for t in ("extract", "remove") if t in present] + sorted(present - {"extract", "remove"})

    def describe(self) -> dict:
        """JSON-ready summary: name, path, sha256, count, protocols, seconds and sample rates."""
        return {
            "name": self.name,
            "path": MINI_TESTSETS.get(self.name, str(self.path)),  # data_root()-relative for the named sets
            "sha256": self.sha256,
            "mixtures": len(self.records),
            "protocols": self.protocols,
            "seconds": sorted({float(r.seconds) for r in self.records}),
            "sample_rates": sorted({int(r.sample_rate) for r in self.records}),
        }


def resolve_testset_path(name_or_path: str) -> Path:
    """A manifest path from a path or a sepkit-mini test-set name; raises SepkitError naming the fix."""
    if name_or_path in MINI_TESTSETS:
        root = data_root()
        path = root / MINI_TESTSETS[name_or_path]
        if not path.is_file():
            raise SepkitError(
                f"test set {name_or_path!r} ({MINI_TESTSETS[name_or_path]} in {root}) is not built yet; "
                f"run `make mini-data` in the repository first (or `sepkit data testset {name_or_path} "
                f"--out {MINI_MIXES_DIR}`) and run from the repository's root (or set {DATA_ROOT_VARIABLE})"
            )
        return path
    path = Path(name_or_path)
    if path.is_file():
        return path
    names = ", ".join(MINI_TESTSETS)
    if path.is_dir():
        raise SepkitError(
            f"--testset {name_or_path} is a folder; give its mixture manifest (.jsonl) or one of: {names}"
        )
    raise SepkitError(
        f"test set {name_or_path!r} not found: give a mixture manifest written by `sepkit data mix` "
        f"(a .jsonl file) or one of: {names}"
    )


def record_fingerprint(record: MixtureRecord) -> str:
    """sha256 of the record's canonical JSON: a cached result belongs to exactly this mixture."""
    return hashlib.sha256(json.dumps(asdict(record), sort_keys=True).encode()).hexdigest()


def safe_name(text: str) -> str:
    """A file-name-safe form of an id: 'a/b c' -> 'a_b_c'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def load_testset(name_or_path: str) -> TestSet:
    """Resolve and read the manifest; mixture ids must be unique (they name cached results)."""
    path = resolve_testset_path(name_or_path)
    records = read_mixtures(path)
    seen: dict[str, str] = {}
    for record in records:
        key = safe_name(record.id)
        if key in seen:
            raise SepkitError(
                f"{path}: mixture ids {seen[key]!r} and {record.id!r} are the same file name; "
                "a test set needs unique ids (rebuild it with sepkit data mix)"
            )
        seen[key] = record.id
    return TestSet(name=name_or_path, path=path, records=records, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
