"""PANNs CNN14 (Kong et al. 2020) as a sepkit audio encoder and AudioSet tagger.

The network follows the official ``Cnn14`` / ``Cnn14_16k`` of qiuqiangkong/audioset_tagging_cnn
(``pytorch/models.py``), written anew:

    log-mel [B, 1, frames, 64]  (frontend.LogMelFrontEnd)
    bn0 over the 64 mel bins
    conv_block1..5: (3x3 conv, BN, ReLU) x 2, then 2x2 average pooling; dropout 0.2
    conv_block6:    (3x3 conv, BN, ReLU) x 2, no pooling;               dropout 0.2
    mean over frequency -> [B, 2048, frames / 32]
    max over time + mean over time -> [B, 2048]; dropout 0.5
    fc1 + ReLU -> embedding [B, 2048]
    fc_audioset -> 527 logits (the official ``clipwise_output`` is their sigmoid)

Training-time SpecAugment and mixup of the official code are left out (this module is for
evaluation). With the official widths (``base_channels: 64``) it has 80,753,615 trainable
parameters, the "80.8 M" of the PANNs paper; the frozen official STFT (263,168 values at
16 kHz) is replaced by ``torch.stft`` and the frozen mel matrix is a buffer.

``Cnn14Encoder`` (registered as ``panns-cnn14``) processes each row of a ragged batch at its
own length, so a clip's outputs do not depend on the batch it comes in. Clips shorter than
31 hops (0.31 s) are zero-padded to that length first: the five 2x poolings need 32 frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepkit.checkpoint import load_state_dict_checked
from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioEncoder, AudioFeatures

from .frontend import FRONTENDS, FrontEndSettings, LogMelFrontEnd

NUM_CLASSES = 527  # AudioSet ontology classes
REPRESENTATION = "panns_cnn14"
TIME_POOLING = 32  # five 2x average poolings


class ConvBlock(nn.Module):
    """Two bias-free 3x3 convolutions, each followed by batch norm and ReLU, then optional average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        for conv in (self.conv1, self.conv2):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: Tensor, pool: int) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool) if pool > 1 else x


class Cnn14(nn.Module):
    """The CNN14 network with its log-mel front end; widths ``base_channels * (1, 2, 4, 8, 16, 32)``."""

    def __init__(self, settings: FrontEndSettings, base_channels: int = 64, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.settings = settings
        self.frontend = LogMelFrontEnd(settings)
        self.bn0 = nn.BatchNorm2d(settings.mel_bins)
        widths = [1] + [base_channels * 2**i for i in range(6)]
        for i in range(6):
            self.add_module(f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
        self.embed_dim = widths[-1]
        self.fc1 = nn.Linear(self.embed_dim, self.embed_dim)
        self.fc_audioset = nn.Linear(self.embed_dim, num_classes)
        for linear in (self.fc1, self.fc_audioset):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    @property
    def min_samples(self) -> int:
        """Shortest input giving one output frame: 32 STFT frames = 31 hops (and > n_fft / 2 for reflection)."""
        return max((TIME_POOLING - 1) * self.settings.hop_size, self.settings.window_size // 2 + 1)

    def feature_map(self, logmel: Tensor) -> Tensor:
        """log-mel [B, frames, mel] -> conv_block6 output [B, C, frames // 32, mel // 32]."""
        x = logmel[:, None]  # [B, 1, T, M]
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # normalise each mel bin
        for i in range(1, 7):
            x = getattr(self, f"conv_block{i}")(x, pool=2 if i < 6 else 1)
            x = F.dropout(x, p=0.2, training=self.training)
        return x

    def head(self, time_features: Tensor) -> tuple[Tensor, Tensor]:
        """[B, C, T'] (frequency already averaged) -> (embedding [B, C], logits [B, classes])."""
        x = time_features.amax(dim=2) + time_features.mean(dim=2)
        x = F.dropout(x, p=0.5, training=self.training)
        embedding = F.relu(self.fc1(x))
        logits = self.fc_audioset(embedding)
        return F.dropout(embedding, p=0.5, training=self.training), logits

    def forward(self, wave: Tensor) -> dict[str, Tensor]:
        """wave [B, T] (all rows valid) -> {"frames" [B, T', C], "embedding" [B, C], "logits" [B, classes]}."""
        if wave.shape[-1] < self.min_samples:
            wave = F.pad(wave, (0, self.min_samples - wave.shape[-1]))
        time_features = self.feature_map(self.frontend(wave)).mean(dim=3)  # [B, C, T']
        embedding, logits = self.head(time_features)
        return {"frames": time_features.transpose(1, 2), "embedding": embedding, "logits": logits}


@dataclass
class Cnn14Config:
    sample_rate: int = positive(16000)  # 16000 (Cnn14_16k front end) or 32000 (Cnn14 front end)
    checkpoint: Optional[str] = None  # official .pth, e.g. Cnn14_16k_mAP=0.438.pth; None = random weights
    base_channels: int = positive(64)  # 64 = the official widths (needed for official checkpoints)


class Cnn14Encoder(AudioEncoder):
    """PANNs CNN14: frames = conv_block6 features averaged over frequency, pooled = the 2048-d embedding.

    ``encode_audio(wave, lengths)`` -> AudioFeatures(frames [B, F, C] (zero past each row's
    length), lengths = (1 + n // hop) // 32, frame_rate = sample_rate / hop / 32 = 3.125 Hz,
    pooled = the clip embedding [B, C] (PANNs' ``embedding``)); ``logits(wave)`` -> the
    527 AudioSet logits [B, 527] before the sigmoid. C = 32 * base_channels (2048).
    """

    Config = Cnn14Config
    representation = REPRESENTATION

    def __init__(self, config: Cnn14Config) -> None:
        super().__init__(config)
        if config.sample_rate not in FRONTENDS:
            raise SepkitError(
                f"panns-cnn14: sample_rate {config.sample_rate} has no official CNN14 front end; "
                f"use one of {', '.join(map(str, FRONTENDS))}"
            )
        if config.base_channels < 1:
            raise SepkitError(f"panns-cnn14: base_channels must be >= 1, got {config.base_channels}")
        settings = FRONTENDS[config.sample_rate]
        self.cnn = Cnn14(settings, base_channels=config.base_channels)
        self.sample_rate = settings.sample_rate
        self.hop_length = settings.hop_size
        self.output_dim = self.cnn.embed_dim
        self.frame_rate = settings.sample_rate / settings.hop_size / TIME_POOLING
        if config.checkpoint:
            from .official import load_official_checkpoint

            state = load_official_checkpoint(config.checkpoint, config.sample_rate)
            load_state_dict_checked(self.cnn, state, f"PANNs checkpoint {config.checkpoint} (official layout)")

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Output frames of rows of ``lengths`` samples (after the short-clip padding)."""
        samples = lengths.clamp_min(self.cnn.min_samples)
        return torch.div(
            1 + torch.div(samples, self.hop_length, rounding_mode="floor"), TIME_POOLING, rounding_mode="floor"
        )

    def _run(self, wave: Tensor, lengths: Optional[Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Run each group of equal-length rows at its own length; returns frames, frame lengths, embedding, logits."""
        if wave.dim() != 2:
            raise SepkitError(f"panns-cnn14 expects mono wave [batch, samples], got shape {tuple(wave.shape)}")
        batch = wave.shape[0]
        if lengths is None:
            lengths = torch.full((batch,), wave.shape[1], dtype=torch.long, device=wave.device)
        lengths = lengths.to(torch.long).clamp(1, wave.shape[1])
        frame_lengths = self.frame_lengths(lengths)
        frames = wave.new_zeros(batch, int(frame_lengths.max()) if batch else 0, self.output_dim, dtype=torch.float32)
        embedding = wave.new_zeros(batch, self.output_dim, dtype=torch.float32)
        logits = wave.new_zeros(batch, self.cnn.fc_audioset.out_features, dtype=torch.float32)
        for n in sorted(set(lengths.tolist())):
            rows = (lengths == n).nonzero().flatten()
            out = self.cnn(wave[rows, :n].float())
            frames[rows, : out["frames"].shape[1]] = out["frames"]
            embedding[rows] = out["embedding"]
            logits[rows] = out["logits"]
        return frames, frame_lengths, embedding, logits

    def encode_audio(self, wave: Tensor, lengths: Tensor) -> AudioFeatures:
        frames, frame_lengths, embedding, _ = self._run(wave, lengths)
        return AudioFeatures(frames=frames, lengths=frame_lengths, frame_rate=self.frame_rate, pooled=embedding)

    def logits(self, wave: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """wave [B, T] at ``sample_rate`` -> the 527 AudioSet logits [B, 527] (pre-sigmoid)."""
        return self._run(wave, lengths)[3]

    def forward(self, wave: Tensor, lengths: Optional[Tensor] = None) -> AudioFeatures:
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[-1], dtype=torch.long, device=wave.device)
        return self.encode_audio(wave, lengths)
