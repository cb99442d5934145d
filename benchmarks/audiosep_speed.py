"""AudioSep speed and memory: sepkit against the official code, run the same way on this CPU.

Cases (each in a fresh process, so peak RSS from getrusage is its own; inference mode,
``--threads`` threads, one warm-up call, then the median of ``--repeats`` timed calls):

    official-separator   AudioSep's models/resunet.py ResUNet30 forward, float32
    sepkit-separator     wave -> stft -> resunet30 -> istft, float32
    sepkit-separator-bf16  the same under bfloat16 autocast (also SI-SDR against its float32 output)
    official-pipeline    the official text path (CLAP_Encoder.get_query_embed: RoBERTa on 2 x 512
                         tokens) + separator
    sepkit-pipeline      SeparationPipeline.separate with recipes/audiosep.yaml (clap-laion, text
                         padded to the longest query) on the same weights

Both sides get the same seeded random weights in the official layout (``random_official_state``
of tests/fixtures/make_resunet30_parity.py for the separator; the official CLAP built under a fixed
seed for the query encoder). The pipeline cases share them through a Lightning-style checkpoint
written by this script, which sepkit loads with ``sepkit separate --ckpt`` semantics, so the script
also reports the end-to-end output difference.

The official code is not part of sepkit: pass a checkout of github.com/Audio-AGI/AudioSep. It needs
``torchlibrosa``, ``librosa`` and, for its CLAP code, ``braceexpand webdataset wget pandas``
(``pip install`` them into the venv; sepkit does not). The offline official CLAP is built with
RoBERTa-base from its config (random weights) and a RoBERTa tokenizer from a small vocabulary this
script writes (RoBERTa's cost does not depend on the vocabulary: the official tokenizer pads every query to 512 tokens).

    .venv/bin/python benchmarks/audiosep_speed.py --official-dir path/to/AudioSep \
        [--seconds 10] [--repeats 5] [--threads 2] [--out benchmarks/results/audiosep_speed.md]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE_SCRIPT = REPO / "tests" / "fixtures" / "make_resunet30_parity.py"
QUERY = "a man is speaking while birds chirp"
SEPARATOR_CASES = ("official-separator", "sepkit-separator", "sepkit-separator-bf16")
PIPELINE_CASES = ("official-pipeline", "sepkit-pipeline")
def fixture_helpers():
    """tests/fixtures/make_resunet30_parity.py as a module: seeded official weights, inputs, both models."""
    spec = importlib.util.spec_from_file_location("make_resunet30_parity", FIXTURE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_roberta_dir(folder: Path) -> Path:
    """RoBERTa-base config + the byte-level stand-in tokenizer (clap-laion's own helper), no weights."""
    from sepkit_clap.roberta import write_roberta_dir as write_standin

    return write_standin(folder)


def official_clap_encoder(official_dir: str, roberta_dir: Path):
    """AudioSep's CLAP_Encoder (HTSAT-base + RoBERTa), built offline with random weights under seed 0."""
    import torch
    import transformers

    sys.path.insert(0, str(official_dir))
    tokenizer = transformers.RobertaTokenizer.from_pretrained(str(roberta_dir))
    config = transformers.RobertaConfig.from_pretrained(str(roberta_dir))
    originals = (transformers.RobertaTokenizer.from_pretrained, transformers.RobertaModel.from_pretrained)
    transformers.RobertaTokenizer.from_pretrained = staticmethod(lambda *a, **k: tokenizer)
    transformers.RobertaModel.from_pretrained = staticmethod(lambda *a, **k: transformers.RobertaModel(config))
    try:
        from models import clap_encoder

        clap_encoder.RobertaTokenizer.from_pretrained = transformers.RobertaTokenizer.from_pretrained
        torch.manual_seed(0)
        return clap_encoder.CLAP_Encoder(pretrained_path="").eval()
    finally:
        transformers.RobertaTokenizer.from_pretrained, transformers.RobertaModel.from_pretrained = originals


def write_release_checkpoint(official_dir: str, roberta_dir: Path, path: Path) -> None:
    """An AudioSep-layout Lightning checkpoint: ``ss_model.*`` (seeded ResUNet30) + ``query_encoder.*``."""
    import torch

    helpers = fixture_helpers()
    separator = helpers.build_official(official_dir)
    encoder = official_clap_encoder(official_dir, roberta_dir)
    state = {f"ss_model.{k}": v for k, v in separator.state_dict().items()}
    state.update({f"query_encoder.{k}": v for k, v in encoder.state_dict().items()})
    torch.save({"state_dict": state, "epoch": 0, "global_step": 0}, path)


def si_sdr_db(estimate, reference) -> float:
    alpha = (estimate * reference).sum() / reference.pow(2).sum()
    target = alpha * reference
    return float(10 * ((target.pow(2).sum() / (estimate - target).pow(2).sum()).log10()))


def timed(call, repeats: int) -> tuple[float, object]:
    """Warm-up once, then the median wall time of ``repeats`` calls, and the last output."""
    output = call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        output = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), output


def run_case(args) -> dict:
    """One case in this process; prints a JSON line with seconds, peak_rss_mb and the output's stats."""
    import resource

    import torch

    torch.set_num_threads(args.threads)
    helpers = fixture_helpers()
    samples = int(args.seconds * helpers.SAMPLE_RATE)
    mixture, condition = helpers.make_inputs(1, samples, seed=helpers.SEED + 2)
    result = {"case": args.case}
    with torch.inference_mode():
        if args.case == "official-separator":
            model = helpers.build_official(args.official_dir)
            seconds, out = timed(lambda: helpers.official_output(model, mixture, condition), args.repeats)
        elif args.case.startswith("sepkit-separator"):
            models = helpers.build_sepkit()
            if args.case.endswith("bf16"):
                reference = helpers.sepkit_output(models, mixture, condition)

                def call():
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        return helpers.sepkit_output(models, mixture, condition).float()

                seconds, out = timed(call, args.repeats)
                result["si_sdr_vs_fp32_db"] = si_sdr_db(out[0], reference[0])
            else:
                seconds, out = timed(lambda: helpers.sepkit_output(models, mixture, condition), args.repeats)
        elif args.case == "official-pipeline":
            separator = helpers.build_official(args.official_dir)
            encoder = official_clap_encoder(args.official_dir, Path(args.roberta_dir))
            state = torch.load(args.ckpt, map_location="cpu", weights_only=True)["state_dict"]
            prefix = "query_encoder."
            encoder.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})

            def call():
                embedding = encoder.get_query_embed(modality="text", text=[QUERY])
                return helpers.official_output(separator, mixture, embedding)

            seconds, out = timed(call, args.repeats)
        elif args.case == "sepkit-pipeline":
            from sepkit.pipeline import build_pipeline
            from sepkit.recipe import load_recipe

            recipe = load_recipe(
                "audiosep",
                [f"model.text_encoder.text_model_dir={args.roberta_dir}", "inference.chunk_seconds=3600"],
            )
            pipeline = build_pipeline(recipe, args.ckpt).eval()
            rate = helpers.SAMPLE_RATE
            seconds, out = timed(lambda: pipeline.separate([mixture], [rate], f"extract {QUERY}")[0], args.repeats)
        else:
            raise SystemExit(f"unknown case {args.case!r}")
    result.update(
        seconds=seconds,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        output=out.float().reshape(-1)[:samples].tolist() if args.keep_output else None,
    )
    return result


def spawn(case: str, args, **extra) -> dict:
    command = [sys.executable, __file__, "--case", case, "--official-dir", args.official_dir]
    command += ["--seconds", str(args.seconds), "--repeats", str(args.repeats), "--threads", str(args.threads)]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"case {case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: dict, args, pipeline_diff: float | None) -> str:
    official_sep = results.get("official-separator", {}).get("seconds", math.nan)
    official_pipe = results.get("official-pipeline", {}).get("seconds", math.nan)
    lines = [
        "# AudioSep: sepkit vs the official code on this CPU",
        "",
        f"Command: `python benchmarks/audiosep_speed.py --official-dir <AudioSep checkout> --seconds {args.seconds:g} "
        f"--repeats {args.repeats} --threads {args.threads}`. Official code: github.com/Audio-AGI/AudioSep "
        "(models/resunet.py, models/clap_encoder.py). Input: one "
        f"{args.seconds:g} s mixture at 32 kHz; full-size models with the same seeded random weights; each case in a "
        f"fresh process, {args.threads} threads, inference mode, median of {args.repeats} after a warm-up.",
        "",
        "| case | median time (s) | x real time | speed vs official | peak RSS (MB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for case, r in results.items():
        reference = official_pipe if "pipeline" in case else official_sep
        lines.append(
            f"| {case} | {r['seconds']:.2f} | {args.seconds / r['seconds']:.2f} | "
            f"{reference / r['seconds']:.2f}x | {r['peak_rss_mb']:.0f} |"
        )
    lines.append("")
    bf16 = results.get("sepkit-separator-bf16")
    if bf16:
        lines.append(
            f"bfloat16 autocast: {official_sep / bf16['seconds']:.2f}x the official float32 separator; "
            f"SI-SDR of the bf16 output against sepkit's float32 output: {bf16['si_sdr_vs_fp32_db']:.1f} dB."
        )
    if pipeline_diff is not None:
        lines.append(
            "Pipeline outputs (same checkpoint, same query): max abs difference sepkit vs official "
            f"{pipeline_diff:.2g}."
        )
    lines += [
        "",
        "The official text path pads every query to 512 tokens and duplicates a single query to a batch of 2; "
        "sepkit pads to the longest query of the batch.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official-dir", required=True, help="a checkout of github.com/Audio-AGI/AudioSep")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", default=",".join(SEPARATOR_CASES + PIPELINE_CASES))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "audiosep_speed.md"))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--ckpt", help=argparse.SUPPRESS)
    parser.add_argument("--roberta-dir", help=argparse.SUPPRESS)
    parser.add_argument("--keep-output", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args)))
        return
    cases = [c for c in args.cases.split(",") if c]
    results, pipeline_diff = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        roberta_dir = write_roberta_dir(Path(tmp) / "roberta")
        ckpt = Path(tmp) / "audiosep_random.ckpt"
        if any(c in PIPELINE_CASES for c in cases):
            write_release_checkpoint(args.official_dir, roberta_dir, ckpt)
        for case in cases:
            extra = {"ckpt": ckpt, "roberta_dir": roberta_dir, "keep_output": 1} if case in PIPELINE_CASES else {}
            results[case] = spawn(case, args, **extra)
            r = results[case]
            print(f"{case}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    if all(c in results for c in PIPELINE_CASES):
        a, b = (results[c].pop("output") for c in PIPELINE_CASES)
        pipeline_diff = max(abs(x - y) for x, y in zip(a, b))
        print(f"pipeline outputs: max abs difference {pipeline_diff:.3g}")
    for r in results.values():
        r.pop("output", None)
    text = report(results, args, pipeline_diff)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    from sepkit.paths import display_path

    # as the report's command line shows them: the AudioSep checkout is this machine's, the output repository-relative
    shown = {**vars(args), "official_dir": "<AudioSep checkout>", "out": display_path(args.out)}
    Path(args.out).with_suffix(".json").write_text(json.dumps({"args": shown, "results": results}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
