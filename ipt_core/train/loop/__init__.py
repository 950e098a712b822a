"""The pieces of ``ipt_core.train.bank.train_bank`` besides the training step, each readable alone.

``train_bank`` builds a :class:`~ipt_core.train.loop.state.BankState` (every run's status, best dev
checkpoint, curves, the optimiser and samplers), runs the training step, and calls a list of
:class:`~ipt_core.train.loop.state.Callback` objects at fixed points, in the manner of the HF
Trainer's ``TrainerCallback`` and Lightning's hooks:

    on_init(bank)            the bank is built       checkpointing: resume a saved bank
    on_train_begin(bank)     about to train          evaluation: the step-0 dev evaluation
    on_step_begin(bank, s)   before step s           schedule: each run's learning rate; reporting: cancellation
    on_step_end(bank, s)     after step s            evaluation (schedule, best dev, early stop),
                                                     checkpointing (save), reporting (progress)
    on_train_end(bank)       training is over

- :mod:`ipt_core.train.loop.evaluation`: dev evaluation schedule, best-dev selection, early stopping,
  and ``evaluate_rows`` (predictions and losses of any rows);
- :mod:`ipt_core.train.loop.checkpointing`: save every N steps and resume (``ipt_core.train.checkpoint``);
- :mod:`ipt_core.train.loop.reporting`: progress and cancellation;
- :mod:`ipt_core.train.loop.schedule`: each run's learning-rate schedule (constant, cosine);
- :mod:`ipt_core.train.loop.rows`: where a step's rows are computed: :class:`~ipt_core.train.loop.rows.LocalRows`
  in one process; ``ipt_core.train.distributed.RowParallel`` (data parallel under torchrun) plugs in
  here, so the loop never imports the distributed code.
"""
