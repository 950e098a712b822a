"""One glossary for the app: each term the pages use, defined in one line of plain words.

Pages take their widgets' ``help=`` tooltips from here (:func:`help_for`) and list the terms they use
in a "Terms on this page" expander (:data:`PAGE_TERMS`, drawn by ``widgets.terms_expander``). Nothing
here imports torch or streamlit: the module is plain data, cheap to import anywhere (tests, the CLI).
"""
from __future__ import annotations

from typing import Iterable

TERMS: dict[str, str] = {
    "soft prompt": "A few trainable vectors put in front of the input's word embeddings; the model itself stays "
                   "frozen.",
    "prompt tuning (PT)": "Training only a soft prompt for one task, on its few-shot examples, with the model frozen.",
    "zero-shot": "The frozen model with no tuning at all: it scores each label name and picks the best.",
    "linear probe": "A logistic regression on the frozen model's sentence embedding: a cheap baseline that trains "
                    "no prompt.",
    "chance": "The accuracy of guessing a label uniformly at random: 1 / (number of labels).",
    "MSF": "Multi-task subspace finding: an auto-encoder trained over many tasks' PT prompts, whose middle layer is "
           "the shared low-dimensional subspace.",
    "Proj": "MSF's encoder: a linear map from a flattened prompt (n tokens × hidden size) to d_I numbers.",
    "Proj_b (decoder)": "MSF's decoder: d_I numbers -> a small network -> a full soft prompt; frozen after MSF.",
    "IST": "Intrinsic subspace tuning: a task is tuned by training only d_I numbers, decoded into a prompt by the "
           "frozen Proj_b.",
    "d_I": "The intrinsic dimension: how many numbers a task may train in the subspace (the size of Proj's output).",
    "found vs random subspace": "Found: the decoder MSF trained on many tasks' prompts; random: an untrained decoder "
                                "of the same d_I, the control.",
    "linear subspace": "The top d_I principal directions of the training tasks' prompts (PCA): a linear control beside "
                       "the found subspace.",
    "d50 / d90": "The smallest measured d_I whose pooled gain recovery reaches 50% / 90% of PT's gain over zero-shot.",
    "finished (IST)": "An IST run whose dev accuracy no longer rose over the last fifth of its steps; if not, its "
                      "recovery is a lower bound.",
    "seen vs unseen tasks": "Seen: MSF's training tasks, tuned again on new few-shot data; unseen: tasks MSF never "
                           "saw.",
    "recovery": "Score(IST) / score(PT), mean over tasks: the share of prompt tuning's score that the d_I numbers "
                "reach.",
    "gain recovery": "(IST − zero-shot) / (PT − zero-shot): the share of PT's gain over no tuning; 0 = zero-shot's "
                     "level, 1 = PT's.",
    "alpha": "MSF's reconstruction weight: loss = task loss + alpha × MSE(decoded prompt, original prompt).",
    "norm": "How MSF normalises the prompts before the auto-encoder: per layer (layer), one scale (global) or not "
            "at all (none).",
    "shallow vs deep prompts": "Shallow: a soft prompt at the input only; deep: a soft prompt at every layer of "
                               "the model.",
    "ATTEMPT": "A new task's prompt plus an input-dependent attention mix of frozen prompts from source tasks "
               "(Asai et al. 2022).",
    "VIP": "Input-specific prompt vectors from a small contextualiser, snapped to a learned codebook "
           "(Bhardwaj et al. 2022).",
    "dev/test split": "Dev: held-out data to choose settings and steps on; test: reported only, never chosen on.",
    "intrinsic space": "Tasks as their d_I numbers: Proj of their PT prompts, or their IST solutions.",
    "stability": "How much a run's result varies with its random seed: the spread (std) over seeds.",
    "source and target task": "Transfer: prompt tuning of the target starts from the prompt trained on the source.",
    "gain": "Target accuracy from the source's prompt minus from the default start, same budget; > 0: it helps.",
    "Spearman": "Rank correlation, -1 to 1: do the sources a measure ranks higher gain more? 0: no relation.",
    "NDCG@k": "How close a measure's top k sources come to the k best by gain, in order: 1 = perfect.",
    "Regret@k": "The best gain among a measure's top k sources, short of the best source's (accuracy points).",
    "oracle": "The best source in hindsight, known only after every run: the reference a measure is judged by.",
    "seed agreement": "Spearman of one seed's gains against another seed's: how far any measure can predict them.",
}

# the terms each page uses, in the order its "Terms on this page" expander lists them
PAGE_TERMS: dict[str, tuple[str, ...]] = {
    "recovery": ("prompt tuning (PT)", "zero-shot", "IST", "d_I", "recovery", "gain recovery",
                 "seen vs unseen tasks", "found vs random subspace", "linear subspace", "d50 / d90", "finished (IST)",
                 "MSF", "Proj", "Proj_b (decoder)", "alpha",
                 "norm", "shallow vs deep prompts", "dev/test split"),
    "stability": ("prompt tuning (PT)", "IST", "d_I", "stability", "MSF", "Proj_b (decoder)", "dev/test split"),
    "task_map": ("soft prompt", "prompt tuning (PT)", "intrinsic space", "MSF", "Proj", "IST", "d_I",
                 "shallow vs deep prompts", "zero-shot", "chance"),
    "methods": ("prompt tuning (PT)", "zero-shot", "linear probe", "IST", "MSF", "ATTEMPT", "VIP",
                "dev/test split"),
    "transfer": ("soft prompt", "prompt tuning (PT)", "source and target task", "gain", "Spearman", "NDCG@k",
                 "Regret@k", "oracle", "seed agreement", "intrinsic space"),
}


def define(term: str) -> str:
    """The one-line definition of ``term`` (KeyError for a term the glossary lacks: add it here)."""
    return TERMS[term]


def help_for(*terms: str, lead: str = "") -> str:
    """A widget's ``help=`` tooltip: ``lead`` (what the widget does), then each term defined."""
    lines = [lead] if lead else []
    lines += [f"**{t}**: {define(t)}" for t in terms]
    return "\n\n".join(lines)


def terms_markdown(terms: Iterable[str]) -> str:
    """A compact markdown list of ``terms`` and their definitions (the body of the page's expander)."""
    return "\n".join(f"- **{t}**: {define(t)}" for t in terms)
