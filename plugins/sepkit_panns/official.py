"""The official PANNs checkpoint layout, mapped to and from ``Cnn14`` state dicts.

An official file (``Cnn14_16k_mAP=0.438.pth``, ``Cnn14_mAP=0.431.pth``) is a ``torch.save`` of
``{"iteration": int, "model": state_dict, "sampler": {...}}`` (the sampler state holds numpy
arrays). Its ``state_dict`` has the keys of the official ``Cnn14`` module:

- ``spectrogram_extractor.stft.conv_real.weight`` / ``...conv_imag.weight``
  [n_fft // 2 + 1, 1, n_fft]: torchlibrosa's windowed DFT basis (frozen),
- ``logmel_extractor.melW`` [n_fft // 2 + 1, 64]: librosa's Slaney mel matrix (frozen),
- ``bn0.*``, ``conv_block{1..6}.{conv1,conv2}.weight``, ``conv_block{1..6}.{bn1,bn2}.*``,
  ``fc1.{weight,bias}``, ``fc_audioset.{weight,bias}``.

``Cnn14`` uses the same names for the network, keeps the mel matrix as
``frontend.mel_weight`` and has no STFT state: ``official_to_module`` checks the two DFT
bases against ``frontend.stft_basis`` (so a 32 kHz file given to the 16 kHz model is caught
by its window length) and drops them, and renames the mel matrix. The checkpoint's own mel
matrix is used, not a recomputed one.

Files are read with ``torch.load(weights_only=True)``; the only globals allowed beyond
tensors and plain containers are numpy's array/dtype/scalar reconstructors (data, no code),
which the official sampler state needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sepkit.errors import SepkitError
from sepkit.hub import local_file

from .frontend import FRONTENDS, stft_basis

OFFICIAL_FILES = {16000: "Cnn14_16k_mAP=0.438.pth", 32000: "Cnn14_mAP=0.431.pth"}
STFT_KEYS = ("spectrogram_extractor.stft.conv_real.weight", "spectrogram_extractor.stft.conv_imag.weight")
OFFICIAL_MEL_KEY = "logmel_extractor.melW"
MEL_KEY = "frontend.mel_weight"
STFT_TOLERANCE = 1e-4


def _numpy_safe_globals() -> list:
    """numpy's reconstructors for arrays, dtypes and scalars, under numpy 1.x and 2.x module paths."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 1.26
        from numpy.core import multiarray

    allowed: list = [np.ndarray, np.dtype]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed.append((multiarray._reconstruct, f"{module}._reconstruct"))
        allowed.append((multiarray.scalar, f"{module}.scalar"))
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        for name in dir(dtypes):
            cls = getattr(dtypes, name)
            if name.endswith("DType") and isinstance(cls, type):
                allowed.append((cls, f"numpy.dtypes.{name}"))
    return allowed


def read_official_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``model`` state dict of an official PANNs file (or a bare state dict), read with weights_only=True.

    ``path`` may be an ``hf://OWNER/REPO/FILE`` reference (resolved in the Hugging Face cache, ``sepkit.hub``).
    """
    path = local_file(path, "PANNs checkpoint")
    path = Path(path).expanduser()
    if not path.is_file():
        raise SepkitError(
            f"PANNs checkpoint {path} not found; give the path of the official file "
            f"({' or '.join(OFFICIAL_FILES.values())}, from https://zenodo.org/record/3987831)"
        )
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise SepkitError(
            f"PANNs checkpoint {path} could not be read with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {first_line}"
        ) from None
    state = payload.get("model", payload) if isinstance(payload, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = ", ".join(map(str, list(payload)[:8])) if isinstance(payload, Mapping) else type(payload).__name__
        raise SepkitError(
            f"PANNs checkpoint {path} is not in the official layout: expected {{'model': state_dict, ...}} "
            f"as audioset_tagging_cnn saves it, found {keys}"
        )
    return dict(state)


def official_to_module(state: Mapping[str, torch.Tensor], sample_rate: int, where: str) -> dict[str, torch.Tensor]:
    """Official state dict -> ``Cnn14`` state dict: check and drop the DFT bases, rename the mel matrix.

    Absent DFT bases are accepted (they carry no information); everything else is checked
    strictly when the result is loaded (``load_state_dict_checked``).
    """
    n_fft = FRONTENDS[sample_rate].window_size
    state = dict(state)
    for key, basis in zip(STFT_KEYS, stft_basis(n_fft)):
        if key not in state:
            continue
        weight = state.pop(key)
        if tuple(weight.shape) != basis.shape:
            window = weight.shape[-1] if weight.dim() else None
            rates = [sr for sr, s in FRONTENDS.items() if s.window_size == window]
            hint = f"; that is the {rates[0]} Hz model: set sample_rate: {rates[0]}" if rates else ""
            raise SepkitError(
                f"{where}: {key} has shape {tuple(weight.shape)}, i.e. an STFT window of {window} samples, but "
                f"panns-cnn14 with sample_rate {sample_rate} uses window {n_fft} {tuple(basis.shape)}{hint}"
            )
        deviation = float(np.abs(weight.double().numpy() - basis).max())
        if deviation > STFT_TOLERANCE:
            raise SepkitError(
                f"{where}: {key} is not the periodic-Hann DFT basis of the official front end (max deviation "
                f"{deviation:.3g}); this is not an official PANNs CNN14 checkpoint"
            )
    if OFFICIAL_MEL_KEY in state:
        state[MEL_KEY] = state.pop(OFFICIAL_MEL_KEY)
    return state


def module_to_official(state: Mapping[str, torch.Tensor], sample_rate: int) -> dict[str, torch.Tensor]:
    """``Cnn14`` state dict -> the official layout (DFT bases added as float32, mel matrix renamed)."""
    n_fft = FRONTENDS[sample_rate].window_size
    out: dict[str, torch.Tensor] = {}
    for key, basis in zip(STFT_KEYS, stft_basis(n_fft)):
        out[key] = torch.from_numpy(basis).float()
    for key, value in state.items():
        out[OFFICIAL_MEL_KEY if key == MEL_KEY else key] = value.detach().clone()
    return out


def load_official_checkpoint(path: str | os.PathLike, sample_rate: int) -> dict[str, torch.Tensor]:
    """Read an official PANNs file (a path or an ``hf://`` reference) and return the ``Cnn14`` state dict to load
    (strictly) into the model."""
    path = local_file(path, "PANNs checkpoint")
    where = f"PANNs checkpoint {Path(path).expanduser()}"
    return official_to_module(read_official_state_dict(path), sample_rate, where)


def write_random_checkpoint(
    path: str | os.PathLike,
    sample_rate: int = 16000,
    base_channels: int = 64,
    seed: int = 0,
    sampler_state: bool = True,
) -> Any:
    """Write a random-weight ``Cnn14`` in the official file layout, for tests; return the model (eval mode).

    Convolutions and linear layers get the official Xavier initialisation; batch-norm affine
    parameters and running statistics, and the linear biases, are randomised too so that a
    mix-up of any of them shows. ``bn0``'s statistics are set to a log-mel dB range.
    ``sampler_state`` adds a numpy-array sampler state like the official files carry.
    """
    from sepkit.checkpoint import atomic_save

    from .cnn14 import Cnn14

    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Cnn14(FRONTENDS[sample_rate], base_channels=base_channels)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for module in norms:
            module.weight.copy_(1 + 0.1 * torch.randn(module.num_features, generator=generator))
            module.bias.copy_(0.1 * torch.randn(module.num_features, generator=generator))
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.bias.copy_(0.01 * torch.randn(module.bias.shape, generator=generator))
        # running statistics from a calibration batch, so that every layer passes on the input's
        # differences (with arbitrary statistics a random network's output barely depends on its input)
        model.eval()
        for module in norms:
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batch
            module.train()
        model(_calibration_batch(sample_rate, generator))
        for module in norms:
            module.momentum = 0.1
            module.num_batches_tracked.fill_(1000 + seed)
    model.eval()
    payload: dict[str, Any] = {"iteration": 0, "model": module_to_official(model.state_dict(), sample_rate)}
    if sampler_state:
        rng = np.random.default_rng(seed)
        payload["sampler"] = {
            "indexes_per_class": [rng.permutation(8).astype(np.int64) for _ in range(3)],
            "queue": [np.int64(i) for i in rng.permutation(3)],
            "pointers_of_classes": [0, 1, 2],
        }
    atomic_save(payload, path)
    return model


def _calibration_batch(sample_rate: int, generator: torch.Generator, clips: int = 8) -> torch.Tensor:
    """[clips, 1 s]: noise, tones and swells at varied levels, for the batch-norm statistics."""
    t = torch.arange(sample_rate) / sample_rate
    rows = []
    for i in range(clips):
        level = 10 ** (-3 * torch.rand(1, generator=generator))
        noise = torch.randn(sample_rate, generator=generator)
        if i % 3 == 1:
            noise = torch.sin(2 * torch.pi * (100 + 4000 * torch.rand(1, generator=generator)) * t)
        elif i % 3 == 2:
            noise = noise.cumsum(0) / 30 * t**2  # a low-frequency swell
        rows.append(level * noise)
    return torch.stack(rows)
