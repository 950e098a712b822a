"""Smoke test of bench/throughput.py: a --quick run writes a table with every configuration.

It uses a tiny random-weight BERT (saved with the packaged tokenizer) so that the six worker
processes spend their time starting up, not training. No timing is asserted.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "throughput.py"


@pytest.mark.slow  # the benchmark's six worker processes: about 2 minutes
def test_quick_run_writes_every_row(tmp_path, tiny_bert_dir):
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--device", "cpu", "--backbone", f"encoder-sim:{tiny_bert_dir}",
         "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    assert "QUICK" in text and "python bench/throughput.py --quick" in text
    assert "## CPU" in text and "## GPU" in text and "--device cuda" in text  # the GPU section says how
    rows = [l for l in text.splitlines() if l.startswith("| ") and not l.startswith("| loop")]
    names = [r.split("|")[1].strip() for r in rows]
    assert names == ["PEFT PromptTuning, one task at a time", "ours, one prompt at a time"] + [
        f"bank (train_bank), R={R}" for R in (1, 8, 32, 100)
    ]
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert "failed" not in r
        assert float(cells[5]) > 0  # rows/s: a number, whatever its size
        assert re.fullmatch(r"\d+\.\d\dx", cells[6])  # ratio against the PEFT loop
        assert re.fullmatch(r"\d+ \[\+\d+\]", cells[7])  # peak RSS [rise]
    assert rows[0].split("|")[7].strip() == "1.00x"


def test_plan_covers_the_issue_configurations():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import throughput
    finally:
        sys.path.remove(str(SCRIPT.parent))
    cpu = throughput.plan(["cpu"], [1, 8, 32, 100], False, "encoder-sim", None)
    assert [(c["loop"], c["runs"]) for c in cpu] == [("peft", 1), ("single", 1), ("bank", 1), ("bank", 8),
                                                     ("bank", 32), ("bank", 100)]
    assert all(c["precision"] == "fp32" for c in cpu)
    assert cpu[0]["rows_per_run"] == 32 and cpu[1]["rows_per_run"] == 32
    gpu = throughput.plan(["cuda"], [100], False, "encoder-sim", None)
    peft = [c for c in gpu if c["loop"] == "peft"]
    assert {c["precision"] for c in peft} == {"fp32", "bf16"} and all(c["rows_per_run"] == 32 for c in peft)
    bank = next(c for c in gpu if c["loop"] == "bank")
    assert (bank["runs"], bank["rows_per_run"], bank["precision"]) == (100, 32, "bf16")


def test_the_real_suite_split_holds_one_family_out_and_keeps_relatives_for_the_rest():
    from bench.ipt_real import real_split
    from ipt_core.tasks import load_suite

    suite = load_suite("demo")
    train, unseen, held, held_tasks = real_split(suite)
    fam = {n: suite.task(n).type for n in suite.names()}
    assert set(train).isdisjoint(unseen) and set(train) | set(unseen) == set(suite.names())
    assert set(held_tasks) <= set(unseen) and held not in {fam[n] for n in train}
    assert all(fam[n] in {fam[t] for t in train} for n in unseen if fam[n] != held)
    assert real_split(suite) == (train, unseen, held, held_tasks)  # seeded: the same split every time
    other = next(f for f in sorted(set(fam.values())) if f != held and sum(v == f for v in fam.values()) >= 2)
    assert real_split(suite, other)[2] == other
