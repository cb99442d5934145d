"""``sepkit plugins [--kind K] [--json]``: what is installed, without importing any component."""

from __future__ import annotations

import json


def add_parser(sub, parents) -> None:
    p = sub.add_parser("plugins", parents=parents, help="list registered components and their providers")
    p.add_argument("--kind", help="only this kind (text_encoder, audio_encoder, separator, decoder, codec, ...)")
    p.add_argument(
        "--json", action="store_true", help="print a JSON list of {kind, name, target, provider, version, summary}"
    )
    p.set_defaults(run=run)


def run(args) -> int:
    from sepkit.plugins import get_registry

    entries = [e.as_dict() for e in get_registry().entries(args.kind)]
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print("no components registered")
        return 0
    headers = ("kind", "name", "provider", "target", "summary")
    rows = [(e["kind"], e["name"], f"{e['provider']} {e['version']}", e["target"], e["summary"]) for e in entries]
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers) - 1)]
    for row in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    return 0
