"""The mini TF-Codec's bit rate with entropy coding: fixed-length indices vs the arithmetic coder (issue 15).

The codec is the ``codec`` section of ``--recipe`` (default ``mini/hsm_tss``: 8 groups x 256 codes at 50
code frames/s, ``hsm_tss.train/tfcodec.ckpt``). Its per-group frequency tables are fitted
(``TFCodec.fit_code_tables``) on ``--fit-clips`` clips of ``data/mini/train.jsonl`` (evenly spaced
through the manifest, which is ordered by class), then the clean targets of the first ``--mixtures``
mixtures of ``--testset`` (default ``mini-hsm_tss``; each mixture's distinct instruction targets) are
coded with them. Per target clip and pooled:

- fixed-length rate: valid code frames x groups x log2(codes) bits / seconds;
- empirical entropy (bits per code frame, sum over groups) of the targets' codes: pooled over all
  targets (the floor of any static per-group code) and the cross-entropy under the fitted tables
  (``range_coder.ideal_bits``: what the coder can reach with tables fitted on other audio);
- the arithmetic-coded rate: payload bytes x 8 / seconds, and with ``to_bitstream``'s 4-byte header;
- exactness: ``range_coder.decode(encode(codes))`` equals the codes, and ``from_bitstream(to_bitstream(wave))``
  equals ``decode(encode(wave))`` sample for sample, for every clip.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/codec_rate/run.py --out benchmarks/codec_rate

Writes ``results.json`` (settings, pooled figures, one row per target clip) and ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]


def fit_clips(manifest: Path, count: int) -> list[dict]:
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    step = max(len(rows) // count, 1)
    return rows[::step][:count]


def test_targets(name: str, mixtures: int) -> list[tuple[str, np.ndarray]]:
    """(key, clean target float32 [T] at 16 kHz) for each distinct instruction target of the first mixtures."""
    from sepkit.benchmark.testsets import load_testset
    from sepkit.data.manifest import ClipCache, instruction_target, render_mixture

    testset = load_testset(name)
    out = []
    caches: dict[int, ClipCache] = {}
    for record in testset.records[:mixtures]:
        rate = int(record.sample_rate)
        if rate != 16000:
            raise SystemExit(f"mixture {record.id} is at {rate} Hz; the codec codes 16 kHz")
        cache = caches.setdefault(rate, ClipCache(rate, base_dir=testset.path.parent))
        _, sources = render_mixture(record, cache)
        seen = set()
        for index, instruction in enumerate(record.instructions):
            key = tuple(instruction.target)
            if key in seen or not key:
                continue
            seen.add(key)
            out.append((f"{record.id}/{'+'.join(map(str, key))}", instruction_target(record, sources, index)))
    return out


def entropy_per_frame(counts: np.ndarray) -> float:
    """counts [G, K] -> sum over groups of the histogram entropy (bits per code frame)."""
    total = 0.0
    for row in counts:
        p = row[row > 0] / row.sum()
        total += float(-(p * np.log2(p)).sum())
    return total


def percentiles(values: list[float]) -> dict:
    v = np.asarray(values)
    return {"mean": float(v.mean()), "p5": float(np.percentile(v, 5)), "p95": float(np.percentile(v, 95))}


def main(argv: list[str] | None = None) -> int:
    from omegaconf import OmegaConf
    from sepkit_tfcodec import range_coder
    from sepkit_tfcodec.entropy import code_counts

    from sepkit.data.manifest import ClipCache
    from sepkit.paths import display_path
    from sepkit.plugins import get_registry
    from sepkit.recipe import load_recipe

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", default="mini/hsm_tss", help="a recipe whose decoder (or model) has a tfcodec codec")
    p.add_argument("--fit-manifest", type=Path, default=REPO / "data" / "mini" / "train.jsonl")
    p.add_argument("--fit-clips", type=int, default=500)
    p.add_argument("--testset", default="mini-hsm_tss")
    p.add_argument("--mixtures", type=int, default=100)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    start = time.perf_counter()
    recipe = load_recipe(args.recipe)
    section = recipe.section("codec") or (recipe.section("decoder") or {}).get("codec")
    if not section or section.get("name") != "tfcodec":
        raise SystemExit(f"{args.recipe}: no tfcodec codec section (model.codec or model.decoder.codec)")
    section = {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v for k, v in section.items()}
    codec = get_registry().build("codec", section, where="codec").eval()
    groups, codes_per_group, frame_rate = codec.num_codebooks, codec.codebook_size, codec.frame_rate
    fixed_bits_per_frame = groups * math.log2(codes_per_group)

    clips = fit_clips(args.fit_manifest, args.fit_clips)
    cache = ClipCache(16000, base_dir=args.fit_manifest.parent)
    fit_seconds = sum(len(cache.load(c["path"])) for c in clips) / 16000
    fit_counts = codec.fit_code_tables(torch.from_numpy(cache.load(c["path"])) for c in clips).numpy()
    tables = codec.code_tables.cpu().numpy()

    rows, pooled = [], np.zeros((groups, codes_per_group), dtype=np.int64)
    totals = {"seconds": 0.0, "frames": 0, "payload_bytes": 0, "bitstream_bytes": 0, "ideal_bits": 0.0}
    for key, target in test_targets(args.testset, args.mixtures):
        wave = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32))
        seconds = wave.shape[0] / 16000
        with torch.no_grad():
            frames = codec.encode(wave[None], torch.tensor([wave.shape[0]]))
            codes = frames.codes[0, :, : int(frames.lengths[0])].numpy()
            reference = codec.decode(frames.codes)[0, : wave.shape[0]]
        payload = range_coder.encode(codes, tables)
        indices_exact = bool(np.array_equal(range_coder.decode(payload, tables, codes.shape[1]), codes))
        bitstream = codec.to_bitstream(wave)
        wave_exact = bool(torch.equal(codec.from_bitstream(bitstream), reference))
        ideal = range_coder.ideal_bits(codes, tables)
        pooled += code_counts(torch.from_numpy(codes)[None], codes_per_group).numpy()
        rows.append({
            "clip": key,
            "seconds": seconds,
            "frames": int(codes.shape[1]),
            "fixed_kbps": codes.shape[1] * fixed_bits_per_frame / seconds / 1000,
            "ideal_bits_per_frame": ideal / codes.shape[1],
            "coded_kbps": len(payload) * 8 / seconds / 1000,
            "bitstream_kbps": len(bitstream) * 8 / seconds / 1000,
            "payload_bytes": len(payload),
            "indices_exact": indices_exact,
            "wave_exact": wave_exact,
        })  # fmt: skip
        totals["seconds"] += seconds
        totals["frames"] += int(codes.shape[1])
        totals["payload_bytes"] += len(payload)
        totals["bitstream_bytes"] += len(bitstream)
        totals["ideal_bits"] += ideal

    seconds, frames = totals["seconds"], totals["frames"]
    summary = {
        "clips": len(rows),
        "seconds": seconds,
        "code_frames": frames,
        "frames_per_second": frames / seconds,
        "fixed_bits_per_frame": fixed_bits_per_frame,
        "fixed_kbps": frames * fixed_bits_per_frame / seconds / 1000,
        "fit_entropy_bits_per_frame": entropy_per_frame(fit_counts),
        "codec_bitrate_kbps": codec.bitrate / 1000,
        "test_entropy_bits_per_frame": entropy_per_frame(pooled),
        "test_cross_entropy_bits_per_frame": totals["ideal_bits"] / frames,
        "coded_bits_per_frame": totals["payload_bytes"] * 8 / frames,
        "coded_kbps": totals["payload_bytes"] * 8 / seconds / 1000,
        "bitstream_kbps": totals["bitstream_bytes"] * 8 / seconds / 1000,
        "all_indices_exact": all(r["indices_exact"] for r in rows),
        "all_waves_exact": all(r["wave_exact"] for r in rows),
        "per_clip_coded_kbps": percentiles([r["coded_kbps"] for r in rows]),
    }
    section["checkpoint"] = display_path(section["checkpoint"]) if section.get("checkpoint") else None
    results = {
        "command": "python benchmarks/codec_rate/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "recipe": args.recipe,
        "codec": section,
        "groups": groups,
        "codebook_size": codes_per_group,
        "frame_rate": frame_rate,
        "fit": {
            "manifest": display_path(args.fit_manifest),
            "clips": len(clips),
            "seconds": fit_seconds,
            "code_frames": int(fit_counts.sum(1)[0]),
            "table_total": int(tables.sum(1).max()),
        },
        "testset": {"name": args.testset, "mixtures": args.mixtures, "targets": len(rows)},
        "summary": summary,
        "seconds_taken": round(time.perf_counter() - start, 1),
        "clips": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.md").write_text(markdown(results))
    print(markdown(results))
    return 0 if summary["all_indices_exact"] and summary["all_waves_exact"] else 1


def markdown(results: dict) -> str:
    s, fit = results["summary"], results["fit"]
    per_clip = s["per_clip_coded_kbps"]
    lines = [
        "# Mini TF-Codec: fixed-length vs entropy-coded rate",
        "",
        f"Command: `{results['command']}` ({results['seconds_taken']} s).",
        "",
        f"Codec: `{json.dumps(results['codec'])}`: {results['groups']} groups x {results['codebook_size']} codes "
        f"at {results['frame_rate']:g} code frames/s. Tables fitted on {fit['clips']} clips "
        f"({fit['seconds']:.0f} s, {fit['code_frames']} code frames) of `{fit['manifest']}` (frequencies scaled "
        f"to {fit['table_total']}, every code at least 1). Coded: the clean targets of the first "
        f"{results['testset']['mixtures']} mixtures of `{results['testset']['name']}` "
        f"({s['clips']} clips, {s['seconds']:.0f} s, {s['code_frames']} code frames, "
        f"{s['frames_per_second']:.2f} frames/s: a 4 s clip has 201).",
        "",
        "| figure | bits per code frame | kbit/s |",
        "| --- | ---: | ---: |",
        f"| fixed-length indices | {s['fixed_bits_per_frame']:.2f} | {s['fixed_kbps']:.3f} |",
        f"| entropy of the fitting clips' codes (= `codec.bitrate` with the tables) | "
        f"{s['fit_entropy_bits_per_frame']:.2f} | {s['codec_bitrate_kbps']:.3f} (at {results['frame_rate']:g} Hz) |",
        f"| empirical entropy of the test targets' codes (pooled histogram) | "
        f"{s['test_entropy_bits_per_frame']:.2f} | "
        f"{s['test_entropy_bits_per_frame'] * s['frames_per_second'] / 1000:.3f} |",
        f"| cross-entropy of the test codes under the fitted tables (ideal code length) | "
        f"{s['test_cross_entropy_bits_per_frame']:.2f} | "
        f"{s['test_cross_entropy_bits_per_frame'] * s['frames_per_second'] / 1000:.3f} |",
        f"| **arithmetic-coded payload** (bytes x 8 / seconds) | {s['coded_bits_per_frame']:.2f} | "
        f"**{s['coded_kbps']:.3f}** |",
        f"| bitstream with the 4-byte header (`to_bitstream`) | | {s['bitstream_kbps']:.3f} |",
        "",
        f"Per clip, coded kbit/s: mean {per_clip['mean']:.3f}, 5th percentile {per_clip['p5']:.3f}, "
        f"95th {per_clip['p95']:.3f}. Exact round trip of every clip: indices "
        f"{'yes' if s['all_indices_exact'] else 'NO'} (`range_coder.decode(encode(codes))`), waves "
        f"{'yes' if s['all_waves_exact'] else 'NO'} (`from_bitstream(to_bitstream(wave))` = "
        "`decode(encode(wave))`, every sample).",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
