"""Schemas of a recipe's ``train:`` and ``data:`` sections, validated as omegaconf structured configs.

An unknown key or a value of the wrong type is a ``SepkitError`` naming the full key
(``train.<key>`` / ``data.<key>``), the recipe file and the allowed keys::

    train:
      system: separation            # registered "system" name, or {name: separation, <system Config keys>}
      steps: 1000                   # optimizer steps (the run's length; may grow on --resume)
      batch_size: 8                 # examples per micro-batch per process
      grad_accum: 1                 # micro-batches per optimizer step
      grad_clip: 5.0                # max global grad norm per optimizer; null or 0: off
      lr: 1.0e-3
      weight_decay: 0.01            # AdamW; biases and norm weights (1-d) get none
      betas: [0.9, 0.999]
      eps: 1.0e-8
      schedule: {name: cosine, warmup_steps: 100, min_ratio: 0.0}   # constant | cosine | step
      loss: l1                      # interpreted by the system (separation: l1 | si_sdr | snr)
      val_metric: si_sdri           # decides best.ckpt
      val_mode: auto                # auto (a metric named *loss* -> min, else max) | min | max
      precision: fp32               # auto | fp32 | bf16 | fp16: autocast of forward and loss with fp32 master
                                    # weights (bf16: no loss scaling needed; fp16 adds a GradScaler, for GPUs;
                                    # auto: bf16 on a GPU or CPU that runs it natively, else fp32)
      ema: null                     # EMA decay (e.g. 0.999): validation and best.ckpt use the EMA weights
      log_every: 10
      val_every: 200                # 0: validate only at the end
      ckpt_every: 200               # 0: checkpoint only at the end
      keep: 3                       # step-<N>.ckpt files kept
      seed: 0
      device: auto                  # auto | cpu | cuda (the --device flag wins)
      out: null                     # run folder if --out is not given (default runs/<recipe name>)
      debug: false                  # per-rank ids-rank<R>.jsonl (example ids per step), params-rank<R>.json
    data:
      train: {mixtures: mix/train.jsonl}          # or {clips: clips.jsonl, protocol: hsm_tss, length: 2000,
                                                  #     seconds: null}; or {shards: DIR, protocol: ..., length: ...}
                                                  # (tar shards from sepkit data shard, read in place);
                                                  # or {clips: clips.jsonl, protocol: clean} (the clips
                                                  # themselves, for codecs and codec-ar);
                                                  # instruction: random (train) | all (val) | N
                                                  # sources: true (mixtures only): examples also carry
                                                  # every source as mixed (sources [S, T] summing to the
                                                  # mixture, source_labels: each source's tag), for systems
                                                  # that train on all sources (e.g. sgn)
                                                  # augment: {pitch: {}, eq: {}, reverb: {}, gain_curve: {}}
                                                  # (train only; docs/training.md) per-source timbre changes;
                                                  # wording: templates | grammar (train only) rewords instructions
      val: {mixtures: mix/val.jsonl}
      sample_rate: 16000            # must equal the pipeline's (checked)
      crop_seconds: 2.0             # random training crops; validation uses whole mixtures
      num_workers: 0
      cache_clips: 512              # decoded clips kept in memory per split (per worker)
      feature_cache: true           # read 'sepkit data cache' stores of frozen outputs (docs/training.md)

Paths are relative to the recipe file's folder unless absolute.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from sepkit.config import non_negative, positive, probability, range_problems, ranged
from sepkit.errors import SepkitError

SCHEDULES = ("constant", "cosine", "step")
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # train.precision -> autocast dtype
PRECISION_CHOICES = ("auto", *PRECISIONS)  # auto: bf16 where the device runs it natively, else fp32
DEVICES = ("auto", "cpu", "cuda")
VAL_MODES = ("auto", "min", "max")


@dataclass
class ScheduleConfig:
    """``train.schedule``: a factor on ``train.lr`` per optimizer step, after a linear warmup."""

    name: str = "constant"  # constant | cosine | step
    warmup_steps: int = non_negative(0)  # linear warmup from lr / warmup_steps to lr
    min_ratio: float = probability(0.0)  # cosine: final lr as a fraction of train.lr
    step_size: int = positive(1000)  # step: multiply by gamma every step_size steps after warmup
    gamma: float = positive(0.1)


@dataclass
class TrainConfig:
    """``train:`` — the optimisation loop (see the module docstring for each key)."""

    system: Any = "separation"
    steps: int = non_negative(1000)
    batch_size: int = positive(8)
    grad_accum: int = positive(1)
    grad_clip: Optional[float] = non_negative(5.0)
    lr: float = non_negative(1e-3)
    weight_decay: float = non_negative(0.01)
    betas: list[float] = ranged(default_factory=lambda: [0.9, 0.999], low=0, high=1, high_open=True)
    eps: float = positive(1e-8)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: str = "l1"
    val_metric: str = "loss"
    val_mode: str = "auto"
    precision: str = "fp32"  # auto | fp32 | bf16 | fp16 (PRECISIONS; auto: sepkit.device.resolve_precision)
    ema: Optional[float] = ranged(None, low=0, high=1, low_open=True, high_open=True)
    log_every: int = positive(10)
    val_every: int = non_negative(0)
    ckpt_every: int = non_negative(0)
    keep: int = non_negative(3)
    seed: int = ranged(0, low=0, high=2**63 - 1)
    device: str = "auto"
    out: Optional[str] = None  # run folder when --out is not given (default runs/<recipe name>)
    debug: bool = False  # per-rank files: ids-rank<R>.jsonl (example ids per step), params-rank<R>.json


SOURCES = ("mixtures", "clips", "shards")
"""Where a split's examples come from: a frozen mixture manifest, or clips mixed on the fly (manifest or shards)."""


@dataclass
class SplitConfig:
    """``data.train`` / ``data.val``: a frozen mixture manifest, or clips (manifest or shards) mixed on the fly."""

    mixtures: Optional[str] = None  # mixture manifest (JSONL of MixtureRecord)
    clips: Optional[str] = None  # clip manifest, mixed on the fly (with protocol)
    shards: Optional[str] = None  # folder of tar shards (sepkit data shard), mixed on the fly (with protocol)
    protocol: Optional[str] = None  # mixing protocol name (sepkit.data.mixing), or "clean": the clips themselves
    length: Optional[int] = positive(None)  # mixtures drawn per epoch (with clips; clean: default one per clip)
    seconds: Optional[float] = positive(None)  # mixture length with clips (default: the protocol's; clean: whole clip)
    instruction: Any = None  # "random" (train default) | "all" (val default) | instruction index
    sources: bool = False  # mixtures only: examples also carry every source (sources [S, T], source_labels)
    augment: Any = None  # train only: per-source timbre augmentation {pitch, eq, reverb, gain_curve} (data/augment.py)
    wording: Optional[str] = None  # train only: "templates" (default) | "grammar" (sepkit/data/wording.py)


@dataclass
class DataConfig:
    """``data:`` — where examples come from and how they are cut."""

    train: Optional[SplitConfig] = None
    val: Optional[SplitConfig] = None
    sample_rate: Optional[int] = positive(None)  # Hz; must equal the pipeline's if given
    crop_seconds: Optional[float] = positive(None)  # random crop of training examples
    num_workers: int = non_negative(0)  # DataLoader worker processes
    cache_clips: int = non_negative(512)  # decoded clips kept in memory per split
    feature_cache: bool = True  # read frozen components' outputs from 'sepkit data cache' stores when valid ones exist


def _allowed(cls: type, key_path: str) -> tuple[str, list[str]]:
    """(section path, allowed keys) of the dataclass that holds ``key_path`` (e.g. "schedule.bogus")."""
    parts = key_path.split(".")[:-1]
    prefix = []
    for part in parts:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            break
        sub = _dataclass_of(fields[part].type, cls)
        if sub is None:
            break
        cls = sub
        prefix.append(part)
    return ".".join(prefix), [f.name for f in dataclasses.fields(cls)]


def _dataclass_of(annotation: Any, owner: type) -> Optional[type]:
    names = {c.__name__: c for c in (ScheduleConfig, SplitConfig)}
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    for name, cls in names.items():
        if name in text:
            return cls
    return None


def structured(cls: type, section: Any, where: str, source: str) -> Any:
    """Fill dataclass ``cls`` from an omegaconf ``section``; errors name ``where.<key>`` and ``source``."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

    if section is not None and not _is_mapping(section):
        raise SepkitError(f"{source}: '{where}' must be a mapping of keys, got {section!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in section or {}:
        nested = _dataclass_of(fields[key].type, cls) if key in fields else None
        value = section[key]
        if nested is not None and value is not None and not _is_mapping(value):
            allowed = ", ".join(f.name for f in dataclasses.fields(nested))
            raise SepkitError(f"{source}: '{where}.{key}' must be a mapping (keys: {allowed}), got {value!r}")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(cls), section or {})
        problem = next(range_problems(cfg), None)
        if problem is not None:
            raise SepkitError(f"{source}: bad value for '{where}.{problem[0]}': {problem[1]}; fix the recipe")
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise SepkitError(
                f"{source}: '{where}.{missing[0]}' is not set (???); give it, e.g. {where}.{missing[0]}=…"
            )
        return OmegaConf.to_object(cfg)
    except ConfigKeyError as exc:
        key = str(getattr(exc, "full_key", None) or getattr(exc, "key", "?"))
        prefix, allowed = _allowed(cls, key)
        place = f"{where}.{prefix}" if prefix else where
        raise SepkitError(
            f"{source}: unknown key '{where}.{key}'; allowed keys of '{place}': {', '.join(allowed)}"
        ) from None
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", None) or "?")
        reason = str(exc).splitlines()[0]
        raise SepkitError(f"{source}: bad value for '{where}.{key}': {reason}") from None


def _is_mapping(value: Any) -> bool:
    from omegaconf import OmegaConf

    return OmegaConf.is_dict(value) or isinstance(value, dict)


def _check(ok: bool, source: str, message: str) -> None:
    if not ok:
        raise SepkitError(f"{source}: {message}")


def load_train_config(recipe) -> TrainConfig:
    """The recipe's ``train:`` section as a checked ``TrainConfig`` (defaults for missing keys)."""
    src = recipe.source
    section = recipe.config.get("train")
    _check(section is None or _is_mapping(section), src, f"'train' must be a mapping of keys, got {section!r}")
    _check(
        section is None or "dtype" not in section,
        src,
        "train.dtype was renamed train.precision (fp32 | bf16 | fp16; float32 -> fp32, bfloat16 -> bf16)",
    )
    cfg = structured(TrainConfig, section, "train", src)
    # numeric ranges (steps, batch_size, lr, ema, log_every, ...) are the fields' own, checked by structured()
    _check(len(cfg.betas) == 2, src, f"train.betas needs two numbers, got {cfg.betas}")
    _check(
        cfg.precision in PRECISION_CHOICES,
        src,
        f"train.precision={cfg.precision!r}; allowed: {', '.join(PRECISION_CHOICES)}",
    )
    _check(cfg.device in DEVICES, src, f"train.device={cfg.device!r}; allowed: {', '.join(DEVICES)}")
    _check(cfg.val_mode in VAL_MODES, src, f"train.val_mode={cfg.val_mode!r}; allowed: {', '.join(VAL_MODES)}")
    _check(
        cfg.schedule.name in SCHEDULES,
        src,
        f"train.schedule.name={cfg.schedule.name!r}; allowed: {', '.join(SCHEDULES)}",
    )
    _check(isinstance(cfg.system, (str, dict)), src, "train.system must be a name or {name: ..., <options>}")
    return cfg


def load_data_config(recipe) -> DataConfig:
    """The recipe's ``data:`` section; raises if the recipe names no training data."""
    src = recipe.source
    section = recipe.config.get("data")
    hint = (
        "add a data section, e.g. data.train.mixtures=MIXTURES.jsonl (a mixture manifest, see 'sepkit data mix') "
        "or data.train.clips=CLIPS.jsonl data.train.protocol=hsm_tss data.train.length=2000"
    )
    if section is None:
        raise SepkitError(f"{src}: the recipe names no data (no 'data:' section); {hint}")
    cfg = structured(DataConfig, section, "data", src)
    if cfg.train is None or all(getattr(cfg.train, k) is None for k in SOURCES):
        raise SepkitError(f"{src}: the recipe names no training data (data.train is empty); {hint}")
    for split in ("train", "val"):
        part = getattr(cfg, split)
        if part is None:
            continue
        given = [k for k in SOURCES if getattr(part, k) is not None]
        if len(given) > 1:
            raise SepkitError(f"{src}: data.{split} gives {' and '.join(given)}; give one of {', '.join(SOURCES)}")
        if given and given[0] != "mixtures" and not part.protocol:
            raise SepkitError(
                f"{src}: data.{split}.{given[0]} needs data.{split}.protocol (a mixing protocol, with "
                f"data.{split}.length, or 'clean' for the clean clips themselves)"
            )
        if given and given[0] != "mixtures" and part.protocol != "clean" and not part.length:
            raise SepkitError(f"{src}: data.{split}.{given[0]} with protocol {part.protocol} needs data.{split}.length")
    _check(cfg.crop_seconds is None or cfg.crop_seconds > 0, src, "data.crop_seconds must be > 0 or null")
    _check(cfg.num_workers >= 0, src, "data.num_workers must be >= 0")
    return cfg


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested plain containers -> {"a.b.c": leaf} (lists are leaves)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out or ({prefix: {}} if prefix else {})
    return {prefix: value}
