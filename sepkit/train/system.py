"""Systems: what one training step is, for the one training engine.

A ``System`` is an ``nn.Module`` holding everything it trains. The engine calls, per
optimizer step and for each name in ``optimizer_names`` in order (one "phase" each)::

    losses = system(batch, step, optimizer=name)     # -> training_step(...); a dict of scalar tensors
    losses["loss"].backward()                        # (scaled, accumulated over micro-batches)
    clip, optimizers[name].step(), schedulers[name].step()

A GAN codec sets ``optimizer_names = ("discriminator", "generator")`` and returns the
discriminator loss (on detached fakes) in the first phase and the generator loss in the
second; every phase runs a fresh forward through the DDP wrapper, gradients are zeroed
before each phase and only that phase's optimizer steps. ``validation_step`` returns
per-example values ``{metric: float [B]}`` that the engine averages over the whole set.

Systems are registered under the kind "system" and chosen by ``train.system`` in the
recipe (a name, or ``{name: ..., <keys of the system's Config>}``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional

import torch
from torch import Tensor, nn

from sepkit.errors import SepkitError
from sepkit.registry import Registry
from sepkit.train.config import DataConfig, TrainConfig
from sepkit.train.feature_cache import CachedTextEncoder  # noqa: F401 - kept importable from here
from sepkit.train.text_noise import NoisyTextEmbeddings


class System(nn.Module, ABC):
    """Base class of trainable systems; subclasses define ``training_step`` and ``validation_step``."""

    @dataclass
    class Config:
        pass

    optimizer_names: ClassVar[tuple[str, ...]] = ("main",)
    validation_metrics: ClassVar[tuple[str, ...]] = ("loss",)
    find_unused_parameters: ClassVar[bool] = False  # set True if a phase leaves trainable parameters unused

    def __init__(self, config: Any, recipe: Any, train: TrainConfig, registry: Registry) -> None:
        """``registry`` builds the recipe's components (the one ``build_system`` was given)."""
        super().__init__()
        self.config = config
        self.recipe = recipe
        self.train_cfg = train
        self.registry = registry

    # --- a step ----------------------------------------------------------------
    def forward(self, batch: dict, step: int, optimizer: str = "main") -> dict[str, Tensor]:
        return self.training_step(batch, step, optimizer)

    @abstractmethod
    def training_step(self, batch: dict, step: int, optimizer: str = "main") -> dict[str, Tensor]:
        """Scalar losses of one micro-batch for ``optimizer``'s phase; "loss" is backpropagated."""

    @abstractmethod
    def validation_step(self, batch: dict) -> dict[str, Tensor]:
        """Per-example metrics ``{name: float [B]}``, including every name in ``validation_metrics``."""

    # --- optimisation ----------------------------------------------------------
    def idle_phase_loss(self, optimizer: str, device: Any) -> Tensor:
        """A zero "loss" for a phase that does nothing this step (e.g. the discriminator phase of a GAN's
        reconstruction warm-up), without running any model. It leaves the phase's gradients empty, so its
        optimizer changes neither the weights nor its moment estimates; under fp16 (whose GradScaler needs
        gradients to check) it is a zero-weighted sum of the phase's parameters instead."""
        if self.train_cfg.precision == "fp16":
            return 0.0 * torch.stack([p.sum() for p in self.parameters_for(optimizer)]).sum()
        return torch.zeros((), device=device, requires_grad=True)

    def parameters_for(self, optimizer: str) -> list[nn.Parameter]:
        """The parameters ``optimizer`` updates (default: every trainable one, for "main")."""
        return [p for p in self.parameters() if p.requires_grad]

    def optimizers(self, train: TrainConfig) -> dict[str, tuple[torch.optim.Optimizer, Any]]:
        """{name: (optimizer, scheduler)} for each of ``optimizer_names``: AdamW + the recipe's schedule."""
        from sepkit.train.optim import build_optimizer, build_scheduler

        out = {}
        for name in self.optimizer_names:
            params = self.parameters_for(name)
            if not params:
                raise SepkitError(f"optimizer {name!r} has no trainable parameters (are all components frozen?)")
            optimizer = build_optimizer(params, train)
            out[name] = (optimizer, build_scheduler(optimizer, train))
        return out

    # --- data ------------------------------------------------------------------
    @property
    def sample_rate(self) -> Optional[int]:
        """Hz of the audio the system trains on (checked against ``data.sample_rate``)."""
        return None

    def build_dataset(self, split: str, data: DataConfig, base_dir: Optional[Path], seed: int):
        """The torch Dataset for ``split`` ("train"/"val") from the recipe's ``data:`` section, or None."""
        from sepkit.data.dataset import dataset_from_config

        section = getattr(data, split)
        if section is None:
            return None
        rate = self.sample_rate
        if data.sample_rate is not None and rate is not None and data.sample_rate != rate:
            raise SepkitError(
                f"{self.recipe.source}: data.sample_rate={data.sample_rate} but the model works at {rate} Hz; "
                "make them equal (or drop data.sample_rate)"
            )
        rate = rate or data.sample_rate
        if rate is None:
            raise SepkitError(f"{self.recipe.source}: set data.sample_rate")
        crop = data.crop_seconds if split == "train" else None
        return dataset_from_config(section, split, rate, base_dir, seed, crop, data.cache_clips)

    @staticmethod
    def collate(items: list) -> dict:
        from sepkit.data.dataset import collate_mixtures

        return collate_mixtures(items)

    # --- cached frozen features (sepkit.train.feature_cache) --------------------------------------
    def cache_features(self, manifest: Path, data: DataConfig, device: torch.device, progress: bool = True) -> dict:
        """Precompute the frozen components' outputs for ``manifest`` next to it; returns a summary.

        ``sepkit data cache`` calls this; systems with frozen inputs to cache override it.
        """
        raise SepkitError(
            f"{self.recipe.source}: the {type(self).__name__} training system has no frozen component whose "
            "outputs can be cached (nothing it computes is the same from epoch to epoch)"
        )

    def use_feature_cache(self, manifests: list[Path]) -> list[str]:
        """Read the valid caches next to ``manifests`` (the recipe's data manifests); returns log lines."""
        return []

    def autocast(self, device: torch.device):
        """The autocast context of ``train.precision`` on ``device`` (as the engine's steps run)."""
        from sepkit.device import autocast, resolve_dtype, resolve_precision
        from sepkit.train.config import PRECISIONS

        precision = resolve_precision(self.train_cfg.precision, torch.device(device))
        return autocast(device, resolve_dtype(PRECISIONS[precision]))

    # --- checkpoints -----------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Tensor]:
        """The weights stored in sepkit checkpoints (``state_dict`` of the checkpoint format)."""
        return self.state_dict()

    def load_checkpoint_state(self, state_dict: dict, where: str) -> None:
        from sepkit.checkpoint import load_state_dict_checked

        load_state_dict_checked(self, state_dict, where)

    def plugin_versions(self) -> dict[str, str]:
        return {}

    def init_from(self, path: str) -> None:
        """Start from a checkpoint's weights (``--init-from``)."""
        from sepkit.checkpoint import load_checkpoint

        self.load_checkpoint_state(load_checkpoint(path)["state_dict"], f"checkpoint {path}")


def build_system(recipe: Any, train: TrainConfig, registry: Optional[Registry] = None) -> System:
    """The system ``train.system`` names, built from ``registry`` (kind "system"; default: the installed
    plugins'), which the system then builds its components from."""
    from sepkit.config import component_config
    from sepkit.plugins import get_registry

    registry = registry or get_registry()
    section = train.system
    if isinstance(section, str):
        name, options = section, {}
    else:
        options = {k: v for k, v in dict(section).items() if k != "name"}
        name = section.get("name")
        if not isinstance(name, str):
            raise SepkitError(f"{recipe.source}: train.system needs a 'name' naming a registered system")
    try:
        cls = registry.load_class("system", name)
        config = component_config(cls, options, where="train.system", component=f"system {name!r}")
    except SepkitError as exc:
        raise SepkitError(f"{recipe.source}: train.system: {exc}") from None
    return cls(config, recipe, train, registry=registry)


# --- separation losses and metrics (per example, masked by lengths) ---------------------
def length_mask(lengths: Tensor, width: int) -> Tensor:
    """float [B, width]: 1 on the first ``lengths[b]`` samples of row b."""
    return (torch.arange(width, device=lengths.device)[None] < lengths[:, None]).float()


def l1(estimate: Tensor, target: Tensor, lengths: Tensor) -> Tensor:
    """Mean absolute waveform error over valid samples, float [B] (AudioSep's loss)."""
    mask = length_mask(lengths, estimate.shape[-1])
    return ((estimate - target).abs() * mask).sum(-1) / mask.sum(-1).clamp_min(1)


def snr(estimate: Tensor, target: Tensor, lengths: Tensor, eps: float = 1e-8) -> Tensor:
    """Signal-to-noise ratio in dB, float [B]."""
    mask = length_mask(lengths, estimate.shape[-1])
    signal = (target * mask).pow(2).sum(-1)
    noise = ((estimate - target) * mask).pow(2).sum(-1)
    return 10 * torch.log10((signal + eps) / (noise + eps))


def si_sdr(estimate: Tensor, target: Tensor, lengths: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale-invariant SDR in dB (zero-mean over valid samples), float [B]."""
    mask = length_mask(lengths, estimate.shape[-1])
    count = mask.sum(-1, keepdim=True).clamp_min(1)
    estimate = (estimate - (estimate * mask).sum(-1, keepdim=True) / count) * mask
    target = (target - (target * mask).sum(-1, keepdim=True) / count) * mask
    alpha = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + eps)
    projection = alpha * target
    return 10 * torch.log10((projection.pow(2).sum(-1) + eps) / ((estimate - projection).pow(2).sum(-1) + eps))


LOSSES = {
    "l1": l1,
    "si_sdr": lambda e, t, n: -si_sdr(e, t, n),
    "snr": lambda e, t, n: -snr(e, t, n),
}


class SeparationSystem(System):
    """Trains a ``SeparationPipeline``: mixture + description -> target, loss ``train.loss``.

    Batch: mixture/target float [B, T] at the pipeline's sample rate, lengths long [B],
    description list[str], task long [B]. Losses: "l1" (waveform L1), "si_sdr" (negative
    SI-SDR), "snr" (negative SNR). Validation: loss, si_sdr and si_sdri (SI-SDR of the
    estimate minus that of the mixture, against the target), all in dB but the loss.
    """

    @dataclass
    class Config:
        cache_text: int = 4096  # frozen text encoder: descriptions kept in memory besides a disk cache (0: no caching)
        text_noise: float = 0.0  # training only: Gaussian noise on the text embeddings, up to this share of their RMS

    validation_metrics = ("loss", "si_sdr", "si_sdri")
    find_unused_parameters = True  # plugin components may skip parameters on some batches (e.g. per task)

    def __init__(self, config: Config, recipe: Any, train: TrainConfig, registry: Registry) -> None:
        super().__init__(config, recipe, train, registry)
        from sepkit.pipeline import SeparationPipeline

        if train.loss not in LOSSES:
            raise SepkitError(f"{recipe.source}: train.loss={train.loss!r}; allowed: {', '.join(LOSSES)}")
        self.loss_fn = LOSSES[train.loss]
        self.pipeline = SeparationPipeline.from_recipe(recipe, registry)
        self.frozen = []
        for kind, module in self.pipeline.components().items():
            trainable = any(p.requires_grad for p in module.parameters())
            if trainable and kind not in self.pipeline.stored_kinds:
                raise SepkitError(
                    f"{recipe.source}: model.{kind} is trained but not stored in checkpoints (in_checkpoint: false); "
                    "freeze it (freeze: true) or store it"
                )
            has_parameters = any(True for _ in module.parameters())
            if bool(recipe.section(kind).get("freeze", False)) or (has_parameters and not trainable):
                self.frozen.append(kind)
        if not any(p.requires_grad for p in self.pipeline.parameters()):
            raise SepkitError(f"{recipe.source}: nothing to train: every component is frozen")
        self.text_cache = None
        text = self.pipeline.text_encoder
        if "text_encoder" in self.frozen and config.cache_text > 0:
            self.text_cache = CachedTextEncoder(text.encode_text, config.cache_text)
            text.encode_text = self.text_cache
        self.text_noise = None
        noise = float(getattr(config, "text_noise", 0.0))  # a subclass's Config may not offer the option
        if noise:
            try:
                self.text_noise = NoisyTextEmbeddings(text.encode_text, noise)
            except ValueError as exc:
                raise SepkitError(f"{recipe.source}: train.system.{exc}") from None
            text.encode_text = self.text_noise

    def train(self, mode: bool = True) -> SeparationSystem:
        """Frozen components stay in eval mode (no dropout in a frozen text encoder); text noise (if any)
        is drawn in training mode only."""
        super().train(mode)
        if self.text_noise is not None:
            self.text_noise.active = mode
        for kind in self.frozen:
            getattr(self.pipeline, kind).eval()
        return self

    @property
    def sample_rate(self) -> int:
        return self.pipeline.sample_rate

    def estimate(self, batch: dict) -> Tensor:
        """float32 [B, T] estimates of the batch's targets."""
        out = self.pipeline(batch["mixture"], batch["lengths"], list(batch["description"]), batch["task"])
        return out.float()

    def training_step(self, batch: dict, step: int, optimizer: str = "main") -> dict[str, Tensor]:
        estimate = self.estimate(batch)
        return {"loss": self.loss_fn(estimate, batch["target"].float(), batch["lengths"]).mean()}

    def validation_step(self, batch: dict) -> dict[str, Tensor]:
        estimate = self.estimate(batch)
        target, lengths = batch["target"].float(), batch["lengths"]
        score = si_sdr(estimate, target, lengths)
        return {
            "loss": self.loss_fn(estimate, target, lengths),
            "si_sdr": score,
            "si_sdri": score - si_sdr(batch["mixture"].float(), target, lengths),
        }

    # --- the frozen text encoder's cache ---------------------------------------------------------
    def cache_features(self, manifest: Path, data: DataConfig, device: torch.device, progress: bool = True) -> dict:
        """The frozen text encoder's embedding of every description of ``manifest``."""
        return cache_frozen_texts(self, self.pipeline.text_encoder, self.text_cache, manifest, device, progress)

    def use_feature_cache(self, manifests: list[Path]) -> list[str]:
        return use_text_cache(self, self.pipeline.text_encoder, self.text_cache, manifests)

    # --- checkpoints: sepkit's format, the pipeline's stored components --------------
    def checkpoint_state(self) -> dict[str, Tensor]:
        return self.pipeline.checkpoint_state()

    def load_checkpoint_state(self, state_dict: dict, where: str) -> None:
        self.pipeline.load_checkpoint_state(state_dict, where)

    def plugin_versions(self) -> dict[str, str]:
        return self.pipeline.plugin_versions()

    def init_from(self, path: str) -> None:
        """A sepkit checkpoint, or an official one a component reads itself (``load_official_checkpoint``)."""
        self.pipeline.load(path)


# --- shared by systems with a frozen text encoder --------------------------------------------
def cache_frozen_texts(
    system: System, encoder: nn.Module, cache: Optional[CachedTextEncoder], manifest: Path, device, progress: bool
) -> dict:
    """``System.cache_features`` of a system whose only cacheable input is the text side.

    ``encoder``: the frozen text encoder; ``cache``: the ``CachedTextEncoder`` wrapping its
    ``encode_text`` (None when the text encoder trains).
    """
    from sepkit.train.feature_cache import build_text_cache, manifest_descriptions

    if cache is None:
        raise SepkitError(
            f"{system.recipe.source}: model.text_encoder is trained (not freeze: true), so its outputs change "
            "during training and cannot be cached"
        )
    summary = build_text_cache(
        encoder,
        cache.encode_text,
        system.recipe.section("text_encoder"),
        manifest_descriptions(manifest),
        manifest,
        system.train_cfg.precision,
        lambda: system.autocast(device),
        progress,
    )
    return {"text_encoder": summary, "not cached": "audio: mixtures are drawn anew every epoch"}


def use_text_cache(
    system: System, encoder: nn.Module, cache: Optional[CachedTextEncoder], manifests: list[Path]
) -> list[str]:
    """``System.use_feature_cache`` of a system whose only cacheable input is the text side."""
    from sepkit.train.feature_cache import load_text_cache

    if cache is None:
        return []
    entries, folders = load_text_cache(
        encoder, system.recipe.section("text_encoder"), manifests, system.train_cfg.precision
    )
    if not entries:
        return ["feature cache: none for the text encoder (sepkit data cache RECIPE --manifest M writes one)"]
    cache.preload(entries, next(encoder.parameters(), torch.empty(0)).device)
    return [f"feature cache: {len(entries)} text embeddings from {', '.join(folders)}"]
