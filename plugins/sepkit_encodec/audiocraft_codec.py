"""``AudiocraftEncodec`` (registered as codec ``audiocraft-encodec``): EnCodec through audiocraft 1.3.0.

wave float [B, T] at ``sample_rate`` -> CodecFrames(codes long [B, G, F], lengths long [B],
latents float [B, F, 128] = the quantised embeddings ``decode_latent`` gives the decoder); F is
about T / hop (hop = product of the SEANet ratios: 320 for [8, 5, 4, 2], 640 for [8, 5, 4, 4]).
``decode``: codes [B, G, F] -> wave float [B, hop F]. The model is audiocraft's own
``EncodecModel`` (SEANet encoder/decoder + ``ResidualVectorQuantizer``) built by
``audiocraft.models.builders.get_compression_model`` from a config in the layout of audiocraft's
``config/model/encodec/*.yaml`` (``preset``, see ``audiocraft_presets``), so sizes and state-dict
keys are audiocraft's. ``num_codebooks`` codebooks of the RVQ are used (8 = 6 kbit/s at 24 kHz).

``checkpoint``: a file in audiocraft's compression-model layout, ``{'xp.cfg': config, 'best_state':
state_dict, ...}``. The model is rebuilt from the file's ``xp.cfg`` and loaded strictly (the size
keys and ``preset`` are then ignored; ``sample_rate`` must match). Two variants exist:

- exported files (``audiocraft.utils.export.export_encodec``, what ``load_compression_model``
  reads): ``xp.cfg`` is YAML text and ``best_state`` the state dict;
- the solver's own ``checkpoint.th`` (``CompressionSolver.model_from_checkpoint``): ``best_state``
  is ``{'model': state_dict}`` and ``xp.cfg`` a pickled omegaconf ``DictConfig``.

Files are read with ``torch.load(weights_only=True)``: only tensors, numbers, strings and plain
containers are trusted, never pickled objects. A solver checkpoint holding a pickled DictConfig is
refused with an error that says to export it first (export_encodec writes the cfg as YAML); we do
not allowlist omegaconf's classes or fall back to ``weights_only=False``, because a checkpoint
could then run code on load. Without ``checkpoint`` the weights are random (for a random build the
codebooks are initialised uniformly, ``kmeans_init: false``; audiocraft's k-means init would leave
them zero until the first training batch).

audiocraft is imported on first build, not by the plugin. Importing ``audiocraft.models`` pulls in
its CLAP metric, which imports laion_clap, whose module body fetches a tokenizer from the model
hub; the import here hides laion_clap for that moment (audiocraft then treats CLAP as absent).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import non_negative, positive
from sepkit.errors import SepkitError
from sepkit.hub import local_file
from sepkit.interfaces import Codec, CodecFrames

from .audiocraft_presets import PRESETS, preset_config

LOGGER = logging.getLogger("sepkit.encodec")
INSTALL = 'pip install --no-deps "audiocraft==1.3.0" (and its runtime deps, see the Makefile install target)'


@dataclass
class AudiocraftEncodecConfig:
    checkpoint: Optional[str] = None  # audiocraft compression-model file ({'xp.cfg', 'best_state'})
    preset: str = "encodec_base_causal"  # audiocraft config/model/encodec/<preset>.yaml (random weights)
    sample_rate: int = positive(24000)
    num_codebooks: int = positive(8)  # RVQ codebooks used (8 x 10 bit x 75 Hz = 6 kbit/s at 24 kHz)
    # size overrides of the preset (random weights only); None = the preset's
    n_filters: Optional[int] = positive(None)
    ratios: Optional[list[int]] = positive(None)
    dimension: Optional[int] = positive(None)
    lstm: Optional[int] = non_negative(None)
    n_q: Optional[int] = positive(None)  # codebooks the RVQ has
    bins: Optional[int] = positive(None)  # codes per codebook


def import_audiocraft():
    """``audiocraft.models`` (imported without laion_clap, whose import reaches the network)."""
    hide = "laion_clap" not in sys.modules
    if hide:
        sys.modules["laion_clap"] = None  # makes 'import laion_clap' raise ImportError
    try:
        import audiocraft.models as models
    except ImportError as exc:
        raise SepkitError(f"codec 'audiocraft-encodec' needs audiocraft ({exc}); {INSTALL}") from None
    finally:
        if hide:
            sys.modules.pop("laion_clap", None)
    return models


def read_checkpoint(path: str | Path) -> tuple[str, dict[str, Tensor]]:
    """(xp.cfg as YAML text, model state dict) of an audiocraft compression-model file (a path or an
    ``hf://OWNER/REPO/FILE`` reference, resolved in the Hugging Face cache by ``sepkit.hub``)."""
    path = local_file(path, "audiocraft checkpoint")
    path = Path(path).expanduser()
    if not path.is_file():
        raise SepkitError(f"audiocraft checkpoint {path} not found; give an exported EnCodec file (export_encodec)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "omegaconf" in text or "DictConfig" in text:
            raise SepkitError(
                f"audiocraft checkpoint {path} stores xp.cfg as a pickled omegaconf DictConfig (a solver checkpoint), "
                "which torch.load(weights_only=True) refuses to unpickle; export it first with "
                "audiocraft.utils.export.export_encodec(checkpoint, out_file), which writes the config as YAML text, "
                "and give out_file"
            ) from None
        first = (text.strip().splitlines() or [""])[0]
        raise SepkitError(
            f"audiocraft checkpoint {path} could not be read with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {first}"
        ) from None
    if isinstance(payload, dict) and "pretrained" in payload:
        raise SepkitError(
            f"audiocraft checkpoint {path} only names a hub model ({payload['pretrained']!r}); "
            "give a file that holds the weights"
        )
    if not isinstance(payload, dict) or "xp.cfg" not in payload or "best_state" not in payload:
        keys = ", ".join(map(str, list(payload)[:8])) if isinstance(payload, dict) else type(payload).__name__
        raise SepkitError(
            f"audiocraft checkpoint {path} is not in the compression-model layout "
            f"{{'xp.cfg': ..., 'best_state': ...}}; found {keys}"
        )
    state = payload["best_state"]
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # solver checkpoint whose cfg is plain text
    cfg = payload["xp.cfg"]
    if not isinstance(cfg, str):
        raise SepkitError(f"audiocraft checkpoint {path}: xp.cfg is a {type(cfg).__name__}, expected YAML text")
    return cfg, state


def build_from_cfg(cfg_yaml: str):
    """audiocraft ``CompressionModel`` from a config in audiocraft's layout (YAML text)."""
    from omegaconf import OmegaConf

    models = import_audiocraft()
    cfg = OmegaConf.create(cfg_yaml)
    cfg.device = "cpu"
    try:
        return models.builders.get_compression_model(cfg)
    except Exception as exc:  # a malformed cfg fails deep inside audiocraft
        raise SepkitError(
            f"audiocraft could not build a compression model from this config: {type(exc).__name__}: {exc}"
        ) from None


class AudiocraftEncodec(Codec):
    """wave float [B, T] at ``sample_rate`` <-> codes long [B, num_codebooks, ~T / hop]; see the module docstring."""

    Config = AudiocraftEncodecConfig

    def __init__(self, config: AudiocraftEncodecConfig) -> None:
        super().__init__(config)
        from omegaconf import OmegaConf

        if config.checkpoint is None:
            if config.preset not in PRESETS:
                raise SepkitError(f"codec 'audiocraft-encodec': preset {config.preset!r}; one of {', '.join(PRESETS)}")
            overrides = {k: getattr(config, k) for k in ("n_filters", "ratios", "dimension", "lstm", "n_q", "bins")}
            cfg = preset_config(config.preset, config.sample_rate, **overrides)
            self.model = build_from_cfg(OmegaConf.to_yaml(OmegaConf.create(cfg)))
        else:
            from sepkit.checkpoint import load_state_dict_checked

            cfg_yaml, state = read_checkpoint(config.checkpoint)
            self.model = build_from_cfg(cfg_yaml)
            load_state_dict_checked(self.model, state, f"audiocraft checkpoint {config.checkpoint}")
        self.model.eval()
        if self.model.sample_rate != config.sample_rate:
            raise SepkitError(
                f"codec 'audiocraft-encodec': the model works at {self.model.sample_rate} Hz; "
                f"set sample_rate: {self.model.sample_rate}"
            )
        if self.model.channels != 1:
            raise SepkitError(f"codec 'audiocraft-encodec': the model has {self.model.channels} channels; mono only")
        total = self.model.total_codebooks
        if not 1 <= config.num_codebooks <= total:
            raise SepkitError(
                f"codec 'audiocraft-encodec': num_codebooks {config.num_codebooks}; the model has 1 to {total}"
            )
        self.model.set_num_codebooks(config.num_codebooks)
        self.sample_rate = int(self.model.sample_rate)
        self.frame_rate = float(self.model.frame_rate)
        self.hop = self.sample_rate // int(self.model.frame_rate)
        self.num_codebooks = int(config.num_codebooks)
        self.codebook_size = int(self.model.cardinality)

    def encode(self, wave: Tensor, lengths: Tensor) -> CodecFrames:
        codes, scale = self.model.encode(wave.float()[:, None])
        if scale is not None:
            raise SepkitError("codec 'audiocraft-encodec': models with renormalize: true are not supported")
        latents = self.model.decode_latent(codes).transpose(1, 2)  # [B, F, D]
        frames = torch.div(lengths + self.hop - 1, self.hop, rounding_mode="floor").clamp_max(codes.shape[-1])
        return CodecFrames(codes=codes.long(), lengths=frames.long(), latents=latents)

    def decode(self, codes: Tensor) -> Tensor:
        return self.model.decode(codes.long(), None)[:, 0]


def write_random_checkpoint(path: str | Path, seed: int = 0, solver_layout: bool = False, **config) -> object:
    """Write a random-weight model in audiocraft's exported layout (or the solver's, ``solver_layout``), for tests.

    ``config``: ``AudiocraftEncodecConfig`` keys (preset, sample_rate, sizes). Returns the model (eval mode).
    """
    from omegaconf import OmegaConf

    from sepkit.checkpoint import atomic_save

    cfg_keys = {k: v for k, v in config.items() if k not in ("num_codebooks", "checkpoint")}
    preset = cfg_keys.pop("preset", "encodec_base_causal")
    rate = cfg_keys.pop("sample_rate", 24000)
    cfg_yaml = OmegaConf.to_yaml(OmegaConf.create(preset_config(preset, rate, **cfg_keys)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_from_cfg(cfg_yaml).eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if solver_layout:
        payload = {"xp.cfg": OmegaConf.create(cfg_yaml), "best_state": {"model": state}, "epoch": 1}
    else:
        payload = {"xp.cfg": cfg_yaml, "best_state": state, "version": "1.3.0", "exported": True}
    atomic_save(payload, path)
    return model
