"""``CodecARDecoder`` (registered as ``codec-ar``): HSM-TSS's semantic-to-acoustic AR decoder + codec decoder.

features (AudioMAE patch tokens, ``audiomae_patches``: [B, N, 768], time-major grid of
``mel_patches`` (8) tokens per 160 ms time step, ``frame_rate`` 50 tokens/s at full size)
-> prefix tokens -> ``CodecLM`` generates the codec's codes [B, G, T] step by step with a KV cache
-> ``codec.decode(codes)`` -> wave float [B, samples] at the *codec's* sample rate (the pipeline
resamples it to its own, 16 kHz for AudioMAE).

Prefix (``prefix``):
- ``time_steps`` (default): each AudioMAE time step, its ``mel_patches`` tokens concatenated
  (8 x 768 = 6144) and projected to ``dim``: 64 prefix tokens for 10.24 s. Rows' valid prefix
  tokens: ceil(lengths / mel_patches).
- ``patches``: every patch token is a prefix token (768 -> ``dim``): 512 tokens for 10.24 s.

Length: row b gets ``ceil(lengths[b] / features.frame_rate * codec.frame_rate)`` acoustic steps,
i.e. its valid duration in codec frames (``num_samples`` only trims or pads the result: the pipeline
asks for the whole padded chunk, which would make short rows generate their padding). The batch
is generated to its longest row; each row's samples past its own valid duration are zeroed.
There is no end token: the duration is known. Positions exist for ``max_seconds`` (10.24 s:
64 prefix tokens, 512 steps at 50 Hz); longer inputs are an error (chunk them, as AudioMAE's
10.24 s window requires anyway).

The codec (``codec: {name: ..., <its keys>}``, any registered codec: tfcodec, encodec, mulaw) is
frozen; its weights come from its own section and are not part of this decoder's state dict, so a
pipeline stores only ``decoder.lm.*``. ``checkpoint:`` loads the ``decoder.*`` weights of a sepkit
checkpoint (written by the ``codec-ar`` training system, or a pipeline that stored its decoder).

Oracle (``sepkit.oracles``): the codec's round trip of the target, the ceiling of this decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor

from sepkit.config import fraction, non_negative, positive
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, Codec, Decoder, Oracle
from sepkit.oracles import codec_round_trip
from sepkit.registry import Registry
from sepkit.waveforms import keep_valid_duration

from .generation import SAMPLINGS, generate
from .model import CodecLM

REPRESENTATION = "audiomae_patches"
PREFIX_MODES = ("time_steps", "patches")
CHECKPOINT_PREFIX = "decoder."


@dataclass
class CodecARConfig:
    codec: dict[str, Any] = field(default_factory=lambda: {"name": "tfcodec"})  # any registered codec's section
    checkpoint: Optional[str] = None  # a sepkit checkpoint holding decoder.* weights (the codec-ar system writes one)
    representation: str = REPRESENTATION  # what the features are (the CLAP-patch ablation: clap_patches)
    input_dim: int = positive(768)  # width of the features (AudioMAE: 768)
    frame_rate: float = positive(50.0)  # feature tokens per second (AudioMAE: 8 mel patches per 160 ms step)
    mel_patches: int = positive(8)  # tokens per time step of the time-major patch grid
    prefix: str = "time_steps"  # time_steps (one prefix token per time step) | patches (one per patch token)
    dim: int = positive(1024)  # paper sec. IV-C: 12 layers, 8 heads, hidden 1024
    depth: int = positive(12)
    heads: int = positive(8)
    ffn_mult: int = positive(4)
    dropout: float = fraction(0.1)  # not given by the paper; only active in training
    tie_heads: bool = False  # output heads share the code embedding tables (- G * K * dim parameters)
    # *ours* (the paper: prefix only): each acoustic step's input also gets the features of its own time (model.py)
    aligned: bool = False
    max_seconds: float = positive(10.24)  # positions for this much audio (AudioMAE's window)
    sampling: str = "greedy"  # greedy | sample
    temperature: float = positive(1.0)  # sample: softmax temperature
    top_k: int = non_negative(0)  # sample: keep the k most likely codes per group (0: all)
    # classifier-free guidance scale (generation.py): 1 = the conditional model alone, 0 = the unconditional;
    # > 1 needs a decoder trained with train.system.condition_dropout > 0
    guidance: float = non_negative(1.0)
    seed: int = 0  # sample: seed of the generator, fresh for every decode call (same input -> same output)
    progress: bool = False  # a tqdm bar over the generated steps


class CodecARDecoder(Decoder):
    """features [B, N, input_dim] at ``frame_rate`` tokens/s -> wave [B, T] at the codec's ``sample_rate``."""

    Config = CodecARConfig
    consumes = REPRESENTATION

    def __init__(self, config: CodecARConfig, registry: Registry) -> None:
        """``registry`` builds the frozen ``codec`` sub-section (its weights come from its own section, e.g. its
        ``checkpoint:`` key, never from codec-ar's)."""
        super().__init__(config)
        c = config
        if c.prefix not in PREFIX_MODES:
            raise SepkitError(f"codec-ar: prefix must be one of {', '.join(PREFIX_MODES)}, got {c.prefix!r}")
        if c.sampling not in SAMPLINGS:
            raise SepkitError(f"codec-ar: sampling must be one of {', '.join(SAMPLINGS)}, got {c.sampling!r}")
        for key in ("input_dim", "mel_patches", "dim", "depth", "heads", "ffn_mult"):
            if getattr(c, key) < 1:
                raise SepkitError(f"codec-ar: {key} must be at least 1, got {getattr(c, key)}")
        if c.frame_rate <= 0 or c.max_seconds <= 0 or c.temperature <= 0:
            raise SepkitError("codec-ar: frame_rate, max_seconds and temperature must be > 0")
        self.consumes = c.representation
        self.codec = registry.build_frozen("codec", c.codec, where="decoder.codec", role=Codec)
        self.sample_rate = int(self.codec.sample_rate)
        self.input_dim = c.input_dim
        self.frame_rate = float(c.frame_rate)
        per_token = c.mel_patches if c.prefix == "time_steps" else 1
        self.lm = CodecLM(
            prefix_in=c.input_dim * per_token,
            num_groups=self.codec.num_codebooks,
            codebook_size=self.codec.codebook_size,
            dim=c.dim,
            depth=c.depth,
            heads=c.heads,
            ffn_mult=c.ffn_mult,
            dropout=c.dropout,
            max_prefix=_ceil(c.max_seconds * self.frame_rate / per_token),
            max_steps=_ceil(c.max_seconds * self.codec.frame_rate),
            tie_heads=c.tie_heads,
            aligned=c.aligned,
            prefix_per_step=self.frame_rate / per_token / float(self.codec.frame_rate),
        )
        # the frozen codec is a submodule (it moves with .to()) but not part of this decoder's state
        self.register_state_dict_post_hook(_drop_codec_state)
        self.register_load_state_dict_pre_hook(_supply_codec_state)
        if c.checkpoint:
            self.load_decoder_checkpoint(c.checkpoint)

    def train(self, mode: bool = True) -> CodecARDecoder:
        super().train(mode)
        self.codec.eval()  # frozen: no dropout or batch statistics updates
        return self

    def oracles(self, components: dict) -> list[Oracle]:
        """[the codec round trip of the target]: what this decoder would give if it generated the target's codes."""
        return [codec_round_trip(self.codec)]

    # --- checkpoints ----------------------------------------------------------------------
    def load_decoder_checkpoint(self, path: str) -> None:
        """Load the ``decoder.*`` weights of the sepkit checkpoint at ``path`` (missing/extra keys are errors)."""
        from sepkit.checkpoint import load_checkpoint, load_state_dict_checked

        payload = load_checkpoint(path)
        state = {
            k[len(CHECKPOINT_PREFIX) :]: v for k, v in payload["state_dict"].items() if k.startswith(CHECKPOINT_PREFIX)
        }
        if not state:
            raise SepkitError(
                f"checkpoint {path} holds no '{CHECKPOINT_PREFIX}*' weights; give a checkpoint of the codec-ar "
                "training system (sepkit train with train.system: codec-ar) or of a pipeline that stored its decoder"
            )
        load_state_dict_checked(self, state, f"checkpoint {path} (its {CHECKPOINT_PREFIX}* weights)")

    # --- features -> prefix and step counts ------------------------------------------------
    def prefix_tokens(self, features: AudioFeatures) -> tuple[Tensor, Tensor]:
        """-> (prefix [B, P, prefix_in], valid bool [B, P]); see the module docstring for both modes."""
        frames = features.frames
        if frames.dim() == 4:  # [B, time, mel, D] grid
            frames = frames.flatten(1, 2)
        if frames.dim() != 3 or frames.shape[-1] != self.input_dim or frames.is_complex():
            raise SepkitError(
                f"codec-ar expects real features [batch, tokens, {self.input_dim}] ({REPRESENTATION}), "
                f"got {frames.dtype}{tuple(features.frames.shape)}"
            )
        b, n, d = frames.shape
        lengths = features.lengths.to(frames.device).long().clamp(1, n)
        if self.config.prefix == "patches":
            tokens, valid_len = frames, lengths
        else:
            m = self.config.mel_patches
            if n % m:
                raise SepkitError(
                    f"codec-ar (prefix: time_steps) needs whole time steps of mel_patches={m} tokens; got {n} tokens. "
                    "Set mel_patches to the audio encoder's mel patches, or use prefix: patches"
                )
            tokens, valid_len = frames.reshape(b, n // m, m * d), torch.div(lengths + m - 1, m, rounding_mode="floor")
        valid = torch.arange(tokens.shape[1], device=frames.device)[None] < valid_len[:, None]
        return tokens, valid

    def acoustic_steps(self, features: AudioFeatures) -> Tensor:
        """long [B]: codec frames covering each row's valid duration (lengths / frame_rate seconds), rounded up."""
        seconds = features.lengths.double().clamp_min(1) / float(features.frame_rate)
        return torch.ceil(seconds * float(self.codec.frame_rate) - 1e-6).long().clamp_min(1)

    # --- decoding ---------------------------------------------------------------------------
    def generate_codes(self, features: AudioFeatures) -> Tensor:
        """codes long [B, G, T] for the longest row's T steps (``acoustic_steps``)."""
        tokens, valid = self.prefix_tokens(features)
        steps = int(self.acoustic_steps(features).max())
        c = self.config
        generator = torch.Generator(device=tokens.device).manual_seed(c.seed)
        return generate(
            self.lm, tokens, valid, steps, c.sampling, c.temperature, c.top_k, generator, c.progress, c.guidance
        )

    @torch.no_grad()
    def decode(self, features: AudioFeatures, num_samples: Optional[int] = None) -> Tensor:
        """features [B, N, input_dim] -> wave float [B, T] at ``sample_rate`` (codec's), zero past each row's end."""
        codes = self.generate_codes(features)
        wave = self.codec.decode(codes).float()
        return keep_valid_duration(wave, features.lengths, features.frame_rate, self.sample_rate, num_samples)


def _ceil(x: float) -> int:
    return max(1, math.ceil(x - 1e-6))


def _drop_codec_state(module, state_dict, prefix, local_metadata) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "codec.")]:
        del state_dict[key]


def _supply_codec_state(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors) -> None:
    for key, value in module.codec.state_dict(prefix=prefix + "codec.").items():
        state_dict.setdefault(key, value)
