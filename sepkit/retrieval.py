"""Text-to-audio and audio-to-text retrieval: recall at k over a clip manifest.

``recall_at_k(similarity, relevant, ks)`` is the core: for each query row, the rank of its best
ranked relevant candidate; R@k is the fraction of queries with that rank < k (LAION-CLAP's
evaluation: a clip with several captions is a hit in audio-to-text if any of its captions is in
the top k; each caption is its own query in text-to-audio).

``evaluate_retrieval`` embeds a clip manifest (``sepkit.data.manifest.ClipRecord``: audio at
``path`` relative to the manifest, captions in ``captions``) with a recipe's encoders, through
``embed_text(texts) -> [B, D]`` and ``embed_audio(wave, lengths) -> [B, D]`` (``qaudio``,
``clap-laion``, ``clap-hf``), and returns::

    t2a_r1, t2a_r5, t2a_r10    text -> audio: queries = every caption of every clip (num_captions)
    a2t_r1, a2t_r5, a2t_r10    audio -> text: queries = the clips (num_clips), candidates = the distinct captions
    num_clips, num_captions

Relevance is by caption text: a caption is relevant to every clip that lists the same text. With
unique captions (AudioCaps, Clotho) this is the usual protocol; sepkit-mini's captions are per
sound class, so there a caption retrieves any clip of its class. Similarities are cosines
(embeddings are L2-normalised here); ties rank in manifest order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from sepkit.errors import SepkitError

DEFAULT_KS = (1, 5, 10)
TASKS = ("retrieval",)


def recall_at_k(similarity: Tensor, relevant: Tensor, ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """{k: fraction of queries whose top k candidates hold a relevant one}.

    similarity float [Q, C] (higher = closer); relevant bool [Q, C], at least one True per row.
    Candidates are ranked by descending similarity (stable: ties keep column order).
    """
    if similarity.shape != relevant.shape or similarity.dim() != 2:
        raise ValueError(f"similarity {tuple(similarity.shape)} and relevant {tuple(relevant.shape)} must be [Q, C]")
    if not bool(relevant.any(dim=1).all()):
        raise ValueError("every query needs at least one relevant candidate")
    if any(k < 1 for k in ks):
        raise ValueError(f"k must be >= 1, got {list(ks)}")
    order = torch.sort(similarity.float(), dim=1, descending=True, stable=True).indices
    hits = relevant.bool().gather(1, order)  # [Q, C] relevance in ranked order
    first = hits.float().argmax(dim=1)  # rank of the best ranked relevant candidate
    return {int(k): float((first < k).float().mean()) for k in ks}


def caption_index(captions: Sequence[Sequence[str]]) -> tuple[list[str], list[list[int]]]:
    """Per-clip caption lists -> (distinct caption texts in first-seen order, per clip the indices of its captions)."""
    texts: dict[str, int] = {}
    per_clip = []
    for clip in captions:
        per_clip.append([texts.setdefault(text, len(texts)) for text in clip])
    return list(texts), per_clip


def retrieval_scores(
    text_embeddings: Tensor, audio_embeddings: Tensor, clip_captions: Sequence[Sequence[int]], ks=DEFAULT_KS
) -> dict[str, Any]:
    """R@k both ways from embeddings of the distinct captions [U, D] and of the clips [C, D].

    clip_captions[c]: indices (into the distinct captions) of clip c's captions, one entry per caption
    of the manifest (so duplicates within a clip count as separate text queries).
    """
    text = F.normalize(text_embeddings.float(), dim=-1)
    audio = F.normalize(audio_embeddings.float(), dim=-1)
    clips = audio.shape[0]
    if len(clip_captions) != clips:
        raise ValueError(f"{len(clip_captions)} caption lists for {clips} clips")
    relevant = torch.zeros(clips, text.shape[0], dtype=torch.bool)  # [clip, distinct caption]
    queries = []
    for c, indices in enumerate(clip_captions):
        if not indices:
            raise ValueError(f"clip {c} has no caption")
        relevant[c, list(indices)] = True
        queries.extend(indices)
    similarity = audio @ text.T  # [clips, distinct captions]
    query = torch.tensor(queries, dtype=torch.long)
    t2a = recall_at_k(similarity.T[query], relevant.T[query], ks)
    a2t = recall_at_k(similarity, relevant, ks)
    out: dict[str, Any] = {f"t2a_r{k}": v for k, v in t2a.items()}
    out |= {f"a2t_r{k}": v for k, v in a2t.items()}
    out |= {"num_clips": clips, "num_captions": len(queries)}
    return out


# --- encoders from a recipe ------------------------------------------------------------
def _plain(section: Any) -> Any:
    from omegaconf import DictConfig, OmegaConf

    return OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else section


def build_retrieval_encoders(recipe: Any, checkpoint: Optional[str] = None, registry: Any = None) -> tuple[Any, Any]:
    """(text side, audio side): the recipe's text_encoder and audio_encoder, which must have
    ``embed_text`` / ``embed_audio``. Identical sections (or only one of them) build one model
    serving both. ``checkpoint`` goes into each section's ``checkpoint`` key."""
    from sepkit.plugins import get_registry

    registry = registry or get_registry()
    sections = {kind: _plain(recipe.section(kind)) for kind in ("text_encoder", "audio_encoder")}
    present = {k: s for k, s in sections.items() if s is not None}
    if not present:
        raise SepkitError(
            f"{recipe.source}: retrieval needs model.text_encoder and/or model.audio_encoder naming an encoder with "
            "embed_text and embed_audio (qaudio, clap-laion, clap-hf)"
        )
    if checkpoint:
        for kind, section in present.items():
            name = section if isinstance(section, str) else section.get("name")
            cls = registry.load_class(kind, name)
            if "checkpoint" not in getattr(cls.Config, "__dataclass_fields__", {}):
                raise SepkitError(
                    f"{recipe.source}: --ckpt goes into model.{kind}.checkpoint, but {kind} {name!r} has no "
                    "'checkpoint' key; give the weights in the recipe instead"
                )
            present[kind] = {
                "name": name,
                **({} if isinstance(section, str) else section),
                "checkpoint": str(checkpoint),
            }
    built: dict[str, Any] = {}
    if len(present) == 2 and present["text_encoder"] == present["audio_encoder"]:
        present = {"audio_encoder": present["audio_encoder"]}
    for kind, section in present.items():
        try:
            built[kind] = registry.build(kind, section, where=f"model.{kind}")
        except SepkitError as exc:
            raise SepkitError(f"{recipe.source}: {exc}") from None
    text = built.get("text_encoder", built.get("audio_encoder"))
    audio = built.get("audio_encoder", built.get("text_encoder"))
    for side, module, method in (("text", text, "embed_text"), ("audio", audio, "embed_audio")):
        if not callable(getattr(module, method, None)):
            name = type(module).__name__
            raise SepkitError(
                f"{recipe.source}: the {side} side ({name}) has no {method}(); retrieval needs an encoder with "
                "embed_text and embed_audio (qaudio with part: both, clap-laion, clap-hf)"
            )
    return text, audio


# --- the whole evaluation ----------------------------------------------------------------
def _batches(items: Sequence[Any], size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def evaluate_retrieval(
    recipe: Any,
    manifest: str | Path,
    checkpoint: Optional[str] = None,
    ks: Sequence[int] = DEFAULT_KS,
    limit: Optional[int] = None,
    batch_size: int = 8,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Embed the manifest's clips and captions with the recipe's encoders and score R@k (see the module docstring).

    ``recipe``: a Recipe or a recipe name/path; ``limit``: N clips spread evenly over the manifest
    (first and last included; deterministic); ``checkpoint``
    (default: the recipe's own ``checkpoint:``) goes into the encoders' ``checkpoint`` key.
    """
    from tqdm import tqdm

    from sepkit.data.manifest import ClipCache, read_clips
    from sepkit.device import resolve_device
    from sepkit.recipe import Recipe, load_recipe

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(str(recipe))
    if batch_size < 1:
        raise SepkitError(f"batch size must be at least 1, got {batch_size}")
    manifest = Path(manifest)
    clips = read_clips(manifest)
    if limit is not None:
        if limit < 1:
            raise SepkitError(f"--limit must be at least 1, got {limit}")
        if limit < len(clips):  # spread over the manifest (clip manifests are often sorted by class)
            clips = [clips[round(i * (len(clips) - 1) / max(limit - 1, 1))] for i in range(limit)]
    if not all(clip.captions for clip in clips):
        missing = next(clip.id for clip in clips if not clip.captions)
        raise SepkitError(f"{manifest}: clip {missing!r} has no captions; retrieval needs captioned clips")
    if checkpoint is None and recipe.checkpoint_path() is not None:
        checkpoint = str(recipe.checkpoint_path())
    text_encoder, audio_encoder = build_retrieval_encoders(recipe, checkpoint)
    dev = resolve_device(device)
    for module in {id(text_encoder): text_encoder, id(audio_encoder): audio_encoder}.values():
        module.to(dev).eval()
    texts, clip_captions = caption_index([clip.captions for clip in clips])
    cache = ClipCache(int(audio_encoder.sample_rate), manifest.parent, capacity=batch_size)
    bar = tqdm(total=len(clips) + len(texts), desc="retrieval", unit="item", disable=not progress)
    audio_rows, text_rows = [], []
    with torch.inference_mode():
        for group in _batches(clips, batch_size):
            waves = [torch.from_numpy(cache.load(clip.path)) for clip in group]
            lengths = torch.tensor([w.shape[-1] for w in waves], dtype=torch.long)
            wave = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
            audio_rows.append(audio_encoder.embed_audio(wave.to(dev), lengths.to(dev)).float().cpu())
            bar.update(len(group))
        for group in _batches(texts, batch_size):
            text_rows.append(text_encoder.embed_text(list(group)).float().cpu())
            bar.update(len(group))
    bar.close()
    result = retrieval_scores(torch.cat(text_rows), torch.cat(audio_rows), clip_captions, ks)
    return {"task": "retrieval", "recipe": recipe.source, "manifest": str(manifest), "checkpoint": checkpoint,
            **result}  # fmt: skip


__all__ = ["DEFAULT_KS", "build_retrieval_encoders", "evaluate_retrieval", "recall_at_k", "retrieval_scores"]
