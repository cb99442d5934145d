"""``LASSNetSeparator`` (registered as ``lass-resunet``): LASS-Net's separation network.

Liu et al., "Separate What You Describe: Language-Queried Audio Source Separation" (Interspeech
2022), reference code github.com/liuxubo717/LASS (``model/LASSNet.py``, ``model/resunet_film.py``).
A ResUNet on the mixture's STFT magnitude, FiLM-conditioned on the query, predicting a magnitude
mask; the mixture's phase is kept::

    X = mixture frames, complex [B, T, bins]       (stft encoder: n_fft 1024, hop 512 -> 513 bins)
    c = relu(query_projection(query.pooled))        [B, cond_dim]  (LASS-Net: Linear(256, 256) + ReLU
                                                    on BERT's [CLS] state, in its text encoder there)
    h = |X| [B, 1, T, bins], zero-pad time to a multiple of 64, drop the last 2 bins (513 -> 511)
    6 encoder blocks (2 residual blocks + 2x2 average pool each), bottleneck residual block,
    6 decoder blocks (3x3 stride-2 transposed conv, concat skip, 2 residual blocks),
    a residual block and a 1x1 conv to one channel; every residual block is FiLM-conditioned on c
    m = sigmoid(logits), the 2 dropped bins re-added with logit 0 (m = 0.5, as the reference), crop time
    Y = m · X                                       (complex [B, T, bins], to the istft decoder)

Widths ``base_channels`` x ``channel_multipliers``: 32 x (1, 2, 4, 8, 12, 12) = 32, 64, 128, 256,
384, 384 in LASS-Net. ``input_dim`` - 1 must be a multiple of 64 (every frequency width stays odd
through the six poolings): 513 for n_fft 1024, 129 for n_fft 256. The blocks are in ``blocks.py``.

LASS-Net's STFT is n_fft = window = 1024, hop 512 (``utils/stft.py``: periodic Hann, centred,
reflect padding, as sepkit's ``stft``). The paper works at 16 kHz; note that the released
``inference.py``/``utils/wav_io.py`` read its example clips at 32 kHz.

The separator handles "extract"; the pipeline turns "remove" into the mixture minus the extracted source.
``load_official_checkpoint`` reads the released ``LASSNet.pt`` (``official.py``: the FiLM MLPs are
``<film>.linear.<i>`` there, ``<film>.<i>`` here; the query projection is ``text_embedder.linear_layer.0``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import Tensor, nn
from torch.nn import functional as F

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, Separator, TextEmbedding
from sepkit.oracles import IdealRatioMaskOracle

from .blocks import LASSConvBlockRes, LASSDecoderBlock, LASSEncoderBlock, init_layer

NUM_BLOCKS = 6
LASS_MULTIPLIERS = (1, 2, 4, 8, 12, 12)
DROPPED_BINS = 2  # LASS-Net feeds bins[:-2] (511 of 513) to the UNet


class LASSNetSeparator(IdealRatioMaskOracle, Separator):
    """mixture complex [B, T, input_dim] + query pooled [B, query_dim] -> target complex [B, T, input_dim]."""

    @dataclass
    class Config:
        input_dim: int = positive(MISSING)  # STFT bins (513 for n_fft 1024); set by the pipeline from the audio encoder
        query_dim: int = positive(MISSING)  # text embedding width (256 for bert-mini); set by the pipeline
        cond_dim: int = positive(256)  # width of the FiLM conditioning vector (LASS-Net: 256)
        base_channels: int = positive(32)  # channels of the first encoder block (LASS-Net: 32)
        channel_multipliers: list[int] = positive(default_factory=lambda: list(LASS_MULTIPLIERS))

    consumes = "complex_stft"
    produces = "complex_stft"
    tasks = ("extract",)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        multipliers = list(config.channel_multipliers)
        if len(multipliers) != NUM_BLOCKS or min(multipliers) < 1 or config.base_channels < 1:
            raise SepkitError(
                f"lass-resunet: channel_multipliers must be {NUM_BLOCKS} positive ints and base_channels positive, "
                f"got {multipliers} and {config.base_channels} (LASS-Net: 32 and {list(LASS_MULTIPLIERS)})"
            )
        factor = 2**NUM_BLOCKS
        if config.input_dim < factor + 1 or (config.input_dim - 1) % factor:
            raise SepkitError(
                f"lass-resunet: input_dim {config.input_dim} must be 1 + a multiple of {factor} (the last "
                f"{DROPPED_BINS} bins are dropped, then frequency is halved {NUM_BLOCKS} times), e.g. 513 for "
                "n_fft 1024, 129 for n_fft 256"
            )
        if config.query_dim < 1 or config.cond_dim < 1:
            raise SepkitError(f"lass-resunet: query_dim and cond_dim must be positive, got {config.query_dim}, "
                              f"{config.cond_dim}")  # fmt: skip
        self.input_dim = self.output_dim = config.input_dim
        self.query_dim = config.query_dim
        ch = [config.base_channels * m for m in multipliers]
        c = config.cond_dim

        self.query_projection = nn.Linear(config.query_dim, c)
        self.encoder_names = [f"encoder_block{i}" for i in range(1, NUM_BLOCKS + 1)]
        for i, name in enumerate(self.encoder_names):
            self.add_module(name, LASSEncoderBlock(1 if i == 0 else ch[i - 1], ch[i], c))
        self.conv_block7 = LASSConvBlockRes(ch[-1], ch[-1], c)
        self.decoder_names = [f"decoder_block{j}" for j in range(1, NUM_BLOCKS + 1)]
        for j, name in enumerate(self.decoder_names):
            c_in = ch[-1] if j == 0 else ch[NUM_BLOCKS - j]
            self.add_module(name, LASSDecoderBlock(c_in, ch[NUM_BLOCKS - 1 - j], c))
        self.after_conv_block1 = LASSConvBlockRes(ch[0], ch[0], c)
        self.after_conv2 = nn.Conv2d(ch[0], 1, kernel_size=1)
        init_layer(self.after_conv2)

    def condition(self, query: TextEmbedding) -> Tensor:
        """query pooled [B, query_dim] -> FiLM conditioning vector [B, cond_dim]."""
        return F.relu(self.query_projection(query.pooled))

    def unet(self, magnitude: Tensor, cond: Tensor) -> Tensor:
        """magnitude [B, 1, T, bins], cond [B, cond_dim] -> mask logits [B, 1, T, bins]."""
        frames = magnitude.shape[2]
        x = F.pad(magnitude, (0, 0, 0, -frames % 2**NUM_BLOCKS))[..., :-DROPPED_BINS]
        skips = []
        for name in self.encoder_names:
            x, skip = getattr(self, name)(x, cond)
            skips.append(skip)
        x = self.conv_block7(x, cond)
        for name, skip in zip(self.decoder_names, reversed(skips)):
            x = getattr(self, name)(x, skip, cond)
        x = self.after_conv2(self.after_conv_block1(x, cond))
        return F.pad(x, (0, DROPPED_BINS))[:, :, :frames]

    def separate(self, mixture: AudioFeatures, query: TextEmbedding, tasks: Tensor) -> AudioFeatures:
        frames = mixture.frames
        if frames.dim() != 3 or frames.shape[-1] != self.input_dim or not frames.is_complex():
            raise SepkitError(
                f"lass-resunet expects complex STFT frames [batch, frames, {self.input_dim}], "
                f"got {frames.dtype}{tuple(frames.shape)}"
            )
        dtype = self.after_conv2.weight.dtype
        magnitude = frames.abs().to(dtype)[:, None]
        mask = torch.sigmoid(self.unet(magnitude, self.condition(query).to(dtype)).float())[:, 0]
        target = frames.to(torch.complex64) * mask
        return AudioFeatures(frames=target, lengths=mixture.lengths, frame_rate=mixture.frame_rate)

    # --- official weights ---------------------------------------------------------------
    def load_official_checkpoint(self, path: str) -> bool:
        """Load the query projection and UNet of LASS-Net's ``LASSNet.pt`` (``{"model": {"module.UNet.*", ...}}``).

        Returns False if the file is not in LASS-Net's layout; raises ``SepkitError`` naming the
        keys if it is but does not fit this separator. See ``sepkit_lass.official``.
        """
        from .official import load_official_checkpoint

        return load_official_checkpoint(self, "separator", path)
