"""Building the frozen codec named by a ``codec:`` sub-section (``{name: tfcodec, ...}``) from the registry.

The codec is built from the process-wide registry (``sepkit.plugins.get_registry``), or from the
registry given to ``codec_registry`` around the build (the ``codec-ar`` training system passes
its own, tests pass one holding a toy codec). Its parameters are frozen and it stays in eval mode;
its weights come from its own section (e.g. its ``checkpoint:`` key), never from codec-ar's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sepkit.errors import SepkitError
from sepkit.interfaces import Codec

_REGISTRY: ContextVar[Any] = ContextVar("sepkit_codec_ar_registry", default=None)


@contextmanager
def codec_registry(registry: Any) -> Iterator[None]:
    """Within this block, codec-ar decoders build their codec from ``registry``."""
    token = _REGISTRY.set(registry)
    try:
        yield
    finally:
        _REGISTRY.reset(token)


def build_codec(section: Any, where: str) -> Codec:
    """The frozen codec of ``section`` (a mapping with a ``name``), in eval mode."""
    from sepkit.plugins import get_registry

    if not isinstance(section, dict) or not isinstance(section.get("name"), str):
        raise SepkitError(
            f"{where}: expected a codec section like {{name: tfcodec, ...}} naming a registered codec, got {section!r}"
        )
    registry = _REGISTRY.get() or get_registry()
    codec = registry.build("codec", section, where=where)
    if not isinstance(codec, Codec):
        raise SepkitError(f"{where}: {section['name']!r} built a {type(codec).__name__}, not a sepkit Codec")
    codec.requires_grad_(False)
    return codec.eval()
