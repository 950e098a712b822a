"""Which task helps which on the real suite: the transfer matrix of bench/ipt_real.py's split, and how
well each similarity measure ranks a target's sources. Writes bench/TRANSFER_REAL.md.

    python bench/transfer_real.py --cache STORE              # run (what is stored is read), then write the report
    python bench/transfer_real.py --cache STORE --report     # only write the report from the stored matrix

Targets: the split's unseen tasks (every family but the held-out one has a relative among the
sources); sources: its 22 training tasks. Each target is tuned from every source's prompt and from
the default initialisation, 20 steps of batch 8 (the CLI's default), two seeds; a seed replicates
everything (the source prompts too). Needs ../shared/tasks-real.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "tasks-real"
RUNS_LOG = HERE / "transfer_real_runs.json"
OUT = HERE / "TRANSFER_REAL.md"
STEPS, SEEDS = 20, 2


def split() -> tuple[list[str], list[str]]:
    sys.path.insert(0, str(HERE))
    from ipt_real import real_split

    from ipt_core.tasks import load_suite

    train, unseen, _, _ = real_split(load_suite(str(REAL)))
    return unseen, train


def command(targets: list[str], sources: list[str]) -> list[str]:
    return ["transfer", "--suite", "../shared/tasks-real", "--targets", ",".join(targets), "--sources", ",".join(sources),
            "--steps", str(STEPS), "--seeds", str(SEEDS)]


def run(cache: Path, note: str) -> dict:
    targets, sources = split()
    argv = command(targets, sources)
    load0, t0 = os.getloadavg()[0], time.time()
    out = subprocess.run([sys.executable, "-m", "ipt_core", *argv, "--cache", str(cache), "--json"],
                         capture_output=True, text=True, cwd=HERE.parent)
    if out.returncode:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(out.returncode)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    log = json.loads(RUNS_LOG.read_text()) if RUNS_LOG.exists() else []
    log.append({"command": "python -m ipt_core " + " ".join(argv), "wall_s": round(time.time() - t0, 1),
                "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
                "date": time.strftime("%Y-%m-%d %H:%M"), "note": note})
    RUNS_LOG.write_text(json.dumps(log, indent=1) + "\n")
    return report


def _ci(entry: dict | None, fmt: str = ".2f") -> str:
    if not entry or entry.get("mean") is None:
        return "n/a"
    if entry.get("ci_low") is None:
        return format(entry["mean"], fmt)
    return f"{entry['mean']:{fmt}} [{entry['ci_low']:{fmt}}, {entry['ci_high']:{fmt}}]"


def _k_reaching(curve: dict, share: float) -> str:
    ks = [k for k, v in zip(curve.get("k", []), curve.get("share", [])) if v is not None and v >= share]
    return str(ks[0]) if ks else "never"


def write(report: dict) -> str:
    log = json.loads(RUNS_LOG.read_text()) if RUNS_LOG.exists() else []
    rk, order = report["ranking"], report.get("measure_order") or list(report["ranking"])
    n_t = len(report["targets"])
    lines = ["# Which task helps which: the real suite's transfer matrix", "",
             "Written by `python bench/transfer_real.py --report` from the stored `transfer_report` (the command below "
             "reads it back without training). Model: the packaged all-MiniLM-L6-v2 (encoder-sim backbone), 2 cores, "
             "no GPU.", "", "## Runs", "",
             "Load: the 1-minute average before and after, on 2 cores.", "",
             "| command | wall | load before → after | date | note |", "|---|---|---|---|---|"]
    for r in log:
        lines.append(f"| `{r['command']}` | {r['wall_s']:.0f} s | {r['load_before']} → {r['load_after']} | {r['date']} | "
                     f"{r.get('note', '')} |")
    cfg, scfg = report["config"], report["source_config"]
    dv = report.get("default_vs_source_steps", {})
    below = sum(1 for v in dv.values() if v["source_dev"] is not None and v["default_dev"] < v["source_dev"])
    mean_def = sum(v["default_dev"] for v in dv.values()) / max(1, len(dv))
    mean_src = sum(v["source_dev"] for v in dv.values() if v["source_dev"] is not None) / max(1, len(dv))
    lines += ["", "## Setup", "",
              f"- Targets ({n_t}, the unseen tasks of `bench/ipt_real.py`'s split): {', '.join(report['targets'])}.",
              f"- Sources ({len(report['sources'])}, its training tasks): {', '.join(report['sources'])}.",
              f"- Every run: {cfg['kind']} prompt of {cfg['n_tokens']} vectors, {cfg['steps']} steps of batch "
              f"{cfg['batch_size']}, lr {cfg['lr']}; source prompts: {scfg['steps']} steps from the default "
              f"initialisation. Seeds {report['seeds']}, each a full replicate (source prompts and runs). Gain = test "
              "accuracy from the source's prompt minus from the default initialisation; gains and similarities are "
              "averaged over seeds before ranking.",
              f"- **Is the default-init run at its plateau?** (dev split) After {cfg['steps']} steps its dev accuracy is "
              f"{mean_def:.3f} on average; the same initialisation after {scfg['steps']} steps (the target's own source "
              f"prompt) reaches {mean_src:.3f}; lower on {below} of {len(dv)} targets. So {cfg['steps']} steps leave "
              "room a good start can fill, and a gain measures the start, not noise at a plateau.",
              f"- Mean gain over all pairs: {report['mean_gain']:+.3f}. CPU: the banks' share of wall time "
              f"{report['bank_seconds']:.0f} s.", "", "## How well each measure ranks a target's sources", "",
              f"Mean over the {n_t} targets with a bootstrap 95% interval over targets [low, high]. *Spearman*: pooled "
              "over all pairs (p), and the mean of the per-target coefficients; *signif.*: targets with p < 0.05. "
              "*NDCG@3*: the top 3 by similarity against the 3 best by gain (1 = the right order). *Regret@3*: the best "
              "gain among the top 3 short of the best source's (accuracy). *share@k*: of the best source's gain, reached "
              "by trying the top k. *80% / 90% at k*: the smallest k whose pooled share reaches it.", "",
              "| measure | Spearman pooled (p) | per target | signif. | NDCG@3 | Regret@3 | share@1 | share@3 | "
              "80% at k | 90% at k |", "|---|---|---|---|---|---|---|---|---|---|"]
    chance = None
    for name in order:
        r, c = rk[name], report["spaces"][name]
        p = r["pooled"]
        label = report.get("measures", {}).get(name, {}).get("label", name)
        rho = "n/a" if c["spearman"] is None else f"{c['spearman']:+.3f} ({c['p_value']:.3f})"
        per = "n/a" if c["per_target_mean"] is None else f"{c['per_target_mean']:+.3f}"
        lines.append(f"| {label} | {rho} | {per} | {r['n_significant']} / {r['n_targets']} | {_ci(p['ndcg@3'])} | "
                     f"{_ci(p['regret_abs@3'], '.3f')} | {_ci(p['share@1'])} | {_ci(p['share@3'])} | "
                     f"{_k_reaching(r['share_curve'], 0.8)} | {_k_reaching(r['share_curve'], 0.9)} |")
        chance = chance or r
    if chance:
        cp = chance["chance"]["pooled"]
        rand = {"k": chance["share_curve"]["k"], "share": chance["share_curve"]["random"]}
        lines.append(f"| random order (expected) | | 0 | {chance['chance']['n_significant']:.1f} / {chance['n_targets']} | "
                     f"{_ci(cp['ndcg@3'])} | {_ci(cp['regret_abs@3'], '.3f')} | {_ci(cp['share@1'])} | "
                     f"{_ci(cp['share@3'])} | {_k_reaching(rand, 0.8)} | {_k_reaching(rand, 0.9)} |")
    partial = [f"{report.get('measures', {}).get(n, {}).get('label', n)} covers {report['spaces'][n]['n_pairs']} of "
               f"{len(report['pairs'])} pairs ({rk[n]['n_targets']} targets)" for n in order
               if report["spaces"][n]["n_pairs"] < len(report["pairs"])]
    if partial:
        lines += ["", "Not every task has a vector in every space: " + "; ".join(partial) + ". Its metrics are over "
                  "those pairs only (its random order differs from the row above)."]
    agree = report.get("seed_agreement")
    if agree:
        lines += ["", f"**Seed agreement** (the ceiling for any measure): Spearman of one seed's gains against the "
                      f"other's, {agree['spearman_pooled']:+.3f} pooled over all pairs, {agree['mean_per_target']:+.3f} "
                      "per target (mean). Per target: " + ", ".join(
                          f"{t} {v:+.2f}" if v is not None else f"{t} n/a" for t, v in agree["per_target"].items()) + "."]
    for name, why in report.get("measures_missing", {}).items():
        lines.append(f"\n{name}: not computed ({why}).")
    if not any(n in rk for n in ("intrinsic", "ist")):
        lines += ["", "The intrinsic and IST measures need a task map of this suite in the store (`python -m ipt_core "
                      "pipeline --suite ../shared/tasks-real`); none was there, so they are absent here."]
    lines += ["", "## Per target", "", "The best source by gain (averaged over seeds), and each measure's top-1.", "",
              "| target | default test acc | best source (gain) | " + " | ".join(
                  report.get("measures", {}).get(n, {}).get("label", n) for n in order) + " |",
              "|---|---|---|" + "---|" * len(order)]
    gains = {(p["target"], p["source"]): p["gain"] for p in report["pairs"]}
    for t in report["targets"]:
        per = rk[order[0]]["per_target"].get(t) if order else None
        if per is None:
            continue
        best = per["best_source"]
        cells = []
        for n in order:
            top = rk[n]["per_target"].get(t, {}).get("top_predicted")
            cells.append(f"{top} ({gains.get((t, top), float('nan')):+.3f})" if top else "n/a")
        lines.append(f"| {t} | {report['default'][t]['test_acc']:.3f} | {best} ({gains[(t, best)]:+.3f}) | "
                     + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    OUT.write_text(text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, type=Path, help="result store (kept: a second run reads the first's)")
    ap.add_argument("--report", action="store_true", help="only write the report (reads the stored matrix)")
    ap.add_argument("--note", default="", help="what this run did, for the runs table (e.g. what it found stored)")
    args = ap.parse_args()
    if not REAL.is_dir():
        print(f"{REAL} is absent: the real suite is needed", file=sys.stderr)
        return 2
    if args.report:
        targets, sources = split()
        out = subprocess.run([sys.executable, "-m", "ipt_core", *command(targets, sources), "--cache", str(args.cache),
                              "--json"], capture_output=True, text=True, cwd=HERE.parent,
                             env={**os.environ, "IPT_REPLAY": "1"})  # read, never train
        if out.returncode:
            sys.stderr.write(out.stderr[-4000:])
            return out.returncode
        report = json.loads(out.stdout.strip().splitlines()[-1])
    else:
        report = run(args.cache, args.note)
    print(write(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
