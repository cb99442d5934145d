"""Oracle outputs components declare: what a system would output if one quantity it predicts were exact.

A component declares them with the optional method (``sepkit.interfaces.Oracle`` says what one holds)::

    def oracles(self, components: dict[str, nn.Module]) -> list[Oracle]

``components`` are the pipeline's by role (text_encoder, audio_encoder, separator, decoder), so a
separator can build its oracle from the system's own encoder and decoder. ``SeparationPipeline.oracles()``
asks every component, as it offers official checkpoints; ``sepkit benchmark`` scores each oracle as a
row of the table (once, when several systems declare an equal one). The two declarations sepkit ships:

- ``IdealRatioMaskOracle``, a mixin for separators that multiply the mixture's complex STFT frames by
  a mask (mask-net, resunet30, lass-resunet, opensep-unet, sgn): the ideal ratio mask of the target,
  ``sqrt(|S|^2 / (|S|^2 + |N|^2))`` (Wang's IRM with beta = 1/2), where S are the target's frames,
  X the mixture's and N = X - S the rest's, in the system's own audio encoder representation;
  ``IRM * X`` is decoded by the system's decoder. A real mask keeps the mixture's phase, so a
  separator that also corrects the phase (resunet30) can in principle score above it.
- ``codec_round_trip(codec)``: ``codec.decode(codec.encode(target))``, the ceiling of a decoder that
  generates this codec's tokens (``codec-ar`` declares it for its codec).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from sepkit.interfaces import AudioFeatures, Codec, Oracle
from sepkit.waveforms import fit_length

WEIGHT_PATH_KEYS = ("checkpoint",)  # file paths of weights: left out of an oracle's config (its weights are hashed)


def component_settings(module: nn.Module) -> dict:
    """{"component": recipe name or "module:Class", its config keys except weight file paths}: JSON-ready."""
    config = getattr(module, "config", None)
    if config is None:
        keys = {}
    else:
        keys = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(vars(config))
    name = getattr(module, "registry_name", None) or f"{type(module).__module__}:{type(module).__qualname__}"
    return {"component": name, **{k: v for k, v in keys.items() if k not in WEIGHT_PATH_KEYS}}


def short_setting(settings: dict, keys: tuple[str, ...]) -> str:
    """The component's name (class name for "module:Class") and ``keys``: "stft n_fft 512, hop_length 160"."""
    name = str(settings["component"]).rpartition(":")[2]
    shown = [f"{key} {settings[key]}" for key in keys if settings.get(key) is not None]
    return f"{name} {', '.join(shown)}".strip()


def ideal_ratio_mask(audio_encoder: nn.Module, decoder: nn.Module) -> list[Oracle]:
    """[the IRM oracle] on ``audio_encoder``'s complex frames, decoded by ``decoder``; [] if their rates differ."""
    rate = int(audio_encoder.sample_rate)
    if int(decoder.sample_rate) != rate:
        return []
    shortest = int(getattr(audio_encoder, "min_samples", 1))

    def output(mixture: Tensor, target: Tensor, lengths: Tensor) -> Tensor:
        length = mixture.shape[-1]
        pad = max(0, shortest - length)  # as the pipeline does for inputs shorter than the encoder accepts
        mixture, target = (torch.nn.functional.pad(w.float(), (0, pad)) for w in (mixture, target))
        mix = audio_encoder.encode_audio(mixture, lengths)
        s = audio_encoder.encode_audio(target, lengths).frames
        power_s, power_n = s.abs() ** 2, (mix.frames - s).abs() ** 2
        mask = torch.sqrt(power_s / (power_s + power_n).clamp_min(torch.finfo(power_s.dtype).tiny))
        masked = AudioFeatures(mix.frames * mask, mix.lengths, mix.frame_rate)
        return fit_length(decoder.decode(masked, num_samples=mixture.shape[-1]).float(), length)

    return [
        Oracle(
            name="Oracle IRM",
            config={
                "mask": "irm",
                "beta": 0.5,
                "audio_encoder": component_settings(audio_encoder),
                "decoder": component_settings(decoder),
            },
            sample_rate=rate,
            output=output,
            modules=(audio_encoder, decoder),
            setting=short_setting(component_settings(audio_encoder), ("n_fft", "hop_length")),
            description="the ideal ratio mask sqrt(|S|² / (|S|² + |N|²)) of the target S against the rest "
            f"N = X − S on the system's {component_settings(audio_encoder)['component']} frames X, applied to the "
            "mixture and decoded by its decoder (the mixture's phase)",
        )
    ]


class IdealRatioMaskOracle:
    """Mixin for a separator that masks the mixture's complex STFT frames: declares the ideal ratio mask."""

    def oracles(self, components: dict[str, nn.Module]) -> list[Oracle]:
        return ideal_ratio_mask(components["audio_encoder"], components["decoder"])


def codec_round_trip(codec: Codec) -> Oracle:
    """The oracle ``codec.decode(codec.encode(target))`` at the codec's sample rate."""

    def output(mixture: Tensor, target: Tensor, lengths: Tensor) -> Tensor:
        codes = codec.encode(target.float(), lengths).codes
        return fit_length(codec.decode(codes).float(), target.shape[-1])

    settings = component_settings(codec)
    return Oracle(
        name="Oracle codec round trip",
        config={"codec": settings},
        sample_rate=int(codec.sample_rate),
        output=output,
        modules=(codec,),
        setting=f"{short_setting(settings, ())}, {codec.num_codebooks} x {codec.codebook_size} at "
        f"{codec.frame_rate:g} Hz",
        description=f"the target encoded and decoded by the system's codec ({settings['component']}, "
        f"{codec.num_codebooks} x {codec.codebook_size} codes at {codec.frame_rate:g} frames/s): the ceiling of "
        "a decoder that generates its tokens",
    )


__all__ = ["IdealRatioMaskOracle", "codec_round_trip", "component_settings", "ideal_ratio_mask"]
