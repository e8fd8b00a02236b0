"""Writing runs into the store: atomic ``put``, replacing broken directories, removal, leftovers.

A run is written into ``.tmp-...`` and renamed into place only when complete (kill -9 leaves no record);
a run with a NaN or infinite metric, history value, trained tensor or prediction is never stored
(``RunFailed``); a broken directory in a run's place is moved aside, then removed; temp and aside
directories of dead processes (lnft/locks.py) are removed by any later write.
"""
from __future__ import annotations

import os
import shutil

import torch

from .. import locks
from ..errors import LnftError, RunFailed
from ..paths import check_writable_dir
from ..result import Predictions, RunResult, nonfinite
from .files import BrokenRun, own_id, warn, write_run
from .failures import FailureLog


class StoreWriter(FailureLog):
    """The writing half of ``RunStore`` (a run stored clears its failure record)."""

    def check_writable(self) -> None:
        """Fail before any work if runs cannot be written here (probing, then removing, a temp directory)."""
        check_writable_dir(self.root, "runs directory")

    def put(self, result: RunResult, trained: dict[str, torch.Tensor],
            predictions: dict[str, Predictions] | None = None) -> RunResult:
        """Write a run atomically; a broken directory in its place is replaced, a complete one kept.
        Every file written here before the record gets its size and sha256 in the record."""
        problem = nonfinite(result, trained, predictions) or ("no predictions" if not predictions else "")
        if problem:  # whoever trained it (this process, a Ray worker): a diverged run is never stored
            raise RunFailed(f"run {result.run_id}: {problem}; not stored")
        own = own_id(result)
        if own not in (None, result.run_id):  # it would read back as broken: a record's config is its run id's
            raise LnftError(f"run {result.run_id}: its config and fingerprints hash to {own!r}; not stored")
        if not result.derived:  # what the analyses read instead of weights (the ledger keeps no weights)
            from ..derived import derive

            result.derived = derive(result.config, trained)
        os.makedirs(self.root, exist_ok=True)
        self.clean_leftovers()
        tmp = os.path.join(self.root, locks.owned_name(".tmp", result.run_id))
        os.makedirs(tmp)
        try:
            write_run(tmp, result, trained, predictions)
            stored = self._move_into_place(tmp, result)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone already when it was moved into place
        if self.ledger is not None and not self.ledger.has(result.run_id):
            try:
                self.ledger.record(stored, predictions)
            except OSError as exc:  # the run is stored; a ledger that cannot be written says so once
                warn(f"could not record run {result.run_id} in the ledger {self.ledger.root} ({exc.strerror or exc})")
        return stored

    def trained_tensors(self, result: RunResult) -> dict[str, torch.Tensor]:
        """``StoreReader.trained_tensors``; a Fisher start run read from its directory also gets its tensors
        into its ledger record (``lnft.derived.keep_trained``), so a re-render from the ledger can start there."""
        from ..derived import keep_trained

        tensors = super().trained_tensors(result)
        if self.ledger is not None and not (result.derived or {}).get("trained"):
            kept = keep_trained(result.config, tensors)
            if kept is not None:
                self.record_in_ledger(result)
                try:
                    self.ledger.add_derived(result.run_id, {"trained": kept})
                except OSError as exc:
                    warn(f"could not add the tensors of run {result.run_id} to the ledger ({exc.strerror or exc})")
        return tensors

    def record_in_ledger(self, result: RunResult) -> bool:
        """Record a run served from a run directory into the ledger (its derived data computed from its
        tensors when the record predates them); False when there is no ledger or it holds the run already."""
        if self.ledger is None or self.ledger.has(result.run_id) or not result.run_dir:
            return False
        from ..derived import derive, source_digest

        if (result.derived or {}).get("source") != source_digest():  # none yet, or derived by other code
            result.derived = derive(result.config, self.tensors(result))
        try:
            self.ledger.record(result, result.predictions())
        except OSError as exc:
            warn(f"could not record run {result.run_id} in the ledger {self.ledger.root} ({exc.strerror or exc})")
            return False
        return True

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

    def remove(self, run_id: str) -> None:
        self._remove(self.run_dir(run_id))

    def _remove(self, path: str) -> None:
        """Move aside (one atomic rename), then delete: readers never see a half-deleted run."""
        aside = os.path.join(self.root, locks.owned_name(".trash", os.path.basename(path)))
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return
        _delete(aside)

    def clean_leftovers(self) -> list[str]:
        """Remove temp/aside directories whose process is dead (on this host; others' after an hour)."""
        removed = []
        for name in os.listdir(self.root) if os.path.isdir(self.root) else []:
            path = os.path.join(self.root, name)
            if name.startswith((".tmp-", ".trash-")) and locks.owner_dead(name, path):
                _delete(path)
                removed.append(name)
        return removed


def _delete(path: str) -> None:
    """Delete a run directory moved aside; a symbolic link (a run linked into the store) loses only the link,
    never what it points at, which lies outside the store."""
    if os.path.islink(path):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    else:
        shutil.rmtree(path, ignore_errors=True)
