"""The on-disk record of one run: its files, their checksums, and reading a record back with its checks.

``<run id>/record.json`` holds the RunResult (config, fingerprints, history, metrics, timing, memory,
versions, and the size and sha256 of every other file of the run); ``trained.safetensors`` the trained
tensors of the selected epoch; ``predictions.npz`` the per-example predictions and labels of the selected
epoch on the validation and dev splits. ``write_run`` writes these into a directory, ``read_run`` reads
them back and raises ``BrokenRun`` (saying why) for anything that cannot be served.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import sys

import torch

from ..result import (PREDICTIONS, Predictions, RunResult, nonfinite, read_predictions, recompute_metrics,
                      write_predictions)

RECORD = "record.json"
TRAINED = "trained.safetensors"
_WARNED: set[str] = set()


class BrokenRun(Exception):
    """A run directory that cannot be served (the message says why)."""


def read_run(path: str, run_id: str, *, deep: bool = False) -> RunResult:
    """Read and check the run in ``path``; ``deep`` also hashes and parses every file and recomputes the
    metrics from the stored predictions. Raises BrokenRun."""
    try:
        with open(os.path.join(path, RECORD), encoding="utf-8") as fh:
            result = RunResult.from_dict(json.load(fh))
    except FileNotFoundError:
        raise BrokenRun(f"no {RECORD}") from None
    except Exception as exc:  # noqa: BLE001 — truncated, garbage, {} or a foreign layout alike
        raise BrokenRun(f"unreadable {RECORD}: {type(exc).__name__}: {str(exc)[:80]}") from None
    if result.run_id != run_id:
        raise BrokenRun(f"{RECORD} is for run {result.run_id!r}")
    problem = nonfinite(result)  # e.g. a null score written by code that stored diverged runs
    if problem:
        raise BrokenRun(f"{RECORD}: {problem}")
    legacy = not result.fingerprints  # written before fingerprints and checksums (schema 1): stale, not broken
    if not legacy:
        own = own_id(result)
        if own not in (None, run_id):
            raise BrokenRun(f"{RECORD}'s config and fingerprints hash to run id {own!r}, not its own: edited "
                            "after it was written")
    if not legacy and "predictions" not in result.files:  # every record since schema 2 has them: the metrics'
        raise BrokenRun(f"{RECORD} lists no predictions")  # check (verify) cannot be dodged by dropping them
    for name in set(result.files.values()) | set(result.checksums):
        file = os.path.join(path, name)
        expected = result.checksums.get(name)
        if not os.path.isfile(file):
            raise BrokenRun(f"{name} is missing")
        if expected is None:
            if legacy:
                continue
            raise BrokenRun(f"{name} has no recorded size and sha256")
        if os.path.getsize(file) != expected["bytes"]:
            raise BrokenRun(f"{name} has {os.path.getsize(file)} bytes, {expected['bytes']} recorded")
        if deep:
            if sha256(file) != expected["sha256"]:
                raise BrokenRun(f"{name} does not match its recorded sha256")
            _check_readable(file)
    if deep and "predictions" in result.files:  # the record's metrics must be its predictions' metrics
        try:
            differ = recompute_metrics(result, read_predictions(os.path.join(path, result.files["predictions"])))
        except Exception as exc:  # noqa: BLE001 — e.g. a metric name no task has: the record cannot be checked
            raise BrokenRun(f"its metrics cannot be recomputed from its predictions ({type(exc).__name__}: "
                            f"{str(exc)[:80]})") from None
        if differ:
            raise BrokenRun("metrics differ from its predictions: " + ", ".join(
                f"{k} {_short(a)} recorded, {_short(b)} recomputed" for k, (a, b) in list(differ.items())[:3]))
    result.run_dir = path
    return result


def own_id(result: RunResult) -> str | None:
    """The run id a record's config and fingerprints hash to (``RunConfig.hashed_id``), reading no data or
    model; None when code of another version wrote it: its way of hashing may differ (such a run is stale,
    which ``lookup.freshness`` says). The stored config is the validated one the run trained with."""
    from ..config import RunConfig
    from ..constants import STORE_SCHEMA
    from ..errors import LnftError
    from ..fingerprints import code_fingerprint
    from ..tasks import get_task

    prints, cfg = result.fingerprints, result.config
    if prints.get("schema") != str(STORE_SCHEMA) or prints.get("code") != code_fingerprint():
        return None
    if cfg.task_spec:  # the spec itself enters by its fingerprint; whether it is regression, by its metrics
        task = _Kind(is_regression=bool({"pearson", "spearman"} & set(result.metrics)))
    else:
        try:
            task = get_task(cfg.task)
        except LnftError as exc:
            raise BrokenRun(f"{RECORD}: {exc}") from None
    local = {k: str(prints.get(k, "")).startswith("local:") for k in ("data", "model")}  # by content, not path
    data = "local directory" if local["data"] else cfg.data
    model = "local directory" if local["model"] else cfg.model
    device = result.device if cfg.device == "auto" else cfg.device  # what "auto" resolved to when it ran
    try:
        return RunConfig.hashed_id(cfg, data, model, device, task, prints)
    except Exception as exc:  # noqa: BLE001 — a config field of a type JSON cannot hold, say
        raise BrokenRun(f"{RECORD}'s config cannot be hashed ({type(exc).__name__}: {str(exc)[:80]})") from None


@dataclasses.dataclass(frozen=True)
class _Kind:
    is_regression: bool


def write_run(folder: str, result: RunResult, trained: dict[str, torch.Tensor],
              predictions: dict[str, Predictions] | None) -> None:
    """Write a run's files into the (new, empty) ``folder``, the record last, with the size and sha256
    of every file written before it."""
    from safetensors.torch import save_file

    save_file({n: t.contiguous() for n, t in trained.items()}, os.path.join(folder, TRAINED))
    result.files = {"trained": TRAINED}
    if predictions:
        write_predictions(os.path.join(folder, PREDICTIONS), predictions)
        result.files["predictions"] = PREDICTIONS
    result.checksums = {name: {"bytes": os.path.getsize(os.path.join(folder, name)),
                               "sha256": sha256(os.path.join(folder, name))}
                        for name in sorted(os.listdir(folder))}
    result.created = now()
    result.run_dir = None
    with open(os.path.join(folder, RECORD), "w", encoding="utf-8") as fh:
        json.dump(finite(result.to_dict()), fh, indent=1, default=str, allow_nan=False)
        fh.flush()
        os.fsync(fh.fileno())


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def sha256(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _check_readable(path: str) -> None:
    """Parse a run file completely: tensors (safetensors) and predictions (npz)."""
    from safetensors.torch import load_file

    try:
        if path.endswith(".safetensors"):
            load_file(path)
        elif path.endswith(".npz"):
            read_predictions(path)
    except Exception as exc:  # noqa: BLE001
        raise BrokenRun(f"{os.path.basename(path)} is unreadable: {str(exc)[:80]}") from None


def _short(value) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) else repr(value)


def finite(value):
    """JSON-safe: non-finite floats (a diverged metric) become null instead of invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def warn(message: str) -> None:
    """One warning line on stderr, once per process per message."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"lnft: warning: {message}", file=sys.stderr, flush=True)
