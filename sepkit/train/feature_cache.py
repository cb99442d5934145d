"""Cached outputs of frozen components, stored next to the corpus and read back during training.

A frozen component whose input does not change from epoch to epoch (a text encoder on the
corpus's descriptions; an audio encoder or codec on clean clips) gives the same output every
time, so training can read it instead of recomputing it. ``sepkit data cache RECIPE --manifest M``
precomputes the outputs of the recipe's training system for the manifest; ``sepkit train`` uses a
cache when one exists for the manifests its ``data:`` section names and is valid.

Layout, next to the manifest ``M``::

    <folder of M>/.sepkit-cache/<label>-<fingerprint>/
        meta.json       what was cached: component, config, weights digest, precision, source stamp
        entries.pt      {key: {name: tensor}} (torch.save; read with weights_only=True)

``fingerprint`` hashes the component's class, its resolved recipe section, the digest of its
weights, its plugin version and the autocast precision the outputs were computed under, so a
changed config or changed weights land in a new folder (the old one is simply not used).
Per-entry keys are the text itself (text caches) or the clip id (clip caches); a clip cache also
records a ``source`` stamp (the manifest's bytes and each clip file's size and modification time)
and is ignored when the stamp no longer matches.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

from sepkit.errors import SepkitError

CACHE_DIRNAME = ".sepkit-cache"
META_FILE = "meta.json"
ENTRIES_FILE = "entries.pt"
FORMAT = 1


# --- fingerprints -----------------------------------------------------------------------------
def weights_digest(module: nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes) of ``module``."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def _plain(section: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(section, (DictConfig, ListConfig)):
        return OmegaConf.to_container(section, resolve=True)
    return section


def component_fingerprint(module: nn.Module, section: Any, precision: str, extra: Optional[dict] = None) -> dict:
    """What identifies a frozen component's outputs: ``{"fingerprint": 16 hex digits, ...details}``.

    ``section``: the component's recipe section (the keys ``freeze`` / ``in_checkpoint`` do not
    change outputs and are left out); ``precision``: "fp32" | "bf16" | "fp16" (train.precision).
    """
    config = {k: v for k, v in dict(_plain(section) or {}).items() if k not in ("freeze", "in_checkpoint")}
    details = {
        "class": f"{type(module).__module__}.{type(module).__qualname__}",
        "config": config,
        "weights_sha256": weights_digest(module),
        "precision": precision,
        **(extra or {}),
    }
    text = json.dumps(details, sort_keys=True, default=str)
    return {"fingerprint": hashlib.sha256(text.encode()).hexdigest()[:16], **details}


def source_stamp(manifest: Path, files: Iterable[Path]) -> str:
    """sha256 of the manifest's bytes and each file's (path, size, mtime): changes when any of them does."""
    digest = hashlib.sha256(Path(manifest).read_bytes())
    for path in files:
        try:
            stat = os.stat(path)
            digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}|missing\n".encode())
    return digest.hexdigest()


# --- the store --------------------------------------------------------------------------------
class FeatureStore:
    """One cache folder: ``{key: {name: tensor}}`` plus the ``meta.json`` that says what it holds."""

    def __init__(self, folder: Path, meta: dict) -> None:
        self.folder = Path(folder)
        self.meta = meta

    @classmethod
    def at(cls, manifest: Path, label: str, meta: dict) -> FeatureStore:
        """The store for ``meta`` (which holds a ``fingerprint``) next to ``manifest``."""
        return cls(Path(manifest).resolve().parent / CACHE_DIRNAME / f"{label}-{meta['fingerprint']}", meta)

    def valid(self) -> bool:
        """True if the folder holds entries computed for exactly this ``meta``."""
        try:
            stored = json.loads((self.folder / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return stored.get("format") == FORMAT and all(stored.get(k) == v for k, v in self._comparable().items())

    def _comparable(self) -> dict:
        return json.loads(json.dumps(self.meta, sort_keys=True, default=str))

    def load(self) -> dict[str, dict[str, Tensor]]:
        """The entries, or {} if the store is missing or stale."""
        if not self.valid():
            return {}
        path = self.folder / ENTRIES_FILE
        try:
            entries = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a damaged cache is recomputed, never trusted
            raise SepkitError(
                f"feature cache {path} cannot be read ({type(exc).__name__}: {exc}); delete {self.folder} "
                "and run 'sepkit data cache' again"
            ) from None
        if not isinstance(entries, dict):
            raise SepkitError(f"feature cache {path} is not a key -> tensors mapping; delete {self.folder}")
        return entries

    def save(self, entries: dict[str, dict[str, Tensor]]) -> None:
        """Write entries and meta atomically (entries first: a stale meta never points at new entries)."""
        from sepkit.atomic import atomic_path

        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / META_FILE).unlink(missing_ok=True)
        with atomic_path(self.folder / ENTRIES_FILE) as tmp:
            torch.save(entries, tmp)
        with atomic_path(self.folder / META_FILE) as tmp:
            tmp.write_text(json.dumps({"format": FORMAT, **self._comparable()}, indent=2), encoding="utf-8")


# --- text -------------------------------------------------------------------------------------
class CachedTextEncoder:
    """Memoises a frozen text encoder's ``encode_text`` per description.

    Each description is encoded alone, so a cached embedding does not depend on which other
    texts shared its batch (resumed runs stay exact). ``preloaded`` entries (from a
    ``FeatureStore``) are kept for the whole run; texts missing from them go through an LRU of
    ``capacity`` texts. ``hits`` / ``misses`` count lookups.
    """

    def __init__(self, encode_text: Callable, capacity: int, preloaded: Optional[dict] = None) -> None:
        self.encode_text = encode_text
        self.capacity = capacity
        self.preloaded: dict[str, tuple[Tensor, Tensor, Tensor]] = {}
        self.cache: OrderedDict[str, tuple[Tensor, Tensor, Tensor]] = OrderedDict()
        self.hits = self.misses = 0
        if preloaded:
            self.preload(preloaded)

    def preload(self, entries: dict[str, dict[str, Tensor]], device: Optional[torch.device] = None) -> None:
        """Keep ``entries`` (from a store, on the CPU) for the run, moved to the encoder's ``device``."""
        for text, e in entries.items():
            self.preloaded[text] = tuple(
                e[k].to(device) if device is not None else e[k] for k in ("tokens", "mask", "pooled")
            )

    def encode_one(self, text: str) -> tuple[Tensor, Tensor, Tensor]:
        """(tokens [L, C], mask [L], pooled [C]) of one description, computed without gradients."""
        with torch.no_grad():
            e = self.encode_text([text])
        return e.tokens[0], e.mask[0], e.pooled[0]

    def lookup(self, text: str) -> tuple[Tensor, Tensor, Tensor]:
        if text in self.preloaded:
            self.hits += 1
            return self.preloaded[text]
        if text in self.cache:
            self.hits += 1
            self.cache.move_to_end(text)
            return self.cache[text]
        self.misses += 1
        row = self.encode_one(text)
        if self.capacity > 0:
            self.cache[text] = row
            if len(self.cache) > self.capacity:
                self.cache.popitem(last=False)
        return row

    def __call__(self, texts: list[str]):
        from sepkit.interfaces import TextEmbedding

        rows = [self.lookup(text) for text in texts]
        device = rows[0][0].device
        width = max(r[0].shape[0] for r in rows)
        tokens = torch.stack([nn.functional.pad(r[0], (0, 0, 0, width - r[0].shape[0])) for r in rows])
        mask = torch.stack([nn.functional.pad(r[1], (0, width - r[1].shape[0])) for r in rows])
        pooled = torch.stack([r[2] for r in rows])
        return TextEmbedding(tokens=tokens.to(device), mask=mask.to(device), pooled=pooled.to(device))


def text_entry(tokens: Tensor, mask: Tensor, pooled: Tensor) -> dict[str, Tensor]:
    """One text's stored form, in the dtypes the encoder gave: tokens cut after the last valid one."""
    valid = int(mask.bool().nonzero().max()) + 1 if bool(mask.any()) else 1
    return {"tokens": tokens[:valid].cpu().clone(), "mask": mask[:valid].cpu().clone(), "pooled": pooled.cpu().clone()}


def text_store_meta(encoder: nn.Module, section: Any, precision: str) -> dict:
    return component_fingerprint(encoder, section, precision, {"what": "text_encoder.encode_text per description"})


def build_text_cache(
    encoder: nn.Module,
    encode_text: Callable,
    section: Any,
    texts: Iterable[str],
    manifest: Path,
    precision: str,
    autocast: Callable,
    progress: bool = True,
) -> dict:
    """Encode every distinct text of ``texts`` alone and store them next to ``manifest``; returns a summary.

    ``encoder``: the frozen module (its config and weights make the fingerprint); ``encode_text``:
    its ``encode_text`` (list[str] -> TextEmbedding); ``autocast``: a context factory for the
    training precision.
    Entries already in a valid store are kept and not recomputed.
    """
    from tqdm import tqdm

    store = FeatureStore.at(manifest, "text_encoder", text_store_meta(encoder, section, precision))
    entries = store.load()
    todo = sorted({t for t in texts if t not in entries})
    encoder.eval()
    with torch.no_grad():
        for text in tqdm(todo, desc="cache texts", unit="text", disable=not progress):
            with autocast():
                e = encode_text([text])
            entries[text] = text_entry(e.tokens[0], e.mask[0], e.pooled[0])
    store.save(entries)
    return {"store": str(store.folder), "texts": len(entries), "computed": len(todo)}


def load_text_cache(encoder: nn.Module, section: Any, manifests: Iterable[Path], precision: str) -> tuple[dict, list]:
    """(entries of every valid text store next to ``manifests``, the folders read)."""
    meta = text_store_meta(encoder, section, precision)
    entries, folders = {}, []
    for manifest in manifests:
        store = FeatureStore.at(manifest, "text_encoder", meta)
        found = store.load()
        if found:
            entries.update(found)
            folders.append(str(store.folder))
    return entries, folders


def is_mixture_manifest(manifest: Path) -> bool:
    """True for a mixture manifest (records with ``sources``), False for a clip manifest; empty ones are errors."""
    from sepkit.data.manifest import iter_jsonl

    first = next((d for _, d in iter_jsonl(manifest)), None)
    if first is None:
        raise SepkitError(f"manifest {manifest} is empty; build or import a corpus first")
    return "sources" in first


def manifest_descriptions(manifest: Path) -> list[str]:
    """Every description training on ``manifest`` can ask a text encoder for.

    A clip manifest: each clip's captions and its tag phrase, as the mixing protocols describe a
    single source (``sepkit.data.mixing.clip_descriptions``); a mixture manifest: its instructions'
    descriptions.
    """
    from sepkit.data.manifest import read_clips, read_mixtures

    if is_mixture_manifest(manifest):
        return sorted({i.description for m in read_mixtures(manifest) for i in m.instructions})
    from sepkit.data.mixing import clip_descriptions

    return sorted({d for clip in read_clips(manifest) for d in clip_descriptions(clip)})


def data_manifests(data: Any, base_dir: Optional[Path]) -> list[Path]:
    """The clip and mixture manifests a recipe's ``data:`` section (a ``DataConfig``) reads, resolved."""
    from sepkit.data.manifest import resolve_path

    out = []
    for split in (data.train, data.val):
        for key in ("clips", "mixtures"):
            value = None if split is None else getattr(split, key, None)
            if value is not None:
                path = resolve_path(str(value), base_dir).resolve()
                if path not in out:
                    out.append(path)
    return out
