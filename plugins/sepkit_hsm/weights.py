"""Loading a separation stage's weights from a sepkit checkpoint (the ``checkpoint:`` recipe keys).

The ``hsm`` training system stores pipeline checkpoints: the separator's weights under
``separator.*`` (and any other component the recipe stores under its own kind). So does
``sepkit train`` with the ``separation`` system. A stage takes its part of such a file:

- ``hsm-local``: every ``separator.*`` key (its local stage and, if any, its ``global_stage.*``);
- ``hsm-global``: the ``separator.global_stage.*`` keys of an ``hsm-local`` checkpoint, or every
  ``separator.*`` key of a pipeline whose separator is an ``hsm-global``.

Loading is strict: missing, unexpected and mis-shaped keys are named.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from sepkit.checkpoint import load_checkpoint, load_state_dict_checked
from sepkit.errors import SepkitError
from sepkit.hub import local_file

PREFIX = "separator."


def separator_state(path: str, where: str) -> dict[str, Tensor]:
    """The ``separator.*`` tensors of the sepkit checkpoint at ``path`` (or an ``hf://OWNER/REPO/FILE``
    reference, resolved in the Hugging Face cache by ``sepkit.hub``), with the prefix removed."""
    path = local_file(path, f"{where}: checkpoint")
    path = str(Path(path).expanduser())
    state = load_checkpoint(path)["state_dict"]
    out = {k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}
    if not out:
        some = ", ".join(sorted(state)[:3]) or "nothing"
        raise SepkitError(
            f"{where}: checkpoint {path} holds no 'separator.*' weights (it has {some}); give a checkpoint "
            "of the hsm training system or of a pipeline with this separator (checkpoints/best.ckpt of a run)"
        )
    return out


def load_stage_weights(module: nn.Module, path: str, where: str, prefix: str = "") -> None:
    """Load ``module`` from the ``separator.<prefix>*`` keys at ``path`` (all ``separator.*`` keys if none has it)."""
    state = separator_state(path, where)
    if prefix:
        part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        state = part or state
    load_state_dict_checked(module, state, f"{where}: checkpoint {path}")
