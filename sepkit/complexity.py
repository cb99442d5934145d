"""Model complexity of a recipe: parameters, multiply-accumulates, FLOPs, real-time factor, peak memory.

``measure_complexity(recipe, seconds=10.0)`` builds the recipe's pipeline and
measures one separation pass of one mono mixture of ``seconds`` seconds at the
pipeline's sample rate with one text query (batch 1). ``sepkit complexity``
prints the result. Definitions of the reported keys:

``params_separation``
    parameters that are trainable in the recipe (``requires_grad`` True), over
    all components: what training the recipe updates.
``params_pretrained``
    parameters that are frozen (``requires_grad`` False, e.g. ``freeze: true``
    on a pretrained text encoder).
``params_total``
    their sum. Every parameter tensor is counted once, also when two components
    share it; buffers (STFT windows, running statistics) are not parameters.
``flops``
    floating-point operations of one ``pipeline.forward`` call in
    ``torch.inference_mode()``, counted by ``torch.utils.flop_counter.FlopCounterMode``.
    It counts matrix products, convolutions and attention only, at 2 FLOPs per
    multiply-accumulate (bias additions, norms, activations and element-wise ops
    are not counted). sepkit adds one formula torch lacks, the CPU kernel of
    ``scaled_dot_product_attention`` (same formula as torch's GPU kernels).
    Ops that look compute-heavy but have no formula (FFTs of STFT front ends,
    for instance) are listed in ``uncounted_ops``; their cost is not included.
``macs``
    multiply-accumulates: ``flops // 2``. Papers often call this figure "FLOPs";
    compare like with like.
``rtf``
    real-time factor: wall-clock seconds of the forward pass divided by the
    audio's duration, the median of ``repeats`` timed runs after one warm-up
    run, on this machine with ``threads`` intra-op threads. Below 1 is faster
    than real time.
``peak_rss_mb``
    peak resident set size, in MiB, of a fresh Python process that imports
    torch, builds the pipeline and runs the forward pass once (one run, not a
    median: peaks vary little). A fresh process keeps the caller's own memory
    out of the figure. On Linux it is ``VmHWM`` from ``/proc/self/status``: the
    child's ``getrusage(RUSAGE_SELF).ru_maxrss`` is not used there because Linux
    carries the parent's peak across ``fork``/``exec`` into it. Elsewhere
    ``ru_maxrss`` is used. ``None`` if memory was not measured.

Extras: ``recipe`` (the recipe's file, repository-relative through
``sepkit.paths.display_path``), ``name``, ``seconds``, ``sample_rate``,
``repeats``, ``threads``, ``device``, ``query``, ``description``, ``task`` (the
query parsed by the pipeline's instruction parser; the first instruction is
measured), ``text_tokens`` (query tokens the text encoder saw; a text encoder's
cost grows with them, and papers sometimes count a padded 512), ``macs_text`` /
``flops_text`` (the text encoder), ``macs_audio`` / ``flops_audio`` (everything
else: audio encoder, separator, decoder, resampling), ``per_component``
(``{kind: {name, params, trainable, frozen, macs, flops}}``), ``time_s`` (median
forward seconds), ``times_s`` (every timed run), ``rss_after_import_mb`` and
``rss_after_build_mb`` (the child's peak after importing torch and after
building the pipeline: the runtime's own share and the weights' share of
``peak_rss_mb``).

Weights are whatever building the recipe gives: fresh random initialisation for
the trained parts, and the pretrained weights a frozen component loads from its
own package. The recipe's ``checkpoint:`` is never loaded: complexity does not
depend on weight values.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sepkit.errors import SepkitError
from sepkit.paths import display_path

__all__ = ["count_flops", "count_parameters", "format_count", "measure_complexity"]

STAGES = (
    ("text_encoder", "encode_text"),
    ("audio_encoder", "encode_audio"),
    ("separator", "separate"),
    ("decoder", "decode"),
)

# An op that executed without a FLOP formula is reported if its name looks like one of these.
_HEAVY_OPS = re.compile(r"fft|attention|conv|mm|matmul|linear|lstm|gru|rnn|einsum", re.IGNORECASE)


def _attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """q [.., Sq, D] @ k^T -> scores [.., Sq, Sk]; scores @ v [.., Sk, Dv]: 2 FLOPs per multiply-accumulate."""
    rows = 1
    for size in query_shape[:-2]:
        rows *= int(size)
    s_q, d_q = int(query_shape[-2]), int(query_shape[-1])
    s_k, d_v = int(key_shape[-2]), int(value_shape[-1])
    return 2 * rows * s_q * s_k * d_q + 2 * rows * s_q * s_k * d_v


def _custom_formulas() -> dict:
    ops = torch.ops.aten
    return {ops._scaled_dot_product_flash_attention_for_cpu: _attention_flops} if hasattr(
        ops, "_scaled_dot_product_flash_attention_for_cpu"
    ) else {}


class _Counter(FlopCounterMode):
    """FlopCounterMode that also remembers which executed ops had no FLOP formula."""

    def __init__(self) -> None:
        super().__init__(display=False, custom_mapping=_custom_formulas())
        self.uncounted: set[str] = set()

    def _count_flops(self, func_packet, out, args, kwargs):  # torch-internal hook; only adds bookkeeping
        if func_packet not in self.flop_registry:
            self.uncounted.add(str(func_packet))
        return super()._count_flops(func_packet, out, args, kwargs)

    def heavy_uncounted(self) -> list[str]:
        return sorted(op for op in self.uncounted if _HEAVY_OPS.search(op))


def count_flops(fn: Callable, *args, **kwargs) -> int:
    """FLOPs of ``fn(*args, **kwargs)`` (a module or any callable) under FlopCounterMode, in inference mode.

    2 FLOPs per multiply-accumulate: ``nn.Linear(10, 20)`` on a [3, 10] input gives 2 * 3 * 10 * 20 = 1200.
    """
    with torch.inference_mode(), _Counter() as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def count_parameters(modules: Union[nn.Module, Iterable[nn.Module]]) -> dict[str, int]:
    """{"trainable", "frozen", "total"} element counts of the unique parameters of ``modules``."""
    if isinstance(modules, nn.Module):
        modules = [modules]
    seen: set[int] = set()
    trainable = frozen = 0
    for module in modules:
        for param in module.parameters():
            if id(param) in seen:
                continue
            seen.add(id(param))
            if param.requires_grad:
                trainable += param.numel()
            else:
                frozen += param.numel()
    return {"trainable": trainable, "frozen": frozen, "total": trainable + frozen}


def format_count(value: Optional[float], unit: str = "") -> str:
    """1234567 -> '1.23 M'; G above 1e9, M above 1e6, k above 1e3."""
    if value is None:
        return "-"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {suffix}{unit}"
    return f"{value:g}{' ' + unit if unit else ''}"


# --- building and running ------------------------------------------------------------


def _load(recipe, overrides: Sequence[str]):
    from sepkit.recipe import Recipe, load_recipe

    if isinstance(recipe, Recipe):
        if overrides:
            raise SepkitError("overrides apply to a recipe name or file, not to a loaded Recipe")
        return recipe
    return load_recipe(str(recipe), list(overrides))


def _build(recipe, device: torch.device):
    from sepkit.pipeline import SeparationPipeline

    torch.manual_seed(0)
    return SeparationPipeline.from_recipe(recipe).to(device).eval()  # no checkpoint: values do not matter here


def _inputs(pipeline, seconds: float, task: str, device: torch.device):
    from sepkit.instructions import TASKS

    samples = max(1, int(round(seconds * pipeline.sample_rate)))
    generator = torch.Generator().manual_seed(0)
    mixture = (0.1 * torch.randn(1, samples, generator=generator)).to(device)
    lengths = torch.tensor([samples], device=device)
    tasks = torch.tensor([TASKS.index(task)], dtype=torch.long, device=device)
    return mixture, lengths, tasks


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _count_pipeline(pipeline, mixture, lengths, description: str, tasks) -> dict[str, Any]:
    """One forward pass under FlopCounterMode, with each stage's share taken as the total's growth during it."""
    stage_flops = {kind: 0 for kind, _ in STAGES}
    tokens: list[int] = []
    depth = [0]
    counter = _Counter()

    def wrap(kind: str, method: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            depth[0] += 1
            before = counter.get_total_flops()
            try:
                out = method(*args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0:  # a stage called from inside another stage counts for the outer one
                stage_flops[kind] += counter.get_total_flops() - before
            if kind == "text_encoder":
                tokens.append(int(out.mask.sum(-1).max()))
            return out

        return wrapped

    patched = []
    for kind, method_name in STAGES:
        module = getattr(pipeline, kind)
        if method_name not in vars(module):  # a component playing two roles is patched once per method
            setattr(module, method_name, wrap(kind, getattr(module, method_name)))
            patched.append((module, method_name))
    try:
        with torch.inference_mode(), counter:
            pipeline(mixture, lengths, [description], tasks)
    finally:
        for module, method_name in patched:
            delattr(module, method_name)
    total = int(counter.get_total_flops())
    rest = total - sum(stage_flops.values())
    if rest:
        stage_flops["pipeline"] = rest  # e.g. resampling between decoder and pipeline rates
    return {
        "flops": total,
        "stage_flops": stage_flops,
        "text_tokens": tokens[0] if tokens else None,
        "uncounted_ops": counter.heavy_uncounted(),
    }


def _time_forward(pipeline, mixture, lengths, description: str, tasks, repeats: int, device) -> list[float]:
    times = []
    with torch.inference_mode():
        pipeline(mixture, lengths, [description], tasks)  # warm-up
        _sync(device)
        for _ in range(repeats):
            start = time.perf_counter()
            pipeline(mixture, lengths, [description], tasks)
            _sync(device)
            times.append(time.perf_counter() - start)
    return times


# --- peak memory in a fresh process ----------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak RSS in MiB (VmHWM on Linux, else ru_maxrss)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def _memory_child() -> None:
    """Run in a fresh process: spec JSON on stdin, one JSON line of peak RSS figures on stdout."""
    spec = json.loads(sys.stdin.read())
    from omegaconf import OmegaConf

    from sepkit.recipe import Recipe

    torch.set_num_threads(int(spec["threads"]))
    after_import = _peak_rss_mb()
    recipe = Recipe(config=OmegaConf.create(spec["config"]), source=spec["source"], base_dir=Path(spec["base_dir"]))
    device = torch.device(spec["device"])
    pipeline = _build(recipe, device)
    after_build = _peak_rss_mb()
    mixture, lengths, tasks = _inputs(pipeline, float(spec["seconds"]), spec["task"], device)
    with torch.inference_mode():
        pipeline(mixture, lengths, [spec["description"]], tasks)
    _sync(device)
    print(
        json.dumps(
            {"peak_rss_mb": _peak_rss_mb(), "rss_after_import_mb": after_import, "rss_after_build_mb": after_build}
        )
    )


def _measure_memory(recipe, seconds: float, description: str, task: str, threads: int, device) -> dict:
    spec = {
        "config": recipe.to_container(),
        "source": recipe.source,
        "base_dir": str(recipe.base_dir or Path.cwd()),
        "seconds": seconds,
        "description": description,
        "task": task,
        "threads": threads,
        "device": str(device),
    }
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)  # where this sepkit was imported from, not data
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", "from sepkit.complexity import _memory_child; _memory_child()"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"the memory-measuring subprocess failed (exit {proc.returncode}): {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the measurement ---------------------------------------------------------------------


def measure_complexity(
    recipe,
    seconds: float = 10.0,
    repeats: int = 3,
    query: str = "extract the violin",
    device: str = "cpu",
    threads: Optional[int] = None,
    overrides: Sequence[str] = (),
    memory: bool = True,
) -> dict[str, Any]:
    """Parameters, MACs, FLOPs, real-time factor and peak memory of ``recipe`` on ``seconds`` of audio.

    ``recipe``: a bundled name, a YAML path or a loaded ``Recipe``; ``overrides``: omegaconf dotlist
    (with a name or path only). ``threads``: torch intra-op threads while measuring (None: torch's
    current setting). ``memory=False`` skips the subprocess and reports ``peak_rss_mb`` None.
    The keys are defined in this module's docstring.
    """
    from sepkit.device import resolve_device

    if not seconds > 0:
        raise SepkitError(f"seconds must be positive, got {seconds}")
    if repeats < 1:
        raise SepkitError(f"repeats must be at least 1, got {repeats}")
    if threads is not None and threads < 1:
        raise SepkitError(f"threads must be at least 1, got {threads}")
    loaded = _load(recipe, overrides)
    dev = resolve_device(device)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        used_threads = torch.get_num_threads()
        pipeline = _build(loaded, dev)
        instructions = pipeline.instruction_parser.parse(query)
        description, task = instructions[0].description, instructions[0].task
        mixture, lengths, tasks = _inputs(pipeline, seconds, task, dev)
        counted = _count_pipeline(pipeline, mixture, lengths, description, tasks)
        times = _time_forward(pipeline, mixture, lengths, description, tasks, repeats, dev)
    finally:
        torch.set_num_threads(previous_threads)

    params = count_parameters(pipeline)
    per_component = {}
    kinds = [kind for kind, _ in STAGES]
    if isinstance(pipeline.instruction_parser, nn.Module):
        kinds.append("instruction_parser")
    for kind in kinds:
        module = getattr(pipeline, kind)
        own = count_parameters(module)
        flops = counted["stage_flops"].get(kind, 0)
        per_component[kind] = {
            "name": getattr(module, "registry_name", type(module).__name__),
            "params": own["total"],
            "trainable": own["trainable"],
            "frozen": own["frozen"],
            "macs": flops // 2,
            "flops": flops,
        }
    if "pipeline" in counted["stage_flops"]:
        flops = counted["stage_flops"]["pipeline"]
        per_component["pipeline"] = {
            "name": "resampling",
            "params": 0,
            "trainable": 0,
            "frozen": 0,
            "macs": flops // 2,
            "flops": flops,
        }
    flops_text = counted["stage_flops"]["text_encoder"]
    total_flops = counted["flops"]
    time_s = statistics.median(times)
    result: dict[str, Any] = {
        "params_separation": params["trainable"],
        "params_pretrained": params["frozen"],
        "params_total": params["total"],
        "macs": total_flops // 2,
        "flops": total_flops,
        "rtf": time_s / seconds,
        "peak_rss_mb": None,
        "recipe": display_path(loaded.source),
        "name": loaded.config.get("name"),
        "seconds": float(seconds),
        "sample_rate": int(pipeline.sample_rate),
        "repeats": int(repeats),
        "threads": int(used_threads),
        "device": str(dev),
        "query": query,
        "description": description,
        "task": task,
        "text_tokens": counted["text_tokens"],
        "macs_text": flops_text // 2,
        "macs_audio": (total_flops - flops_text) // 2,
        "flops_text": flops_text,
        "flops_audio": total_flops - flops_text,
        "per_component": per_component,
        "uncounted_ops": counted["uncounted_ops"],
        "time_s": time_s,
        "times_s": times,
    }
    del pipeline
    if memory:
        rss = _measure_memory(loaded, seconds, description, task, used_threads, dev)
        result["peak_rss_mb"] = rss["peak_rss_mb"]
        result["rss_after_import_mb"] = rss["rss_after_import_mb"]
        result["rss_after_build_mb"] = rss["rss_after_build_mb"]
    return result
