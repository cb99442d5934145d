"""Score a trained mini recipe on a frozen sepkit-mini mixture set, per instruction task.

    .venv/bin/python benchmarks/evaluate_mini.py mini/audiosep --ckpt recipes/mini/audiosep.ckpt \
        --mixtures data/mixes/hsm_tss_test.jsonl --out benchmarks/results/mini_audiosep_test.json

Prints and writes the mean SI-SDR, SI-SDRi, SDR and SDRi for extraction and removal
instructions (the instruction texts of the manifest, run through `sepkit separate`'s path).

``--paraphrases benchmarks/paraphrases.yaml`` re-asks every instruction with a paraphrase of the
described sources' classes ("extract a fiddle" for a violin target), wordings that appear in no
caption of the corpus the clips come from (checked): the same targets, unseen query wording.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def corpus_captions(mixtures, base: Path) -> set[str]:
    """Lower-cased captions of every clip in the manifests next to the mixtures' source clips."""
    import json

    folders = {(base / s.path).resolve().parents[2] for m in mixtures for s in m.sources}
    captions = set()
    for folder in folders:
        for manifest in folder.glob("*.jsonl"):
            for line in manifest.read_text().splitlines():
                captions.update(c.lower() for c in json.loads(line).get("captions", []))
    return captions


def paraphrased(mixtures, table_path: str, base: Path):
    """The mixtures with every instruction re-worded from ``table_path`` (class -> paraphrase)."""
    import dataclasses

    import yaml

    from sepkit.data.mixing import EXTRACT_TEMPLATES, REMOVE_TEMPLATES
    from sepkit.instructions import RuleBasedInstructionParser

    table = yaml.safe_load(Path(table_path).read_text())
    seen = corpus_captions(mixtures, base) | {t.format(d="").strip() for t in EXTRACT_TEMPLATES + REMOVE_TEMPLATES}
    clashes = sorted(v for v in table.values() if v.lower() in seen)
    if clashes:
        raise SystemExit(f"paraphrases that are not new wording (found in the corpus captions): {clashes}")
    parser = RuleBasedInstructionParser()
    result = []
    for record in mixtures:
        instructions = []
        for ins in record.instructions:
            described = (
                ins.target if ins.task == "extract" else [i for i in range(len(record.sources)) if i not in ins.target]
            )
            description = " and ".join(table[record.sources[i].tags[0]] for i in described)
            text = f"{ins.task} {description}"
            (parsed,) = parser.parse(text)
            (alone,) = parser.parse(description)  # what the description alone parses to (articles dropped)
            assert (parsed.task, parsed.description) == (ins.task, alone.description), (text, parsed)
            instructions.append(dataclasses.replace(ins, text=text, description=description))
        result.append(dataclasses.replace(record, instructions=instructions))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--ckpt")
    parser.add_argument("--mixtures", required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--paraphrases", help="YAML class -> paraphrase; re-ask every instruction with it")
    parser.add_argument("--out")
    args = parser.parse_args()

    import torch

    from sepkit.data.manifest import ClipCache, read_mixtures
    from sepkit.evaluation import evaluate_mixtures
    from sepkit.paths import display_path, display_words
    from sepkit.pipeline import build_pipeline
    from sepkit.recipe import load_recipe

    torch.set_num_threads(2)
    recipe = load_recipe(args.recipe)
    pipeline = build_pipeline(recipe, checkpoint=args.ckpt)
    mixtures = read_mixtures(args.mixtures)
    if args.paraphrases:
        mixtures = paraphrased(mixtures, args.paraphrases, Path(args.mixtures).parent)
    cache = ClipCache(pipeline.sample_rate, base_dir=Path(args.mixtures).parent)
    start = time.perf_counter()
    result = evaluate_mixtures(pipeline, mixtures, cache, limit=args.limit)
    summary = {
        "command": " ".join(["python", *display_words(sys.argv)]),  # paths repository-relative
        "recipe": display_path(recipe.source),
        "checkpoint": display_path(args.ckpt or recipe.checkpoint_path()),
        "mixtures": display_path(args.mixtures),
        "paraphrases": display_path(args.paraphrases),
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
