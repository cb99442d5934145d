"""benchmarks/compare_mini.py (paired comparison of two evaluate_mini results) and the gap split of
benchmarks/paraphrase_gap/gap.py, on small hand-made result files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


compare_mini = _load("compare_mini", BENCH / "compare_mini.py")
gap = _load("paraphrase_gap", BENCH / "paraphrase_gap" / "gap.py")


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps({"rows": rows}))
    return path


def rows(scores: dict[tuple[str, str], float], texts: dict[tuple[str, str], str] | None = None) -> list[dict]:
    texts = texts or {}
    return [{"id": i, "task": t, "si_sdri": v, "text": texts.get((i, t), f"{t} x")} for (i, t), v in scores.items()]


def test_compare_gives_the_paired_mean_difference_per_task(tmp_path):
    a = {(f"m{k}", task): 5.0 + k % 3 for k in range(20) for task in ("extract", "remove")}
    b = {key: value - (1.0 if key[1] == "extract" else 0.0) for key, value in a.items()}
    result = compare_mini.compare(write(tmp_path / "a.json", rows(a)), write(tmp_path / "b.json", rows(b)), "si_sdri")
    assert result["extract"]["difference"] == pytest.approx(1.0) and result["extract"]["significant"]
    assert result["remove"]["difference"] == pytest.approx(0.0) and not result["remove"]["significant"]
    assert result["all"]["n"] == 40 and result["all"]["difference"] == pytest.approx(0.5)


def test_compare_refuses_files_with_different_instructions(tmp_path):
    a = write(tmp_path / "a.json", rows({("m0", "extract"): 1.0}))
    b = write(tmp_path / "b.json", rows({("m1", "extract"): 1.0}))
    with pytest.raises(SystemExit, match="do not hold the same instructions"):
        compare_mini.compare(a, b, "si_sdri")


def test_gap_is_split_by_whether_every_described_class_is_retrieved(tmp_path):
    table = {"violin": "a fiddle", "rain": "a downpour", "cello": "a violoncello"}
    found = {"violin": {"retrieved": False}, "rain": {"retrieved": True}, "cello": {"retrieved": True}}
    template = {("m0", "extract"): 6.0, ("m1", "extract"): 6.0, ("m2", "remove"): 5.0}
    para_scores = {("m0", "extract"): 1.0, ("m1", "extract"): 5.0, ("m2", "remove"): 4.0}
    texts = {("m0", "extract"): "extract a fiddle", ("m1", "extract"): "extract a downpour",
             ("m2", "remove"): "remove a violoncello and a downpour"}  # fmt: skip
    split = gap.gap_split(write(tmp_path / "t.json", rows(template)),
                          write(tmp_path / "p.json", rows(para_scores, texts)), table, found)  # fmt: skip
    assert split["extract"]["not retrieved"]["gap"] == pytest.approx(5.0)
    assert split["extract"]["retrieved"]["gap"] == pytest.approx(1.0)
    assert split["extract"]["all"]["n"] == 2 and split["extract"]["all"]["gap"] == pytest.approx(3.0)
    assert split["remove"]["retrieved"]["n"] == 1 and split["remove"]["not retrieved"]["n"] == 0
