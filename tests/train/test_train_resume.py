"""A run killed with SIGKILL and resumed logs exactly the losses of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from conftest import TRAIN_RECIPE, clean_env, read_metrics, sepkit_cmd, train_overrides

STEPS, CKPT_EVERY, KILL_AFTER = 24, 4, 12
EXACT = ("loss", "grad_norm", "lr")


def assert_same_curve(run_a, run_b) -> None:
    """Both runs logged the same steps with exactly the same losses, gradient norms, rates and val metrics."""
    for split in ("train", "val"):
        curve_a, curve_b = read_metrics(run_a, split), read_metrics(run_b, split)
        assert [m["step"] for m in curve_b] == [m["step"] for m in curve_a]
        for x, y in zip(curve_a, curve_b):
            for key in x.keys() - {"seconds", "cpu_seconds", "examples_per_s"}:
                assert x[key] == y[key], (split, x["step"], key, x[key], y[key])


def command(corpus, out, *extra):
    overrides = train_overrides(corpus, steps=STEPS, log_every=1, ckpt_every=CKPT_EVERY, val_every=12, keep=20)
    return sepkit_cmd("train", TRAIN_RECIPE, *overrides, "--out", out, "--device", "cpu", *extra)


def start_and_wait_for_a_step(cmd, run, env, **popen) -> subprocess.Popen:
    """Start ``sepkit train`` (pipes, text) and return once it logged a step in ``run`` (or ended, or 120 s)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **popen)
    deadline = time.monotonic() + 120
    while not read_metrics(run) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc


def test_sigkill_then_resume_gives_the_same_curve(corpus, tmp_path):
    env = clean_env(OMP_NUM_THREADS="1")  # the same thread count in every run: identical float sums
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": env}
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    a = subprocess.Popen(command(corpus, run_a), **pipe)
    b = subprocess.Popen(command(corpus, run_b), **pipe)
    marker = run_b / "checkpoints" / f"step-{KILL_AFTER}.ckpt"
    deadline = time.monotonic() + 120
    while not marker.exists() and b.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(b.pid, signal.SIGKILL)
    b.communicate()
    assert b.returncode == -signal.SIGKILL, "run B finished before it could be killed"
    logged = [m["step"] for m in read_metrics(run_b)]
    assert KILL_AFTER <= max(logged) < STEPS

    resumed = subprocess.run(command(corpus, run_b, "--resume"), capture_output=True, text=True, env=env, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    # the kill can land after step-12.ckpt is written but before last.ckpt points to it: then the run
    # resumes from the checkpoint before (step 8), which is as correct, only longer
    assert summary["step"] == STEPS and summary["steps_this_run"] <= STEPS - KILL_AFTER + CKPT_EVERY
    out_a, err_a = a.communicate(timeout=120)
    assert a.returncode == 0, err_a

    assert_same_curve(run_a, run_b)
    assert [m["step"] for m in read_metrics(run_a)] == list(range(1, STEPS + 1))


def test_budget_stop_then_resume_in_a_moved_folder_gives_the_same_curve(corpus, tmp_path):
    """--budget-minutes stops at a step boundary (exit 0, a line saying how to continue); the run folder,
    moved elsewhere as a committed run would be, continues with ``sepkit train --resume DIR`` alone."""
    import shutil

    env = clean_env(OMP_NUM_THREADS="1")
    run_a, run_b, moved = tmp_path / "a", tmp_path / "b", tmp_path / "elsewhere" / "b"
    a = subprocess.run(command(corpus, run_a), capture_output=True, text=True, env=env, timeout=300)
    assert a.returncode == 0, a.stderr
    b = subprocess.run(command(corpus, run_b, "--budget-minutes", "0.0001"), capture_output=True, text=True,
                       env=env, timeout=300)  # fmt: skip
    assert b.returncode == 0, b.stderr
    summary = json.loads(b.stdout)
    assert summary["stopped"] == "budget" and 1 <= summary["step"] < STEPS
    assert f"sepkit train --resume {run_b} --budget-minutes 0.0001" in b.stderr
    assert (run_b / "checkpoints" / "last.ckpt").is_file()

    moved.parent.mkdir()
    shutil.move(str(run_b), str(moved))
    resumed = subprocess.run(sepkit_cmd("train", "--resume", moved, "--device", "cpu"), capture_output=True,
                             text=True, env=env, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["step"] == STEPS and summary["stopped"] == "steps"
    assert_same_curve(run_a, moved)


def test_sigterm_stops_at_a_step_boundary_and_the_run_resumes_on_the_same_curve(corpus, tmp_path):
    """SIGTERM (a preempted job, a plain ``kill``) stops like a spent budget: a resumable checkpoint, exit 0."""
    env = clean_env(OMP_NUM_THREADS="1")
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    a = subprocess.Popen(command(corpus, run_a), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    b = start_and_wait_for_a_step(command(corpus, run_b), run_b, env)
    os.kill(b.pid, signal.SIGTERM)
    out_b, err_b = b.communicate(timeout=120)
    assert b.returncode == 0, err_b
    summary = json.loads(out_b)
    assert summary["stopped"] == "signal" and 1 <= summary["step"] < STEPS, "run B finished before the signal"
    # the closing line is printed by the trainer after the loop, not from the signal handler
    assert f"SIGTERM received; stopped at step {summary['step']} of {STEPS}" in err_b, err_b
    assert f"sepkit train --resume {run_b}" in err_b, err_b
    last = json.loads(subprocess.run(sepkit_cmd("train", "--resume", run_b, "--device", "cpu"), capture_output=True,
                                     text=True, env=env, timeout=300).stdout)  # fmt: skip
    assert last["step"] == STEPS and last["steps_this_run"] == STEPS - summary["step"]
    assert a.wait(timeout=300) == 0
    assert_same_curve(run_a, run_b)


def test_sigterm_to_the_whole_process_group_with_a_loader_worker_stops_cleanly(corpus, tmp_path):
    """A scheduler (or Ctrl-C) signals every process of the job, DataLoader workers included: the run still
    stops at a step boundary with a resumable checkpoint instead of dying with its worker."""
    env = clean_env(OMP_NUM_THREADS="1")
    run = tmp_path / "grouped"
    proc = start_and_wait_for_a_step(command(corpus, run, "data.num_workers=1"), run, env, start_new_session=True)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["stopped"] == "signal" and 1 <= summary["step"] < STEPS, "the run finished before the signal"
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_resume_needs_a_run_folder(tmp_path):
    proc = subprocess.run(sepkit_cmd("train", "--resume", tmp_path), capture_output=True, text=True,
                          env=clean_env(), timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "not a sepkit run folder" in proc.stderr
    proc = subprocess.run(sepkit_cmd("train"), capture_output=True, text=True, env=clean_env(), timeout=120)
    assert proc.returncode == 2 and "--resume" in proc.stderr
