"""ipt_core: train soft prompts for many tasks on one frozen language model, find the intrinsic
task subspace they share, and compare multi-task prompt methods on the same engine."""

__version__ = "0.1.0"
