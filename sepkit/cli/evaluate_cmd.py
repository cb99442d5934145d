"""``sepkit evaluate RECIPE --manifest M.jsonl [--ckpt C] [--task retrieval] [--k 1,5,10] [--limit N] [--json]``.

Also ``--out FILE`` (the JSON result), ``--batch-size``, ``--device``, ``--no-progress``.

Evaluates a recipe's encoders on a clip manifest. The one task so far is ``retrieval``:
text-to-audio and audio-to-text recall at k (``sepkit.retrieval``) through the encoders'
``embed_text`` / ``embed_audio`` (qaudio, clap-laion, clap-hf). ``--ckpt`` (default: the recipe's
``checkpoint:``) is put into the encoders' ``checkpoint`` key, e.g. a ``qaudio`` training run's
``checkpoints/best.ckpt``.
"""

from __future__ import annotations

import json


def add_parser(sub, parents) -> None:
    p = sub.add_parser(
        "evaluate", parents=parents, help="evaluate a recipe's encoders on a clip manifest (text-audio retrieval)"
    )
    p.add_argument("recipe", help="a recipe file or a bundled recipe name (its text_encoder / audio_encoder are used)")
    p.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. model.audio_encoder.part=both")
    p.add_argument("--manifest", required=True, help="a clip manifest (JSONL of clips with captions)")
    p.add_argument("--ckpt", help="weights for the encoders' 'checkpoint' key (default: the recipe's checkpoint)")
    p.add_argument("--task", choices=("retrieval",), default="retrieval", help="what to evaluate (default: retrieval)")
    p.add_argument("--k", default="1,5,10", help="recall cut-offs, comma-separated (default: 1,5,10)")
    p.add_argument("--limit", type=int, help="use N clips spread evenly over the manifest (deterministic)")
    p.add_argument("--batch-size", type=int, default=8, help="clips or captions per forward pass (default: 8)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: auto")
    p.add_argument("--json", action="store_true", help="print JSON: t2a_r1, ..., a2t_r10, num_clips, num_captions")
    p.add_argument("--out", help="also write the JSON result to this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def parse_ks(text: str) -> list[int]:
    from sepkit.errors import SepkitError

    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        ks = []
    if not ks or any(k < 1 for k in ks):
        raise SepkitError(f"--k {text!r}: give positive integers separated by commas, e.g. --k 1,5,10")
    return ks


def run(args) -> int:
    from sepkit.atomic import atomic_path
    from sepkit.recipe import load_recipe
    from sepkit.retrieval import evaluate_retrieval

    ks = parse_ks(args.k)
    recipe = load_recipe(args.recipe, args.overrides)
    result = evaluate_retrieval(
        recipe, args.manifest, checkpoint=args.ckpt, ks=ks, limit=args.limit, batch_size=args.batch_size,
        device=args.device, progress=not args.no_progress,
    )  # fmt: skip
    text = json.dumps(result, indent=2)
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    if args.json:
        print(text)
        return 0
    print(f"{result['task']}: {result['num_clips']} clips, {result['num_captions']} captions ({result['manifest']})")
    for direction, label in (("t2a", "text -> audio"), ("a2t", "audio -> text")):
        scores = "  ".join(f"R@{k} {100 * result[f'{direction}_r{k}']:5.1f}" for k in ks)
        print(f"{label:14s} {scores}")
    return 0
