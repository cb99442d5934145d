"""``sepkit train RECIPE [overrides...] [--out DIR] [--resume] [--init-from CKPT]``: the one training engine."""

from __future__ import annotations


def add_parser(sub, parents) -> None:
    p = sub.add_parser("train", parents=parents, help="train a recipe's trainable components")
    p.add_argument("recipe", help="a recipe file or a bundled recipe name")
    p.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. train.steps=200 model.separator.hidden=64")
    p.add_argument("--out", help="run folder (default: the recipe's train.out or runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--init-from", help="start from this checkpoint's weights (fine-tuning)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="overrides train.device")
    p.set_defaults(run=run)


def run(args) -> int:
    from sepkit.train.engine import train_from_args

    return train_from_args(args)
