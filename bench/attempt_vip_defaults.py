"""Choose ATTEMPT's default temperature and VIP's dead-code threshold on dev splits; writes bench/ATTEMPT_VIP.md.

    python bench/attempt_vip_defaults.py [--steps 40] [--targets a,b,c] [--temperatures paper,1,0.5,0.2]
        [--thresholds 0,1] [--cache DIR]

On a sub-suite of the demo (the targets plus one or two tasks per other family as ATTEMPT's
sources), every candidate trains the same targets at the same budget. Reported per candidate:
mean dev accuracy (the selection criterion), mean test accuracy (reported, never used to choose),
ATTEMPT's attention entropy relative to uniform on the test rows, VIP's codes used and perplexity.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipt_core.analysis.method_diagnostics import codebook_stats  # noqa: E402
from ipt_core.config.attempt import AttemptConfig  # noqa: E402
from ipt_core.config.pt import PTConfig  # noqa: E402
from ipt_core.config.vip import VIPConfig  # noqa: E402
from ipt_core.experiments.compare import attempt_runs, vip_runs
from ipt_core.experiments.context import Context  # noqa: E402
from ipt_core.store import Store  # noqa: E402
from ipt_core.tasks import Suite, load_suite  # noqa: E402

SOURCES = ["movie_sentiment", "product_sentiment", "banking_intent", "travel_intent", "comment_toxicity", "email_spam",
           "news_topic", "formality", "paraphrase", "question_type", "emotion", "nli"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--targets", default="hotel_sentiment,smart_home_intent,chat_toxicity")
    p.add_argument("--temperatures", default="paper,1,0.5,0.2")
    p.add_argument("--thresholds", default="0,1")
    p.add_argument("--cache", default=None)
    p.add_argument("--out", default=str(Path(__file__).with_name("ATTEMPT_VIP.md")))
    a = p.parse_args(argv)
    demo = load_suite("demo")
    targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    names = targets + [n for n in SOURCES if n not in targets]
    suite = Suite(demo.name, demo.source, tuple(demo.task(n) for n in names))
    ctx = Context.create(Store(a.cache), "encoder-sim", "cpu")
    budget = dict(steps=a.steps, batch_size=a.batch_size, eval_every=a.steps // 2)
    pt = PTConfig(kind="shallow", **budget)
    t0 = time.time()
    lines = [f"# ATTEMPT temperature and VIP dead codes, chosen on dev (demo sub-suite, {len(names)} tasks)", "",
             f"Command: `python bench/attempt_vip_defaults.py --steps {a.steps} --targets {a.targets} "
             f"--temperatures {a.temperatures} --thresholds {a.thresholds}`; targets {', '.join(targets)}; "
             f"ATTEMPT's sources: the other {len(names) - 1} tasks' shallow PT prompts ({a.steps} steps); "
             f"every run {a.steps} steps, batch {a.batch_size}, seed 0, CPU.", "",
             "| method | setting | dev acc (chosen on) | test acc | attention entropy / uniform | codes used (of 64) | perplexity |",
             "|---|---|---|---|---|---|---|"]
    for t in a.temperatures.split(","):
        temp = None if t == "paper" else float(t)
        cfg = replace(AttemptConfig(**budget), temperature=temp)
        es = attempt_runs(ctx, suite, targets, [0], cfg, pt)
        dev = np.mean([e.meta["dev_acc"] for e in es])
        test = np.mean([e.meta["test_acc"] for e in es])
        ent = np.mean([h for e in es for h in e.meta["attention_entropy"]])
        label = "paper d x e" if temp is None else f"T = {temp:g}"
        lines.append(f"| ATTEMPT | {label} | {dev:.3f} | {test:.3f} | {ent:.3f} | | |")
        print(lines[-1], flush=True)
    for th in a.thresholds.split(","):
        cfg = replace(VIPConfig(**budget), dead_code_threshold=float(th))
        es = vip_runs(ctx, suite, targets, [0], cfg)
        dev = np.mean([e.meta["dev_acc"] for e in es])
        test = np.mean([e.meta["test_acc"] for e in es])
        st = [codebook_stats(e.meta["codebook_usage"]) for e in es]
        label = "no dead-code re-init (paper)" if float(th) == 0 else f"dead-code threshold {float(th):g}"
        lines.append(f"| VIP | {label} | {dev:.3f} | {test:.3f} | | {np.mean([s['codes_used'] for s in st]):.1f} "
                     f"| {np.mean([s['perplexity'] for s in st]):.1f} |")
        print(lines[-1], flush=True)
    lines += ["", f"Wall time {time.time() - t0:.0f} s (shared 2-core CPU)."]
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
