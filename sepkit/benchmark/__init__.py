"""``sepkit benchmark``: score systems on a frozen test set and write comparable result tables.

    plan = prepare_benchmark(["mini/audiosep@runs/mini-audiosep/checkpoints/best.ckpt"], "mini-hsm_tss", "out/")
    results = run_benchmark(plan)

Modules, one job each: ``testsets`` (which manifest ``--testset`` means), ``systems``
(``RECIPE[@CHECKPOINT]``), ``plan`` (every input checked before anything is written),
``inference`` (batched separation with per-example instructions), ``references`` (the rows
that need no model: Mixture, Mixture x 0.5, Silence, the systems' oracle rows), ``cache``
(per-example results, for resuming), ``runner`` (the run), ``bootstrap`` (intervals and paired
significance), ``tables`` (CSV and Markdown) and ``html`` (report.html with spectrograms and
audio players).
"""

from sepkit.benchmark.plan import BenchmarkPlan, prepare_benchmark
from sepkit.benchmark.runner import RESULT_FILES, run_benchmark

__all__ = ["RESULT_FILES", "BenchmarkPlan", "prepare_benchmark", "run_benchmark"]
