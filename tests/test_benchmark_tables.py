"""Result tables from hand-made per-example entries: means, bold best values, CSV, notes (no model)."""

from __future__ import annotations

import csv
import io

from sepkit.benchmark.tables import csv_text, markdown_page, markdown_table, summarise

TESTSET = {
    "name": "tiny", "path": "tiny.jsonl", "sha256": "ab" * 32, "mixtures": 2, "evaluated": 2,
    "protocols": ["hsm_tss"], "seconds": [4.0], "sample_rates": [16000],
}  # fmt: skip


def system(label: str, macs: int, rtf: float) -> dict:
    return {
        "label": label, "recipe": f"{label}.yaml", "checkpoint": None, "checkpoint_sha256": None,
        "complexity": {"params_separation": 2_000_000, "params_pretrained": 0, "macs": macs, "rtf": rtf},
    }  # fmt: skip


def example(label: str, task: str, sdr, lsd, error=None) -> dict:
    scores = None if error else {"sdr": sdr, "lsd": lsd}
    return {"system": label, "id": "m", "task": task, "scores": scores, "error": error}


def results() -> dict:
    data = {
        "testset": TESTSET,
        "instructions": ["extract", "remove"],
        "metrics": [{"name": "sdr", "higher_is_better": True}, {"name": "lsd", "higher_is_better": False}],
        "systems": [system("a", 3_000_000_000, 0.5), system("b", 1_000_000_000, 0.25)],
        "complexity_seconds": 10.0,
        "spectral_preprocessing": "LSD: on the waveforms as separated.",
        "examples": [
            example("a", "extract", 4.0, 2.0), example("a", "extract", 6.0, 1.0),
            example("a", "remove", 1.0, 3.0), example("a", "remove", None, None, error="boom"),
            example("b", "extract", 2.0, 1.25), example("b", "extract", 2.0, 1.25),
            example("b", "remove", 5.0, None), example("b", "remove", 5.0, 1.5),
        ],
    }  # fmt: skip
    data["rows"] = summarise(data)
    return data


def test_rows_are_means_per_system_and_instruction_over_finite_scores():
    rows = results()["rows"]
    assert [(r["system"], r["instruction"], r["n"], r["failed"]) for r in rows] == [
        ("a", "extract", 2, 0), ("a", "remove", 1, 1), ("b", "extract", 2, 0), ("b", "remove", 2, 0),
    ]  # fmt: skip
    assert [r["sdr"] for r in rows] == [5.0, 1.0, 2.0, 5.0]
    assert [r["lsd"] for r in rows] == [1.5, 3.0, 1.25, 1.5]  # None (non-finite) left out of the mean
    assert rows[0]["macs"] == 3_000_000_000 and rows[2]["rtf"] == 0.25


def test_best_value_of_each_column_is_bold_ties_included():
    table = markdown_table(results())
    lines = table.splitlines()
    assert lines[0].startswith("| Model | n | failed | SDR ↑ | LSD ↓ | Params sep. (M) ↓")
    assert lines[2].startswith("| *Extraction* |") and lines[5].startswith("| *Removal* |")
    a_extract, b_extract, a_remove, b_remove = lines[3], lines[4], lines[6], lines[7]
    assert "**3.000**" not in a_remove  # the worst LSD is not bold
    assert "**5.00**" in a_extract and "**5.00**" in b_remove  # SDR: a tie, both bold
    assert "**1.250**" in b_extract and "1.500" in a_extract and "**1.500**" not in a_extract
    assert "**1.00**" in b_extract and "**0.250**" in b_extract  # MACs (G) and RTF: lowest
    assert "**2.00**" in a_extract  # params_separation equal everywhere: all bold
    assert "**" not in a_extract.split("|")[2]  # counts are never ranked


def test_csv_has_full_precision_and_empty_cells_for_missing_values():
    data = results()
    data["rows"][0]["rtf"] = None
    rows = list(csv.DictReader(io.StringIO(csv_text(data["rows"]))))
    assert len(rows) == 4 and rows[0]["rtf"] == "" and float(rows[1]["sdr"]) == 1.0


def test_page_states_the_test_set_preprocessing_and_weights():
    page = markdown_page(results())
    assert page.startswith("# Benchmark on tiny")
    assert "LSD: on the waveforms as separated." in page
    assert "all 2 mixtures" in page and "untrained weights" in page


def test_reference_rows_are_italic_unranked_and_every_metric_has_its_interval():
    from sepkit.benchmark.bootstrap import compare_rows

    data = results()
    data["references"] = [
        {"label": "Oracle X (b)", "kind": "oracle", "description": "b's ceiling", "declared_by": ["b"]},
        {"label": "Mixture", "kind": "reference", "description": "the mixture"},
    ]
    for label, sdr, lsd in (("Oracle X (b)", 20.0, 0.1), ("Mixture", 9.0, 0.5)):
        data["examples"] += [example(label, "extract", sdr, lsd), example(label, "extract", sdr, lsd),
                             example(label, "remove", 0.0, 9.0), example(label, "remove", 0.0, 9.0)]  # fmt: skip
    data["rows"] = summarise(data)
    for i, e in enumerate(data["examples"]):
        e["key"] = f"m{i % 2}"
    data["significance"] = compare_rows(data)
    rows = [r for r in data["rows"] if r["instruction"] == "extract"]
    assert [(r["system"], r["kind"]) for r in rows] == [("a", "system"), ("b", "system"), ("Oracle X (b)", "oracle"),
                                                        ("Mixture", "reference")]  # fmt: skip
    assert rows[0]["ci"]["sdr"] == [4.0, 6.0] and rows[3]["ci"]["lsd"] == [0.5, 0.5]
    table = markdown_table(data).splitlines()
    mixture = next(line for line in table if line.startswith("| *Mixture* |"))
    assert "9.00 ± 0.00" in mixture and "**" not in mixture  # the highest SDR, but not a system: not bold
    assert "**5.00** ± 1.00" in table[3]  # a's extraction SDR: best among the systems, 4 and 6 -> [4, 6]
    page = markdown_page(data)
    assert "Rows in italics need no model" in page and "Mixture: the mixture" in page
    assert "- a vs Mixture: worse on SDR -4.00 [-5.00, -3.00]" in page
    # listed: systems against each other, the reference rows and their own oracle rows; oracles against references
    listed = [line.split(":")[0] for line in page.split("### Extraction")[1].split("###")[0].splitlines() if line]
    assert listed == ["- a vs b", "- a vs Mixture", "- b vs Oracle X (b)", "- b vs Mixture",
                      "- Oracle X (b) vs Mixture"]  # fmt: skip
    header = csv_text(data["rows"]).splitlines()[0].split(",")
    assert header[-5:] == ["kind", "sdr_ci_low", "sdr_ci_high", "lsd_ci_low", "lsd_ci_high"]
