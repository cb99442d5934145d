"""Training: one step-based engine for every system (separators, codecs, pretraining).

- ``config``: schemas of a recipe's ``train:`` and ``data:`` sections.
- ``system``: ``System`` (what one training step is) and the built-in ``SeparationSystem``.
- ``engine``: ``Trainer`` (the loop, checkpoints, validation, resume) and ``train_from_args`` (the CLI).
- ``optim``: AdamW and learning-rate schedules.  ``ema``: exponential moving average of weights.
- ``distributed``: torchrun/DDP helpers and the rank-aware epoch sampler.
"""
