"""A task's data for training: its source's raw splits (``lnft.sources``: embedded, local GLUE directory, hub,
task spec), split into train / validation / dev, tokenized and batched.
"""
from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset, DatasetDict

from .errors import LnftError
from .sources import data_source
from .tasks import Task


def load_raw(data: str, task: Task) -> DatasetDict:
    """The task's train and dev split(s) from the source named by ``data`` (read once per process)."""
    return data_source(data, task).load()


# ------------------------------------------------------------------ splits
def make_splits(raw: DatasetDict, task: Task, *, data_seed: int, validation_fraction: float,
                max_train_samples: int | None, max_eval_samples: int | None) -> DatasetDict:
    """train / validation (held out from train, for model selection) / dev split(s) (reported).

    The validation rows are chosen from the whole train file before ``max_train_samples`` applies, so
    the train subset for a given size does not depend on the evaluation sizes, and vice versa.
    """
    idx = split_indices(len(raw["train"]), {s: len(raw[s]) for s in task.dev_files}, data_seed=data_seed,
                        validation_fraction=validation_fraction, max_train_samples=max_train_samples,
                        max_eval_samples=max_eval_samples)
    splits = {"train": raw["train"].select(idx["train"]), "validation": raw["train"].select(idx["validation"])}
    for split in task.dev_files:
        splits[split] = raw[split] if idx[split] is None else raw[split].select(idx[split])
    return DatasetDict(splits)


def split_indices(n_train: int, dev_sizes: dict[str, int], *, data_seed: int, validation_fraction: float,
                  max_train_samples: int | None, max_eval_samples: int | None) -> dict:
    """The rows ``make_splits`` takes, sorted: "train" and "validation" index the train file, each dev split its
    own file (None: all of it)."""
    rng = np.random.default_rng(data_seed)
    order = rng.permutation(n_train)
    n_validation = max(1, int(round(validation_fraction * n_train)))
    out = {"train": np.sort(order[n_validation:][: max_train_samples or None]),
           "validation": np.sort(order[:n_validation][: max_eval_samples or None])}
    for split, n in dev_sizes.items():
        # the dev subset never follows data_seed: every seed of a comparison is scored on the same dev examples
        dev_order = np.random.default_rng(0).permutation(n)
        out[split] = np.sort(dev_order[:max_eval_samples]) if max_eval_samples and max_eval_samples < n else None
    return out


def check_scoreable(labels: dict, task: Task, cfg=None) -> None:
    """Every split a run scores (validation, for model selection; dev, reported) must give each of the task's
    metrics a defined value: refused up front, with the reason, instead of a stored 0.0 or a "diverged" run."""
    for split, values in labels.items():
        why = task.undefined_metrics(values)
        if why:
            if split == "validation":
                hint = ("validation rows whose labels vary (they are held out from train: train labels that vary, "
                        "a larger validation_fraction or max_eval_samples)")
            else:
                more = " (a larger max_eval_samples)" if cfg is not None and cfg.max_eval_samples else ""
                hint = f"dev rows whose labels vary{more}"
            raise LnftError(f"{split} split of task {task.name!r} cannot be scored ({len(values)} row(s)): {why}; "
                            f"allowed: {hint}")


_CHECKED: dict[tuple, None] = {}


def check_eval_splits(cfg, task: Task) -> None:
    """``check_scoreable`` on the splits a config's run will see, before any model loads (once per data content
    and split settings). A hub dataset is checked when the run loads it (``load_task_data``): not downloaded here."""
    source = data_source(cfg.data, task)
    if source.kind == "hub":
        return
    key = (source.fingerprint(), task.name, task.metrics, cfg.seed if cfg.data_seed is None else cfg.data_seed,
           cfg.validation_fraction, getattr(cfg, "pool_size", 0),
           cfg.max_train_samples, cfg.max_eval_samples)
    if key in _CHECKED:
        return
    raw = source.load()
    if getattr(cfg, "pool_size", 0):  # the splits training draws: from the rows left once the pool is held out
        from .pool import hold_out

        raw, _ = hold_out(raw, task, cfg.pool_size, source.fingerprint())
    train = np.asarray(raw["train"]["label"][:])
    data_seed = cfg.seed if cfg.data_seed is None else cfg.data_seed  # None: follows the seed
    idx = split_indices(len(train), {s: len(raw[s]) for s in task.dev_files}, data_seed=data_seed,
                        validation_fraction=cfg.validation_fraction, max_train_samples=cfg.max_train_samples,
                        max_eval_samples=cfg.max_eval_samples)
    labels = {"validation": train[idx["validation"]]}
    for split in task.dev_files:
        dev = np.asarray(raw[split]["label"][:])
        labels[split] = dev if idx[split] is None else dev[idx[split]]
    check_scoreable(labels, task, cfg)
    _CHECKED[key] = None


def load_task_data(cfg, task: Task) -> DatasetDict:
    """The run's splits; with ``cfg.pool_size`` the pool (``lnft.pool``) is held out of the train file first,
    the other splits are drawn from the rest, and the pool is split ``pool``."""
    raw, pool = load_raw(cfg.data, task), None
    if getattr(cfg, "pool_size", 0):
        from .pool import SPLIT, hold_out
        from .sources import data_source

        raw, pool = hold_out(raw, task, cfg.pool_size, data_source(cfg.data, task).fingerprint())
    data_seed = cfg.seed if cfg.data_seed is None else cfg.data_seed  # None: follows the seed (RunConfig)
    splits = make_splits(raw, task, data_seed=data_seed, validation_fraction=cfg.validation_fraction,
                         max_train_samples=cfg.max_train_samples, max_eval_samples=cfg.max_eval_samples)
    check_scoreable({s: splits[s]["label"][:] for s in ("validation", *task.dev_files)}, task, cfg)
    if pool is not None:
        splits[SPLIT] = pool
    return splits


# ------------------------------------------------------------------ tokenization and batching
def tokenize(splits: DatasetDict, tokenizer, task: Task, max_seq_length: int) -> DatasetDict:
    """Token ids without padding (padding happens per batch), plus a length column for batching.
    The fast tokenizer runs on whole columns at once (``Dataset.map`` costs seconds here for nothing)."""
    out = {}
    for name, split in splits.items():
        texts = (split["sentence1"][:], split["sentence2"][:]) if task.is_pair else (split["sentence1"][:],)
        enc = dict(tokenizer(*texts, truncation=True, max_length=max_seq_length))
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        enc["label"] = split["label"][:]
        out[name] = Dataset.from_dict(enc)
    return DatasetDict(out)


def target_scale(train: Dataset, task: Task, standardize: bool) -> tuple[float, float]:
    """(mean, std) of the training labels for regression, so that the loss sees z-scores: a fresh head
    starts near 0 and would otherwise spend its first hundred steps learning the offset of STS-B's 0–5
    scale. Pearson and Spearman do not change under this affine map. (0, 1) when not applied."""
    if not (task.is_regression and standardize):
        return 0.0, 1.0
    labels = np.asarray(train["label"][:], dtype=np.float64)
    return float(labels.mean()), float(labels.std() or 1.0)


def length_grouped_batches(lengths, batch_size: int, generator: torch.Generator | None,
                           mega: int = 50) -> list[list[int]]:
    """Batches of similar length, in random order (HF's LengthGroupedSampler idea): shuffle, cut into
    mega-batches of ``mega * batch_size``, sort each by length, slice into batches, shuffle batches.
    With ``generator=None`` (evaluation) all examples are sorted by length and kept in that order."""
    n = len(lengths)
    lengths = np.asarray(lengths)
    if generator is None:
        order = np.argsort(-lengths, kind="stable")
        return [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]
    perm = torch.randperm(n, generator=generator).numpy()
    batches = []
    for start in range(0, n, mega * batch_size):
        chunk = perm[start:start + mega * batch_size]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size].tolist() for i in range(0, len(chunk), batch_size)]
    batch_order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in batch_order]


def random_batches(n: int, batch_size: int, generator: torch.Generator) -> list[list[int]]:
    perm = torch.randperm(n, generator=generator).tolist()
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


class Collator:
    """Pads a list of tokenized examples to the longest one (dynamic padding) and stacks labels."""

    MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids")

    def __init__(self, tokenizer, regression: bool, shift: float = 0.0, scale: float = 1.0):
        self.pad_id = tokenizer.pad_token_id or 0
        self.regression = regression
        self.shift, self.scale = shift, scale  # regression labels become (y - shift) / scale

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        batch = {}
        for key in self.MODEL_KEYS:
            if key not in rows[0]:
                continue
            fill = self.pad_id if key == "input_ids" else 0
            batch[key] = torch.tensor([r[key] + [fill] * (width - len(r[key])) for r in rows])
        if self.regression:
            batch["labels"] = (torch.tensor([r["label"] for r in rows], dtype=torch.float64) - self.shift) / self.scale
            batch["labels"] = batch["labels"].float()
        else:
            batch["labels"] = torch.tensor([r["label"] for r in rows], dtype=torch.long)
        return batch

    def unscale(self, predictions: np.ndarray) -> np.ndarray:
        """Model outputs back on the task's own scale (regression)."""
        return predictions * self.scale + self.shift if self.regression else predictions


def iterate(dataset: Dataset, batches: list[list[int]], collate: Collator):
    """Yield padded tensor batches for the given index lists."""
    columns = [c for c in (*Collator.MODEL_KEYS, "label") if c in dataset.column_names]
    data = {c: dataset[c][:] for c in columns}  # plain lists: fast per-row access
    for idx in batches:
        yield collate([{c: data[c][i] for c in columns} for i in idx])
