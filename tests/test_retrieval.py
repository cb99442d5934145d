"""Retrieval: recall at k (several captions per clip, shared captions) and ``sepkit evaluate``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from sepkit.cli import main
from sepkit.retrieval import caption_index, recall_at_k, retrieval_scores

QAUDIO = {
    "name": "qaudio", "hidden": 32, "num_layers": 1, "num_heads": 4, "ffn_dim": 64, "itc_dim": 16,
    "max_text_tokens": 64,
    "audio_encoder": {"name": "audiomae", "embed_dim": 32, "depth": 1, "num_heads": 4, "target_frames": 128,
                      "num_mel_bins": 32},
    "text_encoder": {"name": "flan-t5", "d_model": 32, "num_layers": 1, "num_heads": 4, "d_kv": 8, "d_ff": 64,
                     "vocab_size": 512, "max_length": 32},
}  # fmt: skip


def test_recall_at_k_known_values():
    similarity = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.7, 0.6, 0.1]])
    relevant = torch.eye(3, dtype=torch.bool)
    # relevant candidate ranks: query 0 first (0.9), query 1 second (0.3 after 0.8), query 2 third (0.1)
    assert recall_at_k(similarity, relevant, (1, 2, 3)) == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: 1.0}
    # several relevant candidates: the best ranked one counts
    relevant[2, 1] = True
    assert recall_at_k(similarity, relevant, (1, 2))[2] == pytest.approx(1.0)
    # ties keep column order
    assert recall_at_k(torch.zeros(1, 3), torch.tensor([[False, True, False]]), (1, 2)) == {1: 0.0, 2: 1.0}
    with pytest.raises(ValueError, match="relevant"):
        recall_at_k(similarity, torch.zeros(3, 3, dtype=torch.bool))


def test_several_captions_per_clip_and_shared_captions():
    texts, per_clip = caption_index([["a", "b"], ["c"], ["a"]])
    assert texts == ["a", "b", "c"] and per_clip == [[0, 1], [2], [0]]
    audio = torch.eye(3)  # clips 0, 1, 2 along three axes
    # caption a points at clip 0 (also relevant to clip 2, which lists it too); b at clip 1 (wrong); c at clip 1
    text = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    out = retrieval_scores(text, audio, per_clip, ks=(1, 2))
    assert out["num_clips"] == 3 and out["num_captions"] == 4
    # text queries: a (clip 0's), b, c, a (clip 2's): a hits clip 0 (relevant to both copies), b misses at 1
    # (clip 1 first, clip 0 second), c hits
    assert out["t2a_r1"] == pytest.approx(3 / 4) and out["t2a_r2"] == pytest.approx(1.0)
    # audio queries: clip 0 -> a first (hit); clip 1 -> b or c (c is its own: b ranks first by order, c second)
    # clip 2 -> a (0.5) first: hit
    assert out["a2t_r1"] == pytest.approx(2 / 3) and out["a2t_r2"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    from sepkit.audio import write_audio
    from sepkit.data.manifest import ClipRecord, write_jsonl

    root = tmp_path_factory.mktemp("clips")
    records = []
    rng = np.random.default_rng(0)
    for i, caption in enumerate(["a dog barking", "violin music", "heavy rain", "a piano melody", "a dog barking"]):
        seconds = 0.6 + 0.1 * i
        write_audio(root / f"c{i}.wav", (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)
        records.append(ClipRecord(f"c{i}", f"c{i}.wav", seconds, 16000, [], [caption, f"clip {i}"], "test"))
    write_jsonl(root / "clips.jsonl", records)
    return root / "clips.jsonl"


def write_recipe(path, model: dict):
    path.write_text(yaml.safe_dump({"name": "retrieval-test", "model": model}))
    return path


def test_cli_json_keys_on_a_tiny_qaudio(tmp_path, manifest, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", {"audio_encoder": QAUDIO})
    out = tmp_path / "result.json"
    code = main(["evaluate", str(recipe), "--manifest", str(manifest), "--limit", "4", "--json", "--out", str(out),
                 "--device", "cpu", "--no-progress"])  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    keys = {"t2a_r1", "t2a_r5", "t2a_r10", "a2t_r1", "a2t_r5", "a2t_r10", "num_clips", "num_captions"}
    assert keys <= set(printed) and printed == json.loads(out.read_text())
    assert printed["num_clips"] == 4 and printed["num_captions"] == 8
    assert all(0.0 <= printed[k] <= 1.0 for k in keys - {"num_clips", "num_captions"})
    assert printed["t2a_r10"] == 1.0  # 4 candidates


def test_cli_reads_a_qaudio_checkpoint(tmp_path, manifest, capsys):
    from sepkit.checkpoint import save_checkpoint
    from sepkit.plugins import get_registry

    torch.manual_seed(0)
    model = get_registry().build("audio_encoder", QAUDIO)
    state = {f"qformer.{k}": v + 0.01 for k, v in model.qformer.state_dict().items()}
    ckpt = tmp_path / "best.ckpt"
    save_checkpoint(ckpt, {}, state, {})
    recipe = write_recipe(tmp_path / "r.yaml", {"audio_encoder": QAUDIO, "text_encoder": QAUDIO})
    code = main(["evaluate", str(recipe), "--manifest", str(manifest), "--ckpt", str(ckpt), "--k", "1,2", "--json",
                 "--device", "cpu", "--no-progress"])  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["checkpoint"] == str(ckpt) and "t2a_r2" in printed and printed["num_clips"] == 5
    bad = tmp_path / "bad.ckpt"
    save_checkpoint(bad, {}, {"separator.w": torch.zeros(1)}, {})
    assert main(["evaluate", str(recipe), "--manifest", str(manifest), "--ckpt", str(bad), "--no-progress"]) == 2
    assert "separator.w" in capsys.readouterr().err


def test_encoders_without_embeddings_exit_2(tmp_path, manifest, capsys):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        {"text_encoder": {"name": "minilm", "max_length": 32}, "audio_encoder": {"name": "stft", "n_fft": 256,
                                                                                  "hop_length": 64}},
    )  # fmt: skip
    assert main(["evaluate", str(recipe), "--manifest", str(manifest), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "embed_text" in err and "qaudio" in err
    assert main(["evaluate", str(recipe), "--manifest", str(manifest), "--k", "0,x"]) == 2
