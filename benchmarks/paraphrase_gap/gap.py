"""Where a text-queried model's paraphrase gap comes from: its text encoder, or the separator.

    .venv/bin/python benchmarks/paraphrase_gap/gap.py mini/audiosep_diverse \
        --pair test benchmarks/results/mini_audiosep_diverse_test_template.json \
                    benchmarks/results/mini_audiosep_diverse_test_paraphrased.json \
        --pair unseen benchmarks/results/mini_audiosep_diverse_unseen_template.json \
                      benchmarks/results/mini_audiosep_diverse_unseen_paraphrased.json \
        --out benchmarks/paraphrase_gap/audiosep_diverse

1. **Retrieval by the text encoder alone.** Each class of ``benchmarks/paraphrases.yaml`` gets a
   prototype: the mean of the recipe's text encoder's pooled, L2-normalised embeddings of the wordings
   a model is trained with for that class (the corpus captions, the class name, and ``--grammar``
   draws of the wording grammar, ``sepkit/data/wording.py``). A paraphrase is *retrieved* when its
   embedding's nearest prototype (cosine) is its own class's. A paraphrase the encoder places nearer
   another class cannot be followed by any separator conditioned on that encoder.
2. **The gap split by retrieval.** Given ``evaluate_mini.py`` results on the same mixtures with
   template and with paraphrased instructions (``--pair NAME TEMPLATE PARAPHRASED``, repeatable), the
   per-instruction SI-SDRi gap (template minus paraphrase) is averaged over instructions whose
   paraphrase the encoder retrieves and over those it does not, with 95 % bootstrap intervals.

Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def class_wordings(name: str, draws: int, seed: int) -> list[str]:
    """What a model trained with captions and the wording grammar sees for class ``name``."""
    import numpy as np

    from sepkit.data.mini.captions import CAPTIONS
    from sepkit.data.wording import phrase

    rng = np.random.default_rng([seed, len(name)])
    return [name, *CAPTIONS.get(name, [])] + [phrase(name, rng) for _ in range(draws)]


def pooled(encoder, texts: list[str]):
    """float [N, C]: L2-normalised pooled embeddings (no gradients, fp32)."""
    import torch

    with torch.no_grad():
        out = encoder.encode_text(list(texts)).pooled.float()
    return torch.nn.functional.normalize(out, dim=-1)


def retrieval(encoder, table: dict[str, str], draws: int, seed: int) -> dict[str, dict]:
    """{class: {paraphrase, retrieved, nearest, own_cosine, nearest_cosine}} for every class of ``table``."""
    import torch

    classes = sorted(table)
    prototypes = torch.stack([pooled(encoder, class_wordings(c, draws, seed)).mean(0) for c in classes])
    prototypes = torch.nn.functional.normalize(prototypes, dim=-1)
    cosine = pooled(encoder, [table[c] for c in classes]) @ prototypes.T
    result = {}
    for i, c in enumerate(classes):
        j = int(cosine[i].argmax())
        result[c] = {
            "paraphrase": table[c],
            "retrieved": j == i,
            "nearest": classes[j],
            "own_cosine": round(float(cosine[i, i]), 4),
            "nearest_cosine": round(float(cosine[i, j]), 4),
        }
    return result


def gap_split(template_json: Path, paraphrased_json: Path, table: dict[str, str], found: dict[str, dict]) -> dict:
    """Per task: the SI-SDRi gap over instructions whose paraphrased classes are all retrieved, and over the rest."""
    from sepkit.benchmark.bootstrap import interval

    by_text = {v: k for k, v in table.items()}
    template = {(r["id"], r["task"]): r for r in json.loads(template_json.read_text())["rows"]}
    rows = json.loads(paraphrased_json.read_text())["rows"]
    out = {}
    for task in ("extract", "remove"):
        groups: dict[str, list[float]] = {"retrieved": [], "not retrieved": [], "all": []}
        for row in rows:
            if row["task"] != task:
                continue
            description = row["text"].split(" ", 1)[1]
            classes = [by_text[part] for part in description.split(" and ")]
            gap = template[(row["id"], task)]["si_sdri"] - row["si_sdri"]
            key = "retrieved" if all(found[c]["retrieved"] for c in classes) else "not retrieved"
            groups[key].append(gap)
            groups["all"].append(gap)
        out[task] = {
            k: {"n": len(v), "gap": sum(v) / len(v) if v else None, "ci": interval(v)} for k, v in groups.items()
        }
    return out


def markdown(recipe: str, found: dict, pairs: dict, command: str) -> str:
    hits = sum(f["retrieved"] for f in found.values())
    lines = [
        f"# Paraphrase gap of `{recipe}`: text encoder vs separator",
        "",
        f"Command: `{command}`",
        "",
        f"Text encoder retrieval: **{hits} of {len(found)}** paraphrases are nearest their own class's prototype.",
        "",
        "| class | paraphrase | nearest prototype | cosine own / nearest |",
        "| --- | --- | --- | --- |",
    ]
    for c, f in found.items():
        if not f["retrieved"]:
            cosines = f"{f['own_cosine']:.2f} / {f['nearest_cosine']:.2f}"
            lines.append(f"| {c} | {f['paraphrase']} | {f['nearest']} | {cosines} |")
    lines += ["", "SI-SDRi gap (template minus paraphrase, dB; 95 % bootstrap interval; n instructions):", "",
              "| set | task | retrieved | not retrieved | all |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for name, split in pairs.items():
        for task, groups in split.items():
            cells = []
            for key in ("retrieved", "not retrieved", "all"):
                g = groups[key]
                if g["gap"] is None:
                    cells.append("-")
                else:
                    cells.append(f"{g['gap']:.2f} [{g['ci'][0]:.2f}, {g['ci'][1]:.2f}] (n {g['n']})")
            lines.append(f"| {name} | {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", help="the recipe whose text encoder conditions the model (mini/audiosep_diverse)")
    parser.add_argument("--paraphrases", default=str(ROOT / "benchmarks" / "paraphrases.yaml"))
    parser.add_argument("--pair", nargs=3, action="append", default=[], metavar=("NAME", "TEMPLATE", "PARAPHRASED"))
    parser.add_argument("--grammar", type=int, default=40, help="wording-grammar draws per class prototype")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output path without suffix (.json and .md are written)")
    args = parser.parse_args(argv)

    import yaml

    from sepkit.pipeline import SeparationPipeline
    from sepkit.recipe import load_recipe

    table = yaml.safe_load(Path(args.paraphrases).read_text())
    encoder = SeparationPipeline.from_recipe(load_recipe(args.recipe)).text_encoder.eval()
    found = retrieval(encoder, table, args.grammar, args.seed)
    pairs = {name: gap_split(Path(t), Path(p), table, found) for name, t, p in args.pair}
    command = "python benchmarks/paraphrase_gap/gap.py " + " ".join(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"command": command, "recipe": args.recipe, "paraphrases": args.paraphrases, "grammar_draws": args.grammar,
              "retrieval": found, "gap": pairs}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(args.recipe, found, pairs, command)
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
