"""Rung 2 of the HSM-TSS ladder for any codec-ar training recipe: how well a decoder turns the clean target's
own features into audio, before any separation stage is involved.

``run.py`` scores rung 2 with the shipped chain's decoder only. This script builds ``model.audio_encoder`` and
``model.decoder`` (codec-ar) of a decoder *training* recipe (e.g. ``mini/hsm_tss_decoder`` with overrides for
another AudioMAE), loads a codec-ar checkpoint written by its training run, and on the extraction targets of the
first ``--limit`` mixtures, decoding as the chain recipe ``--decoding-from`` decodes, scores like ``sepkit
benchmark`` (metric plugins, one example at a time):

- ``ar_clean``: codec-ar generating, free running, from the audio encoder's frames of the clean target;
- ``codec``: the codec's round trip of the target (the ceiling of this decoder);
- ``half``: the mixture x 0.5 (the reference every HSM-TSS target is stated against).

plus each row's RMS relative to the target's and codec-ar's token accuracy against the codec's codes of the
target. ``--compare OTHER.json`` (an earlier output of this script on the same mixtures) adds the paired
bootstrap of ``ar_clean`` against the other decoder's ``ar_clean``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hsm_ladder/decoder_rung.py mini/hsm_tss_decoder \\
        --checkpoint recipes/mini/hsm_tss.train/codec_ar.ckpt --limit 60 --out /tmp/rung2_p16.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hsm_ladder/decoder_rung.py mini/hsm_tss_decoder \\
        model.audio_encoder.patch_size=8 model.audio_encoder.checkpoint=campaigns/mini-mae-p8/checkpoints/best.ckpt \\
        model.decoder.frame_rate=100 model.decoder.mel_patches=8 \\
        --checkpoint campaigns/mini-codec-ar-p8/checkpoints/best.ckpt --limit 60 --out /tmp/rung2_p8.json \\
        --compare /tmp/rung2_p16.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from ladder_tokens import token_accuracy  # noqa: E402
from run import Renderer, _resample, build_metrics, render_batch, score  # noqa: E402

from sepkit.errors import SepkitError  # noqa: E402
from sepkit.waveforms import fit_length  # noqa: E402

ROWS = ("ar_clean", "codec", "half")
DECODING_KEYS = ("sampling", "temperature", "top_k", "seed", "guidance")  # codec-ar keys of how it decodes


def chain_decoding(chain: str) -> list[str]:
    """Overrides that give a training recipe's codec-ar the decoding of the chain recipe ``chain`` (a training
    recipe leaves them at codec-ar's defaults, e.g. greedy, which collapses: see mini/hsm_tss.yaml)."""
    from sepkit.recipe import load_recipe

    section = load_recipe(chain).section("decoder") or {}
    return [f"model.decoder.{key}={section[key]}" for key in DECODING_KEYS if key in section]


def build(recipe_name: str, overrides: list[str], checkpoint: str):
    """(audio encoder, codec-ar decoder), frozen and in eval mode, as the codec-ar training system builds them."""
    from sepkit.plugins import get_registry
    from sepkit.recipe import load_recipe

    recipe = load_recipe(recipe_name, overrides + [f"model.decoder.checkpoint={checkpoint}"])
    registry = get_registry()
    audio = registry.build_frozen("audio_encoder", recipe.section("audio_encoder"), where="model.audio_encoder")
    defaults = {"input_dim": audio.output_dim, "frame_rate": float(audio.frame_rate)}
    if isinstance(getattr(audio, "mel_patches", None), int):
        defaults["mel_patches"] = audio.mel_patches
    decoder = registry.build_frozen("decoder", recipe.section("decoder"), where="model.decoder", **defaults)
    if not hasattr(decoder, "generate_codes"):
        raise SepkitError(f"{recipe_name}: model.decoder must be codec-ar, got {type(decoder).__name__}")
    return audio, decoder


@torch.inference_mode()
def score_batch(audio, decoder, metrics, mixtures, targets, rate) -> list[dict]:
    """mixtures, targets float [B, T] at ``rate`` -> one {row: scores} per example (tokens: ``accuracy``)."""
    b, samples = targets.shape
    at_encoder = _resample(targets, rate, audio.sample_rate)
    features = audio.encode_audio(at_encoder, torch.full((b,), at_encoder.shape[-1], dtype=torch.long))
    codec, codec_rate = decoder.codec, int(decoder.codec.sample_rate)
    at_codec = _resample(targets, rate, codec_rate)
    codec_lengths = torch.full((b,), at_codec.shape[-1], dtype=torch.long)
    frames = codec.encode(at_codec, codec_lengths)
    generated = decoder.generate_codes(features)
    valid = torch.minimum(frames.lengths.long(), decoder.acoustic_steps(features)).clamp(1, generated.shape[-1])
    waves = {
        "ar_clean": _resample(codec.decode(generated).float(), codec_rate, rate),
        "codec": _resample(codec.decode(frames.codes).float(), codec_rate, rate),
        "half": 0.5 * mixtures,
    }
    out = []
    for i in range(b):
        scores = {k: score(metrics, fit_length(w, samples)[i], targets[i], mixtures[i], rate) for k, w in waves.items()}
        codes_i = generated[i].cpu().numpy()
        scores["ar_clean"]["accuracy"] = token_accuracy(codes_i, frames.codes[i].cpu().numpy(), int(valid[i]))
        out.append(scores)
    return out


def summary(examples: list[dict]) -> dict[str, dict[str, Any]]:
    from sepkit.benchmark.bootstrap import interval

    rows = {}
    for row in ROWS:
        names = sorted({k for e in examples for k in e["scores"][row]})
        rows[row] = {}
        for name in names:
            values = [e["scores"][row][name] for e in examples if e["scores"][row].get(name) is not None]
            values = [v for v in values if math.isfinite(v)]
            rows[row][name] = {"mean": float(np.mean(values)), "ci": interval(values)} if values else None
    return rows


def compare(examples: list[dict], other: dict) -> dict[str, Any]:
    """Paired bootstrap of this ar_clean minus the other run's ar_clean, per metric, on shared example keys."""
    from sepkit.benchmark.bootstrap import paired_difference

    theirs = {e["key"]: e["scores"]["ar_clean"] for e in other["examples"]}
    out = {}
    for name in ("lsd", "psnr", "si_sdri", "rms_db", "accuracy"):
        pairs = [
            (e["scores"]["ar_clean"][name], theirs[e["key"]][name])
            for e in examples
            if e["key"] in theirs
            and e["scores"]["ar_clean"].get(name) is not None
            and theirs[e["key"]].get(name) is not None
        ]
        if pairs:
            out[name] = paired_difference([a for a, _ in pairs], [b for _, b in pairs])
    return out


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe", help="a codec-ar training recipe (model.audio_encoder + model.decoder: codec-ar)")
    parser.add_argument("overrides", nargs="*", help="dotlist overrides, as for sepkit train")
    parser.add_argument("--checkpoint", required=True, help="codec-ar weights (a training run's checkpoint)")
    parser.add_argument(
        "--decoding-from", default="mini/hsm_tss", help="the chain recipe whose decoding settings to use"
    )
    parser.add_argument("--mixtures", default="data/mixes/hsm_tss_test.jsonl", help="mixture manifest (JSONL)")
    parser.add_argument("--limit", type=int, default=60, help="the first N mixtures (their extraction targets)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", required=True, help="results JSON")
    parser.add_argument("--compare", default=None, help="an earlier output of this script to pair with")
    args = parser.parse_args(argv)
    if args.limit < 1 or args.batch_size < 1:
        parser.error("--limit and --batch-size must be at least 1")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    from tqdm import tqdm

    from sepkit.data.manifest import read_mixtures

    args = parse_args(argv)
    manifest = Path(args.mixtures)
    if not manifest.is_file():
        raise SepkitError(f"--mixtures {args.mixtures}: no such file; run `make mini-data` from the repository root")
    records = read_mixtures(manifest)[: args.limit]
    overrides = chain_decoding(args.decoding_from) + list(args.overrides)  # the command line's win
    audio, decoder = build(args.recipe, overrides, args.checkpoint)
    metrics, renderer, examples = build_metrics(), Renderer(manifest), []
    for start in tqdm(range(0, len(records), args.batch_size), desc="decoder rung 2", unit="batch"):
        batch = records[start : start + args.batch_size]
        found, mixtures, targets, unique_of, rate = render_batch(renderer, batch)
        chosen = [i for i, e in enumerate(found) if e.task == "extract"]
        mix = torch.stack([mixtures[i] for i in chosen])
        tgt = torch.stack([targets[int(unique_of[i])] for i in chosen])
        for i, scores in zip(chosen, score_batch(audio, decoder, metrics, mix, tgt, rate)):
            examples.append({"key": found[i].key, "scores": scores})
    result = {
        "recipe": args.recipe,
        "overrides": overrides,
        "checkpoint": args.checkpoint,
        "mixtures": str(manifest),
        "n": len(examples),
        "rows": summary(examples),
        "examples": examples,
    }
    if args.compare:
        other = json.loads(Path(args.compare).read_text())
        result["compare"] = {"other": args.compare, "ar_clean_minus_other": compare(examples, other)}
    Path(args.out).write_text(json.dumps(result, indent=1))
    for row, values in result["rows"].items():
        shown = ", ".join(f"{k} {v['mean']:.3f}" for k, v in values.items() if v)
        print(f"{row:9s} {shown}")
    for name, diff in result.get("compare", {}).get("ar_clean_minus_other", {}).items():
        print(f"ar_clean - other {name}: {diff}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SepkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
