"""The GPU machine's kit (bench/device): the fp16 model copy loads as float32 and matches the packaged model.

The GPU machine has no network and takes at most 64 MiB, so ``bench/device/prepare.py`` ships the
packaged all-MiniLM-L6-v2 as float16 safetensors; ``load_backbone`` must give float32 weights (fp32
master weights under bf16 autocast) whose pooled features equal the packaged model's within float16
rounding. Also: the CLI's training path imports none of the packages that machine lacks.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ipt_core.backbones import load_backbone, packaged_model_path
from ipt_core.tasks import Example

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("device_prepare", ROOT / "bench" / "device" / "prepare.py")
prepare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prepare)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TEXTS = ["a quietly moving film with a fine cast", "WINNER!! claim your free prize now, text 8888",
         "what is the capital of australia ?", "the service was slow and the food was cold",
         "i can't believe how good this turned out", "ok"]


@pytest.fixture(scope="module")
def fp16_kit(tmp_path_factory):
    out = tmp_path_factory.mktemp("kit") / "minilm"
    info = prepare.write_fp16_model(packaged_model_path(), out)
    return out, info


def test_fp16_copy_is_half_on_disk_and_float32_once_loaded(fp16_kit):
    from safetensors import safe_open

    folder, info = fp16_kit
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
    assert "F16" in dtypes and "F32" not in dtypes, dtypes
    size = (folder / "model.safetensors").stat().st_size
    assert size < 0.55 * (packaged_model_path() / "model.safetensors").stat().st_size
    bb = load_backbone(f"encoder-sim:{folder}")
    assert {p.dtype for p in bb.model.parameters()} == {torch.float32}
    assert {b.dtype for b in bb.model.buffers() if b.is_floating_point()} <= {torch.float32}


def test_fp16_copy_gives_the_packaged_models_features_within_fp16_rounding(fp16_kit):
    folder, _ = fp16_kit
    ref = load_backbone("encoder-sim")
    kit = load_backbone(f"encoder-sim:{folder}")
    # it is the rounded copy, not the original: weights differ, by float16 rounding only
    w_ref = ref.input_embeddings().weight
    w_kit = kit.input_embeddings().weight
    assert not torch.equal(w_ref, w_kit)
    assert torch.allclose(w_ref, w_kit, rtol=1e-3, atol=1e-6)
    assert ref.weights_hash() != kit.weights_hash()  # its own store keys
    enc = ref.collate([Example(t, 0) for t in TEXTS])
    with torch.no_grad():
        a, b = ref.features(enc), kit.features(enc)
    assert a.shape == (len(TEXTS), 384)
    assert (a - b).abs().max() < 2e-3
    assert ((a * b).sum(-1) > 0.99999).all()


def test_packaged_model_loads_unchanged():
    """The float32 cast is a no-op for a float32 checkpoint: same tensors as transformers' own load."""
    import transformers

    bb = load_backbone("encoder-sim")
    raw = transformers.AutoModel.from_pretrained(str(packaged_model_path()), local_files_only=True)
    for (n1, p1), (n2, p2) in zip(bb.model.state_dict().items(), raw.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)


def test_mimic_hides_the_packages_the_gpu_machine_lacks():
    if importlib.util.find_spec("plotly") is None:
        pytest.skip("plotly is not installed here: nothing to hide")
    env = dict(os.environ, PYTHONPATH=str(prepare.MIMIC))
    proc = subprocess.run([sys.executable, "-c", "import plotly"], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "No module named 'plotly'" in proc.stderr


def test_cli_training_path_imports_nothing_the_gpu_machine_lacks():
    res = prepare.check_imports()
    assert res["failed"] == {}
    assert res["unwanted_loaded"] == []
