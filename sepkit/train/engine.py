"""The training engine: one step-based loop for every system.

``sepkit train RECIPE [overrides] --out DIR [--resume] [--init-from CKPT] [--device D]``
(or ``torchrun --nproc_per_node N --no-python sepkit train ...`` for data parallel).

The run folder holds::

    recipe.yaml                 the resolved recipe (data paths made absolute)
    metrics.jsonl               one JSON per event: {"step", "split": "train"|"val", losses/metrics,
                                "lr", "examples_per_s", "seconds", "cpu_seconds"}
                                (seconds: wall time in training steps; cpu_seconds: this process's CPU
                                time in them, all threads; both summed over resumes, validation excluded)
    checkpoints/last.ckpt       everything needed to resume (weights, optimizers, schedulers, EMA,
                                GradScaler, RNG states of every rank, data position, best so far)
    checkpoints/step-<N>.ckpt   the same every train.ckpt_every steps (train.keep most recent kept)
    checkpoints/best.ckpt       model-only sepkit checkpoint (``sepkit separate --ckpt``): best
                                train.val_metric (EMA weights if train.ema); the last model if no val set

A step is one optimizer step over ``train.grad_accum`` micro-batches of ``train.batch_size``
examples per process. Every file is written atomically, so a killed run resumes from its
last checkpoint and logs the same losses as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader

from sepkit.errors import SepkitError
from sepkit.train.config import PRECISIONS, flatten, load_data_config, load_train_config
from sepkit.train.distributed import (
    DistInfo,
    EpochSampler,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    check_batch_size,
    destroy,
    init_distributed,
    wrap_ddp,
)
from sepkit.train.feature_cache import data_manifests

RECIPE_FILE = "recipe.yaml"
METRICS_FILE = "metrics.jsonl"
CKPT_DIR = "checkpoints"
RESUME_MAY_DIFFER = ("train.steps", "train.device", "train.out")


# --- helpers ------------------------------------------------------------------------------
def to_device(batch: Any, device: torch.device) -> Any:
    """Tensors of a (nested) batch moved to ``device``; other values unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in batch):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def batch_size_of(batch: Any) -> int:
    """Examples in a batch: the first dimension of its first tensor (or the length of a list)."""
    values = batch.values() if isinstance(batch, dict) else batch
    for value in values:
        if isinstance(value, torch.Tensor):
            return int(value.shape[0])
    for value in values:
        if isinstance(value, (list, tuple)):
            return len(value)
    return 1


def rng_state() -> dict:
    """torch / CUDA / numpy / python RNG states as tensors and plain containers (weights_only safe)."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def absolute_data_paths(container: dict, base_dir: Optional[Path]) -> dict:
    """The recipe dict with ``data.{train,val}.{mixtures,clips}`` made absolute (relative to ``base_dir``)."""
    data = container.get("data") or {}
    for split in ("train", "val"):
        part = data.get(split) or {}
        for key in ("mixtures", "clips"):
            value = part.get(key)
            if isinstance(value, str) and base_dir is not None and not Path(value).is_absolute():
                part[key] = str((base_dir / value).resolve())
    return container


def _filter_jsonl(path: Path, step: int) -> None:
    """Keep the well-formed lines of ``path`` whose "step" is <= ``step`` (after a resume)."""
    from sepkit.atomic import atomic_path

    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except (json.JSONDecodeError, AttributeError):
            continue
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


class BatchStream:
    """Training batches across epochs; ``state_dict`` = (epoch, batches consumed) for exact resumes."""

    def __init__(self, dataset, sampler: EpochSampler, collate, num_workers: int, seed: int) -> None:
        self.dataset, self.sampler, self.collate = dataset, sampler, collate
        self.num_workers, self.seed = num_workers, seed
        self.epoch, self.position = 0, 0
        self._iter, self._remaining = None, 0

    def _start(self) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        batches = self.sampler.batches(self.epoch, self.position)
        loader = DataLoader(
            self.dataset,
            batch_sampler=batches,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed),  # keeps the global RNG untouched
            worker_init_fn=ignore_stop_signals,
        )
        self._iter, self._remaining = iter(loader), len(batches)

    def next(self) -> Any:
        if self._iter is None:
            self._start()
        while self._remaining == 0:
            self.epoch, self.position = self.epoch + 1, 0
            self._start()
        batch = next(self._iter)
        self._remaining -= 1
        self.position += 1
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._iter = None


# --- the trainer --------------------------------------------------------------------------
class Trainer:
    """Trains ``recipe``'s system into ``out_dir``. ``setup()`` builds everything; ``fit()`` trains.

    ``device``: "auto" | "cpu" | "cuda" (default ``train.device``); ``resume``: continue from
    ``out_dir/checkpoints/last.ckpt``; ``init_from``: start from a checkpoint's weights;
    ``registry``: the component registry (default: installed plugins).
    """

    def __init__(
        self,
        recipe,
        out_dir: Optional[str | os.PathLike] = None,
        device: Optional[str] = None,
        resume: bool = False,
        init_from: Optional[str] = None,
        registry: Any = None,
        progress: bool = True,
        budget_minutes: Optional[float] = None,
    ) -> None:
        self.recipe = recipe
        self.cfg = load_train_config(recipe)
        self.data_cfg = load_data_config(recipe)
        name = recipe.config.get("name") or Path(recipe.source).stem
        self.out = Path(out_dir or self.cfg.out or Path("runs") / str(name))
        self.ckpt_dir = self.out / CKPT_DIR
        self.device_name = device or self.cfg.device
        self.resume, self.init_from, self.registry, self.progress = resume, init_from, registry, progress
        self.recipe_dict = absolute_data_paths(recipe.to_container(), recipe.base_dir)
        self.step, self.seconds, self.cpu_seconds, self.best = 0, 0.0, 0.0, None
        self.dist = DistInfo()
        self._ready = False
        if budget_minutes is not None and not budget_minutes > 0:
            raise SepkitError(f"--budget-minutes must be positive, got {budget_minutes}")
        self.budget_minutes = budget_minutes
        self._deadline: Optional[float] = None
        self.stopped_by_budget = False
        self.stopped_by = "steps"  # "steps" | "budget" | "signal"
        self._stop_signal: Optional[str] = None

    # --- setting up ---------------------------------------------------------------------
    def check_run_dir(self) -> Optional[Path]:
        """Refuse to overwrite a run, or to resume one that has no checkpoint or another recipe."""
        if not self.resume:
            existing = sorted(self.ckpt_dir.glob("*.ckpt")) if self.ckpt_dir.is_dir() else []
            if existing:
                raise SepkitError(
                    f"run folder {self.out} already has checkpoints ({existing[0].name}); "
                    "use --resume to continue it, or another --out"
                )
            return None
        last = self.ckpt_dir / "last.ckpt"
        if not last.is_file():
            raise SepkitError(f"--resume: no checkpoint in {self.ckpt_dir} (expected last.ckpt); run without --resume")
        saved_path = self.out / RECIPE_FILE
        if saved_path.is_file():
            from omegaconf import OmegaConf

            saved = flatten(OmegaConf.to_container(OmegaConf.load(saved_path), resolve=True))
            now = flatten(self.recipe_dict)
            differ = sorted(
                k for k in set(saved) | set(now) if saved.get(k) != now.get(k) and k not in RESUME_MAY_DIFFER
            )
            if differ:
                shown = "; ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in differ[:8])
                raise SepkitError(
                    f"--resume: the recipe differs from the run's {saved_path} in {', '.join(differ)} ({shown}); "
                    "only train.steps may change when resuming; start a new run (another --out) instead"
                )
        return last

    def setup(self) -> Trainer:
        if self._ready:
            return self
        from sepkit.device import bf16_emulated_note, resolve_device, resolve_dtype, resolve_precision
        from sepkit.plugins import get_registry
        from sepkit.train.ema import EMA
        from sepkit.train.system import build_system

        self.dist, self.device = init_distributed(resolve_device(self.device_name))
        asked = self.cfg.precision
        cfg = self.cfg = dataclasses.replace(self.cfg, precision=resolve_precision(asked, self.device))
        self.amp = resolve_dtype(PRECISIONS[cfg.precision])
        self.precision_note = bf16_emulated_note(cfg.precision, self.device)
        if asked == "auto":
            self.precision_note = f"train.precision auto -> {cfg.precision} on {self.device.type}"
        last = self.check_run_dir()
        seed_everything(cfg.seed)
        self.system = build_system(self.recipe, cfg, self.registry or get_registry())
        metrics = self.system.validation_metrics
        if cfg.val_metric not in metrics:
            raise SepkitError(
                f"{self.recipe.source}: train.val_metric={cfg.val_metric!r}; this system reports {', '.join(metrics)}"
            )
        self.val_mode = cfg.val_mode if cfg.val_mode != "auto" else ("min" if "loss" in cfg.val_metric else "max")
        if self.init_from and last is None:
            self.system.init_from(self.init_from)
        self.system.to(self.device)
        base = self.recipe.base_dir
        self.train_set = self.system.build_dataset("train", self.data_cfg, base, cfg.seed)
        self.val_set = self.system.build_dataset("val", self.data_cfg, base, cfg.seed)
        self.cache_notes = []
        if self.data_cfg.feature_cache:
            self.cache_notes = self.system.use_feature_cache(data_manifests(self.data_cfg, base))
        if self.dist.is_main and self.progress:
            for line in ([self.precision_note] if self.precision_note else []) + self.cache_notes:
                print(line, file=sys.stderr)
        check_batch_size(len(self.train_set), cfg.batch_size, self.dist, "training")
        sampler = EpochSampler(len(self.train_set), cfg.batch_size, self.dist.rank, self.dist.world_size, cfg.seed)
        self.stream = BatchStream(self.train_set, sampler, self.system.collate, self.data_cfg.num_workers, cfg.seed)
        self.optim = self.system.optimizers(cfg)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.ema = EMA(self.system, cfg.ema).to(self.device) if cfg.ema else None
        if last is not None:
            self._restore(last)
        else:
            seed_everything(cfg.seed + self.dist.rank)
        self.model = wrap_ddp(self.system, self.dist, self.device, self.system.find_unused_parameters)
        if self.dist.is_main:
            self._prepare_run_dir()
        if cfg.debug and self.resume:
            _filter_jsonl(self.out / f"ids-rank{self.dist.rank}.jsonl", self.step)
        barrier(self.dist)
        self._ready = True
        return self

    def _prepare_run_dir(self) -> None:
        from omegaconf import OmegaConf

        from sepkit.atomic import atomic_path

        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out / RECIPE_FILE) as tmp:
            tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(self.recipe_dict)), encoding="utf-8")
        metrics = self.out / METRICS_FILE
        if self.resume:
            _filter_jsonl(metrics, self.step)
        else:
            metrics.write_text("", encoding="utf-8")

    def _restore(self, path: Path) -> None:
        from sepkit.checkpoint import load_checkpoint

        payload = load_checkpoint(path)
        where = f"checkpoint {path}"
        world = int(payload.get("world_size", 1))
        if world != self.dist.world_size:
            raise SepkitError(
                f"--resume: {where} was written by {world} process(es), this run has {self.dist.world_size}; "
                "resume with the same number of processes (the data order depends on it)"
            )
        self.system.load_checkpoint_state(payload["state_dict"], where)
        for name, (optimizer, scheduler) in self.optim.items():
            if name not in payload.get("optimizers", {}):
                raise SepkitError(f"{where} has no state for optimizer {name!r}; it was not written by this system")
            optimizer.load_state_dict(payload["optimizers"][name])
            scheduler.load_state_dict(payload["schedulers"][name])
        if payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        if self.ema is not None and payload.get("ema"):
            self.ema.load_state_dict(payload["ema"])
        self.step = int(payload["step"])
        self.seconds = float(payload.get("seconds", 0.0))
        self.cpu_seconds = float(payload.get("cpu_seconds", 0.0))
        self.best = payload.get("best")
        self.stream.load_state_dict(payload["data"])
        states = payload["rng"]
        set_rng_state(states[self.dist.rank] if len(states) == self.dist.world_size else states[0])

    # --- training -------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train to ``train.steps``, or until ``budget_minutes`` of wall clock have passed (then stop at a step
        boundary with a full resumable checkpoint); returns a summary (run folder, steps, losses, throughput)."""
        if self.budget_minutes is not None:
            self._deadline = time.monotonic() + 60.0 * self.budget_minutes
        try:
            with stop_signals(self._request_stop):
                self.setup()
                return self._loop()
        finally:
            destroy()

    @property
    def stop_signal(self) -> Optional[str]:
        """"SIGTERM" or "SIGINT" once this process received one (the run then stops at a step boundary)."""
        return self._stop_signal

    def _request_stop(self, name: str) -> None:
        """A SIGTERM (preemption, ``kill``) or a first Ctrl-C: stop at the next step boundary, resumable."""
        self._stop_signal = name
        if self.dist.is_main:
            text = (f"\nsepkit: {name} received; stopping after this step with a resumable checkpoint "
                    "(Ctrl-C again to abort at once)\n")  # fmt: skip
            try:  # one raw write: print() from a signal handler can hit a write in progress on stderr and be lost
                os.write(sys.stderr.fileno(), text.encode())
            except (AttributeError, OSError, ValueError):  # a replaced stderr without a file descriptor
                print(text, end="", file=sys.stderr, flush=True)

    def _loop(self) -> dict:
        from tqdm.auto import tqdm

        cfg = self.cfg
        bar = tqdm(
            total=cfg.steps,
            initial=min(self.step, cfg.steps),
            desc=f"train {self.out.name}",
            unit="step",
            disable=not (self.progress and self.dist.is_main),
            mininterval=0.5,
            dynamic_ncols=True,
        )
        start, session_examples, first_step = time.perf_counter(), 0, self.step
        window = {"sums": {}, "steps": 0, "examples": 0, "seconds": 0.0}
        last_log: dict = {}
        while self.step < cfg.steps:
            t_step, cpu_step = time.perf_counter(), time.process_time()
            micro = [self.stream.next() for _ in range(cfg.grad_accum)]
            if cfg.debug:
                self._log_ids(micro)
            logs, examples = self._train_step(micro)
            self.step += 1
            took = time.perf_counter() - t_step
            self.seconds += took
            self.cpu_seconds += time.process_time() - cpu_step
            window["seconds"] += took
            session_examples += examples
            for k, v in logs.items():
                window["sums"][k] = window["sums"].get(k, 0.0) + v
            window["steps"] += 1
            window["examples"] += examples
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                last_log = self._log_train(window, bar)
            bar.update(1)
            if self.val_set is not None and (
                (cfg.val_every and self.step % cfg.val_every == 0) or self.step == cfg.steps
            ):
                self.validate()
            saved = (cfg.ckpt_every and self.step % cfg.ckpt_every == 0) or self.step == cfg.steps
            if saved:
                self.save()
            if self.step < cfg.steps and (reason := self._stop_reason()):
                if not saved:
                    self.save()
                self.stopped_by_budget = reason == "budget"
                self.stopped_by = reason
                break
        bar.close()
        if cfg.debug:
            self._dump_params()
        elapsed = time.perf_counter() - start
        return {
            "out": str(self.out),
            "step": self.step,
            "steps_this_run": self.step - first_step,
            "train": {k: v for k, v in last_log.items() if k not in ("step", "split")},
            "best": self.best,
            "examples_per_s": round(session_examples * self.dist.world_size / elapsed, 3) if elapsed > 0 else None,
            "world_size": self.dist.world_size,
            "stopped": self.stopped_by,
        }

    def _stop_reason(self) -> Optional[str]:
        """"budget" once the wall-clock budget is over, "signal" after a stop signal on any rank, else None;
        the same answer on every rank (rank 0's clock decides the budget)."""
        if self._deadline is None and self.dist.world_size == 1 and self._stop_signal is None:
            return None
        over = float(self._deadline is not None and time.monotonic() >= self._deadline) if self.dist.is_main else 0.0
        flags = all_reduce_sum({"over": over, "signal": float(self._stop_signal is not None)}, self.dist, self.device)
        if flags["over"] > 0:
            return "budget"
        return "signal" if flags["signal"] > 0 else None

    def _train_step(self, micro: list) -> tuple[dict[str, float], int]:
        """One optimizer step per phase over the micro-batches; returns (logged values, examples)."""
        from sepkit.device import autocast

        cfg, system = self.cfg, self.system
        system.train()
        micro = [to_device(b, self.device) for b in micro]
        examples = sum(batch_size_of(b) for b in micro)
        names = system.optimizer_names
        logs: dict[str, float] = {}
        for name in names:
            optimizer, scheduler = self.optim[name]
            system.zero_grad(set_to_none=True)
            totals: dict[str, float] = {}
            for i, batch in enumerate(micro):
                sync = i == len(micro) - 1 or not self.dist.enabled
                with contextlib.nullcontext() if sync else self.model.no_sync():
                    with autocast(self.device, self.amp):
                        out = self.model(batch, self.step, name)
                    loss = out["loss"]
                    if self.amp != torch.float16 and not bool(torch.isfinite(loss.detach())):
                        raise SepkitError(
                            f"step {self.step + 1}: the {name!r} loss is {float(loss)}; lower train.lr, "
                            "set train.grad_clip, or train in float32"
                        )
                    self.scaler.scale(loss.float() / len(micro)).backward()
                for k, v in out.items():
                    totals[k] = totals.get(k, 0.0) + float(v.detach()) / len(micro)
            self.scaler.unscale_(optimizer)
            if cfg.grad_clip:
                params = [p for group in optimizer.param_groups for p in group["params"]]
                totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
            totals["lr"] = float(optimizer.param_groups[0]["lr"])
            self.scaler.step(optimizer)
            with warnings.catch_warnings():  # a GradScaler-skipped step still advances the schedule
                warnings.simplefilter("ignore", UserWarning)
                scheduler.step()
            logs.update({(k if len(names) == 1 else f"{name}.{k}"): v for k, v in totals.items()})
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(system)
        return logs, examples

    # --- logging ---------------------------------------------------------------------------
    def _write_metrics(self, record: dict) -> None:
        if self.dist.is_main:
            with open(self.out / METRICS_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def _log_train(self, window: dict, bar) -> dict:
        sums = all_reduce_sum(window["sums"], self.dist, self.device)
        scale = window["steps"] * self.dist.world_size
        elapsed = max(window["seconds"], 1e-9)  # time in training steps (data included), not validation
        record = {"step": self.step, "split": "train", **{k: v / scale for k, v in sums.items()}}
        record["examples_per_s"] = window["examples"] * self.dist.world_size / elapsed
        record["seconds"] = self.seconds
        record["cpu_seconds"] = self.cpu_seconds
        self._write_metrics(record)
        shown = {k: f"{v:.4g}" for k, v in record.items() if k.endswith("loss")}
        bar.set_postfix({**shown, "ex/s": f"{record['examples_per_s']:.1f}"}, refresh=False)
        window.update(sums={}, steps=0, examples=0, seconds=0.0)
        return record

    def _log_ids(self, micro: list) -> None:
        ids = [i for b in micro for i in (b.get("id", []) if isinstance(b, dict) else [])]
        record = {"step": self.step + 1, "epoch": self.stream.epoch, "ids": ids}
        with open(self.out / f"ids-rank{self.dist.rank}.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _dump_params(self) -> None:
        digests = {
            name: hashlib.sha256(p.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
            for name, p in self.system.named_parameters()
            if p.requires_grad
        }
        (self.out / f"params-rank{self.dist.rank}.json").write_text(json.dumps(digests, indent=1, sort_keys=True))

    # --- validation and checkpoints ---------------------------------------------------------
    def _val_batches(self):
        sampler = EpochSampler(
            len(self.val_set), self.cfg.batch_size, self.dist.rank, self.dist.world_size, shuffle=False, drop_last=False
        )
        if hasattr(self.val_set, "set_epoch"):
            self.val_set.set_epoch(0)
        loader = DataLoader(
            self.val_set,
            batch_sampler=sampler.batches(0),
            collate_fn=self.system.collate,
            num_workers=self.data_cfg.num_workers,
            generator=torch.Generator().manual_seed(0),
            worker_init_fn=ignore_stop_signals,
        )
        return loader

    def _weights(self):
        """Context in which the system holds the weights to evaluate and publish (EMA if any)."""
        return self.ema.applied(self.system) if self.ema is not None else contextlib.nullcontext()

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Average ``validation_step`` metrics over the whole val set (all ranks); keep the best model."""
        from sepkit.device import autocast

        names = list(self.system.validation_metrics)
        sums = dict.fromkeys(names, 0.0)
        count = 0
        self.system.eval()
        with self._weights():
            for batch in self._val_batches():
                batch = to_device(batch, self.device)
                with autocast(self.device, self.amp):
                    out = self.system.validation_step(batch)
                for k in names:
                    sums[k] += float(out[k].float().sum())
                count += batch_size_of(batch)
        self.system.train()
        totals = all_reduce_sum({**sums, "_count": count}, self.dist, self.device)
        metrics = {k: totals[k] / max(totals["_count"], 1) for k in names}
        self._write_metrics(
            {"step": self.step, "split": "val", **metrics, "seconds": self.seconds, "cpu_seconds": self.cpu_seconds}
        )
        value = metrics[self.cfg.val_metric]
        better = self.best is None or (
            value < self.best["value"] if self.val_mode == "min" else value > self.best["value"]
        )
        if better:
            self.best = {"metric": self.cfg.val_metric, "value": value, "step": self.step, "mode": self.val_mode}
            if self.dist.is_main:
                self._save_model(self.ckpt_dir / "best.ckpt", best=self.best)
        return metrics

    def _save_model(self, path: Path, **extra) -> None:
        from sepkit.checkpoint import save_checkpoint

        with self._weights():
            state = {k: v.detach().cpu().clone() for k, v in self.system.checkpoint_state().items()}
        save_checkpoint(path, self.recipe_dict, state, self.system.plugin_versions(), step=self.step, **extra)

    def save(self) -> None:
        """Write step-<N>.ckpt and last.ckpt (rank 0; every rank contributes its RNG state)."""
        from sepkit.checkpoint import save_checkpoint

        states = all_gather_objects(rng_state(), self.dist)
        if self.dist.is_main:
            extra = {
                "step": self.step,
                "optimizers": {name: opt.state_dict() for name, (opt, _) in self.optim.items()},
                "schedulers": {name: sched.state_dict() for name, (_, sched) in self.optim.items()},
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "rng": states,
                "data": self.stream.state_dict(),
                "best": self.best,
                "seconds": self.seconds,
                "cpu_seconds": self.cpu_seconds,
                "world_size": self.dist.world_size,
            }
            args = (self.recipe_dict, self.system.checkpoint_state(), self.system.plugin_versions())
            last = self.ckpt_dir / "last.ckpt"
            if self.cfg.keep > 0:
                path = self.ckpt_dir / f"step-{self.step}.ckpt"
                save_checkpoint(path, *args, **extra)
                _link_or_copy(path, last, lambda: save_checkpoint(last, *args, **extra))
                self._prune()
            else:
                save_checkpoint(last, *args, **extra)
            if self.val_set is None:
                self._save_model(self.ckpt_dir / "best.ckpt", best=None)
        barrier(self.dist)

    def _prune(self) -> None:
        steps = sorted(self.ckpt_dir.glob("step-*.ckpt"), key=lambda p: int(p.stem.split("-")[1]))
        for old in steps[: -self.cfg.keep]:
            old.unlink(missing_ok=True)


def _link_or_copy(source: Path, target: Path, fallback) -> None:
    """Make ``target`` the same file as ``source`` atomically (hard link + rename), else call ``fallback``."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.link")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        fallback()


def resolve_train_args(args) -> tuple[str, list[str], Optional[str], bool]:
    """(recipe, overrides, run folder, resume) from ``sepkit train``'s arguments.

    ``sepkit train --resume RUN_DIR [overrides]`` continues a run from its own ``recipe.yaml`` (the
    resolved recipe it was started with), wherever the folder now is; ``sepkit train RECIPE --out DIR
    --resume`` continues ``DIR`` with the recipe named, which must match the run's.
    """
    from sepkit.recipe import is_override

    recipe = getattr(args, "recipe", None)
    overrides = list(getattr(args, "overrides", None) or [])
    if recipe is not None and is_override(recipe):  # `sepkit train --resume RUN train.steps=2000`
        overrides.insert(0, recipe)
        recipe = None
    resume = getattr(args, "resume", False)
    out = getattr(args, "out", None)
    run_dir = resume if isinstance(resume, str) else None
    if run_dir is not None:
        if out is not None and Path(out).resolve() != Path(run_dir).resolve():
            raise SepkitError(f"--resume {run_dir} and --out {out} name different run folders; give one of them")
        out = run_dir
        if recipe is None:
            saved = Path(run_dir) / RECIPE_FILE
            if not saved.is_file():
                raise SepkitError(
                    f"--resume {run_dir}: no {RECIPE_FILE} there, so it is not a sepkit run folder; "
                    "give the folder that sepkit train --out wrote"
                )
            recipe = str(saved)
    if recipe is None:
        raise SepkitError("name a recipe (sepkit train RECIPE --out DIR), or continue a run: sepkit train --resume DIR")
    return recipe, overrides, out, bool(resume)


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers ignore SIGINT and SIGTERM. A Ctrl-C in a terminal, or a scheduler's SIGTERM to
    the whole job, reaches every process of the group: the main process then stops at a step boundary with
    a resumable checkpoint (``stop_signals``) and the workers end with their loader, instead of one dying
    first and taking the run down with "DataLoader worker killed"."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextlib.contextmanager
def stop_signals(request_stop):
    """While inside: SIGTERM and the first SIGINT call ``request_stop(name)`` instead of killing the process.

    A second SIGINT raises KeyboardInterrupt as usual. Only the main thread can install handlers;
    elsewhere (a run started from a worker thread) the signals keep their defaults.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def on_term(signum, frame):
        request_stop("SIGTERM")

    def on_int(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        request_stop("SIGINT")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_int)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def continue_command(out: Path, budget_minutes: Optional[float]) -> str:
    """The command that continues a run stopped by its budget."""
    import shlex

    budget = f" --budget-minutes {budget_minutes:g}" if budget_minutes is not None else ""
    return f"sepkit train --resume {shlex.quote(str(out))}{budget}"


def train_from_args(args) -> int:
    """``sepkit train``: load the recipe with its overrides, train, print the summary (rank 0)."""
    import sys

    from sepkit.recipe import load_recipe

    recipe_arg, overrides, out, resume = resolve_train_args(args)
    recipe = load_recipe(recipe_arg, overrides)
    budget = getattr(args, "budget_minutes", None)
    trainer = Trainer(
        recipe,
        out_dir=out,
        device=getattr(args, "device", None),
        resume=resume,
        init_from=getattr(args, "init_from", None),
        budget_minutes=budget,
    )
    summary = trainer.fit()
    if trainer.dist.is_main:
        print(json.dumps(summary, indent=2, default=str))
        if trainer.stopped_by != "steps":
            # said again here, outside the signal handler, whose own line is best effort
            received = f"{trainer.stop_signal} received" if trainer.stop_signal else "a stop signal on another rank"
            why = f"--budget-minutes {budget:g} reached" if trainer.stopped_by_budget else f"{received}; stopped"
            print(
                f"sepkit: {why} at step {trainer.step} of {trainer.cfg.steps}; "
                f"{trainer.ckpt_dir / 'last.ckpt'} holds everything to continue: "
                f"{continue_command(trainer.out, budget)}",
                file=sys.stderr,
            )
    return 0
