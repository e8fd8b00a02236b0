"""Failed runs: ``.failed/<run id>.json`` in the store (config, error, traceback), never served as results.

Any run that raises, or whose loss, parameters, metrics or predictions are not finite (``RunFailed``), is
recorded here instead of as a run; the record is removed when that run later succeeds.
"""
from __future__ import annotations

import json
import os

from ..config import RunConfig
from .files import finite, now, warn
from .lookup import StoreReader

FAILED = ".failed"  # failed-run records, one JSON per run id


class FailureLog(StoreReader):
    """The failed-run records of a store."""

    def record_failure(self, run_id: str, config: RunConfig, error: str, detail: str = "") -> str | None:
        """Note a run that failed (``.failed/<run id>.json``: config, error, traceback); never served as a
        result, removed when the run later succeeds. Returns the record's path, or None when it could not
        be written (one warning; no temp file left behind)."""
        if getattr(self, "ledger", None) is not None:  # recorded apart in the ledger too: never served
            self.ledger.record_failure(run_id, config, error, detail)
        folder = os.path.join(self.root, FAILED)
        path = os.path.join(folder, f"{run_id}.json")
        record = {"run_id": run_id, "config": config.to_dict(), "error": error, "detail": detail, "when": now()}
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            os.makedirs(folder, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(finite(record), fh, indent=1, default=str)
            os.replace(tmp, path)
        except OSError as exc:  # a read-only store: the failure is still raised, just not recorded
            warn(f"could not record the failure of run {run_id} in {folder} ({exc.strerror or exc})")
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
