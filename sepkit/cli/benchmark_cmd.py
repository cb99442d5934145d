"""``sepkit benchmark RECIPE[@CHECKPOINT] ... --testset T [--metrics ...] [--instructions extract,remove] --out DIR``.

One row per system and instruction type, one column per metric (mean and 95 %
bootstrap interval) plus the complexity columns, then the rows that need no model
(oracle rows, Mixture, Mixture x 0.5, Silence; ``--no-reference-rows`` leaves them
out); writes results.csv, results.json, results.md and report.html under DIR.
Per-example results are cached in DIR/cache, so rerunning the same command
resumes an interrupted run. See ``sepkit.benchmark``.
"""

from __future__ import annotations

import shlex
import sys


def add_parser(sub, parents) -> None:
    p = sub.add_parser(
        "benchmark",
        parents=parents,
        help="score recipes on a frozen test set: results.csv/.json/.md and report.html",
        description="Score each system (RECIPE or RECIPE@CHECKPOINT) on every mixture of a frozen test set, "
        "per instruction type; resumable (per-example results are cached under --out).",
    )
    p.add_argument("systems", nargs="+", metavar="RECIPE[@CHECKPOINT] [KEY=VALUE ...]",
                   help="a recipe file or bundled name, optionally @ a sepkit or official checkpoint, each "
                   "optionally followed by recipe overrides for it (model.separator.hidden=64)")
    p.add_argument("--testset", required=True, metavar="T",
                   help="a mixture manifest (.jsonl from sepkit data mix / data testset) or a sepkit-mini test "
                   "set by name: mini-hsm_tss (data/mixes/hsm_tss_test.jsonl), mini-hsm_tss-val, mini-3sets, "
                   "mini-music_zeroshot, mini-dcase, mini-hybrid_sep (sepkit data testset --list)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results and the cache")
    p.add_argument("--metrics", nargs="+",
                   help="metric names, space- or comma-separated (default: sdr sdri si_sdr si_sdri lsd psnr)")
    p.add_argument("--option", action="append", default=[], metavar="METRIC.KEY=VALUE",
                   help="a metric's config key, e.g. lsd.audioldm_preprocess=true (repeatable)")
    p.add_argument("--instructions", metavar="TYPES",
                   help="instruction types, comma-separated: extract,remove (default: every type the test set has)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N mixtures (quick runs)")
    p.add_argument("--batch-size", type=int,
                   help="examples per forward pass (default: the recipe's inference.batch_size)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="overrides the recipes' inference.device")
    p.add_argument("--label", action="append", metavar="NAME", help="table name of each system, in order (repeatable)")
    p.add_argument("--report-examples", type=int, default=4, metavar="N",
                   help="mixtures shown in report.html (default: 4)")
    p.add_argument("--complexity-seconds", type=float, default=10.0,
                   help="audio length for the params/MACs/RTF columns (default: 10)")
    p.add_argument("--retry-failed", action="store_true", help="recompute examples cached as failed")
    p.add_argument("--no-reference-rows", action="store_true",
                   help="leave out the rows that need no model: Mixture, Mixture x 0.5, Silence and the oracle rows "
                   "the systems declare (e.g. Oracle IRM, Oracle codec round trip)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)  # fmt: skip


def run(args) -> int:
    from sepkit.benchmark import RESULT_FILES, prepare_benchmark, run_benchmark
    from sepkit.paths import display_words
    from sepkit.scoring import parse_metric_options

    # the command as the result files quote it: paths repository-relative, not this machine's absolute ones
    command = shlex.join(["sepkit", *display_words(sys.argv[1:])]) if "benchmark" in sys.argv[1:] else None
    plan = prepare_benchmark(
        args.systems,
        args.testset,
        args.out,
        metrics=args.metrics,
        options=parse_metric_options(args.option),
        instructions=[args.instructions] if args.instructions else None,
        limit=args.limit,
        batch_size=args.batch_size,
        device=args.device,
        labels=args.label,
        report_examples=args.report_examples,
        complexity_seconds=args.complexity_seconds,
        retry_failed=args.retry_failed,
        command=command,
        reference_rows=not args.no_reference_rows,
    )
    results = run_benchmark(plan, progress=not args.no_progress)
    for label, stats in results["stats"].items():
        print(
            f"sepkit: {label}: {stats['computed']} examples computed, {stats['cached']} cached, "
            f"{stats['failed']} failed, {stats['seconds']:.1f} s",
            file=sys.stderr,
        )
    for name in RESULT_FILES:
        print(plan.out / name)
    return 0
