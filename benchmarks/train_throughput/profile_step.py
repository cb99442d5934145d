"""Where one training step's time goes: torch.profiler over a few steps of a recipe, per precision.

    .venv/bin/python benchmarks/train_throughput/profile_step.py mini/audiosep [overrides ...] \
        [--precision fp32 bf16] [--steps 3] [--out benchmarks/train_throughput/profiles]

Sets up the recipe's training run exactly as ``sepkit train`` does (same system, data, optimizer),
with the code ``sepkit`` is imported from (``PYTHONPATH=<worktree>:<worktree>/plugins`` and
``--precision recipe --tag before`` profile an older commit, as run.py's "before"),
takes two warm-up steps, then profiles ``--steps`` steps (data loading included) and writes the
operator table sorted by self CPU time to ``OUT/<recipe>_<precision>.txt``, with the step's wall
time at the top. Needs the recipe's data (``make mini-data``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def code_commit(tree: Path) -> str:
    """The short commit of the checkout (or worktree) ``tree`` that sepkit was imported from."""
    import subprocess

    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def profile(recipe_name: str, overrides: list[str], precision: str, steps: int) -> str:
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    import sepkit
    from sepkit.recipe import load_recipe
    from sepkit.train.engine import Trainer

    precision_override = [] if precision == "recipe" else [f"train.precision={precision}"]
    recipe = load_recipe(recipe_name, [*overrides, *precision_override, "train.val_every=0"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(recipe, out_dir=Path(tmp) / "run", progress=False).setup()

        def step():
            micro = [trainer.stream.next() for _ in range(trainer.cfg.grad_accum)]
            trainer._train_step(micro)

        for _ in range(2):
            step()
        start = time.perf_counter()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        seconds = (time.perf_counter() - start) / steps
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30)
    return (
        f"recipe {recipe_name} {' '.join(overrides)}, train.precision={precision}, batch {trainer.cfg.batch_size}, "
        f"code at commit {code_commit(Path(sepkit.__file__).parent.parent)}, "
        f"{torch.get_num_threads()} threads: {seconds:.3f} s per step under the profiler ({steps} steps)\n\n{table}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument(
        "--precision", nargs="+", default=["fp32", "bf16"], help="fp32 | bf16 | fp16 | recipe (the recipe's own)"
    )
    parser.add_argument("--tag", default="", help="added to the file name, e.g. 'before' for the code of an old commit")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "profiles"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.recipe.replace("/", "_") + "".join(f"_{o.split('=')[-1]}" for o in args.overrides if "stage=" in o)
    for precision in args.precision:
        text = profile(args.recipe, args.overrides, precision, args.steps)
        path = out / f"{stem}{'_' + args.tag if args.tag else ''}_{precision}.txt"
        path.write_text(text, encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
