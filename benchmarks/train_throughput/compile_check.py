"""Does ``torch.compile`` make a mini recipe's CPU training step faster? Eager against compiled, same run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_throughput/compile_check.py mini/audiosep \\
        --target pipeline.separator.unet --steps 30 --repeats 2 \\
        --out benchmarks/train_throughput/compile_mini_audiosep.json

Builds the recipe's trainer (``sepkit.train.Trainer``, the recipe's own ``train.precision`` and feature cache, no
validation or checkpoints), and for ``--repeats`` rounds trains ``--steps`` steps eagerly and ``--steps`` steps with
the method ``--target`` (a dotted path below the training system, e.g. the ResUNet's ``unet``) replaced by
``torch.compile(method, dynamic=False)`` (inductor; the recompile limit raised so that every block size compiles
instead of falling back to eager). Examples/s: median of the 5-step windows after the first window of each run (the
first compiled window holds the compilation). Each run starts from the same weights and data order; the ratio
compiled / eager is the figure, the absolute rates depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

WINDOW = 5


def run(recipe_name: str, overrides: list[str], steps: int, target: str | None) -> tuple[list[float], float]:
    """(examples/s of each window after the first, seconds of the first window) of one fresh training run."""
    import torch

    from sepkit.recipe import load_recipe
    from sepkit.train.engine import Trainer

    settings = [f"train.steps={steps}", "train.val_every=0", "train.ckpt_every=0", f"train.log_every={WINDOW}"]
    recipe = load_recipe(recipe_name, [*overrides, *settings])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(recipe, out_dir=Path(tmp) / "run", progress=False)
        trainer.setup()
        if target is not None:
            torch._dynamo.reset()
            torch._dynamo.config.cache_size_limit = 64
            owner_path, name = target.rsplit(".", 1) if "." in target else ("", target)
            owner = trainer.system
            for part in filter(None, owner_path.split(".")):
                owner = getattr(owner, part)
            setattr(owner, name, torch.compile(getattr(owner, name), dynamic=False))
        trainer.fit()
        records = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    windows = [r for r in records if r.get("split") == "train" and "examples_per_s" in r]
    first = WINDOW * trainer.cfg.batch_size / windows[0]["examples_per_s"]
    return [r["examples_per_s"] for r in windows[1:]], first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--target", required=True, help="the method to compile, below the training system")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=None, help="results JSON")
    args = parser.parse_args(argv)
    arms: dict[str, dict[str, list[float]]] = {arm: {"rates": [], "first": []} for arm in ("eager", "compiled")}
    for _ in range(args.repeats):
        for arm, target in (("eager", None), ("compiled", args.target)):
            rates, first = run(args.recipe, args.overrides, args.steps, target)
            arms[arm]["rates"] += rates
            arms[arm]["first"].append(first)
            print(f"{arm:9s} windows {[round(r, 2) for r in rates]} first window {first:.1f} s", file=sys.stderr)
    eager, compiled = (statistics.median(arms[a]["rates"]) for a in ("eager", "compiled"))
    result = {
        "recipe": args.recipe,
        "overrides": args.overrides,
        "target": args.target,
        "steps": args.steps,
        "repeats": args.repeats,
        "eager_examples_per_s": eager,
        "compiled_examples_per_s": compiled,
        "compiled_over_eager": compiled / eager,
        "arms": arms,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "arms"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
