"""The separation pipeline: instruction -> text query, mixture -> target, read as the algorithm.

    text    = text_encoder.encode_text(descriptions)
    frames  = audio_encoder.encode_audio(mixture)
    target  = separator.separate(frames, text, tasks)
    wave    = decoder.decode(target)

The pipeline is the only place that resamples, folds channels into the batch,
chunks long inputs and turns compound instructions into several passes:
extraction instructions are summed, removal instructions are applied one after
another (by the separator if it handles "remove", else by subtracting the
extracted source from what is left).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Optional

import torch
import torchaudio.functional as AF
from torch import Tensor, nn

from sepkit.chunking import gather_chunks, overlap_add, plan_chunks
from sepkit.device import autocast, resolve_device, resolve_dtype
from sepkit.errors import SepkitError
from sepkit.instructions import TASKS, Instruction, InstructionParser, RuleBasedInstructionParser
from sepkit.interfaces import AudioEncoder, Decoder, Oracle, Separator, TextEncoder
from sepkit.recipe import InferenceSettings, Recipe, resolve_components
from sepkit.task_tokens import append_task_tokens
from sepkit.waveforms import fit_length

STORED_KINDS = ("text_encoder", "audio_encoder", "separator", "decoder")


def _component_label(kind: str, module: nn.Module) -> str:
    return f"{kind} {getattr(module, 'registry_name', type(module).__name__)!r}"


def check_compatible(components: dict[str, nn.Module]) -> None:
    """Raise naming both components and both values if connected components disagree."""
    text, audio = components["text_encoder"], components["audio_encoder"]
    sep, dec = components["separator"], components["decoder"]
    pairs = [
        (sep, "consumes", audio, "representation", "separator", "audio_encoder"),
        (sep, "input_dim", audio, "output_dim", "separator", "audio_encoder"),
        (sep, "query_dim", text, "embed_dim", "separator", "text_encoder"),
        (dec, "consumes", sep, "produces", "decoder", "separator"),
        (dec, "input_dim", sep, "output_dim", "decoder", "separator"),
        (dec, "frame_rate", audio, "frame_rate", "decoder", "audio_encoder"),
    ]
    for a, a_attr, b, b_attr, a_kind, b_kind in pairs:
        va, vb = getattr(a, a_attr), getattr(b, b_attr)
        same = abs(va - vb) < 1e-6 if isinstance(va, float) or isinstance(vb, float) else va == vb
        if not same:
            raise SepkitError(
                f"{_component_label(a_kind, a)} has {a_attr}={va!r} but {_component_label(b_kind, b)} "
                f"has {b_attr}={vb!r}; make them agree in the recipe"
            )


class SeparationPipeline(nn.Module):
    """Text-queried separation assembled from components.

    ``forward(mixture [B, T], lengths [B], descriptions, tasks [B]) -> estimate [B, T]``
    works at ``sample_rate`` and is differentiable (training). ``separate`` is the
    inference entry: any sample rate and channel count, any length, any instruction.
    """

    def __init__(
        self,
        text_encoder: TextEncoder,
        audio_encoder: AudioEncoder,
        separator: Separator,
        decoder: Decoder,
        instruction_parser: Optional[InstructionParser] = None,
        recipe: Optional[Recipe] = None,
        stored_kinds: Sequence[str] = STORED_KINDS,
    ) -> None:
        super().__init__()
        self.text_encoder = text_encoder
        self.audio_encoder = audio_encoder
        self.separator = separator
        self.decoder = decoder
        self.instruction_parser = instruction_parser or RuleBasedInstructionParser()
        self.recipe = recipe
        self.stored_kinds = tuple(stored_kinds)
        self.settings = recipe.inference if recipe is not None else InferenceSettings()
        check_compatible(self.components())
        self._check_chunk_length()

    def _check_chunk_length(self) -> None:
        """``inference.chunk_seconds`` must give chunks the audio encoder can encode (its ``min_samples``)."""
        chunk = int(round(self.settings.chunk_seconds * self.sample_rate))
        if chunk < self.min_samples:
            shortest = self.min_samples / self.sample_rate
            raise SepkitError(
                f"inference.chunk_seconds={self.settings.chunk_seconds:g} gives chunks of {chunk} samples, but "
                f"its components ({_component_label('audio_encoder', self.audio_encoder)}, "
                f"{_component_label('separator', self.separator)}) need at least {self.min_samples} "
                f"({shortest:.4f} s); set inference.chunk_seconds to at least {shortest:.4f}"
            )

    # --- building ----------------------------------------------------------------
    @classmethod
    def from_recipe(cls, recipe: Recipe, registry=None) -> SeparationPipeline:
        """Build every component the recipe names, handing upstream sizes downstream."""
        from sepkit.plugins import get_registry

        registry = registry or get_registry()
        for kind in STORED_KINDS:
            if recipe.section(kind) is None:
                raise SepkitError(f"{recipe.source}: a separation recipe needs 'model.{kind}'")
        resolve_components(recipe, registry)  # every component's keys are checked before any is built

        def build(kind: str, **defaults):
            try:
                module = registry.build(kind, recipe.section(kind), where=f"model.{kind}", **defaults)
            except SepkitError as exc:
                raise SepkitError(f"{recipe.source}: {exc}") from None
            module.registry_name = recipe.section(kind).name
            return module

        text = build("text_encoder")
        audio = build("audio_encoder")
        sep = build(
            "separator",
            input_dim=audio.output_dim,
            query_dim=text.embed_dim,
            sample_rate=audio.sample_rate,
        )
        dec = build("decoder", input_dim=sep.output_dim, sample_rate=audio.sample_rate)
        parser = build_instruction_parser(recipe, registry)
        stored = []
        for kind, module in (("text_encoder", text), ("audio_encoder", audio), ("separator", sep), ("decoder", dec)):
            section = recipe.section(kind)
            frozen = bool(section.get("freeze", False))
            if frozen:
                module.requires_grad_(False)
            if bool(section.get("in_checkpoint", not frozen)):
                stored.append(kind)
        try:
            return cls(text, audio, sep, dec, parser, recipe=recipe, stored_kinds=stored)
        except SepkitError as exc:
            raise SepkitError(f"{recipe.source}: {exc}") from None

    def components(self) -> dict[str, nn.Module]:
        return {
            "text_encoder": self.text_encoder,
            "audio_encoder": self.audio_encoder,
            "separator": self.separator,
            "decoder": self.decoder,
        }

    @property
    def sample_rate(self) -> int:
        """Hz at which ``forward`` works (the audio encoder's)."""
        return self.audio_encoder.sample_rate

    @property
    def min_samples(self) -> int:
        """Shortest pass the components accept (``min_samples`` of the audio encoder, and of a separator
        that reads the wave itself); ``forward`` zero-pads shorter mixtures and trims back."""
        return max(1, *(int(getattr(m, "min_samples", 1)) for m in (self.audio_encoder, self.separator)))

    # --- checkpoints -------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Tensor]:
        """State of the components stored in checkpoints (frozen pretrained ones are rebuilt from their source)."""
        return {
            f"{kind}.{key}": value
            for kind in self.stored_kinds
            for key, value in getattr(self, kind).state_dict().items()
        }

    def load_checkpoint_state(self, state_dict: dict, where: str) -> None:
        from sepkit.checkpoint import load_state_dict_checked

        stored = nn.ModuleDict({kind: getattr(self, kind) for kind in self.stored_kinds})
        load_state_dict_checked(stored, state_dict, where)

    def plugin_versions(self, registry=None) -> dict[str, str]:
        """{distribution: version} of the plugins that provide this pipeline's components."""
        from sepkit.plugins import get_registry

        registry = registry or get_registry()
        out = {}
        if self.recipe is None:
            return out
        for kind in ("text_encoder", "audio_encoder", "separator", "decoder", "instruction_parser"):
            section = self.recipe.section(kind)
            if section is not None:
                entry = registry.get(kind, section.name)
                out[entry.provider] = entry.version
        return out

    def save(self, path, **extra) -> None:
        """Write a sepkit checkpoint of this pipeline (atomic)."""
        from sepkit.checkpoint import save_checkpoint

        recipe = self.recipe.to_container() if self.recipe is not None else {}
        save_checkpoint(path, recipe, self.checkpoint_state(), self.plugin_versions(), **extra)

    def load(self, path) -> None:
        """Load weights from a sepkit checkpoint, or an official one that a component reads itself."""
        from sepkit.checkpoint import NotASepkitCheckpoint, load_checkpoint

        try:
            payload = load_checkpoint(path)
        except NotASepkitCheckpoint as exc:
            self.load_official_checkpoint(path, exc)
            return
        self.load_checkpoint_state(payload["state_dict"], f"checkpoint {path}")

    def load_official_checkpoint(self, path, reason: Exception) -> None:
        """Offer ``path`` to every component defining ``load_official_checkpoint(path) -> bool``.

        A plugin's port of a published model (e.g. AudioSep's ResUNet30) recognises its release's
        layout and loads its own part of it: every component is offered the file, since one release
        can hold several (AudioSep's holds the separator and the CLAP query encoder). If none
        recognises it, the error says so.
        """
        loaded = False
        for module in self.components().values():
            loader = getattr(module, "load_official_checkpoint", None)
            if loader is not None and loader(str(path)):
                loaded = True
        if loaded:
            return
        names = ", ".join(getattr(m, "registry_name", type(m).__name__) for m in self.components().values())
        raise SepkitError(f"{reason}; and no component of this recipe ({names}) recognises it") from None

    # --- oracles -----------------------------------------------------------------
    def oracles(self) -> list[Oracle]:
        """The oracle outputs the components declare (their optional ``oracles(components)``, ``sepkit.oracles``),
        in component order, each (name, config) once."""
        components = self.components()
        found: dict[tuple[str, str], Oracle] = {}
        for module in components.values():
            declare = getattr(module, "oracles", None)
            for oracle in declare(components) if declare is not None else ():
                key = (oracle.name, json.dumps(oracle.config, sort_keys=True, default=str))
                found.setdefault(key, oracle)
        return list(found.values())

    # --- one pass ----------------------------------------------------------------
    def forward(self, mixture: Tensor, lengths: Tensor, descriptions: list[str], tasks: Tensor) -> Tensor:
        """mixture: [B, T] at ``sample_rate``; tasks: long [B] (0 extract, 1 remove) -> estimate [B, T]."""
        remove = TASKS.index("remove")
        if "remove" in self.separator.tasks or not bool((tasks == remove).any()):
            return self._pass(mixture, lengths, descriptions, tasks)
        extracted = self._pass(mixture, lengths, descriptions, torch.zeros_like(tasks))
        return torch.where((tasks == remove)[:, None], mixture - extracted, extracted)

    def _pass(self, mixture: Tensor, lengths: Tensor, descriptions: list[str], tasks: Tensor) -> Tensor:
        length = mixture.shape[-1]
        if length < self.min_samples:  # e.g. a 100-sample file under centred STFT frames: pad, separate, trim
            mixture = torch.nn.functional.pad(mixture, (0, self.min_samples - length))
        unique = sorted(set(descriptions))
        text = self.text_encoder.encode_text(unique)
        index = torch.tensor([unique.index(d) for d in descriptions], device=text.pooled.device)
        query = type(text)(text.tokens[index], text.mask[index], text.pooled[index])
        if self.separator.task_tokens:
            query = append_task_tokens(query, tasks, self.text_encoder.task_token_embeddings())
        features = self.audio_encoder.encode_audio(mixture, lengths)
        target = self.separator.separate(features, query, tasks)
        # ask for the whole length, so STFT decoders fill the last partial hop from the final frame
        num_samples = round(mixture.shape[-1] * self.decoder.sample_rate / self.sample_rate)
        wave = self.decoder.decode(target, num_samples=num_samples).float()
        if self.decoder.sample_rate != self.sample_rate:
            wave = AF.resample(wave, self.decoder.sample_rate, self.sample_rate)
        return fit_length(wave, length)

    # --- inference ---------------------------------------------------------------
    def separate(
        self,
        waves: Sequence[Tensor],
        sample_rates: Sequence[int],
        query: str,
        device: Optional[str] = None,
        dtype: Optional[str] = None,
        progress: bool = False,
    ) -> list[Tensor]:
        """Apply ``query`` to each of ``waves`` (float [channels, samples] at ``sample_rates``).

        Returns one float32 [channels, samples] tensor per input, at the input's own
        sample rate and channel count. ``device``/``dtype`` override the recipe's
        ``inference`` settings ("auto"/"cpu"/"cuda"; "float32"/"bfloat16"/"float16").
        """
        instructions = self.instruction_parser.parse(query)
        dev = resolve_device(device or self.settings.device)
        amp = resolve_dtype(dtype or self.settings.dtype)
        self.to(dev).eval()
        rows, owners = [], []
        for i, (wave, sr) in enumerate(zip(waves, sample_rates)):
            wave = torch.as_tensor(wave, dtype=torch.float32)
            if wave.ndim == 1:
                wave = wave[None]
            resampled = AF.resample(wave, int(sr), self.sample_rate) if int(sr) != self.sample_rate else wave
            rows.extend(resampled.to(dev))
            owners.extend([i] * wave.shape[0])
        with torch.inference_mode(), autocast(dev, amp):
            result = self._run_instructions(rows, instructions, progress)
        outputs = []
        for i, (wave, sr) in enumerate(zip(waves, sample_rates)):
            mine = torch.stack([r for r, o in zip(result, owners) if o == i]).float().cpu()
            if int(sr) != self.sample_rate:
                mine = AF.resample(mine, self.sample_rate, int(sr))
            outputs.append(fit_length(mine, torch.as_tensor(wave).shape[-1]))
        return outputs

    def _run_instructions(self, rows: list[Tensor], instructions: list[Instruction], progress: bool) -> list[Tensor]:
        extracts = [i.description for i in instructions if i.task == "extract"]
        removes = [i.description for i in instructions if i.task == "remove"]
        if extracts:
            parts = [self._chunked(rows, d, "extract", progress) for d in extracts]
            current = [torch.stack(p).sum(0) for p in zip(*parts)]
        else:
            current = rows
        for d in removes:
            if "remove" in self.separator.tasks:
                current = self._chunked(current, d, "remove", progress)
            else:
                extracted = self._chunked(current, d, "extract", progress)
                current = [c - e for c, e in zip(current, extracted)]
        return current

    def _chunked(self, rows: list[Tensor], description: str, task: str, progress: bool) -> list[Tensor]:
        chunk = max(1, int(round(self.settings.chunk_seconds * self.sample_rate)))
        overlap = int(round(self.settings.overlap_seconds * self.sample_rate))
        lengths = [r.shape[-1] for r in rows]
        chunks = plan_chunks(lengths, chunk, overlap)
        batch_size = self.settings.batch_size
        starts = range(0, len(chunks), batch_size)
        bar = _progress(starts, f"{task} {description!r}", progress and len(chunks) > batch_size)
        outputs = []
        task_id = TASKS.index(task)
        for s in bar:
            part = chunks[s : s + batch_size]
            batch, batch_lengths = gather_chunks(rows, part)
            tasks = torch.full((len(part),), task_id, dtype=torch.long, device=batch.device)
            estimate = self.forward(batch, batch_lengths.to(batch.device), [description] * len(part), tasks)
            estimate = estimate * (
                torch.arange(batch.shape[-1], device=batch.device)[None] < batch_lengths.to(batch.device)[:, None]
            )
            outputs.append(fit_length(estimate.float(), chunk if len(chunks) > 1 else batch.shape[-1]))
        width = max(o.shape[-1] for o in outputs)
        stacked = torch.cat([fit_length(o, width) for o in outputs])
        return overlap_add(stacked, chunks, lengths, overlap)


def _progress(iterable, description: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, unit="batch", leave=False)


def build_instruction_parser(recipe: Recipe, registry) -> InstructionParser:
    """The recipe's ``model.instruction_parser``, or the rule-based parser if it names none."""
    section = recipe.section("instruction_parser")
    if section is None:
        return RuleBasedInstructionParser()
    try:
        return registry.build("instruction_parser", section, where="model.instruction_parser")
    except SepkitError as exc:
        raise SepkitError(f"{recipe.source}: {exc}") from None


def build_pipeline(recipe: Recipe, checkpoint: Optional[str] = None, registry=None) -> SeparationPipeline:
    """Build from a recipe and load ``checkpoint`` (or the recipe's own ``checkpoint:``) if any.

    A sepkit checkpoint is read (and its plugins checked) before the model is built, so a bad path
    fails fast; any other torch file is offered to the components as an official checkpoint.
    """
    from sepkit.checkpoint import NotASepkitCheckpoint, load_checkpoint

    path = checkpoint or recipe.checkpoint_path()
    payload, foreign = None, None
    if path is not None:
        try:
            payload = load_checkpoint(path)
        except NotASepkitCheckpoint as exc:
            foreign = exc
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # weights a checkpoint does not set are the same on every run
        pipeline = SeparationPipeline.from_recipe(recipe, registry)
    if payload is not None:
        pipeline.load_checkpoint_state(payload["state_dict"], f"checkpoint {path}")
    elif foreign is not None:
        pipeline.load_official_checkpoint(path, foreign)
    return pipeline


__all__ = ["SeparationPipeline", "build_pipeline", "check_compatible"]
