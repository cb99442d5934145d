"""The ``sgn`` training system: SGN's own objective, every source of a mixture through its class token.

Batches carry every source of their mixture (recipe ``data.<split>.sources: true``; ``sepkit.data.dataset``):
``sources`` float [B, S, T] at the pipeline's sample rate (zero in padded slots), ``source_mask`` bool
[B, S], ``source_labels`` list of lists of tag names. Per batch::

    X = audio_encoder(mixture)                             complex STFT [B, T', bins]
    M, p = separator.class_outputs(|X|, frames)            masks [B, C, T', bins], presence logits [B, C]
    for each source slot (b, s) with class c = class_names.index(label):   (sources of one class are summed)
        S = audio_encoder(source)                          complex [T', bins]
        L_src(b, c) = sum |M[b, c] |X[b]| - |S|| / sum |X[b]|   (valid frames, all bins)
    sources_loss = mean of L_src over the batch's present (example, class) pairs
    class_loss   = BCE(p, y) averaged over classes and examples, y[b, c] = 1 iff class c is in mixture b
    loss         = sources_loss + class_weight * class_loss

Reconstruction loss: the summary of the paper (shared/papers/003) does not give SGN's loss, so it is
our choice: L1 between the masked mixture magnitude and the source's magnitude. SGN's outputs are
ratio masks applied with the mixture phase, so the magnitude is exactly what the network controls;
it needs no inverse STFT per source (cheaper than SI-SDR on waves on a CPU budget); and it is
defined for every present source however quiet (SI-SDR of a near-silent excerpt is not). It is
divided by the mixture's summed magnitude so every mixture weighs the same whatever its level
(values are then the mean absolute error relative to the mean mixture magnitude; ~0.5 for masks
of 0.5 on two equal sources).

Classification: the class tokens' presence logits (``Linear(D, 1)`` on each category-wise feature
g_i; the separator needs ``presence_head: true``; with ``class_weight: 0`` it may be off).

Validation (per example): ``si_sdr`` / ``si_sdri`` of the text-queried estimate against the
example's single target, through the pipeline exactly as at inference (the query picks the nearest
class); ``query_loss`` (``train.loss`` on that estimate); ``sources_loss``, ``class_loss`` and
``loss`` (= sources_loss + class_weight * class_loss, the training objective).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor
from torch.nn import functional as F

from sepkit.config import non_negative
from sepkit.errors import SepkitError
from sepkit.registry import Registry
from sepkit.train.config import DataConfig, TrainConfig
from sepkit.train.system import SeparationSystem


@dataclass
class SGNSystemConfig:
    cache_text: int = non_negative(4096)  # frozen text encoder: descriptions kept in memory (validation queries)
    class_weight: float = non_negative(1.0)  # weight of the class-token presence BCE; 0: reconstruction only


class SGNSystem(SeparationSystem):
    """Trains an ``sgn`` pipeline on every source of each mixture; see the module docstring."""

    Config = SGNSystemConfig
    validation_metrics = ("loss", "si_sdr", "si_sdri", "query_loss", "sources_loss", "class_loss")

    def __init__(self, config: SGNSystemConfig, recipe: Any, train: TrainConfig, registry: Registry) -> None:
        super().__init__(config, recipe, train, registry)
        from .separator import SGNSeparator

        separator = self.pipeline.separator
        if not isinstance(separator, SGNSeparator):
            raise SepkitError(f"{recipe.source}: train.system sgn needs model.separator: {{name: sgn}}")
        if separator.query_token is not None:
            raise SepkitError(
                f"{recipe.source}: train.system sgn trains every class token; model.separator.conditioning: query "
                "has none, train it with train.system: separation"
            )
        if config.class_weight > 0 and separator.presence is None:
            raise SepkitError(
                f"{recipe.source}: train.system sgn with class_weight {config.class_weight} needs the class tokens' "
                "presence head: set model.separator.presence_head: true (or train.system.class_weight: 0)"
            )
        self.class_index = {name.strip().lower(): i for i, name in enumerate(separator.class_names)}

    @property
    def separator(self):
        return self.pipeline.separator

    def build_dataset(self, split: str, data: DataConfig, base_dir: Optional[Path], seed: int):
        section = getattr(data, split)
        if section is not None and not section.sources:
            raise SepkitError(
                f"{self.recipe.source}: train.system sgn trains on every source of each mixture; "
                f"set data.{split}.sources: true"
            )
        return super().build_dataset(split, data, base_dir, seed)

    # --- targets ------------------------------------------------------------------------
    def class_of(self, label: str, mixture_id: str) -> int:
        """The class index of a source label (its tag), case-insensitive; SepkitError if it is no class name."""
        index = self.class_index.get(str(label).strip().lower())
        if index is None:
            names = ", ".join(self.separator.class_names)
            raise SepkitError(
                f"sgn: source label {label!r} of mixture {mixture_id} is not one of the separator's class_names "
                f"({names}); add it to model.separator.class_names or mix only clips of those classes"
            )
        return index

    def source_targets(self, batch: dict) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(rows long [N], classes long [N], target waves float [N, T], presence float [B, C]).

        One entry per (example, class) present; sources of the same class in a mixture are summed.
        """
        if "sources" not in batch:
            raise SepkitError("sgn: the batch carries no 'sources'; the sgn system needs data.<split>.sources: true")
        sources, mask = batch["sources"].float(), batch["source_mask"]
        groups: dict[tuple[int, int], list[int]] = {}
        for row, labels in enumerate(batch["source_labels"]):
            for slot, label in enumerate(labels):
                if bool(mask[row, slot]):
                    groups.setdefault((row, self.class_of(label, batch["id"][row])), []).append(slot)
        if not groups:
            raise SepkitError(f"sgn: no example of the batch ({', '.join(batch['id'])}) has any source")
        device = sources.device
        rows = torch.tensor([row for row, _ in groups], dtype=torch.long, device=device)
        classes = torch.tensor([c for _, c in groups], dtype=torch.long, device=device)
        targets = torch.stack([sources[row, slots].sum(0) for (row, _), slots in groups.items()])
        presence = torch.zeros(sources.shape[0], len(self.separator.class_names), device=device)
        presence[rows, classes] = 1.0
        return rows, classes, targets, presence

    # --- the objective --------------------------------------------------------------------
    def all_sources(self, batch: dict) -> dict[str, Tensor]:
        """Per-example float [B]: ``sources_loss`` (mean over the example's classes) and ``class_loss``."""
        rows, classes, targets, presence = self.source_targets(batch)
        encoder, separator = self.pipeline.audio_encoder, self.separator
        lengths = batch["lengths"]
        mixture = encoder.encode_audio(batch["mixture"].float(), lengths)
        magnitude = mixture.frames.abs().float()  # [B, T', bins]
        masks, logits = separator.class_outputs(magnitude.to(separator.patch_projection.weight.dtype), mixture.lengths)
        target = encoder.encode_audio(targets, lengths[rows]).frames.abs().float()  # [N, T', bins]
        frames = torch.arange(magnitude.shape[1], device=magnitude.device)
        valid = (frames[None] < mixture.lengths.to(magnitude.device)[:, None]).float()[rows, :, None]  # [N, T', 1]
        error = ((masks[rows, classes].float() * magnitude[rows] - target).abs() * valid).sum((1, 2))
        per_source = error / (magnitude[rows] * valid).sum((1, 2)).clamp_min(1e-8)  # [N]
        batch_size = magnitude.shape[0]
        sums = torch.zeros(batch_size, device=per_source.device).index_add(0, rows, per_source)
        counts = torch.zeros(batch_size, device=per_source.device).index_add(0, rows, torch.ones_like(per_source))
        out = {"sources_loss": sums / counts.clamp_min(1), "source_count": counts, "per_source": per_source}
        if logits is None:
            out["class_loss"] = torch.zeros(batch_size, device=per_source.device)
        else:
            out["class_loss"] = F.binary_cross_entropy_with_logits(logits, presence, reduction="none").mean(-1)
        return out

    def training_step(self, batch: dict, step: int, optimizer: str = "main") -> dict[str, Tensor]:
        parts = self.all_sources(batch)
        sources_loss = parts["per_source"].mean()  # every present source of the batch weighs the same
        class_loss = parts["class_loss"].mean()
        return {
            "loss": sources_loss + self.config.class_weight * class_loss,
            "sources_loss": sources_loss.detach(),
            "class_loss": class_loss.detach(),
        }

    def validation_step(self, batch: dict) -> dict[str, Tensor]:
        out = super().validation_step(batch)  # the text-queried estimate: loss (train.loss), si_sdr, si_sdri
        parts = self.all_sources(batch)
        return {
            "loss": parts["sources_loss"] + self.config.class_weight * parts["class_loss"],
            "si_sdr": out["si_sdr"],
            "si_sdri": out["si_sdri"],
            "query_loss": out["loss"],
            "sources_loss": parts["sources_loss"],
            "class_loss": parts["class_loss"],
        }

    # --- starting from a checkpoint without the presence head ------------------------------
    def init_from(self, path: str) -> None:
        """``--init-from``: a sepkit checkpoint of this pipeline; if it has no presence head (e.g. the shipped
        ``recipes/mini/sgn.ckpt``, trained by the separation system), the head starts from its fresh weights."""
        from sepkit.checkpoint import NotASepkitCheckpoint, load_checkpoint

        try:
            state = dict(load_checkpoint(path)["state_dict"])
        except NotASepkitCheckpoint:
            super().init_from(path)
            return
        own = self.checkpoint_state()
        head = [k for k in own if k.startswith("separator.presence.")]
        if head and not any(k in state for k in head):
            state.update({k: own[k] for k in head})
        self.load_checkpoint_state(state, f"checkpoint {path}")
