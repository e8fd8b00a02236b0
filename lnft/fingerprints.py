"""Content hashing, and nothing else: the run id hashes a config together with fingerprints of what decides
its result besides the config (data, model, code), so a changed dev file, re-saved weights or edited training
code give a new id instead of a stale cached result. Each source fingerprints itself with these
(``lnft.sources``); ``code_fingerprint`` hashes the training path's source.

Files are hashed (sha256) once per process per (path, size, mtime); the code fingerprint is computed once
per process; a hub name's revision is asked once per process.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os

# The modules whose source decides a result (the store, CLI, notebooks and analyses do not).
TRAINING_PATH = ("components", "config", "constants", "data", "fingerprints", "hub", "methods", "models", "pool",
                 "pooling", "result", "sources", "tasks", "taskspec", "train")

_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_hash(path: str) -> str:
    """sha256 of a file, cached by (path, size, mtime) so a warm lookup costs one stat; a file that cannot be
    read is one ``LnftError`` naming it (no permission, a broken link, a directory)."""
    shown, path = path, os.path.realpath(path)
    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in _FILE_HASHES:
            sha = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(block)
            _FILE_HASHES[key] = sha.hexdigest()
    except OSError as exc:
        from .errors import LnftError

        raise LnftError(f"file {shown} is unreadable ({exc.strerror or type(exc).__name__}); allowed: a file "
                        "lnft can read (check its permissions)") from None
    return _FILE_HASHES[key]


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def files_digest(paths: dict[str, str]) -> str:
    """One digest of named files (the names are relative, so moving a directory keeps its hash)."""
    return digest({name: file_hash(path) for name, path in sorted(paths.items())})


@functools.lru_cache(maxsize=16)
def hub_revision(name: str, kind: str) -> str | None:
    """The commit the hub (or, offline, the local cache) resolves ``name`` (a "model" or "dataset") to;
    None if neither can say."""
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


def hub_fingerprint(name: str, kind: str) -> str:
    """A hub name with its revision, or the name alone with a note saying so."""
    revision = hub_revision(name, kind)
    return f"hub:{name}@{revision}" if revision else f"hub:{name} (revision unknown: identified by name only)"


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 over the source of the modules on the training path (once per process)."""
    here = os.path.dirname(os.path.abspath(__file__))
    files = {f"{m}.py": os.path.join(here, f"{m}.py") for m in TRAINING_PATH}
    return "sha256:" + files_digest({n: p for n, p in files.items() if os.path.isfile(p)})
