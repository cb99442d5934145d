"""sepkit: a toolkit for text-queried audio source separation.

Public API (imported lazily, so ``import sepkit`` stays light and torch-free):

- roles: ``TextEncoder``, ``AudioEncoder``, ``Separator``, ``Decoder``, ``Codec``,
  ``InstructionParser`` and their data: ``TextEmbedding``, ``AudioFeatures``,
  ``CodecFrames``, ``Instruction`` (``sepkit.interfaces``)
- plugins: ``hookimpl`` (``sepkit.hookspecs``), ``Registry``, ``get_registry``
- the Python API: ``load`` ("audiosep", checkpoint=..., device=...) -> ``.separate(wave, sample_rate, "extract X")``
- recipes and pipelines: ``load_recipe``, ``SeparationPipeline``, ``build_pipeline``
- checkpoints: ``save_checkpoint``, ``load_checkpoint``, ``load_state_dict_checked``, ``atomic_save``
- training: ``System`` (base of trainable systems), ``TrainConfig``
- audio files: ``read_audio``, ``write_audio``
- errors: ``SepkitError``
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "TextEncoder": "sepkit.interfaces",
    "AudioEncoder": "sepkit.interfaces",
    "Separator": "sepkit.interfaces",
    "Decoder": "sepkit.interfaces",
    "Codec": "sepkit.interfaces",
    "TextEmbedding": "sepkit.interfaces",
    "AudioFeatures": "sepkit.interfaces",
    "CodecFrames": "sepkit.interfaces",
    "InstructionParser": "sepkit.instructions",
    "Instruction": "sepkit.instructions",
    "hookimpl": "sepkit.hookspecs",
    "Registry": "sepkit.registry",
    "get_registry": "sepkit.plugins",
    "load": "sepkit.api",
    "load_recipe": "sepkit.recipe",
    "SeparationPipeline": "sepkit.pipeline",
    "build_pipeline": "sepkit.pipeline",
    "save_checkpoint": "sepkit.checkpoint",
    "load_checkpoint": "sepkit.checkpoint",
    "load_state_dict_checked": "sepkit.checkpoint",
    "atomic_save": "sepkit.checkpoint",
    "System": "sepkit.train.system",
    "TrainConfig": "sepkit.train.config",
    "read_audio": "sepkit.audio",
    "write_audio": "sepkit.audio",
    "SepkitError": "sepkit.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sepkit' has no attribute {name!r}")
