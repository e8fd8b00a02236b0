"""Your own task from a short spec file (YAML or JSON): train and dev data, text and label columns,
classification with its labels or regression, metrics among lnft's (``lnft.tasks.METRIC_FUNCTIONS``).

```yaml
name: reviews                 # the task's name in run ids, tables and figures (not a GLUE task's)
train: reviews_train.csv      # CSV, TSV or JSON Lines (.csv, .tsv, .jsonl); paths relative to the spec
dev: reviews_dev.csv
text: review                  # one text column, or a pair: [premise, hypothesis]
label: sentiment
labels: [negative, positive]  # classification: the label values, in class-id order; or `regression: true`
metrics: [accuracy, f1]       # default: accuracy (classification), pearson and spearman (regression)
```
Instead of ``train``/``dev`` files, ``hub: NAME`` (with optional ``hub_config`` and ``splits: {train:
train, dev: validation}``) names a hub dataset (needs internet).

``load_spec(path)`` reads the spec and its data, checks everything up front (missing columns, labels
outside the declared set, non-numeric or non-finite regression targets, empty files) with one line naming
the bad value and what is allowed, and registers the task so that ``lnft.tasks.get_task(name)`` finds it.
The task's data fingerprint hashes the spec's meaning and the data files' content: the run id changes
when the data does, not when a file is renamed or moved.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import LnftError
from .fingerprints import digest, file_hash, hub_revision
from .errors import short_repr
from .tasks import METRIC_FUNCTIONS, Task, register

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}
KEYS = ("name", "train", "dev", "hub", "hub_config", "splits", "text", "label", "labels", "regression", "metrics")
CLASSIFICATION_METRICS = ("accuracy", "f1", "matthews")
REGRESSION_METRICS = ("pearson", "spearman")

@dataclass(frozen=True)
class Spec:
    path: str  # the spec file, absolute
    name: str
    text: tuple[str, ...]
    label: str
    labels: tuple[str, ...]  # empty: regression
    metrics: tuple[str, ...]
    train: str | None = None  # data files, absolute
    dev: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    splits: tuple[tuple[str, str], ...] = (("train", "train"), ("dev", "validation"))

    def meaning(self) -> dict:
        """What decides the data a run sees, without file paths (their content goes in the fingerprint)."""
        return {"name": self.name, "text": list(self.text), "label": self.label, "labels": list(self.labels),
                "metrics": list(self.metrics), "hub": self.hub, "hub_config": self.hub_config,
                "splits": [list(s) for s in self.splits] if self.hub else None,
                "formats": [FORMATS[_ext(p)] for p in (self.train, self.dev)] if not self.hub else None}

    def fingerprint(self) -> str:
        if self.hub:
            revision = hub_revision(self.hub, "dataset")
            where = f"hub:{self.hub}@{revision}" if revision else f"hub:{self.hub} (revision unknown: by name only)"
        else:
            where = {"train": file_hash(self.train), "dev": file_hash(self.dev)}
        return "task-spec:sha256:" + digest({"spec": self.meaning(), "data": where})


def load_spec(path: str) -> Task:
    """The task of a spec file, checked with its data and registered; the same Task for the same content."""
    spec = read_spec(path)
    task = Task(spec.name, "", spec.text, spec.label, spec.labels, spec.metrics, {"dev": spec.dev or ""},
                spec.hub_config or "", spec.text, {"dev": dict(spec.splits)["dev"]}, spec=spec)
    load_raw(spec)  # read and check the data now: bad rows fail before any model loads
    register(task)
    return task


# ------------------------------------------------------------------ the spec file
class _Alias(Exception):
    """A YAML alias in a spec (``*name``): refused, since nested aliases multiply a small file a million-fold."""


def _load_yaml(fh):
    """The spec's values as YAML 1.2 reads them: only true/false are booleans (YAML 1.1, PyYAML's default,
    reads the labels no, yes, on, off as booleans), and no aliases (``*name``: an alias bomb)."""
    import yaml

    class Loader(yaml.SafeLoader):
        yaml_implicit_resolvers = {
            first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise _Alias(f"alias *{event.anchor} at line {event.start_mark.line + 1}")
            return super().compose_node(parent, index)

    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    return yaml.load(fh, Loader=Loader)  # noqa: S506 — a SafeLoader


def read_spec(path: str) -> Spec:
    import yaml

    shown = path
    path = os.path.abspath(os.path.expanduser(str(path)))
    if not os.path.isfile(path):
        raise LnftError(f"task spec {shown!r} does not exist; allowed: a YAML or JSON file (see README 'Your own task')")
    try:
        with open(path, encoding="utf-8") as fh:
            values = _load_yaml(fh)  # JSON is YAML
    except OSError as exc:
        raise LnftError(f"task spec {shown!r} is unreadable ({exc.strerror or type(exc).__name__}); allowed: a "
                        "YAML or JSON file lnft can read (check its permissions)") from None
    except _Alias as exc:
        raise LnftError(f"task spec {shown!r} uses a YAML alias ({exc}); allowed: plain values, without anchors "
                        "(&name) and aliases (*name)") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise LnftError(f"task spec {shown!r} is not valid YAML/JSON ({first}); allowed: a mapping of "
                        f"{', '.join(KEYS)}") from None
    if not isinstance(values, dict) or not values:
        raise LnftError(f"task spec {shown!r} holds {type(values).__name__}, not a mapping; allowed: a mapping of "
                        f"{', '.join(KEYS)}")
    unknown = sorted(str(k) for k in set(values) - set(KEYS))
    if unknown:
        raise LnftError(f"task spec {shown!r}: unknown key(s) {short_repr(unknown)}; allowed: {', '.join(KEYS)}")

    def need(key, kind=str):
        if key not in values or values[key] in (None, "", []):
            raise LnftError(f"task spec {shown!r} lacks {key!r}; allowed keys: {', '.join(KEYS)}")
        if not isinstance(values[key], kind):
            raise LnftError(f"task spec {shown!r}: {key} is {short_repr(values[key])}; allowed: a {kind.__name__}")
        return values[key]

    from .tasks import TASKS, get_task

    name = str(need("name"))
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", name):
        raise LnftError(f"task spec {shown!r}: name {short_repr(name)}; allowed: lower-case letters, digits, '-' and '_' "
                        "(at most 40, starting with a letter or digit)")
    try:
        glue = get_task(name)
    except LnftError:
        glue = None
    if glue is not None and glue.name in TASKS:
        raise LnftError(f"task spec {shown!r}: name {name!r} is GLUE's {glue.name!r}; allowed: another name")
    text = values.get("text")
    text = (text,) if isinstance(text, str) else tuple(text) if isinstance(text, list) else None
    if not text or len(text) > 2 or not all(isinstance(t, str) and t for t in text) or len(set(text)) < len(text):
        raise LnftError(f"task spec {shown!r}: text is {short_repr(values.get('text'))}; allowed: a column name or a list of "
                        "two different column names")
    label = str(need("label"))
    if label in text:
        raise LnftError(f"task spec {shown!r}: label column {short_repr(label)} is also a text column; allowed: another column")
    regression = values.get("regression", False)
    if not isinstance(regression, bool):
        raise LnftError(f"task spec {shown!r}: regression is {short_repr(regression)}; allowed: true or false")
    labels = values.get("labels")
    if regression:
        if labels:
            raise LnftError(f"task spec {shown!r} has both labels and regression: true; allowed: one of them")
        labels = ()
    else:
        if not isinstance(labels, list) or len(labels) < 2:
            raise LnftError(f"task spec {shown!r}: labels is {short_repr(labels)}; allowed: a list of at least two label "
                            "values (classification), or regression: true")
        labels = tuple(_label_text(v) for v in labels)
        if len(set(labels)) < len(labels):
            raise LnftError(f"task spec {shown!r}: labels {short_repr(list(labels))} repeat a value; allowed: distinct values")
    allowed = REGRESSION_METRICS if regression else CLASSIFICATION_METRICS
    metrics = values.get("metrics") or (list(REGRESSION_METRICS) if regression else ["accuracy"])
    metrics = [metrics] if isinstance(metrics, str) else metrics
    bad = [m for m in metrics if m not in allowed] if isinstance(metrics, list) else [metrics]
    if bad:
        known = [m for m in bad if m in METRIC_FUNCTIONS]
        why = f" ({', '.join(map(str, known))}: not for {'regression' if regression else 'classification'})" if known else ""
        raise LnftError(f"task spec {shown!r}: metric(s) {short_repr(bad)}{why}; allowed: {', '.join(allowed)}")
    if "f1" in metrics and len(labels) != 2:
        raise LnftError(f"task spec {shown!r}: metric f1 needs exactly two labels, not {len(labels)}; "
                        f"allowed: accuracy, matthews")
    if len(set(metrics)) < len(metrics):
        raise LnftError(f"task spec {shown!r}: metrics {short_repr(metrics)} repeat a name; allowed: distinct names")
    base = os.path.dirname(path)
    if values.get("hub"):
        if values.get("train") or values.get("dev"):
            raise LnftError(f"task spec {shown!r} names both hub and train/dev files; allowed: one of them")
        splits = values.get("splits") or {"train": "train", "dev": "validation"}
        if not isinstance(splits, dict) or set(splits) != {"train", "dev"} or not all(
                isinstance(v, str) and v for v in splits.values()):
            raise LnftError(f"task spec {shown!r}: splits is {short_repr(splits)}; allowed: {{train: SPLIT, dev: SPLIT}}")
        hub_config = values.get("hub_config")
        return Spec(path, name, text, label, labels, tuple(metrics), hub=str(values["hub"]),
                    hub_config=str(hub_config) if hub_config else None,
                    splits=(("train", splits["train"]), ("dev", splits["dev"])))
    files = {}
    for key in ("train", "dev"):
        given = str(need(key))
        file = os.path.normpath(os.path.join(base, os.path.expanduser(given)))
        if _ext(file) not in FORMATS:
            raise LnftError(f"task spec {shown!r}: {key} file {short_repr(given)} has an unknown format; allowed: "
                            f"{', '.join(FORMATS)} (CSV, TSV, JSON Lines)")
        if not os.path.isfile(file):
            raise LnftError(f"task spec {shown!r}: {key} file {short_repr(given)} does not exist (relative paths start at "
                            "the spec's folder); allowed: an existing file")
        files[key] = file
    return Spec(path, name, text, label, labels, tuple(metrics), train=files["train"], dev=files["dev"])


def _ext(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _label_text(value) -> str:
    """A label value as the data files compare it: 1, 1.0 and "1" are one label; true is "true"."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# ------------------------------------------------------------------ the data
_CACHE: dict[str, object] = {}


def load_raw(spec: Spec):
    """``DatasetDict`` with splits train and dev, columns sentence1, sentence2, label (class id or float),
    read once per content (the cache key is the fingerprint)."""
    from datasets import Dataset, DatasetDict

    key = spec.fingerprint()
    if key not in _CACHE:
        if spec.hub:
            frames = _hub_frames(spec)
        else:
            frames = {"train": _read_file(spec.train, spec), "dev": _read_file(spec.dev, spec)}
        if len(frames["train"]) < 2:
            raise LnftError(f"train data of task {spec.name!r} has {len(frames['train'])} row(s); allowed: at "
                            "least 2 (some are held out for validation)")
        _CACHE[key] = DatasetDict({s: Dataset.from_pandas(f, preserve_index=False) for s, f in frames.items()})
    return _CACHE[key]


def _read_file(path: str, spec: Spec) -> pd.DataFrame:
    kind = FORMATS[_ext(path)]
    if os.path.getsize(path) == 0:
        raise LnftError(f"data file {path}: the file is empty; allowed: a {kind.upper()} file with a header "
                        f"and at least one row" if kind != "jsonl" else
                        f"data file {path}: the file is empty; allowed: JSON Lines with at least one object")
    try:
        if kind == "jsonl":
            frame, first_row = _read_jsonl(path), 1
        else:
            import csv

            _check_header(path, kind, spec)
            frame = pd.read_csv(path, sep="," if kind == "csv" else "\t", dtype=object, keep_default_na=False,
                                na_values=[], encoding="utf-8-sig",
                                quoting=csv.QUOTE_MINIMAL if kind == "csv" else csv.QUOTE_NONE)
            first_row = 2  # line 1 is the header
    except UnicodeDecodeError as exc:
        raise LnftError(f"data file {path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LnftError(f"data file {path} is unreadable ({exc.strerror or type(exc).__name__}); allowed: a file "
                        "lnft can read (check its permissions)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise LnftError(f"data file {path}: malformed {kind.upper()} ({str(exc).strip().splitlines()[-1]})") from None
    return _normalise(frame, spec, path, first_row, "line")


def _check_header(path: str, kind: str, spec: Spec) -> None:
    """A column the task uses must be named once in the header: pandas would rename a repeat ("label.1") and
    silently use the first (as ``lnft.sources.read_glue_tsv`` refuses for GLUE files)."""
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:
        if kind == "csv":
            header = next(csv.reader(fh), [])
        else:
            header = fh.readline().rstrip("\r\n").split("\t")
    used = [c for c in (*spec.text, spec.label) if header.count(c) > 1]
    if used:
        raise LnftError(f"data file {path}: the header names column {short_repr(used[0])} {header.count(used[0])} "
                        "times; allowed: each column once")


class _RepeatedKey(Exception):
    pass


def _unique_keys(pairs):
    """A JSON object's keys, each once (``json.loads`` would keep the last of a repeated key without a word)."""
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        repeated = next(k for k in keys if keys.count(k) > 1)
        raise _RepeatedKey(f"key {short_repr(repeated)} appears {keys.count(repeated)} times")
    return dict(pairs)


def _read_jsonl(path: str) -> pd.DataFrame:
    rows = []
    with open(path, encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line, object_pairs_hook=_unique_keys)
            except json.JSONDecodeError as exc:
                raise LnftError(f"data file {path}: line {number} is not JSON ({exc.msg}); allowed: one JSON "
                                "object per line") from None
            except _RepeatedKey as exc:
                raise LnftError(f"data file {path}: line {number}: {exc}; allowed: each key once per object") from None
            if not isinstance(row, dict):
                raise LnftError(f"data file {path}: line {number} is a JSON {type(row).__name__}; allowed: an object")
            rows.append(row)
    return pd.DataFrame(rows, dtype=object)


def _normalise(frame: pd.DataFrame, spec: Spec, where: str, first_row: int, unit: str) -> pd.DataFrame:
    """Check the columns and every label of one split; return sentence1, sentence2, label."""
    if len(frame) == 0:
        raise LnftError(f"data file {where}: no data rows; allowed: at least one row")
    absent = [c for c in (*spec.text, spec.label) if c not in frame.columns]
    if absent:
        raise LnftError(f"data file {where}: missing column(s) {short_repr(absent)}; found "
                        f"{short_repr([str(c) for c in frame.columns], 200)}")
    for column in spec.text:
        missing = frame[column].map(lambda v: v is None or (isinstance(v, float) and math.isnan(v))).to_numpy()
        if missing.any():
            row = int(np.argmax(missing))
            raise LnftError(f"data file {where}: {unit} {row + first_row} has no text in column {column!r}; "
                            "allowed: a string (empty is allowed)")
    raw = frame[spec.label]
    if spec.labels:
        text = raw.map(lambda v: None if v is None else _label_text(v))
        ids = text.map({name: i for i, name in enumerate(spec.labels)})
        bad = ids.isna().to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise LnftError(f"data file {where}: {unit} {row + first_row} has label {short_repr(raw.iloc[row])} in "
                            f"column {spec.label!r}; allowed: {short_repr(', '.join(spec.labels), 200)[1:-1]}")
        labels = ids.astype("int64")
    else:
        numbers = pd.to_numeric(raw.map(lambda v: v.strip() if isinstance(v, str) else v), errors="coerce")
        numbers = numbers.where(~raw.map(lambda v: isinstance(v, bool)))  # true is not a number
        bad = ~np.isfinite(numbers.to_numpy(dtype=np.float64))
        if bad.any():
            row = int(np.argmax(bad))
            raise LnftError(f"data file {where}: {unit} {row + first_row} has regression target "
                            f"{short_repr(raw.iloc[row])} "
                            f"in column {spec.label!r}; allowed: a finite number")
        labels = numbers.astype("float32")
    return pd.DataFrame({
        "sentence1": frame[spec.text[0]].map(str).to_numpy(),
        "sentence2": frame[spec.text[1]].map(str).to_numpy() if len(spec.text) == 2 else "",
        "label": labels.to_numpy(),
    })


def _hub_frames(spec: Spec) -> dict[str, pd.DataFrame]:
    from . import hub

    reason = hub.offline_reason()
    if reason:
        raise LnftError(f"hub dataset {spec.hub!r} of task spec {spec.name!r} cannot be loaded: {reason}; "
                        "allowed: train/dev files in the spec, or a machine with internet")
    from datasets import load_dataset

    try:
        data = load_dataset(spec.hub, spec.hub_config) if spec.hub_config else load_dataset(spec.hub)
    except Exception as exc:  # noqa: BLE001 — network, missing dataset or config: one line
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise LnftError(f"hub dataset {spec.hub!r} cannot be loaded ({first})") from None
    out = {}
    for split, hub_split in spec.splits:
        if hub_split not in data:
            raise LnftError(f"hub dataset {spec.hub!r} has no split {hub_split!r}; allowed: {', '.join(data)}")
        frame = data[hub_split].to_pandas().astype(object)
        if spec.labels and spec.label in frame.columns:  # a ClassLabel column holds ids: compare its names
            feature = data[hub_split].features.get(spec.label)
            names = getattr(feature, "names", None)
            if names:
                frame[spec.label] = frame[spec.label].map(lambda i: names[i] if isinstance(i, int) and 0 <= i < len(names) else i)
        out[split] = _normalise(frame, spec, f"{spec.hub}[{hub_split}]", 0, "row")
    return out
