"""``ClapPatchEncoder`` (audio encoder ``clap-laion-patches``): LAION-CLAP's HTSAT patch features before pooling.

HSM-TSS's ablation "Ours_local_CLAP" replaces AudioMAE with "the last-layer local features from
the CLAP audio encoder before pooling". HTSAT (laion_clap's ``HTSAT_Swin_Transformer``) turns a
10 s window at 48 kHz into a 1001 x 64 log-mel (10 ms hop, interpolated to 1024 frames), lays it
out as a 256 x 256 image of four 2.5 s rows, and after 4 x 4 patches and three 2 x 2 merges
regroups its final 8 x 8 token grid into 2 frequency bands x 32 time steps (``forward_features``).
That grid, [W, C, 2, 32] per window, is what HTSAT averages into CLAP's clip embedding; this
encoder takes it as the input of HTSAT's ``tscam_conv`` (a forward pre-hook around laion_clap's
own forward: nothing of HTSAT is reimplemented).

wave float [B, T] at ``sample_rate`` -> 48 kHz (``windows.to_clap_rate``) -> consecutive 10 s
windows, the last one zero-padded (clap-laion repeat-pads; here a token's time position is that
of its audio) -> HTSAT -> AudioFeatures:

- ``frames`` float [B, N, C], time-major: token n is time step n // 2 and band n % 2 (0: HTSAT's
  mel bins 0-31, low; 1: bins 32-63, high); step k of window w covers 10 w + [k, k + 1) x 0.3125 s.
  ``frames.view(B, N // 2, 2, C)`` is the grid. C = HTSAT's final width: 768 (HTSAT-tiny), 1024
  (HTSAT-base, AudioSep's CLAP), 2048 (HTSAT-large). N = 2 x the time steps of the batch's longest
  row (64 for 10 s: one window).
- ``lengths`` long [B]: 2 x ceil(seconds x 3.2), the tokens of the steps covering each row.
- ``frame_rate`` 6.4 tokens/s (3.2 steps/s, ``mel_patches`` = 2 tokens per step, the layout
  ``codec-ar`` reads with ``mel_patches: 2``).
- ``pooled`` float [B, 512]: CLAP's audio embedding (projected, unit norm) of the zero-padded
  windows, averaged over a row's windows and normalised.

Weights: the same files as ``clap-laion`` (a LAION-CLAP ``.pt`` or AudioSep's checkpoint, read by
``official.py``), of which only the audio side is kept (``audio_branch``, ``audio_projection``,
``audio_transform``, the logit scales). The RoBERTa text branch is built as a one-layer stand-in and
dropped: this is an audio encoder only. Without ``checkpoint`` the weights are random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, TextEmbedding

from .laion_encoder import LaionClapEncoder
from .official import audiosep_state_dict, laion_state_dict, load_clap_state, read_weights_file
from .windows import WINDOW, WINDOW_SECONDS, to_clap_rate, window_count

REPRESENTATION = "clap_patches"
TEXT_PARTS = ("text_branch", "text_transform", "text_projection")  # CLAP's text side, dropped
TEXT_STANDIN = {"num_hidden_layers": 1, "intermediate_size": 64, "vocab_size": 300}  # built, then dropped


@dataclass
class ClapPatchConfig:
    amodel: str = "HTSAT-base"  # HTSAT-base (AudioSep, music_speech_audioset_*.pt), HTSAT-tiny (630k-audioset-best.pt)
    checkpoint: Optional[str] = None  # LAION .pt, or AudioSep's .ckpt (its query_encoder part): the audio side is read
    sample_rate: int = positive(48000)  # Hz of encode_audio's input; resampled to 48 kHz inside
    representation: str = REPRESENTATION  # the name separators and decoders check; a recipe may rename it


def grid_shape(htsat) -> tuple[int, int]:
    """(frequency bands, time steps) of HTSAT's final token grid per window, from its sizes (2, 32)."""
    side = htsat.spec_size // htsat.patch_stride[0] // 2 ** (len(htsat.depths) - 1)  # 8 x 8 tokens
    return side // htsat.freq_ratio, side * htsat.freq_ratio


class ClapPatchEncoder(LaionClapEncoder):
    """wave float [B, T] at ``sample_rate`` -> frames [B, N, C] (HTSAT's last-layer tokens, time-major,
    2 bands per 312.5 ms step, 6.4 tokens/s) and pooled [B, 512]; see the module docstring."""

    Config = ClapPatchConfig

    def __init__(self, config: ClapPatchConfig) -> None:
        base = LaionClapEncoder.Config(amodel=config.amodel, roberta=dict(TEXT_STANDIN), sample_rate=config.sample_rate)
        super().__init__(base)  # builds CLAP (the shared laion.py path); the checkpoint is read below
        self.config = config
        for part in TEXT_PARTS:
            setattr(self.model, part, None)
        self.tokenizer = None
        htsat = self.model.audio_branch
        self.output_dim = int(htsat.num_features)
        self.mel_patches, self.time_steps = grid_shape(htsat)  # tokens per step, steps per window
        self.frame_rate = self.mel_patches * self.time_steps / WINDOW_SECONDS
        self.representation = config.representation
        if config.checkpoint and not self.load_official_checkpoint(config.checkpoint):
            raise self._not_clap(config.checkpoint)

    # --- weights --------------------------------------------------------------------
    def load_official_checkpoint(self, path: str) -> bool:
        """The audio side of a LAION-CLAP ``.pt`` or of AudioSep's ``query_encoder.model.*`` (as ``clap-laion``).

        Returns False for files in neither layout; raises ``SepkitError`` naming missing/unexpected keys.
        """
        payload = read_weights_file(path)
        found = audiosep_state_dict(payload) or laion_state_dict(payload)
        if found is None:
            return False
        state, prefix = found
        audio_side = {k: v for k, v in state.items() if k.split(".", 1)[0] not in TEXT_PARTS}
        kind = "AudioSep query encoder" if prefix.startswith("query_encoder") else "LAION-CLAP checkpoint"
        load_clap_state(self.model, audio_side, prefix, f"{kind} {path} (audio side)")
        self.trained = True
        return True

    # --- the token grid ---------------------------------------------------------------
    def window_grids(self, windows: Tensor) -> tuple[Tensor, Tensor]:
        """windows float [W, 480000] at 48 kHz -> (grid [W, C, 2, 32]: HTSAT's tokens before pooling,
        embedding [W, C]: their average, HTSAT's clip embedding before CLAP's projection)."""
        htsat = self.model.audio_branch
        captured: list[Tensor] = []
        hook = htsat.tscam_conv.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
        try:
            out = htsat({"waveform": windows}, mixup_lambda=None, device=windows.device)
        finally:
            hook.remove()
        grid = captured[0]
        expected = (windows.shape[0], self.output_dim, self.mel_patches, self.time_steps)
        if tuple(grid.shape) != expected:  # a laion_clap whose HTSAT lays its grid out differently
            raise SepkitError(f"clap-laion-patches: HTSAT gave a token grid {tuple(grid.shape)}, expected {expected}")
        return grid, out["embedding"]

    def token_lengths(self, lengths48: Tensor) -> Tensor:
        """long [B]: tokens of the whole time steps covering ``lengths48`` samples at 48 kHz (at least one step)."""
        steps = torch.div(lengths48.long() * self.time_steps + WINDOW - 1, WINDOW, rounding_mode="floor")
        return steps.clamp_min(1) * self.mel_patches

    def encode_audio(self, wave: Tensor, lengths: Tensor) -> AudioFeatures:
        """wave float [B, T] at ``sample_rate``, lengths long [B] -> AudioFeatures(frames [B, N, C] time-major,
        lengths [B] tokens, frame_rate 6.4, pooled [B, 512])."""
        wave48, lengths48 = to_clap_rate(wave.float(), lengths.to(wave.device), self.sample_rate)
        valid = torch.arange(wave48.shape[-1], device=wave48.device)[None] < lengths48[:, None]
        wave48 = wave48 * valid  # resampling rings past a row's end; its window holds its own audio, then zeros
        b, count = wave48.shape[0], int(window_count(lengths48).max())
        padded = F.pad(wave48, (0, max(0, count * WINDOW - wave48.shape[-1])))[:, : count * WINDOW]
        grid, embedding = self.window_grids(padded.reshape(b * count, WINDOW))
        # [B * W, C, bands, steps] -> [B, W * steps * bands, C]: windows, then steps, then bands
        tokens = grid.permute(0, 3, 2, 1).reshape(b, count * self.time_steps * self.mel_patches, self.output_dim)
        token_lengths = self.token_lengths(lengths48).clamp_max(tokens.shape[1])
        frames = tokens[:, : int(token_lengths.max())]
        return AudioFeatures(frames, token_lengths, self.frame_rate, self.clip_embedding(embedding, lengths48, count))

    def clip_embedding(self, embedding: Tensor, lengths48: Tensor, count: int) -> Tensor:
        """embedding [B * W, C] -> [B, 512]: CLAP's projected, normalised embedding of each row's own windows,
        averaged and normalised."""
        windows = F.normalize(self.model.audio_projection(embedding), dim=-1).view(lengths48.shape[0], count, -1)
        own = torch.arange(count, device=windows.device)[None] < window_count(lengths48).to(windows.device)[:, None]
        return F.normalize((windows * own[..., None]).sum(1), dim=-1)

    # --- no text side ------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> TextEmbedding:
        raise SepkitError(
            "clap-laion-patches is an audio encoder only (CLAP's text branch is dropped); use clap-laion for text"
        )
