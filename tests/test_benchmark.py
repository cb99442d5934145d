"""``sepkit benchmark`` on the tiny recipe and a tiny frozen test set built in tmp_path.

One CLI run (module fixture) is shared by the file/keys/rows/failure checks and the
resumption checks; bad inputs fail before any model loads. The whole file takes
about a minute on 2 CPU cores (model loads dominate).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from sepkit.benchmark import prepare_benchmark, run_benchmark
from sepkit.benchmark.testsets import resolve_testset_path
from sepkit.data.manifest import InstructionRef, MixtureRecord, SourceRef, write_jsonl
from sepkit.errors import SepkitError

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "recipes" / "tiny" / "stft_mask.yaml")
SR = 16000
DEFAULT_METRICS = ["sdr", "sdri", "si_sdr", "si_sdri", "lsd", "psnr"]


def tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seed: int, seconds: float = 1.0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def hsm_record(index: int, first: tuple[str, str], second: tuple[str, str], gain: float = 0.7) -> MixtureRecord:
    """An hsm_tss-style mixture: extract the first source, or remove the second; both have target [0]."""
    (clip_a, desc_a), (clip_b, desc_b) = first, second
    return MixtureRecord(
        id=f"tiny-test-{index:03d}",
        protocol="hsm_tss",
        split="test",
        seconds=1.0,
        sample_rate=SR,
        sources=[SourceRef(clip_a, f"clips/{clip_a}.wav", 1.0, tags=[clip_a]),
                 SourceRef(clip_b, f"clips/{clip_b}.wav", gain, tags=[clip_b])],
        instructions=[InstructionRef("extract", f"extract {desc_a}", desc_a, [0]),
                      InstructionRef("remove", f"remove {desc_b}", desc_b, [0])],
    )  # fmt: skip


def build_testset(folder: Path, with_missing_clip: bool = True) -> Path:
    """4 mixtures of 1 s; with_missing_clip: the third names a clip file that does not exist."""
    clips = folder / "clips"
    clips.mkdir(parents=True)
    sf.write(clips / "violin.wav", tone(440), SR, subtype="FLOAT")
    sf.write(clips / "flute.wav", tone(880), SR, subtype="FLOAT")
    sf.write(clips / "rain.wav", noise(0), SR, subtype="FLOAT")
    sf.write(clips / "wind.wav", noise(1), SR, subtype="FLOAT")
    records = [
        hsm_record(0, ("violin", "the violin"), ("rain", "the rain")),
        hsm_record(1, ("flute", "a flute"), ("wind", "the wind"), gain=1.3),
        hsm_record(2, ("ghost", "a ghost"), ("rain", "the rain")) if with_missing_clip
        else hsm_record(2, ("violin", "the violin"), ("wind", "the wind")),
        hsm_record(3, ("rain", "the rain"), ("flute", "a flute"), gain=0.5),
    ]  # fmt: skip
    path = folder / "tiny_test.jsonl"
    write_jsonl(path, records)
    return path


def benchmark_args(testset: Path, out: Path, *extra: str) -> list:
    return [
        "benchmark", TINY, "--testset", testset, "--out", out, "--batch-size", "2",
        "--complexity-seconds", "1", "--report-examples", "2", "--no-progress", *extra,
    ]  # fmt: skip


def stats_line(stderr: str, label: str = "stft-mask-tiny") -> str:
    prefix = f"sepkit: {label}: "
    lines = [line for line in stderr.splitlines() if line.startswith(prefix) and "examples computed" in line]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, sepkit_cli):
    folder = tmp_path_factory.mktemp("bench")
    testset = build_testset(folder)
    out = folder / "out"
    proc = sepkit_cli(*benchmark_args(testset, out), cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return testset, out, proc


# --- one run: files, keys, rows, failures -----------------------------------------------


def test_writes_every_result_file_with_its_keys(first_run):
    _, out, proc = first_run
    for name in ("results.csv", "results.json", "results.md", "report.html"):
        assert (out / name).is_file(), name
        assert str(out / name) in proc.stdout
    results = json.loads((out / "results.json").read_text())
    for key in ("testset", "instructions", "metrics", "systems", "rows", "examples", "spectral_preprocessing",
                "complexity_seconds", "report_examples", "command", "references", "bootstrap",
                "significance"):  # fmt: skip
        assert key in results, key
    assert [m["name"] for m in results["metrics"]] == DEFAULT_METRICS
    assert results["instructions"] == ["extract", "remove"]
    assert results["testset"]["mixtures"] == 4 and results["testset"]["protocols"] == ["hsm_tss"]
    (system,) = results["systems"]
    assert system["label"] == "stft-mask-tiny" and system["checkpoint"] is None
    for key in ("params_separation", "params_pretrained", "macs", "rtf"):
        assert system["complexity"][key] > 0, key
    # every per-example score: 4 mixtures x 2 instructions, for the system and each of the 4 reference rows
    assert len(results["examples"]) == 8 * 5
    scored = [e for e in results["examples"] if e["error"] is None and e["system"] == "stft-mask-tiny"]
    assert len(scored) == 6
    for example in scored:
        assert set(example["scores"]) == set(DEFAULT_METRICS)
        assert all(np.isfinite(v) for v in example["scores"].values())


def test_result_files_name_the_recipe_by_its_repository_relative_path(first_run):
    testset, out, _ = first_run
    results = json.loads((out / "results.json").read_text())
    (system,) = results["systems"]
    assert system["recipe"] == system["complexity"]["recipe"] == "recipes/tiny/stft_mask.yaml"
    assert system["spec"] == "recipes/tiny/stft_mask.yaml"
    assert results["command"].startswith("sepkit benchmark recipes/tiny/stft_mask.yaml --testset ")
    assert results["testset"]["path"] == str(testset)  # outside the repository: left as it is
    for name in ("results.json", "results.csv", "results.md", "report.html"):
        text = (out / name).read_text()
        assert "recipes/tiny/stft_mask.yaml" in text and str(REPO) not in text, name


def test_test_set_paths_in_results_are_repository_relative_from_a_subfolder(monkeypatch):
    from types import SimpleNamespace

    from sepkit.benchmark.runner import _public_testset
    from sepkit.benchmark.testsets import MINI_TESTSETS, TestSet

    monkeypatch.chdir(REPO / "benchmarks")
    named = TestSet("mini-hsm_tss", REPO / MINI_TESTSETS["mini-hsm_tss"], [], "0" * 64)
    assert _public_testset(SimpleNamespace(testset=named, examples=[]))["path"] == MINI_TESTSETS["mini-hsm_tss"]
    given = TestSet(str(REPO / "benchmarks" / "t.jsonl"), REPO / "benchmarks" / "t.jsonl", [], "0" * 64)
    assert _public_testset(SimpleNamespace(testset=given, examples=[]))["path"] == "benchmarks/t.jsonl"


def test_one_row_per_system_and_instruction_with_means_of_the_examples(first_run):
    _, out, _ = first_run
    results = json.loads((out / "results.json").read_text())
    rows = [r for r in results["rows"] if r["kind"] == "system"]
    assert [(r["system"], r["instruction"]) for r in rows] == [("stft-mask-tiny", "extract"),
                                                               ("stft-mask-tiny", "remove")]  # fmt: skip
    for row in rows:
        mine = [e for e in results["examples"]
                if e["system"] == row["system"] and e["task"] == row["instruction"] and e["error"] is None]  # fmt: skip
        assert row["n"] == 3 and row["failed"] == 1
        for metric in DEFAULT_METRICS:
            assert row[metric] == pytest.approx(np.mean([e["scores"][metric] for e in mine]))
        for key in ("params_separation", "params_pretrained", "macs", "rtf"):
            assert row[key] == results["systems"][0]["complexity"][key]
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["system", "recipe", "checkpoint", "instruction", "n", "failed"]
    assert header[6:17] == [*DEFAULT_METRICS, "params_separation", "params_pretrained", "macs", "rtf", "kind"]
    assert header[17:] == [f"{m}_ci_{end}" for m in DEFAULT_METRICS for end in ("low", "high")]
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 2 * 5


def test_a_failing_example_is_recorded_and_the_run_goes_on(first_run):
    _, out, proc = first_run
    results = json.loads((out / "results.json").read_text())
    failed = [e for e in results["examples"] if e["error"] is not None]
    assert {(e["id"], e["task"]) for e in failed} == {("tiny-test-002", "extract"), ("tiny-test-002", "remove")}
    for example in failed:
        assert "ghost.wav" in example["error"] and "does not exist" in example["error"]
        assert example["scores"] is None
    # the examples after it were scored
    assert any(e["id"] == "tiny-test-003" and e["error"] is None for e in results["examples"])
    assert "2 failed" in stats_line(proc.stderr)


def test_markdown_table_like_the_papers_with_best_in_bold_and_the_lsd_preprocessing(first_run):
    _, out, _ = first_run
    text = (out / "results.md").read_text()
    assert "| Model | n | failed | SDR ↑ | SDRi ↑ | SI-SDR ↑ | SI-SDRi ↑ | LSD ↓ | PSNR ↑ |" in text
    assert "| *Extraction* |" in text and "| *Removal* |" in text
    assert text.index("*Extraction*") < text.index("*Removal*")
    assert "**" in text
    assert "without audioldm-eval's preprocessing" in text
    assert "sepkit benchmark" in text  # the command that produced it


def test_report_shows_table_and_spectrograms_with_players(first_run):
    _, out, _ = first_run
    page = (out / "report.html").read_text()
    assert "<table>" in page and "Extraction" in page
    results = json.loads((out / "results.json").read_text())
    shown = results["report_examples"]
    assert shown == ["tiny-test-000.0", "tiny-test-000.1", "tiny-test-003.0", "tiny-test-003.1"]
    for key in shown:
        folder = out / "report" / key
        for name in ("mixture", "target"):
            assert (folder / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            with Image.open(folder / f"{name}.png") as picture:
                pixels = np.asarray(picture.convert("L"), dtype=float)
            assert pixels.shape == (160, 300) and pixels.std() > 5  # the size the page shows; not blank
            assert f"report/{key}/{name}.wav" in page
        estimates = sorted(folder.glob("estimate-*.wav"))  # the system's and the Oracle IRM row's
        assert len(estimates) == 2 and all(sf.info(str(e)).samplerate == SR for e in estimates)
    assert page.count("<audio controls") == 4 * 4


# --- reference rows ------------------------------------------------------------------------


REFERENCE_LABELS = ["Oracle IRM [stft n_fft 256, hop_length 64]", "Mixture", "Mixture x 0.5", "Silence"]


def by_key(results: dict, label: str, task: str, metric: str) -> dict:
    return {e["key"]: e["scores"][metric] for e in results["examples"]
            if e["system"] == label and e["task"] == task and e["error"] is None}  # fmt: skip


def row_of(results: dict, label: str, task: str) -> dict:
    return next(r for r in results["rows"] if r["system"] == label and r["instruction"] == task)


def test_reference_rows_follow_the_systems_by_default(first_run):
    _, out, proc = first_run
    results = json.loads((out / "results.json").read_text())
    for task in ("extract", "remove"):
        rows = [r for r in results["rows"] if r["instruction"] == task]
        assert [(r["system"], r["kind"]) for r in rows] == [("stft-mask-tiny", "system"),
            *zip(REFERENCE_LABELS, ("oracle", "reference", "reference", "reference"))]  # fmt: skip
        for row in rows:  # the same examples as the system: the missing clip fails for every row
            assert (row["n"], row["failed"]) == (3, 1), row["system"]
            assert all(row[key] is None for key in ("params_separation", "macs", "rtf")) == (row["kind"] != "system")
    assert [r["label"] for r in results["references"]] == REFERENCE_LABELS
    assert results["references"][0]["declared_by"] == ["stft-mask-tiny"]
    assert all("stft-mask-tiny" not in label for label in REFERENCE_LABELS)  # an oracle row is not the system's
    assert "(declared by stft-mask-tiny)" in (out / "results.md").read_text()
    assert "Oracle IRM [stft n_fft 256, hop_length 64]: 8 examples computed" in proc.stderr


def test_mixture_row_scores_zero_improvement_exactly_and_half_the_mixture_only_its_scale(first_run):
    _, out, _ = first_run
    results = json.loads((out / "results.json").read_text())
    for task in ("extract", "remove"):
        for metric in ("sdri", "si_sdri"):
            assert set(by_key(results, "Mixture", task, metric).values()) == {0.0}, (task, metric)
        half, whole = (by_key(results, label, task, "si_sdr") for label in ("Mixture x 0.5", "Mixture"))
        assert half.keys() == whole.keys() and all(half[k] == pytest.approx(whole[k], abs=1e-9) for k in half)
        sdr_half, sdr_whole = (by_key(results, label, task, "sdr") for label in ("Mixture x 0.5", "Mixture"))
        assert all(sdr_half[k] != pytest.approx(sdr_whole[k], abs=0.01) for k in sdr_half)
    mixture = row_of(results, "Mixture", "extract")
    assert mixture["sdri"] == 0.0 and mixture["ci"]["sdri"] == [0.0, 0.0]


def test_silence_row_gets_each_metrics_own_floor_and_finite_scores(first_run):
    _, out, _ = first_run
    results = json.loads((out / "results.json").read_text())
    for task in ("extract", "remove"):
        assert set(by_key(results, "Silence", task, "sdr").values()) == {0.0}  # SDR of zeros: 1e-10 floors
        mixture_sdr, silence_sdri = by_key(results, "Mixture", task, "sdr"), by_key(results, "Silence", task, "sdri")
        assert all(silence_sdri[k] == pytest.approx(-mixture_sdr[k]) for k in mixture_sdr)
        for metric in ("lsd", "psnr"):
            assert len(by_key(results, "Silence", task, metric)) == 3  # finite for every scored example
        silence, mixture = row_of(results, "Silence", task), row_of(results, "Mixture", task)
        assert silence["lsd"] > mixture["lsd"] + 1 and silence["psnr"] < mixture["psnr"]


def test_rows_have_intervals_and_the_pages_show_references_and_significance(first_run):
    _, out, _ = first_run
    results = json.loads((out / "results.json").read_text())
    assert results["bootstrap"]["resamples"] == 1000 and results["bootstrap"]["seed"] == 0
    for row in results["rows"]:
        for metric in DEFAULT_METRICS:
            low, high = row["ci"][metric]
            assert low <= row[metric] <= high, (row["system"], metric)
    pairs = {(c["a"], c["b"]) for c in results["significance"] if c["instruction"] == "extract"}
    labels = ["stft-mask-tiny", *REFERENCE_LABELS]
    assert pairs == {(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]}
    oracle_vs_mixture = next(c for c in results["significance"] if c["a"] == REFERENCE_LABELS[0]
                             and c["b"] == "Mixture" and c["metric"] == "si_sdri")  # fmt: skip
    assert oracle_vs_mixture["significant"] and oracle_vs_mixture["ci"][0] > 5  # the IRM is far above the mixture
    text = (out / "results.md").read_text()
    assert "| *Mixture x 0.5* | 3 | 1 |" in text and "| *Oracle IRM [stft n_fft 256, hop_length 64]* |" in text
    assert " ± " in text.split("| *Extraction* |")[1].splitlines()[1]
    for line in text.splitlines():
        if line.startswith("| *") and "Extraction" not in line and "Removal" not in line:
            assert "**" not in line, line  # reference rows are never bold
    section = text.split("## Paired differences")[1]
    assert "### Extraction" in section and "### Removal" in section
    assert "- stft-mask-tiny vs Mixture x 0.5: " in section
    assert f"- {REFERENCE_LABELS[0]} vs Silence: " in section
    assert "- Mixture vs Silence" not in section  # reference rows against each other: results.json only
    page = (out / "report.html").read_text()
    assert page.count("<tr class='reference'>") == 2 * 4 and "Paired differences" in page


def test_no_reference_rows_flag_leaves_them_out(tmp_path, sepkit_cli):
    testset = build_testset(tmp_path / "data", with_missing_clip=False)
    out = tmp_path / "out"
    proc = sepkit_cli(*benchmark_args(testset, out, "--no-reference-rows", "--limit", "1", "--metrics", "sdr"))
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert [r["system"] for r in results["rows"]] == ["stft-mask-tiny", "stft-mask-tiny"]
    assert results["references"] == [] and results["significance"] == []
    assert {e["system"] for e in results["examples"]} == {"stft-mask-tiny"}
    assert [p.name.split("-")[0] for p in (out / "cache").iterdir()] == ["stft"]
    text = (out / "results.md").read_text()
    assert "Mixture" not in text and "Oracle" not in text and "Paired differences" not in text
    assert "Oracle" not in proc.stderr


# --- resuming ------------------------------------------------------------------------------


def test_second_run_reuses_every_cached_example_and_gives_identical_results(first_run, sepkit_cli):
    testset, out, _ = first_run
    before = {name: (out / name).read_bytes() for name in ("results.json", "results.csv", "results.md")}
    proc = sepkit_cli(*benchmark_args(testset, out))
    assert proc.returncode == 0, proc.stderr
    assert "0 examples computed, 8 cached" in stats_line(proc.stderr)
    assert "measuring complexity" not in proc.stderr
    for name, data in before.items():
        assert (out / name).read_bytes() == data, name


def test_an_interrupted_run_continues_where_it_stopped(first_run, sepkit_cli, tmp_path):
    testset, out, _ = first_run
    resumed = tmp_path / "out"
    shutil.copytree(out / "cache", resumed / "cache")
    (examples,) = list((resumed / "cache").glob("stft-mask-tiny-*/examples"))
    for key in ("tiny-test-001.1", "tiny-test-003.0", "tiny-test-003.1"):  # the run stopped in batch 2
        (examples / f"{key}.json").unlink()
    proc = sepkit_cli(*benchmark_args(testset, resumed))
    assert proc.returncode == 0, proc.stderr
    # batches are fixed (2 examples): batch 2 (001.0, 001.1) and batch 4 (003.0, 003.1) are recomputed whole
    assert "4 examples computed, 4 cached" in stats_line(proc.stderr)
    first = json.loads((out / "results.json").read_text())
    again = json.loads((resumed / "results.json").read_text())
    assert again["examples"] == first["examples"] and again["rows"] == first["rows"]


# --- bad inputs: exit 2, one clear line, nothing written ---------------------------------


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda a: a.__setitem__(1, "no/such/recipe"), ["recipe", "no/such/recipe", "not found"]),
        (lambda a: a.__setitem__(3, "missing.jsonl"), ["test set", "missing.jsonl", "not found", "sepkit data mix"]),
        (lambda a: a.extend(["--metrics", "sdr,nosuchmetric"]), ["nosuchmetric"]),
        (lambda a: a.__setitem__(1, f"{TINY}@missing.ckpt"), ["checkpoint", "missing.ckpt", "not found"]),
        (lambda a: a.extend(["--instructions", "extract,mix"]), ["--instructions", "mix"]),
        (lambda a: a.extend(["--metrics", "fad"]), ["fad", "whole set"]),
        (lambda a: a.extend(["--label", "Mixture"]), ["'Mixture'", "reference row", "--label"]),
    ],
    ids=["unknown-recipe", "missing-testset", "unknown-metric", "missing-checkpoint", "bad-instruction", "set-metric",
         "reference-label"],
)
def test_bad_inputs_exit_2_with_a_clear_message_and_write_nothing(tmp_path, sepkit_cli, change, words):
    testset = build_testset(tmp_path / "data")
    out = tmp_path / "out"
    args = benchmark_args(testset, out)
    change(args)
    proc = sepkit_cli(*args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sepkit: error:"), proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not out.exists()


def test_a_missing_mini_testset_says_to_run_make_mini_data(monkeypatch, tmp_path):

    monkeypatch.setenv("SEPKIT_DATA_ROOT", str(tmp_path))
    with pytest.raises(SepkitError, match="make mini-data"):
        resolve_testset_path("mini-hsm_tss")
    monkeypatch.undo()
    if (REPO / "data" / "mixes" / "hsm_tss_test.jsonl").is_file():
        assert resolve_testset_path("mini-hsm_tss") == REPO / "data" / "mixes" / "hsm_tss_test.jsonl"


# --- in-process: batched inference and failures inside a batch ------------------------------


def test_batched_inference_matches_pipeline_separate():
    from sepkit.benchmark.inference import separate_batch
    from sepkit.pipeline import build_pipeline
    from sepkit.recipe import load_recipe

    pipeline = build_pipeline(load_recipe(TINY))
    mixtures = [torch.from_numpy(tone(440) + noise(0)), torch.from_numpy(tone(880, 0.6) + noise(1, 0.6))]
    queries = ["extract the violin", "remove the wind"]
    batched = separate_batch(pipeline, mixtures, 8000, queries, device="cpu")  # also resampled 8 kHz <-> 16 kHz
    for mixture, query, estimate in zip(mixtures, queries, batched):
        (alone,) = pipeline.separate([mixture[None]], [8000], query, device="cpu")
        assert estimate.shape == mixture.shape
        torch.testing.assert_close(estimate, alone[0], atol=1e-4, rtol=1e-4)
    compound = separate_batch(pipeline, mixtures[:1], 8000, ["extract the violin and remove the rain"], device="cpu")
    (alone,) = pipeline.separate([mixtures[0][None]], [8000], "extract the violin and remove the rain", device="cpu")
    torch.testing.assert_close(compound[0], alone[0])


def test_a_model_error_inside_a_batch_fails_only_its_example(tmp_path, monkeypatch):
    import sepkit.benchmark.runner as runner

    testset = build_testset(tmp_path / "data", with_missing_clip=False)
    real = runner.separate_batch

    def flaky(pipeline, mixtures, rate, queries, **kwargs):
        if "remove the wind" in queries:
            raise RuntimeError("model blew up on the wind")
        return real(pipeline, mixtures, rate, queries, **kwargs)

    monkeypatch.setattr(runner, "separate_batch", flaky)
    plan = prepare_benchmark([TINY], str(testset), tmp_path / "out", metrics=["sdr", "si_sdri"], batch_size=4,
                             report_examples=1, complexity_seconds=0.5)  # fmt: skip
    results = run_benchmark(plan, progress=False, log=lambda message: None)
    errors = {(e["id"], e["task"]): e["error"] for e in results["examples"] if e["error"]}
    assert errors == {
        ("tiny-test-001", "remove"): "RuntimeError: model blew up on the wind",
        ("tiny-test-002", "remove"): "RuntimeError: model blew up on the wind",
    }
    rows = [r for r in results["rows"] if r["kind"] == "system"]
    assert [r["n"] for r in rows] == [4, 2] and [r["failed"] for r in rows] == [0, 2]


def test_fingerprint_covers_component_checkpoint_files(tmp_path):
    """A component file retrained in place (same path, new bytes) must not reuse cached results."""
    from sepkit.benchmark.systems import load_system
    from sepkit.plugins import get_registry

    weights = tmp_path / "codec.pt"
    weights.write_bytes(b"first")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: fp\nmodel:\n  text_encoder: {name: minilm}\n  audio_encoder: {name: stft}\n"
        "  separator: {name: mask-net, checkpoint: codec.pt}\n  decoder: {name: istft}\n"
    )
    first = load_system(str(recipe), get_registry())
    assert list(first.component_checkpoints) == ["model.separator.checkpoint"]
    weights.write_bytes(b"second")
    second = load_system(str(recipe), get_registry())
    assert first.fingerprint({}) != second.fingerprint({})
    assert second.fingerprint({}) == load_system(str(recipe), get_registry()).fingerprint({})
