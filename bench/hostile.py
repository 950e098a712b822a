"""Hostile inputs by class: run every security and robustness test once, count cases, write a table.

The cases live in the test suite (each one a regression test of the audit of issue 32 or of an
earlier fault); this script runs them together, counts the cases of each class (a parametrised
case, a race round or a fuzzed example is one case) and how many failed, and writes the table
into ``bench/FAULTS.md`` between the markers ``<!-- hostile:begin -->`` and ``<!-- hostile:end -->``::

    python -m bench.hostile                       # job-record fuzz at 1,000 examples (as CI)
    python -m bench.hostile --job-fuzz 5000 --no-write

Counts of fuzzed examples come from the fuzzers' own volume settings (``IPT_JOB_FUZZ_EXAMPLES``,
``IPT_FUZZ_EXAMPLES``), which this script sets for its run.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ROOT / "bench" / "FAULTS.md"
BEGIN, END = "<!-- hostile:begin -->", "<!-- hostile:end -->"

# (class, what a case is, node-id patterns); a node id is counted in the first class that matches it
CLASSES: list[tuple[str, str, list[str]]] = [
    ("Planted job records run through the real worker (the audit's chain: old-format `timeit` job; current format with hostile arguments: other modules, `--help`, `--cache`, paths outside the allowed folders, out-of-range flags; through the app with autostart on)",
     "record", [r"test_job_security\.py::test_planted_"]),
    ("Job records of another shape or malformed (old format, extra fields such as `module`/`env`, wrong types, NUL bytes, deep nesting, bad UTF-8, 2 MB files, a rewritten request, a planted pid for cancel, hostile estimate/progress files)",
     "record", [r"test_job_security\.py::test_(records_of_another_shape|malformed_job_files|a_malformed_status|"
                r"the_worker_reads|cancel_signals|a_hostile_estimate)"]),
    ("Code in data a suite names (a dataset loading script in an `hf:` folder)", "folder",
     [r"test_job_security\.py::test_a_dataset_script"]),
    ("Upload zips: members that are not task data (a planted `jobs/<id>/request.json`, store objects, dot-files, scripts, CSVs inside zips), task folders named like store folders, traversal, links, special files, encryption, size/ratio/count limits, lying headers",
     "zip", [r"test_security_uploads\.py::test_(a_member|a_task_folder|the_single_task|harmless_junk|crossfit)",
             r"test_uploads\.py::test_(unsafe_paths|links_and_special|encrypted|limits_on|member_larger|not_a_zip|"
             r"bad_data|zip_with_one_top)"]),
    ("Uploads racing for one name (30 rounds x 4 savers: exactly one wins; 10 rounds x 4 replacers with a reader)",
     "test", [r"test_security_uploads\.py::test_racing_"]),
    ("Folders typed as a result store (an upload, inside a store's folders, a file, a foreign folder; accepted: new, empty, store-shaped), unit and AppTest",
     "test", [r"test_security_uploads\.py::test_(store_folder|an_upload_typed)"]),
    ("Markdown injection (task type, description, labels, upload names, loader errors; 10 hostile strings x 4 renderings, and the Tasks and Overview pages under AppTest)",
     "test", [r"test_security_uploads\.py::test_(md_escape|no_user_string)"]),
    ("Paths read on a store's or a suite's word (an entry's `meta.suite` outside the allowed folders, symlinks out of a suite folder at any depth, `hf:` paths, a CSV that is a link, a link swapped in later, walk limits)",
     "test", [r"test_paths\.py::test_(a_csv_suite|a_folder_link|a_link_out|a_task_json|extra_roots|hf_local|links_inside|the_walk)",
              r"test_app_paths\.py::"]),
    ("Malformed store entries (deep nesting, bad encodings, huge numbers, wrong types at any depth, oversize, `MemoryError`, damaged files): quarantined and recomputed, never a crash",
     "entry", [r"test_store\.py::test_(any_malformed_entry|corrupt_entry_is|oversized_entry|memory_error|"
               r"query_predicate|quarantine_of_an_entry|put_over_corrupt|entry_tensors_detects)"]),
    ("Malformed or damaged checkpoints (nesting, wrong types, bad tensors, damage, another bank's, failing half-way): ignored with a warning",
     "test", [r"test_checkpoint\.py::test_(any_malformed|a_checkpoint_that_fails|damaged_checkpoint|checkpoint_of_another)",
              r"test_faults\.py::test_hypothesis_damaged"]),
    ("Write errors (full disk inside safetensors or JSON, through `Store.put` and the CLI): one line, exit 2, nothing left",
     "test", [r"test_store\.py::test_(any_write_error|disk_full)", r"test_cli\.py::test_a_full_disk",
              r"test_faults\.py::test_full_disk"]),
    ("`--cache` that is a file or under one (every command that takes it, flag and `$IPT_CACHE`)", "case",
     [r"test_cli\.py::test_a_cache_"]),
    ("Orphaned temp files and `verify [--repair]` (dead writer, live writer, other host by age, kill -9 mid-write)", "test",
     [r"test_store\.py::test_(temp_of_a_dead|killed_writer|check_reports|put_writes_under)", r"test_cli\.py::test_verify_",
      r"test_faults\.py::test_writer_killed"]),
    ("Quarantines told to the user (sidebar notice until dismissed)", "test", [r"test_app_quarantine\.py::"]),
    ("Resume after a kill (the stated guarantee: bit-identical with one thread; scores equal, tensors within 1e-5 with several)",
     "test", [r"test_checkpoint\.py::test_resume_with_several", r"test_kill_resume\.py::"]),
]
FUZZ = [  # (class, node id, env var of its volume)
    ("Fuzzed job records through the worker's claim and start (random commands and modules, argv, extra fields, malformed JSON): no process but `python -m ipt_core <command>` that the CLI accepts, no traceback",
     "tests/test_job_security.py::test_fuzzed_job_records_start_nothing_but_the_cli", "IPT_JOB_FUZZ_EXAMPLES"),
]
FILES = sorted({"tests/test_job_security.py", "tests/test_security_uploads.py", "tests/test_uploads.py", "tests/test_paths.py",
                "tests/test_app_paths.py", "tests/test_store.py", "tests/test_checkpoint.py", "tests/test_cli.py",
                "tests/test_faults.py", "tests/test_app_quarantine.py", "tests/test_kill_resume.py"})


def run(job_fuzz: int) -> tuple[dict[str, str], float, str]:
    env = dict(os.environ, IPT_JOB_FUZZ_EXAMPLES=str(job_fuzz))
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *FILES],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    outcomes: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^(PASSED|FAILED|ERROR|SKIPPED)\s+(\S+)", line)
        if m:
            outcomes[m[2]] = m[1]
    tail = (proc.stdout.strip().splitlines() or [""])[-1]
    return outcomes, time.time() - t0, tail


def table(outcomes: dict[str, str], job_fuzz: int) -> tuple[list[str], int, int]:
    rows, total, failed = [], 0, 0
    claimed: set[str] = set()
    for name, unit, patterns in CLASSES:
        ids = [i for i in outcomes if i not in claimed and any(re.search(p, i) for p in patterns)]
        claimed.update(ids)
        bad = sum(outcomes[i] in ("FAILED", "ERROR") for i in ids)
        ran = sum(outcomes[i] != "SKIPPED" for i in ids)
        rows.append(f"| {name} | {ran} | {bad} |")
        total, failed = total + ran, failed + bad
    for name, node, _ in FUZZ:
        state = outcomes.get(node)
        n = job_fuzz if state == "PASSED" else 0
        bad = int(state in ("FAILED", "ERROR"))
        rows.append(f"| {name} | {n} examples | {bad} |")
        total, failed = total + n, failed + bad
    return rows, total, failed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.split("\n\n")[0])
    p.add_argument("--job-fuzz", type=int, default=1000, help="examples of the job-record fuzz (default 1000)")
    p.add_argument("--no-write", action="store_true", help="print the table, do not write bench/FAULTS.md")
    args = p.parse_args(argv)
    load0 = os.getloadavg()[0]
    outcomes, seconds, tail = run(args.job_fuzz)
    load1 = os.getloadavg()[0]
    rows, total, failed = table(outcomes, args.job_fuzz)
    lines = [BEGIN, "", "## Hostile inputs by class (issue 32)", "",
             f"Command: `python -m bench.hostile --job-fuzz {args.job_fuzz}` ({time.strftime('%Y-%m-%d')}, CPU, "
             f"{seconds:.0f} s, load average {load0:.1f} before and {load1:.1f} after; pytest: {tail.strip('= ')}). "
             "Each row is a class of the adversarial audit's findings or of the fuzzers; a case is one "
             "parametrised test case (a test that loops over its own cases counts once).", "",
             "| class | cases | failed |", "|---|---|---|", *rows, f"| **all** | **{total}** | **{failed}** |", "", END]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        old = FAULTS.read_text(encoding="utf-8")
        if BEGIN in old and END in old:
            new = old[:old.index(BEGIN)] + text + old[old.index(END) + len(END):]
        else:
            new = old.rstrip("\n") + "\n\n" + text + "\n"
        FAULTS.write_text(new, encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
