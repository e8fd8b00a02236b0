"""The results ledger: one compact, committed record per run, without weights, served by run id.

Why: the weight store (``runs/``) is git-ignored and lives on one machine, so every verdict rested on runs
nobody else could read, and an analysis-only change meant retraining. The ledger (a folder in the repository,
``$LNFT_LEDGER`` or ``--ledger``) keeps what the analyses read: ``<run id>.json.gz`` holds the config, the run
id and fingerprints, metrics, learning curves, per-example predictions on every split scored (the smallest
dtype that holds them exactly: int8 class ids, float32 scores), trainable counts, time, memory, versions, the
environment (commit, dirty tree, platform) and the run's derived data (``lnft.derived``: per-tensor change sums,
the masked-out check, the small trained tensors a Fisher start run gives). gzip level 9, no timestamp in its
header.

Rules: a record is served only when its name, its run id and its metrics (recomputed from its predictions)
agree; anything else is broken (one warning, treated as absent, replaced by the next run). A run that failed or
was cancelled is recorded apart, in ``failed/<run id>.json``, and never served. ``RunStore`` serves from its
run directories first, then from the ledger; it records every run it trains or serves from a run directory
into the ledger when one is configured.
"""
from __future__ import annotations

import functools
import gzip
import io
import json
import os
import platform
import subprocess
import sys

import numpy as np

from ..derived import decode, encode  # noqa: F401 — compact, exact arrays (re-exported)
from ..errors import LnftError
from ..result import Predictions, RunResult, nonfinite, recompute_metrics
from .files import BrokenRun, finite, now, own_id, warn

ENV = "LNFT_LEDGER"
ONLY_ENV = "LNFT_LEDGER_ONLY"  # "1": a run that is neither stored nor in the ledger is an error, never trained
FORMAT = 1
SUFFIX = ".json.gz"
FAILED = "failed"


@functools.lru_cache(maxsize=1)
def environment() -> dict:
    """Where a run was recorded: the commit and whether the package's tree was dirty, python, platform."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def git(*args):
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=30, cwd=here)
            return done.stdout.strip() if done.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD")
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"commit": commit or "unknown", "dirty": bool(git("status", "--porcelain", "--", "lnft")) if commit else None,
            "python": sys.version.split()[0], "platform": platform.platform(), "cpu": cpu}


class Ledger:
    """A folder of run records (see the module's docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = os.path.abspath(os.path.expanduser(str(root)))
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise LnftError(f"ledger {self.root!r} is a file; allowed: a directory (or a path to create)")

    @classmethod
    def from_env(cls) -> "Ledger | None":
        value = os.environ.get(ENV)
        return cls(value) if value else None

    def __repr__(self) -> str:
        return f"Ledger({self.root!r})"

    def path(self, run_id: str) -> str:
        return os.path.join(self.root, run_id + SUFFIX)

    def has(self, run_id: str) -> bool:
        return os.path.isfile(self.path(run_id))

    def run_ids(self) -> list[str]:
        if not os.path.isdir(self.root):
            return []
        return sorted(f[: -len(SUFFIX)] for f in os.listdir(self.root) if f.endswith(SUFFIX) and not f.startswith("."))

    def load(self, run_id: str) -> RunResult | None:
        """The recorded run, or None when absent or broken (broken: one warning line)."""
        if not self.has(run_id):
            return None
        try:
            return self.read(run_id)
        except BrokenRun as exc:
            warn(f"ledger record {self.path(run_id)} is broken ({exc}); treated as absent")
            return None

    def read(self, run_id: str) -> RunResult:
        """Read and check one record: its name, run id, finite values, and metrics its predictions give."""
        try:
            with gzip.open(self.path(run_id), "rt", encoding="utf-8") as fh:
                record = json.load(fh)
            result = RunResult.from_dict(record["result"])
            predictions = {split: Predictions(decode(p["preds"]), decode(p["labels"]), p["digest"])
                           for split, p in record["predictions"].items()}
        except FileNotFoundError:
            raise BrokenRun("no record") from None
        except Exception as exc:  # noqa: BLE001 — truncated, garbage or a foreign layout alike
            raise BrokenRun(f"unreadable: {type(exc).__name__}: {str(exc)[:80]}") from None
        if result.run_id != run_id:
            raise BrokenRun(f"it is the record of run {result.run_id!r}")
        own = own_id(result)  # a record whose config was edited would be served for that config otherwise
        if own not in (None, run_id):
            raise BrokenRun(f"its config and fingerprints hash to run id {own!r}, not its own: edited after it was "
                            "recorded")
        problem = nonfinite(result, None, predictions) or ("no predictions" if not predictions else "")
        if problem:
            raise BrokenRun(problem)
        try:
            differ = recompute_metrics(result, predictions)
        except LnftError:  # a task this process cannot look up (e.g. a task-spec run): served on its record
            differ = {}
        if differ:
            raise BrokenRun("metrics differ from its predictions: " + ", ".join(sorted(differ)[:3]))
        result.run_dir, result.files, result.checksums = None, {}, {}
        result.__dict__["_predictions"] = predictions  # RunResult.predictions() serves them
        result.__dict__["ledger"] = {"path": self.path(run_id), "environment": record.get("environment", {}),
                                     "recorded": record.get("recorded", "")}
        return result

    def record(self, result: RunResult, predictions: dict[str, Predictions]) -> str:
        """Write a run's record atomically (same content, same bytes); returns its path."""
        problem = nonfinite(result, None, predictions) or ("no predictions" if not predictions else "")
        if problem:
            raise LnftError(f"run {result.run_id}: {problem}; not recorded in the ledger")
        values = result.to_dict()
        for key in ("run_dir", "files", "checksums"):
            values.pop(key, None)
        record = {"format": FORMAT, "run_id": result.run_id, "result": finite(values),
                  "predictions": {split: {"digest": p.digest, "preds": encode(p.preds), "labels": encode(p.labels)}
                                  for split, p in sorted(predictions.items())},
                  "environment": environment(), "recorded": now()}
        return self._write(self.path(result.run_id), record)

    def add_derived(self, run_id: str, extra: dict) -> None:
        """Add parts to a recorded run's derived data (e.g. a Fisher start run's tensors, when first read)."""
        with gzip.open(self.path(run_id), "rt", encoding="utf-8") as fh:
            record = json.load(fh)
        record["result"]["derived"] = {**record["result"].get("derived", {}), **extra}
        self._write(self.path(run_id), record)

    def record_failure(self, run_id: str, config, error: str, detail: str = "") -> str | None:
        """A failed or cancelled run, apart (``failed/<run id>.json``): never served."""
        folder = os.path.join(self.root, FAILED)
        record = {"run_id": run_id, "config": config.to_dict(), "error": error, "detail": detail[-4000:],
                  "environment": environment(), "when": now()}
        path = os.path.join(folder, run_id + ".json")
        try:
            os.makedirs(folder, exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(finite(record), fh, indent=1, default=str)
            os.replace(tmp, path)
        except OSError as exc:
            warn(f"could not record the failure of run {run_id} in {folder} ({exc.strerror or exc})")
            return None
        return path

    def failures(self) -> list[dict]:
        folder = os.path.join(self.root, FAILED)
        found = []
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as fh:
                    found.append(json.load(fh))
            except (OSError, ValueError):
                continue
        return found

    def clear_failure(self, run_id: str) -> None:
        try:
            os.remove(os.path.join(self.root, FAILED, run_id + ".json"))
        except FileNotFoundError:
            pass

    def results(self) -> list[RunResult]:
        found = (self.load(r) for r in self.run_ids())
        return [r for r in found if r is not None]

    def size(self) -> int:
        """Bytes of the served records."""
        return sum(os.path.getsize(self.path(r)) for r in self.run_ids())

    def _write(self, path: str, record: dict) -> str:
        os.makedirs(self.root, exist_ok=True)
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as gz:
            gz.write(json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False,
                                default=str).encode("utf-8"))
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(buffer.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        self.clear_failure(os.path.basename(path)[: -len(SUFFIX)])
        return path


def only_ledger() -> bool:
    """``$LNFT_LEDGER_ONLY=1``: serve, never train (the CI check that the committed verdicts follow from the ledger)."""
    return os.environ.get(ONLY_ENV, "") not in ("", "0")
