"""Dev evaluation of a bank: when (the schedule), what is kept (best dev), when a run stops early.

:class:`DevEvaluation` evaluates every run at step 0 (unless the method's ``eval_at_start`` is
False), every ``eval_every`` steps and at its last step; keeps each run's best dev checkpoint (higher mean accuracy over its tasks; on a tie, lower
dev loss); and stops a run after ``patience`` evaluations without improvement.
:func:`evaluate_rows` computes predictions and losses for any ``(run, task, example)`` rows.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ipt_core.analysis.metrics import accuracy, macro_f1
from ipt_core.train.loop.state import BankState, Callback

Rows = Sequence[tuple]  # (run index, task index, Example)


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA; fp32 (no autocast) on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def evaluate_rows(backbone, method, rows: Rows, task_index: dict[str, int], label_table, *, batch_size: int = 128,
                  device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Predictions ``[N]`` and per-row losses ``[N]`` for ``(run, task, example)`` rows, in order.

    ``method`` None scores the backbone without a prompt (zero-shot).
    """
    # rows sorted by length so each chunk pads little; results are put back in the caller's order
    order = sorted(range(len(rows)), key=lambda i: len(backbone.token_ids(rows[i][2])))
    preds, losses = [], []
    with torch.no_grad(), autocast_for(device):
        for i in range(0, len(rows), batch_size):
            chunk = [rows[j] for j in order[i : i + batch_size]]
            enc = backbone.collate([r[2] for r in chunk]).to(device)
            run_ids = torch.tensor([r[0] for r in chunk], device=device)
            task_ids = torch.tensor([r[1] for r in chunk], device=device)
            gold = torch.tensor([r[2].label for r in chunk], device=device)
            prompt = method.prompts(run_ids, task_ids, enc) if method is not None else None
            kind = method.prompt_kind if method is not None else "shallow"
            logits = backbone.logits(enc, task_ids, label_table, prompt, kind).float()
            preds.append(logits.argmax(-1).cpu().numpy())
            losses.append(F.cross_entropy(logits, gold, reduction="none").cpu().numpy())
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    inverse = np.empty(len(rows), dtype=np.int64)
    inverse[np.asarray(order)] = np.arange(len(rows))
    return np.concatenate(preds)[inverse], np.concatenate(losses)[inverse]


def score_runs(rows: Rows, preds, losses, tasks_by_index) -> dict[tuple[int, int], dict]:
    """Per (run, task index): ``acc``, macro-``f1``, mean ``loss`` and the predictions ``pred``."""
    by: dict[tuple[int, int], tuple[list[int], list[int], list[float]]] = {}
    for (r, t, ex), p, l in zip(rows, preds, losses):
        g = by.setdefault((r, t), ([], [], []))
        g[0].append(int(p))
        g[1].append(ex.label)
        g[2].append(float(l))
    out: dict[tuple[int, int], dict] = {}
    for (r, t), (p, g, l) in by.items():
        out[(r, t)] = {
            "acc": accuracy(p, g),
            "f1": macro_f1(p, g, len(tasks_by_index[t].labels)),
            "loss": float(np.mean(l)),
            "pred": p,
        }
    return out


class DevEvaluation(Callback):
    """The dev schedule, best-dev selection and early stopping of every run of a bank.

    ``evaluate(rows) -> (preds, losses)`` scores rows with the method as it is now (the loop passes
    one that splits rows over ranks when the bank is row-parallel); ``dev_rows`` are every run's
    ``(run, task index, example)`` dev rows; ``tasks`` the bank's tasks, by index.
    """

    def __init__(self, evaluate: Callable[[list], tuple[np.ndarray, np.ndarray]], dev_rows: Rows, tasks):
        self.evaluate = evaluate
        self.dev_rows = list(dev_rows)
        self.tasks = list(tasks)

    def on_train_begin(self, bank: BankState) -> None:
        # a resumed bank has its evaluations in its checkpoint; a method whose initial state is no
        # candidate answer (MSF's random auto-encoders) skips the step-0 evaluation
        if bank.step == 0 and getattr(bank.method, "eval_at_start", True):
            self._evaluate(bank, 0, list(range(bank.n_runs)))

    def on_step_end(self, bank: BankState, step: int) -> None:
        due = [r for r in bank.stepped if r not in bank.diverged
               and (step % bank.runs[r].eval_every == 0 or step == bank.runs[r].steps)]
        if due:
            self._evaluate(bank, step, due)

    def _evaluate(self, bank: BankState, step: int, which: list[int]) -> None:
        bank.method.eval()
        try:
            self._score(bank, step, which)
        finally:
            bank.method.train()

    def _score(self, bank: BankState, step: int, which: list[int]) -> None:
        rows = [row for row in self.dev_rows if row[0] in set(which)]
        if not rows:
            return
        preds, losses = self.evaluate(rows)
        scores = score_runs(rows, preds, losses, self.tasks)
        for r in which:
            accs = [s["acc"] for (rr, _), s in scores.items() if rr == r]
            ls = [s["loss"] for (rr, _), s in scores.items() if rr == r]
            acc, loss = float(np.mean(accs)), float(np.mean(ls))
            bank.dev_curves[r].append((step, acc))
            best = bank.best[r]
            if acc > best["acc"] or (acc == best["acc"] and loss < best["loss"]):
                per_task_dev = {self.tasks[t].name: s for (rr, t), s in scores.items() if rr == r}
                bank.best[r] = {"acc": acc, "loss": loss, "step": step, "state": bank.method.run_state(r),
                                "dev": per_task_dev}
                bank.since_best[r] = 0
            else:
                bank.since_best[r] += 1
                patience = bank.runs[r].patience
                if patience is not None and bank.since_best[r] >= patience and bank.active[r]:
                    bank.stop(r, "early_stopped")
