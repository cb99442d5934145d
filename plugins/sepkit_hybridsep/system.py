"""The ``hybrid-sep-act`` training system: adversarial consistent training (Hybrid-Sep Algorithm 1).

The recipe's pipeline is ``waveform`` -> ``hybrid-sep`` -> ``waveform`` with a (frozen) text encoder; the
separator holds the discriminator D (``discriminator: true``) and the conditional denoiser CD
(``denoiser: true``; ``false`` is the "w/o CD" ablation). Each step has two phases (``optimizer_names``):

1. "discriminator": X_gen = ASM(X_mixed) without gradients; L_D = 1/2 (E[(D(X_target) - 1)^2] + E[D(X_gen)^2])
   (mean over the STFT scales); only D steps.
2. "generator": (X_gen, c) = ASM(X_mixed) (c: the last four TRCNN maps); X_noisy{1,2} = X_target + sigma(k) eps_{1,2};
   X_pred{1,2} = CD(X_noisy{1,2}, c); L_consist = d(X_pred1, X_pred2.detach()) (mean |.| or squared error);
   L_T = adversarial_weight * E[(D(X_gen) - 1)^2] + l1_weight * |X_gen - X_target|_1 + lambda_consist(k) L_consist;
   the separator (FE, AET, ASM) and CD step (``stage1: frozen`` keeps FE and AET fixed, for a checkpoint of the
   ``hybrid-sep-stage1`` system, stage1.py, loaded with --init-from: mini/hybrid_sep_stage1.yaml).

``init: stage1`` makes ``--init-from`` load only FE and AET (a stage-1 checkpoint under other ASM widths).

``act: false`` is the "w/o ACT" ablation (issue 16): L_T = l1_weight * |X_gen - X_target|_1 at every step, no
discriminator phase, no consistency loss; mini/hybrid_sep_no_act.yaml is mini/hybrid_sep.yaml with that one change.

Before step ``adversarial_start`` (default 0: Algorithm 1 as published) the discriminator phase is idle and
L_T has no adversarial term: a reconstruction warm-up for a separator trained from scratch (mini/hybrid_sep.yaml
says why it needs one).

sigma(k) and lambda_consist(k): ``schedules`` (consistency-training curriculum over the run's ``train.steps``).
Rows whose task is "remove" are trained as the extraction of mixture - target. Validation is the separation
system's (L1 ``loss``, ``si_sdr``, ``si_sdri``). Checkpoints are the pipeline's (the separator includes D and CD).
Hybrid-Sep trains with AdamW, lr 1e-4, betas (0.8, 0.99): set them in the recipe's ``train:``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sepkit.config import non_negative, positive, ranged
from sepkit.errors import SepkitError
from sepkit.interfaces import TASKS, encode_descriptions
from sepkit.train.config import TrainConfig
from sepkit.train.system import SeparationSystem, l1, length_mask

from .discriminator import discriminator_loss, generator_loss
from .schedules import consistency_weight, sample_sigma

DISTANCES = ("l1", "l2")
STAGE1 = ("train", "frozen")
INIT = ("all", "stage1")
STAGE1_MODULES = ("fe", "aet")  # what stage 1 (stage1.py) trains: the feature extractor and audio encoder


@dataclass
class ACTConfig:
    cache_text: int = non_negative(4096)  # frozen text encoder: descriptions whose embedding is kept
    l1_weight: float = non_negative(1.0)  # lambda_L1 (Hybrid-Sep: 1)
    adversarial_weight: float = non_negative(1.0)
    # scale of lambda_consist(k); 0 (or denoiser: false): no consistency loss
    consistency_weight: float = non_negative(1.0)
    distance: str = "l1"  # d(., .) of the consistency loss: l1 | l2
    sigma_min: float = positive(0.002)  # noise levels, waveform units
    sigma_max: float = positive(0.5)
    rho: float = positive(7.0)
    s0: int = positive(2)  # CT discretisation curriculum N(k): s0 -> s1 levels
    s1: int = positive(150)
    # CT EMA decay at N = s0 (shapes lambda_consist(k))
    mu0: float = ranged(0.95, low=0, high=1, low_open=True, high_open=True)
    stage1: str = "train"  # train | frozen (FE and AET fixed, e.g. loaded from a stage-1 checkpoint)
    # first step with the discriminator phase and the adversarial term; before it, L1 (+ consistency) alone:
    # a reconstruction warm-up for networks trained from scratch (0: adversarial from the first step, as Algorithm 1)
    adversarial_start: int = non_negative(0)
    # false: the "w/o ACT" ablation: L1 alone at every step (no discriminator phase, no adversarial term,
    # no consistency loss); the same network, data and schedule
    act: bool = True
    # what --init-from loads: "all" (the whole checkpoint, strictly) | "stage1" (only the FE and AET, strictly;
    # the ASM, CD and D start fresh): a stage-1 checkpoint under a separator whose ASM widths differ from the
    # stage-1 run's (e.g. a wider mini Hybrid-Sep; stage 1 trains and keeps only FE and AET)
    init: str = "all"


class HybridSepACTSystem(SeparationSystem):
    """Adversarial consistent training of a ``hybrid-sep`` pipeline (phases "discriminator", "generator")."""

    Config = ACTConfig
    optimizer_names = ("discriminator", "generator")

    def __init__(self, config: ACTConfig, recipe: Any, train: TrainConfig, registry: Any = None) -> None:
        super().__init__(config, recipe, train, registry)
        from .separator import HybridSepSeparator

        sep = self.pipeline.separator
        if not isinstance(sep, HybridSepSeparator):
            raise SepkitError(
                f"{recipe.source}: train.system hybrid-sep-act needs model.separator: {{name: hybrid-sep}}"
            )
        if sep.discriminator is None:
            raise SepkitError(
                f"{recipe.source}: hybrid-sep-act needs the discriminator: set model.separator.discriminator: true"
            )
        if config.distance not in DISTANCES:
            raise SepkitError(f"{recipe.source}: train.system.distance must be one of {', '.join(DISTANCES)}")
        if config.stage1 not in STAGE1:
            raise SepkitError(f"{recipe.source}: train.system.stage1 must be one of {', '.join(STAGE1)}")
        if config.init not in INIT:
            raise SepkitError(f"{recipe.source}: train.system.init must be one of {', '.join(INIT)}")
        if config.init == "stage1" and not all(hasattr(sep, name) for name in STAGE1_MODULES):
            raise SepkitError(
                f"{recipe.source}: train.system.init: stage1 loads the FE and AET, which a one-stage separator "
                "does not have: set model.separator.stages: 2 or train.system.init: all"
            )
        if config.stage1 == "frozen":
            for name in STAGE1_MODULES:
                if hasattr(sep, name):
                    getattr(sep, name).requires_grad_(False)
        self.total_steps = int(train.steps)
        self.use_consistency = config.act and sep.denoiser is not None and config.consistency_weight > 0

    @property
    def separator(self):
        return self.pipeline.separator

    def init_from(self, path: str) -> None:
        """``--init-from``: the whole checkpoint (``init: all``), or only its stage-1 modules, FE and AET
        (``init: stage1``), strictly: a missing or misshapen FE/AET key is an error; the rest stays fresh."""
        if self.config.init == "all":
            super().init_from(path)
            return
        from sepkit.checkpoint import load_checkpoint, load_state_dict_checked

        prefixes = tuple(f"separator.{name}." for name in STAGE1_MODULES)
        state = load_checkpoint(path)["state_dict"]
        chosen = {key[len("separator.") :]: value for key, value in state.items() if key.startswith(prefixes)}
        modules = torch.nn.ModuleDict({name: getattr(self.separator, name) for name in STAGE1_MODULES})
        load_state_dict_checked(modules, chosen, f"checkpoint {path} (train.system.init: stage1)")

    def parameters_for(self, optimizer: str) -> list:
        disc = {id(p) for p in self.separator.discriminator.parameters()}
        if optimizer == "discriminator":
            return [p for p in self.separator.discriminator.parameters() if p.requires_grad]
        return [p for p in self.parameters() if p.requires_grad and id(p) not in disc]

    def _extraction_target(self, batch: dict) -> Tensor:
        remove = (batch["task"] == TASKS.index("remove"))[:, None]
        mixture, target = batch["mixture"].float(), batch["target"].float()
        return torch.where(remove, mixture - target, target)

    def _generate(self, batch: dict) -> tuple[Tensor, list[Tensor]]:
        """X_gen [B, T] (extraction for every row) and the ASM maps c."""
        p = self.pipeline
        query = encode_descriptions(p.text_encoder.encode_text, list(batch["description"]))
        features = p.audio_encoder.encode_audio(batch["mixture"].float(), batch["lengths"])
        out, maps = self.separator.separate_with_maps(features, query)
        wave = p.decoder.decode(out, num_samples=batch["mixture"].shape[-1]).float()
        return wave * length_mask(batch["lengths"], wave.shape[-1]), maps

    def _adversarial(self, step: int) -> bool:
        """Whether step ``step`` has the discriminator phase and the adversarial term."""
        return self.config.act and step >= self.config.adversarial_start

    def training_step(self, batch: dict, step: int, optimizer: str = "generator") -> dict[str, Tensor]:
        c, sep = self.config, self.separator
        target = self._extraction_target(batch)
        mask = length_mask(batch["lengths"], target.shape[-1])
        if optimizer == "discriminator":
            if not self._adversarial(step):  # warm-up or w/o ACT: the discriminator is not used
                return {"loss": self.idle_phase_loss("discriminator", target.device)}
            with torch.no_grad():
                generated, _ = self._generate(batch)
            loss = discriminator_loss(sep.discriminator(target), sep.discriminator(generated))
            return {"loss": loss}
        generated, maps = self._generate(batch)
        out = {"l1": l1(generated, target, batch["lengths"]).mean()}
        loss = c.l1_weight * out["l1"]
        if self._adversarial(step):
            out["adversarial"] = generator_loss(sep.discriminator(generated))
            loss = loss + c.adversarial_weight * out["adversarial"]
        if self.use_consistency:
            sigma = sample_sigma(
                target.shape[0],
                step,
                self.total_steps,
                c.sigma_min,
                c.sigma_max,
                c.rho,
                c.s0,
                c.s1,
                device=target.device,
            )[:, None]
            noisy1 = (target + sigma * torch.randn_like(target)) * mask
            noisy2 = (target + sigma * torch.randn_like(target)) * mask
            pred1 = sep.denoise(noisy1, maps) * mask
            pred2 = sep.denoise(noisy2, maps) * mask
            diff = pred1 - pred2.detach()
            distance = diff.abs() if c.distance == "l1" else diff.square()
            out["consistency"] = (distance.sum(-1) / mask.sum(-1).clamp_min(1)).mean()
            weight = consistency_weight(step, self.total_steps, c.consistency_weight, c.mu0, c.s0, c.s1)
            out["consistency_weight"] = torch.tensor(weight)
            out["sigma"] = sigma.mean()
            loss = loss + weight * out["consistency"]
        out["loss"] = loss
        return out
