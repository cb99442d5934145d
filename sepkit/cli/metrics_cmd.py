"""``sepkit metrics ESTIMATE REFERENCE [--mixture MIX] [--text TEXT] [--metrics ...] [--json]``: score a pair."""

from __future__ import annotations

import json


def add_parser(sub, parents) -> None:
    p = sub.add_parser(
        "metrics", parents=parents, help="score an estimate against a reference with the papers' metrics"
    )
    p.add_argument("estimate", help="the separated file")
    p.add_argument("reference", help="the true target")
    p.add_argument("--mixture", help="the mixture (needed by improvement metrics such as sdri, si_sdri)")
    p.add_argument("--text", help="a description of the target (needed by text-audio metrics such as clap_score)")
    p.add_argument(
        "--metrics", nargs="+", help="metric names (default: sdr sdri si_sdr si_sdri lsd psnr); see sepkit plugins"
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="METRIC.KEY=VALUE",
        help="a metric's config key, e.g. kl.checkpoint=Cnn14_16k_mAP=0.438.pth (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print JSON: {metrics: {name: value}, ...}")
    p.set_defaults(run=run)


def run(args) -> int:
    from sepkit.scoring import parse_metric_options, score_files

    options = parse_metric_options(args.option)
    result = score_files(args.estimate, args.reference, args.mixture, args.metrics, options, args.text)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, value in result["metrics"].items():
        print(f"{name:10s} {value:10.4f}")
    if result["skipped"]:
        print(f"(skipped {', '.join(result['skipped'])}: no --mixture or --text)")
    return 0
