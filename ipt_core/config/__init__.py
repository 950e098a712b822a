"""Every method's hyper-parameters, their ranges (limits) and the pipeline's budgets: plain dataclasses, no torch.

The app's forms, the CLI's flags and the methods read the same configs, so a default or a range is
written once (:mod:`ipt_core.config.limits`)."""
