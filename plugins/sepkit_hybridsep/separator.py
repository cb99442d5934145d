"""``HybridSepSeparator`` (registered as ``hybrid-sep``): Hybrid-Sep (stage 1 and stage 2) as a sepkit separator.

Consumes the mixture as ``waveform_frames`` (the ``waveform`` audio encoder: frames [B, F, hop] at
``sample_rate``) and the text query's pooled CLAP embedding (``query.pooled`` [B, query_dim]); produces the
target as ``waveform_frames`` [B, F, hop] (decode with the ``waveform`` decoder)::

    wave   = mixture frames flattened                                   [B, T]
    stage 1 (``stages: 2``):
      fe   = FE(wave)               STFT + 3 transformer layers          [B, N, 512]
      e    = AET(text, fe)          32 transformer layers                [B, embed_dim]  predicted CLAP audio embedding
    (``stages: 1``: e = the text embedding itself, the paper's "1 stage" ablation)
    stage 2:
      ssl  = frozen BEATs(wave at 16 kHz) tokens per 160 ms step        [B, steps, 8 * 768]  (``beats: null``: none)
      out, maps = ASM(wave, e, ssl)                                      [B, T]
    denoiser (``denoiser: true``): CD(noisy target, maps), used by the ``hybrid-sep-act`` training system only

The BEATs encoder is built from the ``beats`` sub-section through the registry and frozen. With a
``checkpoint`` it is kept outside the module tree (rebuilt from the official file, not stored in sepkit
checkpoints; moved to the input's device on use); without one its random weights are a submodule
(``ssl_encoder.*``) and stored, so checkpoints reproduce them. With ``discriminator: true`` the ACT
discriminator lives here too (so one checkpoint holds everything ``--resume`` needs and still loads for
separation); inference never runs it.

Full size (``recipes/hybrid_sep.yaml``): see the module docstrings of ``fe``, ``aet``, ``stack``; the FFN width
(``ffn_dim`` 11648) is *ours*: the paper gives heads and widths only, and this width puts the FE at about 40 M
and the AET at about 415 M parameters as the paper reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor

from sepkit.config import non_negative, positive, ranged
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, Separator, TextEmbedding
from sepkit.registry import Registry

from .aet import AudioEmbeddingTransformer
from .asm import AudioSeparationModel
from .bandstft import BandSTFT
from .denoiser import ConditionalDenoiser
from .discriminator import MultiScaleSTFTDiscriminator
from .fe import FeatureExtractor
from .pqmf import PQMF
from .waveform import REPRESENTATION

BEATS_RATE = 16000


@dataclass
class HybridSepConfig:
    sample_rate: int = positive(16000)
    input_dim: int = positive(160)  # waveform frame size (the waveform encoder's hop)
    query_dim: int = positive(512)  # text embedding width (CLAP: 512)
    embed_dim: int = positive(512)  # target audio embedding width (CLAP audio: 512); stages 1: the query's width
    # 2: FE + AET predict the target embedding; 1: the text embedding is used directly
    stages: int = ranged(2, low=1, high=2)
    # stage 1: FE and AET (Table 1: 3 and 32 layers, 8 heads, 512-d)
    fe_n_fft: int = positive(1024)
    fe_hop: int = positive(320)
    width: int = positive(512)
    heads: int = positive(8)
    ffn_dim: int = positive(11648)
    fe_layers: int = positive(3)
    aet_layers: int = positive(32)
    # stage 2: ASM (PQMF sub-bands, band STFT, TRCNN / FA / TEACA stack)
    subbands: int = positive(4)
    pqmf_taps: int = positive(62)
    pqmf_cutoff: float = ranged(0.142, low=0, high=1, low_open=True, high_open=True)
    pqmf_beta: float = non_negative(9.0)
    band_n_fft: int = positive(256)  # per band (at sample_rate / subbands); the Nyquist bin is dropped: n_fft / 2 bins
    band_hop: int = positive(64)
    channels: list[int] = positive(default_factory=lambda: [48, 96, 192, 384, 192, 96, 48, 8])
    strides: list[int] = positive(default_factory=lambda: [2, 2, 2, 2, 2, 2, 2, 2])
    lstm_hidden: list[int] = positive(default_factory=lambda: [12, 24, 48, 96, 48, 24, 12, 2])
    fa_after: list[int] = non_negative(default_factory=lambda: [2, 3, 4, 5])  # TRCNN indices followed by an FA module
    fa_kernel: int = positive(9)
    fa_heads: int = positive(8)
    teaca_dim: int = positive(64)
    teaca_heads: int = positive(8)
    # *ours*, off at full size (the paper's reading): "mask" predicts a complex ratio mask on the mixture's band
    # spectrograms instead of the spectrograms themselves; linear_output drops the last TRCNN's GELU (asm.py, stack.py)
    output: str = "spectrum"
    linear_output: bool = False
    # *ours*, 1.0 at full size (the paper's raw real/imag input): the exponent c of a power-law compression of the
    # band spectrograms the stack reads, X |X|^(c - 1) (phase kept, magnitude |X|^c; asm.py); the mask or spectrum
    # output is unchanged
    input_compression: float = ranged(1.0, low=0, high=1, low_open=True)
    beats: Optional[dict[str, Any]] = field(default_factory=lambda: {"name": "beats"})  # null: no SSL features
    ssl_channels: int = positive(16)
    # training-only modules (adversarial consistent training)
    denoiser: bool = True  # the conditional denoiser CD
    cond_channels: int = positive(8)  # per conditioning map
    discriminator: bool = True  # the MS-STFT discriminator (kept here so checkpoints hold it)
    disc_ffts: list[int] = positive(default_factory=lambda: [1024, 2048, 512])
    disc_filters: int = positive(32)


class HybridSepSeparator(Separator):
    """Hybrid-Sep: waveform frames [B, F, hop] + CLAP text embedding -> target waveform frames [B, F, hop]."""

    Config = HybridSepConfig
    consumes = REPRESENTATION
    produces = REPRESENTATION
    tasks = ("extract",)

    def __init__(self, config: HybridSepConfig, registry: Registry) -> None:
        """``registry`` builds the frozen ``beats`` sub-section (SSL features), if any."""
        super().__init__(config)
        c = config
        self._check(c)
        self.input_dim = self.output_dim = int(c.input_dim)
        self.query_dim = int(c.query_dim)
        self.sample_rate = int(c.sample_rate)
        # centred STFTs with reflection padding: the whole wave (feature extractor) and each of the
        # subbands (length ceil(T / subbands)) must be longer than half their n_fft
        self.min_samples = max(c.subbands * (c.band_n_fft // 2 + 1), c.fe_n_fft // 2 + 1 if c.stages == 2 else 1)
        self.embed_dim = int(c.embed_dim) if c.stages == 2 else self.query_dim
        if c.stages == 2:
            self.fe = FeatureExtractor(c.fe_n_fft, c.fe_hop, c.width, c.fe_layers, c.heads, c.ffn_dim)
            self.aet = AudioEmbeddingTransformer(c.query_dim, c.embed_dim, c.width, c.aet_layers, c.heads, c.ffn_dim)
        self._beats, self.ssl_encoder = [], None
        ssl_dim = 0
        if c.beats:
            beats = self._build_beats(c.beats, registry)
            if beats.config.checkpoint:
                self._beats = [beats]  # pretrained: rebuilt from its file, not stored in sepkit checkpoints
            else:
                self.ssl_encoder = beats  # random weights: stored, so that checkpoints reproduce them
            ssl_dim = beats.output_dim * beats.mel_patches
        pqmf = PQMF(c.subbands, c.pqmf_taps, c.pqmf_cutoff, c.pqmf_beta)
        band_stft = BandSTFT(pqmf, c.band_n_fft, c.band_hop)
        stack = {
            "channels": list(c.channels),
            "strides": list(c.strides),
            "lstm_hidden": list(c.lstm_hidden),
            "fa_after": list(c.fa_after),
            "fa_kernel": c.fa_kernel,
            "fa_heads": c.fa_heads,
            "linear_output": c.linear_output,
        }
        try:
            self.asm = AudioSeparationModel(
                band_stft,
                {**stack, "teaca_dim": c.teaca_dim, "teaca_heads": c.teaca_heads},
                self.embed_dim,
                ssl_dim,
                c.ssl_channels,
                c.output,
                c.input_compression,
            )
            self.denoiser = (
                ConditionalDenoiser(band_stft, stack, list(c.channels[-4:]), c.cond_channels) if c.denoiser else None
            )
        except ValueError as exc:
            raise SepkitError(f"hybrid-sep: {exc}") from None
        self.discriminator = MultiScaleSTFTDiscriminator(c.disc_ffts, c.disc_filters) if c.discriminator else None

    @staticmethod
    def _check(c: HybridSepConfig) -> None:
        if c.stages not in (1, 2):
            raise SepkitError(f"hybrid-sep: stages must be 1 (text embedding as query) or 2 (FE + AET), got {c.stages}")
        if c.stages == 2 and c.width % c.heads:
            raise SepkitError(f"hybrid-sep: width {c.width} must be divisible by heads {c.heads}")
        if c.channels and c.channels[-1] != 2 * c.subbands:
            raise SepkitError(
                f"hybrid-sep: the last entry of channels must be 2 * subbands = {2 * c.subbands} "
                f"(real and imaginary part of each band), got {c.channels[-1]}"
            )
        down = 1
        for s in c.strides[: len(c.strides) // 2]:
            down *= s
        if (c.band_n_fft // 2) % down:
            raise SepkitError(
                f"hybrid-sep: band_n_fft / 2 = {c.band_n_fft // 2} bins must be divisible by the encoder strides' "
                f"product {down}; pick band_n_fft a multiple of {2 * down}"
            )
        for i in c.fa_after:
            if 0 <= i < len(c.channels) and c.channels[i] % c.fa_heads:
                raise SepkitError(
                    f"hybrid-sep: FA after TRCNN {i} has {c.channels[i]} channels, not divisible by fa_heads"
                )
        if c.teaca_dim % c.teaca_heads:
            raise SepkitError(f"hybrid-sep: teaca_dim {c.teaca_dim} must be divisible by teaca_heads {c.teaca_heads}")
        if len(c.channels) < 8 and c.denoiser:
            raise SepkitError("hybrid-sep: the denoiser is conditioned on the last four TRCNN outputs; give 8 channels")

    def _build_beats(self, section: dict, registry: Registry):
        if not isinstance(section, dict) or not isinstance(section.get("name"), str):
            raise SepkitError("hybrid-sep: 'beats' must be {name: beats, <its keys>} or null (no SSL features)")
        encoder = registry.build_frozen("audio_encoder", dict(section), where="model.separator.beats")
        if encoder.sample_rate != BEATS_RATE or not hasattr(encoder, "mel_patches"):
            raise SepkitError(
                "hybrid-sep: model.separator.beats must be a beats encoder (16 kHz patch tokens), "
                f"got {section['name']!r}"
            )
        return encoder

    # --- parts --------------------------------------------------------------------------------
    @property
    def beats(self):
        return self._beats[0] if self._beats else self.ssl_encoder

    def train(self, mode: bool = True):
        """The frozen BEATs stays in eval mode."""
        super().train(mode)
        if self.beats is not None:
            self.beats.eval()
        return self

    def part_parameters(self) -> dict[str, int]:
        """{part: parameter count}: fe, aet, asm, denoiser, discriminator, beats (frozen, not stored)."""
        parts = {
            "fe": getattr(self, "fe", None),
            "aet": getattr(self, "aet", None),
            "asm": self.asm,
            "denoiser": self.denoiser,
            "discriminator": self.discriminator,
            "beats": self.beats,
        }
        return {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items() if m is not None}

    def target_embedding(self, wave: Tensor, lengths: Tensor, query: TextEmbedding) -> Tensor:
        """[B, embed_dim]: the AET's predicted CLAP audio embedding of the target (stage 1), or the text embedding."""
        if self.config.stages == 1:
            return query.pooled.to(wave.dtype)
        frames, padding = self.fe(wave, lengths)
        return self.aet(query.pooled.to(frames.dtype), frames, padding)

    def ssl_features(self, wave: Tensor, lengths: Tensor) -> Optional[Tensor]:
        """Frozen BEATs tokens grouped per 160 ms step [B, steps, 8 * 768], or None without BEATs."""
        beats = self.beats
        if beats is None:
            return None
        beats.to(wave.device).eval()
        with torch.no_grad():
            if self.sample_rate != BEATS_RATE:
                import torchaudio.functional as AF

                wave = AF.resample(wave.float(), self.sample_rate, BEATS_RATE)
                lengths = torch.div(lengths * BEATS_RATE, self.sample_rate, rounding_mode="floor")
            tokens = beats.encode_audio(wave.float(), lengths.clamp_min(1)).frames
        b, n, d = tokens.shape
        return tokens.reshape(b, n // beats.mel_patches, beats.mel_patches * d)

    def separate_wave(self, wave: Tensor, lengths: Tensor, query: TextEmbedding) -> tuple[Tensor, list[Tensor]]:
        """wave [B, T] at ``sample_rate`` -> (estimate [B, T], the last four TRCNN maps for the denoiser)."""
        embedding = self.target_embedding(wave, lengths, query)
        estimate, maps = self.asm(wave, embedding, self.ssl_features(wave, lengths))
        valid = torch.arange(wave.shape[-1], device=wave.device)[None] < lengths[:, None]
        return estimate * valid, maps

    # --- the Separator role -------------------------------------------------------------------
    def separate(self, mixture: AudioFeatures, query: TextEmbedding, tasks: Tensor) -> AudioFeatures:
        out, _ = self.separate_with_maps(mixture, query)
        return out

    def separate_with_maps(self, mixture: AudioFeatures, query: TextEmbedding) -> tuple[AudioFeatures, list[Tensor]]:
        wave, lengths = self.mixture_wave(mixture)
        estimate, maps = self.separate_wave(wave, lengths, query)
        out = AudioFeatures(estimate.reshape(mixture.frames.shape), mixture.lengths, mixture.frame_rate)
        return out, maps

    def predict_embedding(self, mixture: AudioFeatures, query: TextEmbedding) -> Tensor:
        """Stage 1 alone (no ASM): [B, embed_dim], the embedding ``separate`` conditions the ASM on."""
        wave, lengths = self.mixture_wave(mixture)
        return self.target_embedding(wave, lengths, query)

    def mixture_wave(self, mixture: AudioFeatures) -> tuple[Tensor, Tensor]:
        """Waveform frames [B, F, hop] -> (wave float [B, F * hop], valid samples long [B])."""
        frames = mixture.frames
        if frames.is_complex() or frames.dim() != 3 or frames.shape[-1] != self.input_dim:
            raise SepkitError(
                f"hybrid-sep expects waveform frames [B, F, {self.input_dim}] (audio_encoder: waveform), "
                f"got {tuple(frames.shape)}"
            )
        b, n, hop = frames.shape
        wave = frames.reshape(b, n * hop).float()
        return wave, (mixture.lengths.to(wave.device) * hop).clamp(1, n * hop)

    def denoise(self, noisy: Tensor, maps: list[Tensor]) -> Tensor:
        """CD(noisy [B, T], the ASM's maps) -> [B, T]."""
        if self.denoiser is None:
            raise SepkitError("hybrid-sep was built with denoiser: false; set model.separator.denoiser: true")
        return self.denoiser(noisy, maps)


__all__ = ["HybridSepSeparator"]
