"""The GLUE task registry: where each task's text and labels live, and how it is scored.

Every source (embedded copy, local GLUE directory, hub) is normalised to the same columns:
``sentence1``, ``sentence2`` (empty for single-sentence tasks) and ``label`` (int class id, or float
score for STS-B). Metrics use scikit-learn and scipy because ``evaluate`` cannot load metrics offline.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from .errors import LnftError


def _accuracy(labels, preds):
    return float(accuracy_score(labels, preds))


def _f1(labels, preds):
    return float(f1_score(labels, preds))


def _matthews(labels, preds):
    return float(matthews_corrcoef(labels, preds))


def _pearson(labels, preds):
    # a constant prediction scores 0 by convention; exact test (np.std of a constant float array can be 1e-17, and
    # scipy then returns NaN)
    return float(pearsonr(preds, labels)[0]) if np.ptp(preds) > 0 else 0.0


def _spearman(labels, preds):
    return float(spearmanr(preds, labels)[0]) if np.ptp(preds) > 0 else 0.0


METRIC_FUNCTIONS = {
    "accuracy": _accuracy,
    "f1": _f1,
    "matthews": _matthews,
    "pearson": _pearson,
    "spearman": _spearman,
}


@dataclass(frozen=True)
class Task:
    """One GLUE task: file layout of the original GLUE download, hub layout, labels and metrics."""

    name: str  # canonical lower-case key, e.g. "sst2"
    glue_dir: str  # directory name in the GLUE download, e.g. "SST-2"
    text_columns: tuple[str, ...]  # TSV columns (names, or int positions if headerless)
    label_column: str | int
    labels: tuple[str, ...]  # label strings as written in the TSVs (empty: regression)
    metrics: tuple[str, ...]
    dev_files: dict[str, str]  # eval split name -> file in glue_dir
    hub_config: str
    hub_text_columns: tuple[str, ...]
    hub_dev_splits: dict[str, str]  # eval split name -> hub split
    header: bool = True
    aliases: tuple[str, ...] = field(default=())
    spec: object = field(default=None, compare=False)  # a task from a spec file (lnft.taskspec.Spec); None: GLUE

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    @property
    def dev_split_names(self) -> tuple[str, ...]:
        return tuple(self.dev_files)

    def metric_names(self) -> list[str]:
        """Names of the reported metrics; tasks with two dev sets (MNLI) get one per set."""
        if len(self.dev_files) == 1:
            return list(self.metrics)
        return [f"{m}_{split.removeprefix('dev_')}" for split in self.dev_files for m in self.metrics]

    def compute_metrics(self, labels, preds, split: str | None = None) -> dict[str, float]:
        """Standard GLUE metrics for one eval split, as fractions (not points)."""
        labels, preds = np.asarray(labels), np.asarray(preds)
        suffix = "" if len(self.dev_files) == 1 or split is None else "_" + split.removeprefix("dev_")
        return {f"{m}{suffix}": METRIC_FUNCTIONS[m](labels, preds) for m in self.metrics}

    def undefined_metrics(self, labels) -> str:
        """Why the task's metrics cannot score a split with these labels ("" if they can): Pearson and Spearman
        need two different targets (one row, or constant targets, make them undefined: NaN); Matthews needs two
        classes and F1 a row of the positive class (else they are 0 whatever a model predicts)."""
        labels = np.asarray(labels)
        if self.is_regression:
            if len(labels) < 2:
                return "Pearson and Spearman need at least 2 rows"
            if np.all(labels == labels[0]):
                return f"every target is {float(labels[0]):g}, and Pearson and Spearman are undefined for constant targets"
            return ""
        classes = np.unique(labels)
        if "matthews" in self.metrics and len(classes) < 2:
            return (f"every label is {self.labels[int(classes[0])]!r}, and the Matthews correlation is then 0 whatever "
                    "a model predicts")
        if "f1" in self.metrics and 1 not in classes:
            return f"no row has the positive label {self.labels[1]!r}, and F1 is then 0 whatever a model predicts"
        return ""

    def score(self, metrics: dict[str, float]) -> float:
        """GLUE leaderboard convention: the mean of the task's standard metrics, in points."""
        return 100.0 * float(np.mean([metrics[m] for m in self.metric_names()]))


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("cola", "CoLA", (3,), 1, ("0", "1"), ("matthews",), {"dev": "dev.tsv"},
             "cola", ("sentence",), {"dev": "validation"}, header=False),
        Task("sst2", "SST-2", ("sentence",), "label", ("0", "1"), ("accuracy",), {"dev": "dev.tsv"},
             "sst2", ("sentence",), {"dev": "validation"}, aliases=("sst-2", "sst")),
        Task("mrpc", "MRPC", ("#1 String", "#2 String"), "Quality", ("0", "1"), ("f1", "accuracy"),
             {"dev": "dev.tsv"}, "mrpc", ("sentence1", "sentence2"), {"dev": "validation"}),
        Task("stsb", "STS-B", ("sentence1", "sentence2"), "score", (), ("pearson", "spearman"),
             {"dev": "dev.tsv"}, "stsb", ("sentence1", "sentence2"), {"dev": "validation"},
             aliases=("sts-b", "sts")),
        Task("qqp", "QQP", ("question1", "question2"), "is_duplicate", ("0", "1"), ("f1", "accuracy"),
             {"dev": "dev.tsv"}, "qqp", ("question1", "question2"), {"dev": "validation"}),
        Task("mnli", "MNLI", ("sentence1", "sentence2"), "gold_label",
             ("entailment", "neutral", "contradiction"), ("accuracy",),
             {"dev_matched": "dev_matched.tsv", "dev_mismatched": "dev_mismatched.tsv"},
             "mnli", ("premise", "hypothesis"),
             {"dev_matched": "validation_matched", "dev_mismatched": "validation_mismatched"}),
        Task("qnli", "QNLI", ("question", "sentence"), "label", ("entailment", "not_entailment"),
             ("accuracy",), {"dev": "dev.tsv"}, "qnli", ("question", "sentence"), {"dev": "validation"}),
        Task("rte", "RTE", ("sentence1", "sentence2"), "label", ("entailment", "not_entailment"),
             ("accuracy",), {"dev": "dev.tsv"}, "rte", ("sentence1", "sentence2"), {"dev": "validation"}),
        Task("wnli", "WNLI", ("sentence1", "sentence2"), "label", ("0", "1"), ("accuracy",),
             {"dev": "dev.tsv"}, "wnli", ("sentence1", "sentence2"), {"dev": "validation"}),
    ]
}

_SPEC_TASKS: dict[str, Task] = {}  # name -> a task loaded from a spec file (lnft.taskspec) in this process


def register(task: Task) -> None:
    """Make a task from a spec file findable by ``get_task`` (``lnft.taskspec.load_spec`` calls this)."""
    _SPEC_TASKS[task.name] = task


def get_task(name: str) -> Task:
    key = str(name).lower()
    for task in TASKS.values():
        if key in (task.name, task.glue_dir.lower(), *task.aliases):
            return task
    task = _SPEC_TASKS.get(str(name))
    if task is not None:
        return task
    raise LnftError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}, or your own task (--task-spec FILE)")
