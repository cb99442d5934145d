"""Building LAION-CLAP's ``CLAP`` model from the ``laion-clap`` package, offline.

``import laion_clap`` cannot be used: its ``__init__`` imports ``laion_clap.training.data``,
which fetches three tokenizers from the Hugging Face hub at import time. The model code lives in
the subpackage ``laion_clap.clap_module``, which needs no network; ``clap_module()`` imports that
subpackage alone (under its own name) without running the parent package's ``__init__``.

``CLAP.__init__`` creates its RoBERTa text branch with ``RobertaModel.from_pretrained('roberta-base')``;
``build_clap`` swaps that one name in ``laion_clap.clap_module.model`` for the duration of the
call so that the branch comes from a ``TextBranchSource`` (a local directory or a config) instead.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from sepkit.errors import SepkitError

from .roberta import TextBranchSource

PACKAGE = "laion_clap"
SUBPACKAGE = "laion_clap.clap_module"
AUDIO_MODELS = ("HTSAT-tiny", "HTSAT-base", "HTSAT-large")  # HTSAT sizes laion_clap defines
INSTALL_HINT = (
    'pip install --no-deps "laion-clap==1.1.7" torchlibrosa librosa ftfy h5py "torchvision==0.24.1" (or make install)'
)
_patch_lock = threading.Lock()


def clap_module():
    """``laion_clap.clap_module`` (the model definitions), imported without ``laion_clap/__init__.py``."""
    if SUBPACKAGE in sys.modules:
        return sys.modules[SUBPACKAGE]
    spec = importlib.util.find_spec(PACKAGE)  # locates the package; does not execute it
    if spec is None or not spec.submodule_search_locations:
        raise SepkitError(f"clap-laion needs the laion-clap package: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "clap_module"
    sub = importlib.util.spec_from_file_location(
        SUBPACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(sub)
    sys.modules[SUBPACKAGE] = module
    try:
        sub.loader.exec_module(module)
    except ImportError as exc:
        del sys.modules[SUBPACKAGE]
        raise SepkitError(f"clap-laion: laion_clap's model code needs {exc.name}: {INSTALL_HINT}") from None
    return module


@contextmanager
def text_branch_from(source: TextBranchSource):
    """Within the block, laion_clap's ``RobertaModel.from_pretrained(...)`` returns ``source.build_model()``."""

    class LocalRoberta:
        @staticmethod
        def from_pretrained(name, *args, **kwargs):
            return source.build_model()

    model_module = sys.modules[f"{SUBPACKAGE}.model"]
    with _patch_lock:
        original = model_module.RobertaModel
        model_module.RobertaModel = LocalRoberta
        try:
            yield
        finally:
            model_module.RobertaModel = original


def build_clap(amodel: str, source: TextBranchSource):
    """LAION-CLAP's ``CLAP`` (non-fusion, float32, CPU) with audio branch ``amodel`` and the given text branch.

    Returns (model, model_cfg) as ``laion_clap.clap_module.create_model`` does.
    """
    if amodel not in AUDIO_MODELS:
        raise SepkitError(f"clap-laion: amodel {amodel!r} is not one of {', '.join(AUDIO_MODELS)}")
    if int(source.config.hidden_size) != 768:
        raise SepkitError(
            f"clap-laion: laion_clap's text projection takes 768-d RoBERTa states, but the RoBERTa config has "
            f"hidden_size {source.config.hidden_size}"
        )
    module = clap_module()
    with text_branch_from(source):
        return module.create_model(amodel, "roberta", pretrained="", precision="fp32", device="cpu")
