"""Score a trained mini recipe on a frozen sepkit-mini mixture set, per instruction task.

    .venv/bin/python benchmarks/evaluate_mini.py mini/audiosep --ckpt recipes/mini/audiosep.ckpt \
        --mixtures data/mixes/hsm_tss_test.jsonl --out benchmarks/results/mini_audiosep_test.json

Prints and writes the mean SI-SDR, SI-SDRi, SDR and SDRi for extraction and removal
instructions (the instruction texts of the manifest, run through `sepkit separate`'s path).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--ckpt")
    parser.add_argument("--mixtures", required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()

    import torch

    from sepkit.data.manifest import ClipCache, read_mixtures
    from sepkit.evaluation import evaluate_mixtures
    from sepkit.pipeline import build_pipeline
    from sepkit.recipe import load_recipe

    torch.set_num_threads(2)
    recipe = load_recipe(args.recipe)
    pipeline = build_pipeline(recipe, checkpoint=args.ckpt)
    mixtures = read_mixtures(args.mixtures)
    cache = ClipCache(pipeline.sample_rate, base_dir=Path(args.mixtures).parent)
    start = time.perf_counter()
    result = evaluate_mixtures(pipeline, mixtures, cache, limit=args.limit)
    summary = {
        "command": " ".join(["python", *sys.argv]),
        "recipe": recipe.source,
        "checkpoint": args.ckpt or str(recipe.checkpoint_path()),
        "mixtures": args.mixtures,
        "count": result["count"],
        "mean": result["mean"],
        "seconds": time.perf_counter() - start,
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({**summary, "rows": result["rows"]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
