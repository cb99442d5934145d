"""Data parallel training with torchrun: two CPU processes on gloo."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import SEPKIT, TRAIN_RECIPE, clean_env, read_metrics, train_overrides

from sepkit.checkpoint import load_checkpoint


def test_two_processes_stay_in_sync_and_split_the_data(corpus, tmp_path):
    out = tmp_path / "ddp"
    overrides = train_overrides(corpus, steps=6, batch_size=2, log_every=1, ckpt_every=3, debug="true")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--no-python"]
    cmd += [str(SEPKIT), "train", str(TRAIN_RECIPE), *overrides, "--out", str(out), "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(OMP_NUM_THREADS="1"), timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # the same weights on both ranks, and they are the checkpoint's
    params = [json.loads((out / f"params-rank{r}.json").read_text()) for r in (0, 1)]
    assert params[0] == params[1] and params[0]
    state = load_checkpoint(out / "checkpoints" / "last.ckpt")["state_dict"]
    assert {f"pipeline.{k}" for k in state} == set(params[0])

    # every rank took every step; within an epoch the ranks saw different examples
    ids = [[json.loads(line) for line in (out / f"ids-rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    assert [e["step"] for e in ids[0]] == [e["step"] for e in ids[1]] == list(range(1, 7))
    for epoch in (0, 1):
        seen = [{i for e in rank if e["epoch"] == epoch for i in e["ids"]} for rank in ids]
        assert seen[0] and seen[1] and not seen[0] & seen[1], (epoch, seen)
    epoch0 = [i for rank in ids for e in rank if e["epoch"] == 0 for i in e["ids"]]
    assert len(epoch0) == len(set(epoch0)) == 16  # 16 mixtures, 2 ranks x 4 steps x batch 2: each once

    # rank 0 alone writes the log, with losses averaged over the ranks and global throughput
    assert [m["step"] for m in read_metrics(out)] == list(range(1, 7))
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert summary["world_size"] == 2 and summary["step"] == 6
