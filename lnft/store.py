"""The run store: one directory per finished run, named by the run id (config + fingerprints).

``runs/<run_id>/record.json`` holds the RunResult (config, fingerprints, history, metrics, timing,
memory, versions, and the size and sha256 of every other file of the run); ``trained.safetensors``
holds the trained tensors of the selected epoch (only the trainable part; for ``full`` the whole
fine-tuned state dict, which the change analysis compares with the pre-trained weights);
``predictions.npz`` the per-example predictions and labels of the selected epoch on the validation
and dev splits (for paired bootstrap statistics without retraining).

Trust rules:
- written into ``.tmp-...`` and renamed into place only when complete (kill -9 leaves no record);
- served from the store only when the record parses, names its own directory and every file it
  lists has the recorded size; anything else is *broken*: treated as absent with one warning line,
  never an error for other runs, and replaced by the next run of that config (moved aside, then removed);
- never stores a run with a NaN or infinite metric, history value, trained tensor or prediction: that run
  failed (``RunFailed``) and is recorded in ``.failed/<run id>.json`` instead, as any run that raises;
- ``read(deep=True)`` (``lnft runs verify``) also hashes every file, parses tensors and predictions and
  recomputes the metrics from the stored predictions: a record whose metrics differ is broken;
- one training per config at a time (lnft/locks.py); leftovers of dead processes go on any write;
- a broken directory that cannot be replaced (a read-only store) fails the run before it trains;
- ``entries()`` (for ``lnft runs``) says ok / stale (made by other code, data or model than now) /
  broken / unknown (its fingerprints cannot be recomputed here, e.g. a data directory that is gone).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

import torch

from . import locks
from .config import RunConfig
from .errors import LnftError, RunFailed, error_text
from .result import (PREDICTIONS, Predictions, RunResult, nonfinite, read_predictions, recompute_metrics,
                     write_predictions)

DEFAULT_ROOT = "runs"
RECORD = "record.json"
TRAINED = "trained.safetensors"
FAILED = ".failed"  # failed-run records, one JSON per run id
WAIT_POLL_S = 2.0
_WARNED: set[str] = set()


class BrokenRun(Exception):
    """A run directory that cannot be served (the message says why)."""


@dataclass
class Entry:
    """One run directory as ``lnft runs`` sees it."""

    run_id: str
    path: str
    status: str  # ok | stale | broken | unknown
    reason: str = ""
    result: RunResult | None = None


class RunStore:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = os.path.abspath(os.path.expanduser(str(root or os.environ.get("LNFT_RUNS", DEFAULT_ROOT))))
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise LnftError(f"runs directory {self.root!r} is a file; allowed: a directory (or a path to create)")

    def __repr__(self) -> str:
        return f"RunStore({self.root!r})"

    # ---------------------------------------------------------------- reading
    def run_dir(self, run_id: str) -> str:
        return os.path.join(self.root, run_id)

    def get(self, config: RunConfig) -> RunResult | None:
        """The stored result for this config, or None; never trains."""
        return self.load(config.run_id())

    def load(self, run_id: str) -> RunResult | None:
        """The stored run, or None if absent or broken (broken: one warning line, once per process)."""
        if not os.path.lexists(self.run_dir(run_id)):
            return None
        try:
            return self.read(run_id)
        except BrokenRun as exc:
            _warn(f"run directory {self.run_dir(run_id)} is broken ({exc}); treated as absent")
            return None

    def read(self, run_id: str, *, deep: bool = False) -> RunResult:
        """Read and check one run; ``deep`` also hashes and parses every file. Raises BrokenRun."""
        path = self.run_dir(run_id)
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
                if _sha256(file) != expected["sha256"]:
                    raise BrokenRun(f"{name} does not match its recorded sha256")
                _check_readable(file)
        if deep and "predictions" in result.files:  # the record's metrics must be its predictions' metrics
            differ = recompute_metrics(result, read_predictions(os.path.join(path, result.files["predictions"])))
            if differ:
                raise BrokenRun("metrics differ from its predictions: " + ", ".join(
                    f"{k} {_short(a)} recorded, {_short(b)} recomputed" for k, (a, b) in list(differ.items())[:3]))
        result.run_dir = path
        return result

    def results(self) -> list[RunResult]:
        """Every readable run in the store (broken ones are skipped with a warning)."""
        found = (self.load(name) for name in self._run_names())
        return [r for r in found if r is not None]

    def tensors(self, result: RunResult, role: str = "trained") -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        return load_file(os.path.join(result.run_dir, result.files[role]))

    def entries(self, *, deep: bool = False) -> list[Entry]:
        """Every run directory with its status (``deep``: hash and parse every file, as verify does)."""
        out = []
        for name in self._run_names():
            try:
                result = self.read(name, deep=deep)
            except BrokenRun as exc:
                out.append(Entry(name, self.run_dir(name), "broken", str(exc)))
                continue
            status, reason = _freshness(result)
            out.append(Entry(name, result.run_dir, status, reason, result))
        return out

    def _run_names(self) -> list[str]:
        if not os.path.isdir(self.root):
            return []
        return sorted(n for n in os.listdir(self.root) if not n.startswith(".") and os.path.isdir(self.run_dir(n)))

    # ---------------------------------------------------------------- writing
    def check_writable(self) -> None:
        """Fail before any work if runs cannot be written here (probing, then removing, a temp file)."""
        probe_dir = self.root
        while not os.path.exists(probe_dir):
            probe_dir = os.path.dirname(probe_dir)
        if not os.path.isdir(probe_dir):
            raise LnftError(f"runs directory {self.root!r} is not writable: {probe_dir!r} is not a directory")
        try:
            with tempfile.TemporaryFile(dir=probe_dir):
                pass
        except OSError as exc:
            raise LnftError(f"runs directory {self.root!r} is not writable ({exc.strerror})") from None

    def get_or_run(self, config: RunConfig, *, progress: bool = True) -> RunResult:
        """The stored result if this config ran before; otherwise train it now (or wait for the
        process already training it) and store it."""
        return self.fetch_or_run(config, progress=progress)[0]

    def fetch_or_run(self, config: RunConfig, *, progress: bool = True) -> tuple[RunResult, bool]:
        """``get_or_run``, and whether this call trained the run (False: read from the store, also after
        waiting for another process that trained it). A run that fails (an exception, or any non-finite
        loss, parameter, metric or prediction: ``RunFailed``) is recorded in ``.failed/`` and re-raised;
        bad input found late (``LnftError``) is not recorded, and leaves no runs directory it created."""
        run_id, prints = config.identity()  # validates the config
        found = self.load(run_id)
        if found is not None:
            return found, False
        self.check_writable()
        created = not os.path.isdir(self.root)
        os.makedirs(self.root, exist_ok=True)
        lock = locks.RunLock(os.path.join(self.root, f".lock-{run_id}"))
        announced = False
        try:
            while not lock.try_acquire():
                if not announced:
                    held = lock.holder()
                    who = f"{held[0].get('host')}:{held[0].get('pid')}" if held else "another process"
                    print(f"lnft: run {run_id} is being trained by {who}; waiting for it", file=sys.stderr,
                          flush=True)
                    announced = True
                time.sleep(WAIT_POLL_S)
            try:
                found = self.load(run_id)  # finished by the process we waited for
                if found is not None:
                    return found, False
                self._clear_broken(run_id)  # before training: a store that cannot replace it fails now
                from .train import finetune

                try:
                    output = finetune(config, progress=progress, run_id=run_id)
                    output.result.fingerprints = prints
                    return self.put(output.result, output.trained, output.predictions), True
                except (LnftError, KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:  # noqa: BLE001 — recorded, then raised as it was
                    exc.lnft_failure_record = self.record_failure(run_id, config, *error_text(exc))
                    raise
            finally:
                lock.release()
        finally:
            if created:
                try:
                    os.rmdir(self.root)  # only when empty: bad input found late leaves no runs directory
                except OSError:
                    pass

    def _clear_broken(self, run_id: str) -> None:
        """Move a broken directory of this run out of the way; LnftError when the store does not allow it."""
        path = self.run_dir(run_id)
        if not os.path.lexists(path):
            return
        try:
            self.read(run_id)
            return
        except BrokenRun as exc:
            reason = str(exc)
        try:
            self._remove(path)
        except OSError as exc:
            raise LnftError(f"run directory {path!r} is broken ({reason}) and cannot be replaced "
                            f"({exc.strerror or exc}); allowed: a writable run store") from None

    def put(self, result: RunResult, trained: dict[str, torch.Tensor],
            predictions: dict[str, Predictions] | None = None) -> RunResult:
        """Write a run atomically; a broken directory in its place is replaced, a complete one kept.
        Every file written here before the record gets its size and sha256 in the record."""
        from safetensors.torch import save_file

        problem = nonfinite(result, trained, predictions) or ("no predictions" if not predictions else "")
        if problem:  # whoever trained it (this process, a Ray worker): a diverged run is never stored
            raise RunFailed(f"run {result.run_id}: {problem}; not stored")
        os.makedirs(self.root, exist_ok=True)
        self.clean_leftovers()
        tmp = os.path.join(self.root, locks.owned_name(".tmp", result.run_id))
        os.makedirs(tmp)
        try:
            save_file({n: t.contiguous() for n, t in trained.items()}, os.path.join(tmp, TRAINED))
            result.files = {"trained": TRAINED}
            if predictions:
                write_predictions(os.path.join(tmp, PREDICTIONS), predictions)
                result.files["predictions"] = PREDICTIONS
            result.checksums = {name: {"bytes": os.path.getsize(os.path.join(tmp, name)),
                                       "sha256": _sha256(os.path.join(tmp, name))}
                                for name in sorted(os.listdir(tmp))}
            result.created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            result.run_dir = None
            with open(os.path.join(tmp, RECORD), "w", encoding="utf-8") as fh:
                json.dump(_finite(result.to_dict()), fh, indent=1, default=str, allow_nan=False)
                fh.flush()
                os.fsync(fh.fileno())
            return self._move_into_place(tmp, result)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone already when it was moved into place

    def _move_into_place(self, tmp: str, result: RunResult) -> RunResult:
        final = self.run_dir(result.run_id)
        for _ in range(3):
            if os.path.lexists(final):
                try:
                    return self.read(result.run_id)  # complete already (written by another process): keep it
                except BrokenRun:
                    self._remove(final)  # broken: moved aside, then removed
            try:
                os.rename(tmp, final)
            except OSError:  # it appeared meanwhile: look again
                continue
            result.run_dir = final
            self.clear_failure(result.run_id)
            return result
        raise LnftError(f"could not store run {result.run_id} in {self.root!r}: the directory keeps changing")

    # ---------------------------------------------------------------- failed runs
    def record_failure(self, run_id: str, config: RunConfig, error: str, detail: str = "") -> str | None:
        """Note a run that failed (``.failed/<run id>.json``: config, error, traceback); never served as a
        result, removed when the run later succeeds. Returns the record's path, or None when it could not
        be written (one warning; no temp file left behind)."""
        folder = os.path.join(self.root, FAILED)
        path = os.path.join(folder, f"{run_id}.json")
        record = {"run_id": run_id, "config": config.to_dict(), "error": error, "detail": detail,
                  "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            os.makedirs(folder, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(_finite(record), fh, indent=1, default=str)
            os.replace(tmp, path)
        except OSError as exc:  # a read-only store: the failure is still raised, just not recorded
            _warn(f"could not record the failure of run {run_id} in {folder} ({exc.strerror or exc})")
            try:
                os.remove(tmp)
            except OSError:
                pass
            return None
        return path

    def failures(self) -> list[dict]:
        """The failed-run records (newest last)."""
        folder = os.path.join(self.root, FAILED)
        found = []
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if name.endswith(".json"):
                try:
                    with open(os.path.join(folder, name), encoding="utf-8") as fh:
                        found.append(json.load(fh))
                except (OSError, ValueError):
                    continue
        return sorted(found, key=lambda r: r.get("when", ""))

    def clear_failure(self, run_id: str) -> None:
        try:
            os.remove(os.path.join(self.root, FAILED, f"{run_id}.json"))
        except FileNotFoundError:
            pass

    def remove(self, run_id: str) -> None:
        self._remove(self.run_dir(run_id))

    def _remove(self, path: str) -> None:
        """Move aside (one atomic rename), then delete: readers never see a half-deleted run."""
        aside = os.path.join(self.root, locks.owned_name(".trash", os.path.basename(path)))
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return
        shutil.rmtree(aside, ignore_errors=True)

    def clean_leftovers(self) -> list[str]:
        """Remove temp/aside directories whose process is dead (on this host; others' after an hour)."""
        removed = []
        for name in os.listdir(self.root) if os.path.isdir(self.root) else []:
            path = os.path.join(self.root, name)
            if name.startswith((".tmp-", ".trash-")) and locks.owner_dead(name, path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(name)
        return removed


def _freshness(result: RunResult) -> tuple[str, str]:
    """ok if this config, under today's code, data and model, still has this run's id; else stale
    (saying which fingerprint changed), or unknown when today's fingerprints cannot be computed.

    A local data or model directory identifies a run by its content, not its path (moving it keeps the id),
    so the path remembered in the record says nothing once the directory moved: a run whose only
    difference is what now lies (or does not lie) at that path is unknown, never stale, and never pruned."""
    by_path = {k for k, v in result.fingerprints.items() if k in ("data", "model") and str(v).startswith("local:")}
    try:
        current_id, current = result.config.identity()
    except (LnftError, OSError) as exc:
        return "unknown", f"cannot recompute its fingerprints here: {exc}"
    if current_id == result.run_id:
        return "ok", ""
    changed = [k for k in sorted(set(current) | set(result.fingerprints))
               if current.get(k) != result.fingerprints.get(k)]
    moved = [k for k in changed if k in by_path]
    if changed and len(moved) == len(changed):
        where = ", ".join(f"{k} directory {getattr(result.config, k)!r}" for k in moved)
        return "unknown", (f"{where} now holds other content; the run is identified by content, so it may "
                           "still be right for the directory's new place")
    return "stale", ("changed: " + ", ".join(k for k in changed if k not in moved)) if changed else "config hash differs"


def _short(value) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) else repr(value)


def _sha256(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _check_readable(path: str) -> None:
    """Parse a run file completely: tensors (safetensors) and predictions (npz)."""
    from safetensors.torch import load_file

    from .result import read_predictions

    try:
        if path.endswith(".safetensors"):
            load_file(path)
        elif path.endswith(".npz"):
            read_predictions(path)
    except Exception as exc:  # noqa: BLE001
        raise BrokenRun(f"{os.path.basename(path)} is unreadable: {str(exc)[:80]}") from None


def _finite(value):
    """JSON-safe: non-finite floats (a diverged metric) become null instead of invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _warn(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"lnft: warning: {message}", file=sys.stderr, flush=True)
