"""``sepkit complexity RECIPE [overrides...] [--seconds 10] [--repeats 3] [--json] [--no-memory]``.

Parameters (separation = trainable, pretrained = frozen), multiply-accumulates and
FLOPs of one forward pass, real-time factor and peak memory on this machine; the
definitions are in ``sepkit.complexity``.
"""

from __future__ import annotations

import json


def add_parser(sub, parents) -> None:
    p = sub.add_parser(
        "complexity",
        parents=parents,
        help="parameters, MACs/FLOPs, real-time factor and peak memory of a recipe's pipeline",
    )
    p.add_argument("recipe", help="a recipe file or a bundled recipe name")
    p.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. model.separator.hidden=64")
    p.add_argument("--seconds", type=float, default=10.0, help="mixture length in seconds (default: 10)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported (default: 3)")
    p.add_argument("--query", default="extract the violin", help="the text query (default: 'extract the violin')")
    p.add_argument("--threads", type=int, help="torch intra-op threads while measuring (default: torch's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="default: cpu")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocess (faster)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print JSON: params_separation, params_pretrained, params_total, macs, flops, rtf, peak_rss_mb, ...",
    )
    p.set_defaults(run=run)


def run(args) -> int:
    from sepkit.complexity import measure_complexity

    result = measure_complexity(
        args.recipe,
        seconds=args.seconds,
        repeats=args.repeats,
        query=args.query,
        device=args.device,
        threads=args.threads,
        overrides=args.overrides,
        memory=not args.no_memory,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_report(result))
    return 0


def format_report(r: dict) -> str:
    from sepkit.complexity import format_count

    lines = [
        f"{r['name'] or 'recipe'} ({r['recipe']})",
        f"{r['seconds']:g} s at {r['sample_rate']} Hz, batch 1, query {r['query']!r} "
        f"({r['task']} {r['description']!r}, {r['text_tokens']} text tokens), {r['device']}, {r['threads']} threads",
        "",
    ]
    header = ("component", "name", "params", "trainable", "MACs", "FLOPs")
    rows = [
        (kind, str(c["name"]), format_count(c["params"]), format_count(c["trainable"]),
         format_count(c["macs"]), format_count(c["flops"]))
        for kind, c in r["per_component"].items()
    ]
    rows.append(
        ("total", "", format_count(r["params_total"]), format_count(r["params_separation"]),
         format_count(r["macs"]), format_count(r["flops"]))
    )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:])]
        lines.append("  ".join(cells).rstrip())
    peak = "not measured" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f} MB (fresh process)"
    summary = [
        ("params_separation", f"{format_count(r['params_separation'])}  (trainable)"),
        ("params_pretrained", f"{format_count(r['params_pretrained'])}  (frozen)"),
        ("params_total", format_count(r["params_total"])),
        ("macs", f"{format_count(r['macs'])}  (text {format_count(r['macs_text'])}, "
                 f"audio {format_count(r['macs_audio'])})"),
        ("flops", f"{format_count(r['flops'])}  (2 per MAC)"),
        ("rtf", f"{r['rtf']:.4f}  (median of {r['repeats']}; below 1 is faster than real time)"),
        ("peak_rss_mb", peak),
    ]
    lines.append("")
    width = max(len(key) for key, _ in summary)
    lines += [f"{key.ljust(width)}  {value}" for key, value in summary]
    if r["uncounted_ops"]:
        lines.append(f"not counted (no FLOP formula in torch): {', '.join(r['uncounted_ops'])}")
    return "\n".join(lines)
