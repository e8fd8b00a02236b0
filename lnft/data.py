"""GLUE data from three sources behind one function, split and tokenized for training.

Sources: the embedded copy shipped in this package (CoLA, SST-2, MRPC, STS-B, RTE), any local
directory in the original GLUE layout (``<TASK>/train.tsv``, ``<TASK>/dev.tsv``), or a hub dataset
(``nyu-mll/glue``). Each becomes a ``datasets.DatasetDict`` with columns sentence1, sentence2, label
and splits ``train`` plus the task's dev split(s).
"""
from __future__ import annotations

import csv
import functools
import gzip
import os
import zlib
from importlib import resources

import numpy as np
import pandas as pd
import torch
from datasets import Dataset, DatasetDict

from .config import EMBEDDED, HUB_GLUE
from .errors import LnftError
from .tasks import EMBEDDED_TASKS, Task

PATH_PREFIXES = ("/", "./", "../", "~")


def embedded_dir() -> str:
    return str(resources.files("lnft") / "glue_data")


def source_kind(data: str) -> str:
    """'embedded', 'local' (a directory path) or 'hub' (a dataset name)."""
    if data == EMBEDDED:
        return "embedded"
    if data.startswith(PATH_PREFIXES) or os.path.isdir(data):
        return "local"
    return "hub"


def _task_file(directory: str, task: Task, filename: str) -> str | None:
    """The path of a task file, plain or gzipped; None if neither exists."""
    for candidate in (filename, filename + ".gz"):
        path = os.path.join(directory, task.glue_dir, candidate)
        if os.path.isfile(path):
            return path
    return None


def check_source(data: str, task: Task) -> None:
    """Fail early, with what to do instead, if the task's data cannot come from this source."""
    if task.spec is not None:  # your own task: its spec names the data (lnft/taskspec.py checks it)
        return
    kind = source_kind(data)
    if kind == "embedded":
        if task.name not in EMBEDDED_TASKS:
            raise LnftError(
                f"task {task.name!r} is not in the embedded data (embedded: {', '.join(EMBEDDED_TASKS)}); "
                "pass --data-dir with a GLUE download or --data nyu-mll/glue with internet")
        return
    if kind == "local":
        directory = os.path.expanduser(data)
        if not os.path.isdir(directory):
            raise LnftError(f"data dir {data!r} does not exist; allowed: a directory holding <TASK>/train.tsv, <TASK>/dev.tsv")
        needed = ["train.tsv", *task.dev_files.values()]
        missing = [f"{task.glue_dir}/{f}" for f in needed if _task_file(directory, task, f) is None]
        if missing:
            raise LnftError(f"data dir {data!r} lacks {', '.join(missing)} for task {task.name!r}")
        return
    from . import hub

    reason = hub.offline_reason()
    if reason:
        raise LnftError(f"hub dataset {data!r} cannot be loaded: {reason}; "
                        "use the embedded data (--data embedded) or a local GLUE directory (--data-dir)")


def check_data(data: str, task: Task) -> None:
    """``check_source``, and for a local directory also read and check its files (cached per content),
    so an empty, header-only, truncated or malformed file fails before any model is loaded."""
    check_source(data, task)
    if source_kind(data) == "local":
        load_raw(data, task)


# ------------------------------------------------------------------ reading GLUE TSVs
def read_glue_tsv(path: str, task: Task) -> pd.DataFrame:
    """Read one GLUE TSV exactly: no quoting (STS-B has stray quotes), BOM-tolerant (MRPC),
    headerless CoLA; a malformed row raises an error naming the file and line."""
    header = _check_field_counts(path)
    if task.header:  # pandas would rename a repeated column ("label.1") and silently use the first
        used = [c for c in (*task.text_columns, task.label_column) if header.count(c) > 1]
        if used:
            raise LnftError(f"malformed TSV {path}: the header names column {used[0]!r} {header.count(used[0])} "
                            "times; allowed: each column once")
    try:
        frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, header=0 if task.header else None,
                            dtype=str, keep_default_na=False, na_values=[], encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise LnftError(f"malformed TSV {path}: the file is empty; allowed: a GLUE TSV with "
                        f"{'a header and ' if task.header else ''}at least one row") from None
    except pd.errors.ParserError as exc:
        raise LnftError(f"malformed TSV {path}: {str(exc).strip().splitlines()[-1]}") from None
    if len(frame) == 0:
        raise LnftError(f"malformed TSV {path}: no data rows after the header; allowed: at least one row")
    first_line = 2 if task.header else 1
    absent = [c for c in (*task.text_columns, task.label_column) if c not in frame.columns]
    if absent:
        raise LnftError(f"malformed TSV {path}: missing column(s) {absent}; found {list(frame.columns)}")
    raw_labels = frame[task.label_column].str.strip()
    if task.is_regression:
        labels = pd.to_numeric(raw_labels, errors="coerce")
        bad = ~np.isfinite(labels.to_numpy(dtype=float))  # unparsable (NaN), "inf", "nan" or 1e400 alike
        allowed = "a finite number"
    else:
        labels = raw_labels.map({name: i for i, name in enumerate(task.labels)})
        bad = labels.isna().to_numpy()
        allowed = ", ".join(task.labels)
    if bad.any():
        row = int(np.argmax(bad))
        raise LnftError(f"malformed TSV {path}: line {row + first_line} has label "
                        f"{raw_labels.iloc[row]!r}; allowed: {allowed}")
    out = pd.DataFrame({
        "sentence1": frame[task.text_columns[0]].to_numpy(),
        "sentence2": frame[task.text_columns[1]].to_numpy() if task.is_pair else "",
        "label": labels.astype("float32" if task.is_regression else "int64").to_numpy(),
    })
    return out


def _check_field_counts(path: str) -> list[str]:
    """Every line must have as many tab-separated fields as the first one (pandas would silently
    pad a short row with empty strings). Returns the first line's fields."""
    opener = gzip.open if path.endswith(".gz") else open
    first: list[str] = []
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            expected = None
            for number, line in enumerate(fh, start=1):
                fields = line.rstrip("\r\n").count("\t") + 1
                if expected is None:
                    expected = fields
                    first = line.rstrip("\r\n").split("\t")
                elif fields != expected and line.strip():
                    what = "too few" if fields < expected else "too many"
                    raise LnftError(f"malformed TSV {path}: line {number} has {what} fields "
                                    f"({fields}, expected {expected})")
    except UnicodeDecodeError as exc:
        raise LnftError(f"malformed TSV {path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (EOFError, OSError, zlib.error) as exc:  # a truncated or corrupt .gz
        raise LnftError(f"unreadable data file {path}: {exc or type(exc).__name__}; "
                        "allowed: a complete (optionally gzipped) GLUE TSV") from None
    return first


def load_raw(data: str, task: Task) -> DatasetDict:
    """The task's train and dev split(s) from the source named by ``data`` (read once per process)."""
    from .fingerprints import data_fingerprint

    if task.spec is not None:
        from .taskspec import load_raw as load_spec_data

        return load_spec_data(task.spec)
    check_source(data, task)
    raw = _load_raw_cached(data, task.name, data_fingerprint(data, task))  # edited files are read anew
    if len(raw["train"]) < 2:
        raise LnftError(f"train file of task {task.name!r} in {data!r} has {len(raw['train'])} row(s); "
                        "allowed: at least 2 (some are held out for validation)")
    return raw


@functools.lru_cache(maxsize=8)
def _load_raw_cached(data: str, task_name: str, fingerprint: str) -> DatasetDict:
    from .tasks import get_task

    task = get_task(task_name)
    kind = source_kind(data)
    if kind == "hub":
        return _load_hub(data, task)
    directory = embedded_dir() if kind == "embedded" else os.path.expanduser(data)
    files = {"train": "train.tsv", **task.dev_files}
    return DatasetDict({
        split: Dataset.from_pandas(read_glue_tsv(_task_file(directory, task, name), task), preserve_index=False)
        for split, name in files.items()
    })


def _load_hub(name: str, task: Task) -> DatasetDict:
    from datasets import load_dataset

    try:
        hub = load_dataset(name, task.hub_config)
    except Exception as exc:  # network, offline mode, missing dataset: all mean "use another source"
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise LnftError(f"hub dataset {name!r} (config {task.hub_config!r}) cannot be loaded ({reason}); "
                        "use the embedded data (--data embedded) or a local GLUE directory (--data-dir)") from None
    splits = {"train": "train", **task.hub_dev_splits}
    out = {}
    for split, hub_split in splits.items():
        ds = hub[hub_split]
        columns = {"sentence1": ds[task.hub_text_columns[0]],
                   "sentence2": ds[task.hub_text_columns[1]] if task.is_pair else [""] * len(ds),
                   "label": ds["label"]}
        frame = pd.DataFrame(columns)
        frame["label"] = frame["label"].astype("float32" if task.is_regression else "int64")
        out[split] = Dataset.from_pandas(frame, preserve_index=False)
    return DatasetDict(out)


# ------------------------------------------------------------------ splits
def make_splits(raw: DatasetDict, task: Task, *, data_seed: int, validation_fraction: float,
                max_train_samples: int | None, max_eval_samples: int | None) -> DatasetDict:
    """train / validation (held out from train, for model selection) / dev split(s) (reported).

    The validation rows are chosen from the whole train file before ``max_train_samples`` applies, so
    the train subset for a given size does not depend on the evaluation sizes, and vice versa.
    """
    rng = np.random.default_rng(data_seed)
    train_pool = raw["train"]
    order = rng.permutation(len(train_pool))
    n_validation = max(1, int(round(validation_fraction * len(train_pool))))
    validation_idx = order[:n_validation][: max_eval_samples or None]
    train_idx = order[n_validation:][: max_train_samples or None]
    splits = {"train": train_pool.select(np.sort(train_idx)),
              "validation": train_pool.select(np.sort(validation_idx))}
    for split in task.dev_files:
        dev = raw[split]
        if max_eval_samples and max_eval_samples < len(dev):
            dev = dev.select(np.sort(rng.permutation(len(dev))[:max_eval_samples]))
        splits[split] = dev
    return DatasetDict(splits)


def load_task_data(cfg, task: Task) -> DatasetDict:
    raw = load_raw(cfg.data, task)
    return make_splits(raw, task, data_seed=cfg.data_seed, validation_fraction=cfg.validation_fraction,
                       max_train_samples=cfg.max_train_samples, max_eval_samples=cfg.max_eval_samples)


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
