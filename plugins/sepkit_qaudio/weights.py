"""Reading the Q-Former out of a sepkit checkpoint of the ``qaudio`` training system.

The system stores (``QAudioPretrainingSystem.checkpoint_state``)::

    qformer.<key>   the Q-Former of the full (part: both) model
    heads.<key>     training-only heads: heads.itm.*, heads.lm.*, heads.dec_token, heads.temp

The frozen encoders are not stored (they come from their own sub-sections). A ``qaudio``
component reads the ``qformer.*`` keys its part has; keys of the other part's side are dropped
(a ``part: audio`` model has no text branch), ``heads.*`` are skipped. Any other key, and any
key the model needs but the file lacks, is a SepkitError naming them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from sepkit.errors import SepkitError
from sepkit.hub import local_file

from .qformer import QFormer

QFORMER_PREFIX = "qformer."
HEADS_PREFIX = "heads."


def full_qformer_keys(num_layers: int) -> set[str]:
    """State-dict keys of a part 'both' Q-Former with ``num_layers`` layers (sizes do not matter)."""
    with torch.device("meta"):
        model = QFormer(part="both", hidden=4, num_layers=num_layers, num_heads=1, ffn_dim=4, audio_dim=4, text_dim=4,
                        itc_dim=4, max_text_tokens=2)  # fmt: skip
    return set(model.state_dict())


def qformer_state(state_dict: dict, model: QFormer, where: str) -> dict[str, torch.Tensor]:
    """The ``qformer.*`` entries of a system checkpoint that ``model`` (of its part) loads."""
    own = set(model.state_dict())
    known = full_qformer_keys(len(model.layers))
    state, unknown = {}, []
    for key, value in state_dict.items():
        if key.startswith(HEADS_PREFIX):
            continue
        name = key[len(QFORMER_PREFIX) :] if key.startswith(QFORMER_PREFIX) else None
        if name is None or (name not in own and name not in known):
            unknown.append(key)
        elif name in own:
            state[name] = value
    missing = sorted(k for k in own if k not in state)
    if unknown or missing:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys: {', '.join(QFORMER_PREFIX + k for k in missing[:8])}")
        if unknown:
            problems.append(f"{len(unknown)} unexpected keys: {', '.join(unknown[:8])}")
        raise SepkitError(
            f"{where} does not hold this Q-Audio's Q-Former ({'; '.join(problems)}); give a checkpoint of the "
            "'qaudio' training system (runs/<run>/checkpoints/best.ckpt) made with the same num_layers"
        )
    return state


def load_qformer_checkpoint(path: str | os.PathLike, model: QFormer) -> None:
    """Load the Q-Former weights of a ``qaudio`` system checkpoint (a path or an ``hf://OWNER/REPO/FILE``
    reference, resolved in the Hugging Face cache by ``sepkit.hub``) into ``model`` (sizes checked)."""
    from sepkit.checkpoint import load_checkpoint, load_state_dict_checked

    path = local_file(path, "qaudio checkpoint")
    path = Path(path).expanduser()
    if not path.is_file():
        raise SepkitError(
            f"qaudio: checkpoint {path} not found; give a checkpoint of the 'qaudio' training system "
            "(sepkit train ... --out RUN writes RUN/checkpoints/best.ckpt)"
        )
    payload = load_checkpoint(path)
    where = f"qaudio checkpoint {path}"
    load_state_dict_checked(model, qformer_state(payload["state_dict"], model, where), where)
