"""Copy a training run's best checkpoint beside the mini HSM-TSS recipe, smaller: float16, training-only keys dropped.

    python recipes/mini/hsm_tss.train/ship.py SOURCE.ckpt DEST.ckpt [--drop PREFIX ...]

The weights are stored as float16 (the modules stay float32: loading converts them back), and keys
starting with a ``--drop`` prefix are left out (e.g. Q-Audio's pretraining heads ``heads.``, the
MAE decoder ``decoder_`` / ``mask_token``), so the six trained parts of the chain ship in under 60 MB.
Everything else of the sepkit checkpoint (recipe, plugins, step) is kept.
"""

from __future__ import annotations

import argparse

from sepkit.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("--drop", nargs="*", default=[], help="key prefixes to leave out")
    args = parser.parse_args()
    payload = load_checkpoint(args.source)
    state = {
        key: (value.half() if value.is_floating_point() else value)
        for key, value in payload["state_dict"].items()
        if not any(key.startswith(prefix) for prefix in args.drop)
    }
    extra = {k: v for k, v in payload.items() if k not in ("recipe", "state_dict", "plugins", "sepkit_version")}
    extra["shipped_from"] = args.source
    save_checkpoint(args.dest, payload["recipe"], state, payload["plugins"], **extra)
    size = sum(v.numel() * v.element_size() for v in state.values()) / 1e6
    print(f"{args.dest}: {len(state)} tensors, {size:.1f} MB of weights")


if __name__ == "__main__":
    main()
