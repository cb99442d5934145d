"""Fixtures for training tests: a tiny corpus of 1 s tones and noises with frozen mixture manifests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TRAIN_RECIPE = REPO / "recipes" / "tiny" / "train_stft_mask.yaml"
SEPKIT = Path(sys.executable).parent / "sepkit"
SAMPLE_RATE = 16000


def write_clips(root: Path, count: int = 6, seconds: float = 1.0, sample_rate: int = SAMPLE_RATE) -> list[dict]:
    """``count`` tones (different pitches) and ``count`` noises as wavs under ``root/clips``."""
    import soundfile

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    clips = []
    for i in range(count):
        tone = 0.3 * np.sin(2 * np.pi * (220 * 2 ** (i / 4)) * t)
        noise = 0.1 * np.random.default_rng(i).standard_normal(t.size)
        for kind, wave in (("tone", tone), ("noise", noise)):
            path = root / "clips" / f"{kind}-{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(path), wave.astype(np.float32), sample_rate, subtype="FLOAT")
            clips.append({"id": f"{kind}-{i}", "path": f"clips/{kind}-{i}.wav", "kind": kind, "seconds": seconds})
    return clips


def mixture_records(clips: list[dict], split: str, count: int, seed: int, seconds: float = 1.0):
    """``count`` tone + noise mixtures, each with four instructions (extract/remove either source)."""
    from sepkit.data.manifest import InstructionRef, MixtureRecord, SourceRef

    rng = np.random.default_rng(seed)
    tones = [c for c in clips if c["kind"] == "tone"]
    noises = [c for c in clips if c["kind"] == "noise"]
    records = []
    for n in range(count):
        tone, noise = tones[rng.integers(len(tones))], noises[rng.integers(len(noises))]
        sources = [
            SourceRef(tone["id"], tone["path"], gain=float(rng.uniform(0.5, 1.0)), tags=["tone"]),
            SourceRef(noise["id"], noise["path"], gain=float(rng.uniform(0.5, 1.0)), tags=["noise"]),
        ]
        instructions = [
            InstructionRef("extract", "extract the sine tone", "sine tone", [0]),
            InstructionRef("extract", "extract the white noise", "white noise", [1]),
            InstructionRef("remove", "remove the white noise", "white noise", [0]),
            InstructionRef("remove", "remove the sine tone", "sine tone", [1]),
        ]
        records.append(
            MixtureRecord(f"{split}-{n:03d}", "test", split, seconds, SAMPLE_RATE, sources, instructions, seed=seed)
        )
    return records


def build_corpus(root: Path, train: int = 16, val: int = 4) -> dict[str, Path]:
    from sepkit.data.manifest import write_jsonl

    clips = write_clips(root)
    paths = {"root": root, "train": root / "train.jsonl", "val": root / "val.jsonl", "empty": root / "empty.jsonl"}
    write_jsonl(paths["train"], mixture_records(clips, "train", train, seed=1))
    write_jsonl(paths["val"], mixture_records(clips, "val", val, seed=2))
    paths["empty"].write_text("")
    return paths


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """In-process training on one thread: steadier on a loaded 2-core machine (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """{"train", "val", "empty": mixture manifests, "root": their folder}: 16 train and 4 val mixtures of 1 s."""
    return build_corpus(tmp_path_factory.mktemp("corpus"))


def train_overrides(corpus: dict, **train) -> list[str]:
    """Dotlist overrides pointing the tiny recipe at ``corpus``, plus ``train.<key>=value`` for each kwarg."""
    items = [f"data.train.mixtures={corpus['train']}", f"data.val.mixtures={corpus['val']}"]
    return items + [f"train.{k}={v}" for k, v in train.items()]


def read_metrics(run: Path, split: str = "train") -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip() and '"split": "' + split in line]


def sepkit_cmd(*args) -> list[str]:
    return [str(SEPKIT), *map(str, args)]


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SEPKIT_STRICT_PLUGINS", "SEPKIT_DISABLE_PLUGIN_AUTOLOAD")}
    env.update({"TQDM_DISABLE": "1", **extra})
    return env


def run_cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(sepkit_cmd(*args), capture_output=True, text=True, timeout=timeout, env=clean_env())
