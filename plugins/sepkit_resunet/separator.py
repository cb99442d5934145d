"""``ResUNet30Separator``: AudioSep's ResUNet30 separator (Liu et al., "Separate Anything You Describe").

A port of ``models/resunet.py`` of https://github.com/Audio-AGI/AudioSep at full
size, with the same parameter names (up to the FiLM layers, see ``official.py``),
working on sepkit's complex STFT frames instead of its own torchlibrosa STFT::

    X = mixture frames, complex [B, T, bins]            (stft encoder: n_fft 2048, hop 320 at 32 kHz)
    |X| = sqrt(max(re² + im², 1e-10)),  cos∠X, sin∠X = re / |X|, im / |X|
    h = bn0(|X|)                                        (batch norm over the frequency bins)
    h = zero-pad time to a multiple of 32, drop the last bin   [B, 1, T', bins - 1]
    h = pre_conv(h)                                     1x1 conv to C channels
    6 encoder blocks (residual block + 2x2 average pool; 1x2 in the sixth), bottleneck block,
    6 decoder blocks (transposed conv upsampling, concat skip, residual block); every
        batch norm gets a FiLM bias from the query's pooled embedding
    m = after_conv(h) -> [B, 3, T', bins - 1], re-add the last bin as zeros, crop time to T
    |M| = sigmoid(m0) (so ≤ 1);  ∠M = angle(tanh(m1) + i tanh(m2))
    Y = relu(|X| |M|) · exp(i (∠X + ∠M))                (complex [B, T, bins], to the istft decoder)

Channel widths: ``base_channels`` times ``channel_multipliers`` (32 x (1, 2, 4, 8,
12, 12) = 32, 64, 128, 256, 384, 384 in the official model); smaller values give the
same architecture at a reduced width. ``input_dim`` - 1 must be divisible by 64 (the
six frequency halvings): 1025 for n_fft 2048.

Equivalence with the official model (torchlibrosa STFT/ISTFT: periodic Hann, centred
frames with reflect padding) end to end, wave -> ``stft`` -> ``resunet30`` -> ``istft``:
sepkit's ``stft`` encoder is ``torch.stft(center=True)`` with a periodic Hann window and
torch's default ``pad_mode="reflect"``, the same frames up to float rounding; the
``istft`` decoder inverts like torchlibrosa's ISTFT (window-sum-square normalised
overlap-add, imaginary parts of the DC and Nyquist bins ignored). One difference: for a
mixture whose length is not a multiple of the hop, torchlibrosa still synthesises the
last ``length % 320`` samples from the final frame, while the pipeline decodes
``(frames - 1) * hop`` samples and zero-pads the rest; ``decode(features, num_samples=T)``
gives the official samples there too.

The separator handles "extract"; the pipeline turns "remove" into the mixture minus
the extracted source.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import Tensor, nn
from torch.nn import functional as F

from sepkit.config import positive, probability
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, Separator, TextEmbedding
from sepkit.layers.resunet import DecoderBlock, EncoderBlock, init_bn, init_layer
from sepkit.oracles import IdealRatioMaskOracle

NUM_BLOCKS = 6
OFFICIAL_MULTIPLIERS = (1, 2, 4, 8, 12, 12)
MAG_EPS = 1e-10  # the official spectrogram clamps re² + im² at this before the square root
PHASE_EPS = 1e-10  # and clamps the phase mask's magnitude at this before dividing


def encoder_downsample(index: int) -> tuple[int, int]:
    """(time, freq) pooling of encoder block ``index`` (1-based): 2x2, except 1x2 in the last one."""
    return (1, 2) if index == NUM_BLOCKS else (2, 2)


def decoder_upsample(index: int) -> tuple[int, int]:
    """(time, freq) upsampling of decoder block ``index`` (1-based), mirroring the encoder."""
    return (1, 2) if index == 1 else (2, 2)


class ResUNet30Separator(IdealRatioMaskOracle, Separator):
    """mixture complex [B, T, input_dim] + query pooled [B, query_dim] -> target complex [B, T, input_dim]."""

    @dataclass
    class Config:
        # STFT bins (1025 for n_fft 2048); set by the pipeline from the audio encoder
        input_dim: int = positive(MISSING)
        # query embedding width (512 for CLAP); set by the pipeline from the text encoder
        query_dim: int = positive(MISSING)
        base_channels: int = positive(32)  # channels of the first encoder block (32 in the official model)
        channel_multipliers: list[int] = positive(default_factory=lambda: list(OFFICIAL_MULTIPLIERS))
        momentum: float = probability(0.01)  # batch-norm momentum (the official value)

    consumes = "complex_stft"
    produces = "complex_stft"
    tasks = ("extract",)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        multipliers = list(config.channel_multipliers)
        if len(multipliers) != NUM_BLOCKS or min(multipliers) < 1 or config.base_channels < 1:
            raise SepkitError(
                f"resunet30: channel_multipliers must be {NUM_BLOCKS} positive ints and base_channels positive, "
                f"got {multipliers} and {config.base_channels} (official: 32 and {list(OFFICIAL_MULTIPLIERS)})"
            )
        factor = 2**NUM_BLOCKS
        if config.input_dim < factor + 1 or (config.input_dim - 1) % factor:
            raise SepkitError(
                f"resunet30: input_dim {config.input_dim} must be 1 + a multiple of {factor} (the last bin is "
                f"dropped, then frequency is halved {NUM_BLOCKS} times), e.g. 1025 for n_fft 2048, 129 for n_fft 256"
            )
        if config.query_dim < 1:
            raise SepkitError(f"resunet30: query_dim must be positive, got {config.query_dim}")
        self.input_dim = self.output_dim = config.input_dim
        self.query_dim = config.query_dim
        self.time_multiple = 2 ** sum(encoder_downsample(i)[0] == 2 for i in range(1, NUM_BLOCKS + 1))
        channels = [config.base_channels * m for m in multipliers]
        self.channels = tuple(channels)
        q, momentum = config.query_dim, config.momentum

        self.bn0 = nn.BatchNorm2d(config.input_dim, momentum=momentum)
        self.pre_conv = nn.Conv2d(1, channels[0], kernel_size=1)
        self.encoder_names = [f"encoder_block{i}" for i in range(1, NUM_BLOCKS + 1)]
        for i, name in enumerate(self.encoder_names, start=1):
            c_in = channels[max(i - 2, 0)]
            self.add_module(name, EncoderBlock(c_in, channels[i - 1], q, encoder_downsample(i), momentum))
        self.conv_block7a = EncoderBlock(channels[-1], channels[-1], q, (1, 1), momentum)
        self.decoder_names = [f"decoder_block{j}" for j in range(1, NUM_BLOCKS + 1)]
        for j, name in enumerate(self.decoder_names, start=1):
            c_in = channels[-1] if j == 1 else channels[NUM_BLOCKS + 1 - j]
            c_out = channels[NUM_BLOCKS - j]
            self.add_module(name, DecoderBlock(c_in, c_out, q, decoder_upsample(j), momentum))
        self.after_conv = nn.Conv2d(channels[0], 3, kernel_size=1)  # magnitude mask, phase real, phase imag
        init_bn(self.bn0)
        init_layer(self.pre_conv)
        init_layer(self.after_conv)
        # NHWC convolution weights: oneDNN then keeps activations channels-last, which lets bfloat16
        # autocast use the CPU's bf16 matrix units (2.7x over float32 on AMX here; float32 unchanged).
        # Loading a state dict copies values into these tensors and keeps their layout.
        self.to(memory_format=torch.channels_last)

    # --- the network ----------------------------------------------------------------
    def unet(self, magnitude: Tensor, query: Tensor) -> Tensor:
        """magnitude [B, 1, T, bins], query [B, query_dim] -> mask logits float32 [B, 3, T, bins]."""
        x = self.bn0(magnitude.transpose(1, 3)).transpose(1, 3)  # normalise each frequency bin
        frames = x.shape[2]
        x = F.pad(x, (0, 0, 0, -frames % self.time_multiple))  # zeros after bn0, as in the official code
        x = self.pre_conv(x[..., :-1])  # drop the last bin: 1024 = 2^10 bins
        # a 1-channel input is both layouts at once, so the 1x1 conv may answer channels-first: make it
        # channels-last here, or encoder block 1 and the last decoder block (the largest maps) mix layouts,
        # and every element-wise op and cast on them takes a strided path (1.3x the step time in bf16)
        x = x.contiguous(memory_format=torch.channels_last)
        skips = []
        for name in self.encoder_names:
            x, skip = getattr(self, name)(x, query)
            skips.append(skip)
        x, _ = self.conv_block7a(x, query)
        for name, skip in zip(self.decoder_names, reversed(skips)):
            x = getattr(self, name)(x, skip, query)
        x = self.after_conv(x)
        return F.pad(x, (0, 1))[:, :, :frames].float()  # last bin back (logits 0), padding frames off

    def separate(self, mixture: AudioFeatures, query: TextEmbedding, tasks: Tensor) -> AudioFeatures:
        frames = mixture.frames
        if frames.dim() != 3 or frames.shape[-1] != self.input_dim or not frames.is_complex():
            raise SepkitError(
                f"resunet30 expects complex STFT frames [batch, frames, {self.input_dim}], "
                f"got {frames.dtype}{tuple(frames.shape)}"
            )
        dtype = self.pre_conv.weight.dtype
        device_type = frames.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            spec = frames.to(torch.complex64)
            real, imag = spec.real, spec.imag
            magnitude = torch.clamp(real**2 + imag**2, min=MAG_EPS).sqrt()
            cos_in, sin_in = real / magnitude, imag / magnitude
        logits = self.unet(magnitude[:, None].to(dtype), query.pooled.to(dtype))
        with torch.autocast(device_type=device_type, enabled=False):
            mask_mag = torch.sigmoid(logits[:, 0])
            mask_real, mask_imag = torch.tanh(logits[:, 1]), torch.tanh(logits[:, 2])
            mask_abs = torch.clamp(torch.sqrt(mask_real**2 + mask_imag**2), min=PHASE_EPS)
            mask_cos, mask_sin = mask_real / mask_abs, mask_imag / mask_abs
            out_cos = cos_in * mask_cos - sin_in * mask_sin  # cos(∠X + ∠M)
            out_sin = sin_in * mask_cos + cos_in * mask_sin  # sin(∠X + ∠M)
            out_mag = F.relu(magnitude * mask_mag)
            target = torch.complex(out_mag * out_cos, out_mag * out_sin)
        return AudioFeatures(frames=target, lengths=mixture.lengths, frame_rate=mixture.frame_rate)

    # --- official weights ---------------------------------------------------------------
    def load_official_checkpoint(self, path: str) -> bool:
        """Load an AudioSep Lightning checkpoint (``ss_model.*``) or a bare ResUNet30 state dict from ``path``.

        Returns False if the file does not look like one; raises ``SepkitError`` listing the
        keys if it does but does not fit this separator. See ``sepkit_resunet.official``.
        """
        from sepkit_resunet.official import load_official_checkpoint

        return load_official_checkpoint(self, path)
