"""The papers' experiments as functions from inputs to store entries: prompt tuning and its baselines,
IPT (subspace finding and intrinsic tuning), the method comparison, the pipeline, transfer, export,
and the task spaces the maps are drawn in. Each reads the store first and trains only what is missing
(:func:`ipt_core.experiments.context.cached_bank`)."""
