"""The Python API: load a system by recipe name, separate arrays with instructions.

    >>> import sepkit
    >>> pipe = sepkit.load()                                     # the bundled default, its shipped weights
    >>> violin = pipe.separate(wave, 44100, "extract the violin")  # wave: [samples] or [channels, samples]
    >>> violin, no_rain = pipe.separate(wave, 44100, ["extract the violin", "remove the rain"])

Each result has the input's sample rate, channel layout and length, and its type (a NumPy array
for a NumPy input, a float32 torch tensor for a tensor). ``sepkit separate`` (the CLI) runs this
same object. Bad input (an empty or unparseable instruction, NaN samples, no samples) is a
``SepkitError`` naming the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

DEFAULT_RECIPE = "mini/audiosep_diverse"
"""The bundled system ``load()`` and ``sepkit separate`` use when none is named: mini AudioSep fine-tuned on two
soundfonts, timbre augmentation and reworded instructions (README, "AudioSep": better than ``mini/audiosep`` on
in-distribution, paraphrased and unseen-timbre mixtures)."""


def load(
    recipe: Any = DEFAULT_RECIPE,
    checkpoint: Optional[str] = None,
    device: Optional[str] = None,
    dtype: Optional[str] = None,
    overrides: Sequence[str] = (),
    registry: Any = None,
) -> LoadedSystem:
    """Build ``recipe`` (a bundled name such as "audiosep" or "mini/hsm_tss", a YAML path, or a loaded
    ``sepkit.recipe.Recipe``) with its weights.

    ``checkpoint``: a sepkit checkpoint, an official release file, or ``hf://OWNER/REPO/FILE`` (default: the
    recipe's own ``checkpoint:``). ``device``: "auto", "cpu", "cuda" (default: the recipe's ``inference.device``);
    ``dtype``: autocast "float32", "bfloat16" or "float16". ``overrides``: dotlist recipe overrides
    (``["inference.chunk_seconds=5"]``). ``registry``: the component registry (default: installed plugins).
    """
    from sepkit.pipeline import build_pipeline
    from sepkit.recipe import Recipe, load_recipe

    loaded = recipe if isinstance(recipe, Recipe) else load_recipe(str(recipe), list(overrides))
    pipeline = build_pipeline(loaded, checkpoint=checkpoint, registry=registry)
    trained = checkpoint is not None or loaded.checkpoint_path() is not None
    return LoadedSystem(pipeline, device=device, dtype=dtype, trained=trained)


class LoadedSystem:
    """A built separation pipeline with its inference settings: ``separate(wave, sample_rate, instruction)``.

    ``pipeline`` is the ``SeparationPipeline`` (a torch module: its components, ``sample_rate``, ``recipe``);
    ``trained`` is False when no checkpoint was loaded (the output is then not a real separation).
    """

    def __init__(self, pipeline: Any, device: Optional[str] = None, dtype: Optional[str] = None, trained: bool = True):
        self.pipeline = pipeline
        self.device = device
        self.dtype = dtype
        self.trained = trained

    @property
    def recipe(self):
        return self.pipeline.recipe

    def check_instruction(self, instruction: str) -> None:
        """SepkitError if ``instruction`` is empty or the recipe's instruction parser cannot read it."""
        from sepkit.errors import SepkitError
        from sepkit.instructions import ACCEPTED_FORMS

        if not isinstance(instruction, str) or not instruction.strip():
            raise SepkitError(f"the instruction is empty; say what to separate. Accepted forms: {ACCEPTED_FORMS}")
        self.pipeline.instruction_parser.parse(instruction)

    def separate(self, wave: Any, sample_rate: int, instruction: Union[str, Sequence[str]], progress: bool = False):
        """wave: float [samples] or [channels, samples] at ``sample_rate`` (NumPy or torch) -> the separated
        sound, same shape, rate and type; a list of them, in order, for a list of instructions."""
        single = isinstance(instruction, str)
        instructions = [instruction] if single else list(instruction)
        for text in instructions:
            self.check_instruction(text)
        rows, restore = _as_rows(wave)
        outputs = [restore(self.separate_each([rows], [sample_rate], text, progress)[0]) for text in instructions]
        return outputs[0] if single else outputs

    def separate_each(
        self, waves: Sequence[Any], sample_rates: Sequence[int], instruction: str, progress: bool = False
    ) -> list:
        """One instruction on several waves (float32 tensors [channels, samples], each at its rate), in shared
        batches -> float32 CPU tensors [channels, samples] at each input's rate."""
        self.check_instruction(instruction)
        return self.pipeline.separate(
            list(waves), list(sample_rates), instruction, device=self.device, dtype=self.dtype, progress=progress
        )


def _as_rows(wave: Any):
    """wave [T] or [C, T] (NumPy or torch) -> (float32 tensor [C, T], a function giving a result the input's form)."""
    import numpy as np
    import torch

    from sepkit.errors import SepkitError

    is_tensor = isinstance(wave, torch.Tensor)
    rows = wave.detach().to("cpu", torch.float32) if is_tensor else torch.from_numpy(np.asarray(wave, np.float32))
    if rows.dim() not in (1, 2) or rows.shape[-1] == 0:
        raise SepkitError(f"expected audio [samples] or [channels, samples], got shape {tuple(rows.shape)}")
    if not torch.isfinite(rows).all():
        raise SepkitError(f"the audio holds {int((~torch.isfinite(rows)).sum())} NaN or infinite samples; clean it")
    mono = rows.dim() == 1
    rows = rows[None] if mono else rows

    def restore(result):
        result = result[0] if mono else result
        return result if is_tensor else result.numpy()

    return rows, restore


__all__ = ["DEFAULT_RECIPE", "LoadedSystem", "load"]
