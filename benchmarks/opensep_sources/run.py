"""How often OpenSep's source enumeration finds the sources of a mini mixture (issue 16).

``sepkit separate --all`` asks the recipe's captioner for a caption of the mixture and its source
parser for one query per source (``sepkit.source_finding``). Offline, mini OpenSep's captioner is the
``tagger-captioner`` stand-in (a log-mel tagger trained by ``recipes/mini/opensep_tagger.yaml``) and its
parser the ``table-parser`` (tag -> description). This script runs that same ``SourceFinder`` on each
mixture of a frozen test set and compares the sources it names with the mixture's true sources:

- a named source is **correct** if it is one of the tags of one of the mixture's sources;
- a true source is **found** if one of its tags is named;
- per test set: micro precision, recall and F1 over all mixtures (the tagger's tag F1 as ``--all``
  sees it), the fraction of mixtures where **every** source is found (for two-source mixtures: "``--all``
  returns both sources"), and where the named set is exactly the true set; each with a 95 % bootstrap
  interval over mixtures (1000 resamples, numpy seed 0), split by the number of sources.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/opensep_sources/run.py --recipe mini/opensep \\
        --testset mini-hsm_tss --testset mini-3sets --out benchmarks/opensep_sources

``--set KEY=VALUE`` overrides the recipe (e.g. ``eval.captioner.checkpoint=campaigns/x/checkpoints/best.ckpt``,
``eval.captioner.threshold=0.3``). Writes ``results.json`` (every mixture's caption and named sources) and
``results.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[2]
RESAMPLES, SEED = 1000, 0


def mixture_scores(named: list[str], source_tags: list[list[str]]) -> dict:
    """Counts for one mixture: ``named`` sources against the true sources' tag lists."""
    known = {tag for tags in source_tags for tag in tags}
    correct = sum(1 for name in dict.fromkeys(named) if name in known)
    found = sum(1 for tags in source_tags if set(tags) & set(named))
    return {
        "named": len(set(named)),
        "correct": correct,
        "sources": len(source_tags),
        "found": found,
        "all_found": found == len(source_tags),
        "exact": found == len(source_tags) and correct == len(set(named)) == len(source_tags),
    }


def summary(rows: list[dict]) -> dict:
    """Micro precision/recall/F1 and the all-found / exact fractions, each with a bootstrap interval."""

    def figures(sample: list[dict]) -> dict:
        named = sum(r["named"] for r in sample)
        correct = sum(r["correct"] for r in sample)
        sources = sum(r["sources"] for r in sample)
        found = sum(r["found"] for r in sample)
        precision = correct / named if named else 0.0
        recall = found / sources if sources else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "all_found": float(np.mean([r["all_found"] for r in sample])),
            "exact": float(np.mean([r["exact"] for r in sample])),
        }

    point = figures(rows)
    rng = np.random.default_rng(SEED)
    draws = [figures([rows[i] for i in rng.integers(0, len(rows), len(rows))]) for _ in range(RESAMPLES)]
    ci = {k: [float(np.percentile([d[k] for d in draws], q)) for q in (2.5, 97.5)] for k in point}
    return {"n": len(rows), **point, "ci": ci}


def run_testset(finder, name: str, limit: int | None, progress: bool) -> dict:
    from sepkit.benchmark.testsets import load_testset
    from sepkit.data.manifest import ClipCache, render_mixture

    testset = load_testset(name)
    records = testset.records[:limit] if limit else testset.records
    rate = int(records[0].sample_rate)
    cache = ClipCache(rate, base_dir=testset.path.parent)
    out = []
    for record in tqdm(records, desc=name, unit="mixture", disable=not progress):
        mixture, _ = render_mixture(record, cache)
        with torch.inference_mode():
            report = finder.find(torch.from_numpy(mixture), rate)
        named = [s.name for s in report.sources]
        tags = [list(s.tags) for s in record.sources]
        out.append({"id": record.id, "caption": report.caption, "named": named, "tags": tags,
                    **mixture_scores(named, tags)})  # fmt: skip
    by_count = {}
    for count in sorted({r["sources"] for r in out}):
        by_count[str(count)] = summary([r for r in out if r["sources"] == count])
    return {"testset": testset.describe(), "all": summary(out), "by_sources": by_count, "mixtures": out}


def table(results: dict) -> str:
    def cell(s: dict, key: str) -> str:
        low, high = s["ci"][key]
        return f"{s[key]:.3f} [{low:.3f}, {high:.3f}]"

    lines = [
        "| test set | sources | mixtures | tag precision | tag recall | tag F1 | every source found | exact set |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, result in results["testsets"].items():
        groups = [("all", result["all"])] if len(result["by_sources"]) > 1 else []
        for label, s in [*groups, *result["by_sources"].items()]:
            lines.append(f"| {name} | {label} | {s['n']} | {cell(s, 'precision')} | {cell(s, 'recall')} | "
                         f"{cell(s, 'f1')} | {cell(s, 'all_found')} | {cell(s, 'exact')} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from sepkit.paths import display_path
    from sepkit.plugins import get_registry
    from sepkit.recipe import load_recipe
    from sepkit.source_finding import build_source_finder, source_sections

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", default="mini/opensep")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override (repeatable)")
    p.add_argument("--testset", action="append", help="test set name or manifest (repeatable; default mini-hsm_tss)")
    p.add_argument("--limit", type=int, default=None, help="first N mixtures of each test set")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    recipe = load_recipe(args.recipe, args.set)
    finder = build_source_finder(recipe, get_registry())
    sections = source_sections(recipe)
    for section in sections.values():
        for key in ("checkpoint", "table"):
            if section.get(key):
                section[key] = display_path(section[key])
    start = time.perf_counter()
    results = {
        "command": "python benchmarks/opensep_sources/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "recipe": args.recipe,
        "source_finding": sections,
        "bootstrap": {"resamples": RESAMPLES, "seed": SEED, "confidence": 0.95},
        "testsets": {},
    }
    for name in args.testset or ["mini-hsm_tss"]:
        results["testsets"][name] = run_testset(finder, name, args.limit, not args.no_progress)
    results["seconds"] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    text = table(results)
    (args.out / "results.md").write_text(
        "# OpenSep source enumeration on sepkit-mini\n\n"
        f"Command: `{results['command']}`\n\n"
        f"Captioner: `{json.dumps(sections['captioner'])}`; parser: `{json.dumps(sections['source_parser'])}`.\n\n"
        "Micro precision / recall / F1 of the named sources against the mixtures' source tags; "
        "'every source found': fraction of mixtures where each true source is named (what `sepkit separate "
        "--all` needs to return them all); 'exact set': named set = true set. [95 % bootstrap interval over "
        f"mixtures, {RESAMPLES} resamples, numpy seed {SEED}.]\n\n" + text + "\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
