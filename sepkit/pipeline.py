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

from sepkit.assembly import PIPELINE_KINDS, build_components, check_compatible, component_state, plugin_versions
from sepkit.chunking import gather_chunks, overlap_add, plan_chunks
from sepkit.device import autocast, resolve_device, resolve_dtype
from sepkit.errors import SepkitError
from sepkit.instructions import TASKS, Instruction, InstructionParser, RuleBasedInstructionParser
from sepkit.interfaces import AudioEncoder, Decoder, Oracle, Separator, TextEncoder, encode_descriptions
from sepkit.recipe import InferenceSettings, Recipe
from sepkit.task_tokens import append_task_tokens
from sepkit.waveforms import fit_length

STORED_KINDS = PIPELINE_KINDS


def _component_label(kind: str, module: nn.Module) -> str:
    return f"{kind} {getattr(module, 'registry_name', type(module).__name__)!r}"


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
        from sepkit.assembly import stored_kinds
        from sepkit.plugins import get_registry

        registry = registry or get_registry()
        built = build_components(recipe, registry)  # sepkit.assembly: checked, built, sizes handed downstream
        parser = build_instruction_parser(recipe, registry)
        try:
            return cls(**built, instruction_parser=parser, recipe=recipe, stored_kinds=stored_kinds(recipe))
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
        return component_state(self.components(), self.stored_kinds)

    def load_checkpoint_state(self, state_dict: dict, where: str) -> None:
        from sepkit.checkpoint import load_state_dict_checked

        stored = nn.ModuleDict({kind: getattr(self, kind) for kind in self.stored_kinds})
        load_state_dict_checked(stored, state_dict, where)

    def plugin_versions(self, registry=None) -> dict[str, str]:
        """{distribution: version} of the plugins that provide this pipeline's components."""
        from sepkit.plugins import get_registry

        return plugin_versions(self.recipe, registry or get_registry()) if self.recipe is not None else {}

    def save(self, path, **extra) -> None:
        """Write a sepkit checkpoint of this pipeline (atomic)."""
        from sepkit.checkpoint import save_checkpoint

        recipe = self.recipe.to_container() if self.recipe is not None else {}
        save_checkpoint(path, recipe, self.checkpoint_state(), self.plugin_versions(), **extra)

    def load(self, path) -> None:
        """Load weights from a sepkit checkpoint, or an official one that a component reads itself."""
        self.apply_checkpoint(path, read_checkpoint(path))

    def apply_checkpoint(self, path, read: tuple[Optional[dict], Optional[Exception]]) -> None:
        """Load what ``read_checkpoint(path)`` gave: a sepkit payload's weights, or offer ``path`` as official."""
        payload, foreign = read
        if payload is not None:
            self.load_checkpoint_state(payload["state_dict"], f"checkpoint {path}")
        else:
            self.load_official_checkpoint(path, foreign)

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
        query = encode_descriptions(self.text_encoder.encode_text, descriptions)
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
        n = len(rows)
        return self.chunked_forward(rows, [description] * n, [task] * n, progress=progress)

    def chunked_forward(
        self,
        rows: list[Tensor],
        descriptions: list[str],
        tasks: list[str],
        batch_size: Optional[int] = None,
        progress: bool = False,
    ) -> list[Tensor]:
        """rows: float [samples] at ``sample_rate``, one description and task ("extract"/"remove") each
        -> estimates, same shapes. Long rows are cut into ``inference.chunk_seconds`` chunks that overlap by
        ``overlap_seconds`` and are cross-faded back; ``batch_size`` chunks (default: the recipe's) share a
        forward pass.

        Only chunks of equal length share a pass, so no chunk is zero-padded and each row's estimate is
        what it gets alone (up to float rounding), whatever else is in the batch.
        """
        chunk = max(1, int(round(self.settings.chunk_seconds * self.sample_rate)))
        overlap = int(round(self.settings.overlap_seconds * self.sample_rate))
        batch_size = max(1, batch_size or self.settings.batch_size)
        lengths = [r.shape[-1] for r in rows]
        chunks = plan_chunks(lengths, chunk, overlap)
        by_length: dict[int, list[int]] = {}
        for index, c in enumerate(chunks):
            by_length.setdefault(c.length, []).append(index)
        groups = [g[s : s + batch_size] for g in by_length.values() for s in range(0, len(g), batch_size)]
        label = f"{tasks[0]} {descriptions[0]!r}" if len(set(descriptions)) == 1 else "separating"
        outputs: list[Optional[Tensor]] = [None] * len(chunks)
        for group in _progress(groups, label, progress and len(groups) > 1):
            part = [chunks[i] for i in group]
            batch, batch_lengths = gather_chunks(rows, part)
            batch_lengths = batch_lengths.to(batch.device)
            task_ids = torch.tensor([TASKS.index(tasks[c.row]) for c in part], dtype=torch.long, device=batch.device)
            estimate = self.forward(batch, batch_lengths, [descriptions[c.row] for c in part], task_ids)
            estimate = estimate * (torch.arange(batch.shape[-1], device=batch.device)[None] < batch_lengths[:, None])
            estimate = fit_length(estimate.float(), chunk if len(chunks) > 1 else batch.shape[-1])
            for i, row in zip(group, estimate):
                outputs[i] = row[None]
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
    fails fast; any other torch file is offered to the components as an official checkpoint. An
    ``hf://OWNER/REPO/FILE`` reference is first resolved to its file in the Hugging Face cache
    (``sepkit.hub``; downloaded once, ``HF_HUB_OFFLINE=1`` honoured), before anything is built.
    """
    from sepkit.hub import local_file

    path = local_file(checkpoint or recipe.checkpoint_path(), "checkpoint")
    read = read_checkpoint(path) if path is not None else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # weights a checkpoint does not set are the same on every run
        pipeline = SeparationPipeline.from_recipe(recipe, registry)
    if read is not None:
        pipeline.apply_checkpoint(path, read)
    return pipeline


def read_checkpoint(path) -> tuple[Optional[dict], Optional[Exception]]:
    """``(payload, None)`` for a sepkit checkpoint (its plugins checked), ``(None, reason)`` for another weights
    file (an official release a component may recognise); a bad file is a SepkitError."""
    from sepkit.checkpoint import NotASepkitCheckpoint, load_checkpoint

    try:
        return load_checkpoint(path), None
    except NotASepkitCheckpoint as exc:
        return None, exc


__all__ = ["SeparationPipeline", "build_pipeline", "check_compatible", "read_checkpoint"]
