"""``sepkit train RECIPE [overrides...] [--out DIR] [--resume [RUN_DIR]] [--budget-minutes N] [--init-from CKPT]``.

The one training engine; ``sepkit train --resume RUN_DIR`` continues a run from its own recipe.
"""

from __future__ import annotations


def add_parser(sub, parents) -> None:
    p = sub.add_parser("train", parents=parents, help="train a recipe's trainable components")
    p.add_argument("recipe", nargs="?", help="a recipe file or a bundled recipe name (not needed with --resume DIR)")
    p.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. train.steps=200 model.separator.hidden=64")
    p.add_argument("--out", help="run folder (default: the recipe's train.out or runs/<recipe name>)")
    p.add_argument(
        "--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
        help="continue a run from its last checkpoint: the --out folder, or RUN_DIR with the recipe it was "
        "started with (a run folder moved or committed elsewhere continues the same curve)",
    )
    p.add_argument(
        "--budget-minutes", type=float, metavar="N",
        help="stop at the first step boundary after N minutes of wall clock, with a full resumable checkpoint "
        "(exit 0); continue with sepkit train --resume RUN_DIR",
    )
    p.add_argument("--init-from", help="start from this checkpoint's weights (fine-tuning)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="overrides train.device")
    p.set_defaults(run=run)


def run(args) -> int:
    from sepkit.train.engine import train_from_args

    return train_from_args(args)
