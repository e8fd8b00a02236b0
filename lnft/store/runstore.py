"""``RunStore``: the stored result of a config, or train it now (one training per config at a time).

Reading and serving are ``lookup.StoreReader``'s, failed runs ``failures.FailureLog``'s, writing
``writing.StoreWriter``'s; this class adds ``get_or_run`` / ``fetch_or_run``, which hold the config's lock
(lnft/locks.py) while training, replace a broken directory before training (a store that cannot, e.g. a
read-only one, fails the run before any work) and record a failed run.
"""
from __future__ import annotations

import os
import sys
import time

from .. import locks
from ..config import RunConfig
from ..errors import LnftError, error_text
from ..result import RunResult
from .writing import StoreWriter

WAIT_POLL_S = 2.0


class RunStore(StoreWriter):
    """One directory per finished run, named by the run id (config + fingerprints); see ``lnft.store``."""

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
            if found.run_dir:  # served from a run directory: the ledger (when configured) records it too
                self.record_in_ledger(found)
            return found, False
        self._refuse_training(config, run_id)
        self.check_writable()
        created = not os.path.isdir(self.root)
        os.makedirs(self.root, exist_ok=True)
        lock = locks.RunLock(os.path.join(self.root, f".lock-{run_id}"))
        try:
            self._wait_for(lock, run_id)
            try:
                found = self.load(run_id)  # finished by the process we waited for
                if found is not None:
                    return found, False
                self._clear_broken(run_id)  # before training: a store that cannot replace it fails now
                return self._train(config, run_id, prints, progress), True
            finally:
                lock.release()
        finally:
            if created:
                try:
                    os.rmdir(self.root)  # only when empty: bad input found late leaves no runs directory
                except OSError:
                    pass

    def _refuse_training(self, config: RunConfig, run_id: str) -> None:
        """``$LNFT_LEDGER_ONLY``: a run neither stored nor in the ledger is an error, before any work."""
        from .ledger import ONLY_ENV, only_ledger

        if only_ledger():
            where = self.ledger.root if self.ledger is not None else "no ledger ($LNFT_LEDGER unset)"
            lr = "the method's" if config.lr is None else f"{config.lr:g}"  # unvalidated: None is the default
            raise LnftError(f"run {run_id} ({config.task}, {config.method}, seed {config.seed}, lr {lr}) is "
                            f"not in the ledger {where!r} nor in {self.root!r}, and ${ONLY_ENV} forbids training; "
                            "allowed: a ledger that holds every run the notebooks use")

    @staticmethod
    def _wait_for(lock: locks.RunLock, run_id: str) -> None:
        """Take the run's lock, saying once (on stderr) who holds it while waiting."""
        announced = False
        while not lock.try_acquire():
            if not announced:
                held = lock.holder()
                who = f"{held[0].get('host')}:{held[0].get('pid')}" if held else "another process"
                print(f"lnft: run {run_id} is being trained by {who}; waiting for it", file=sys.stderr, flush=True)
                announced = True
            time.sleep(WAIT_POLL_S)

    def _train(self, config: RunConfig, run_id: str, prints: dict[str, str], progress: bool) -> RunResult:
        """Train and store the run (under its lock); a failure is recorded, then raised as it was."""
        from ..train import finetune

        try:
            output = finetune(config, progress=progress, run_id=run_id)
            output.result.fingerprints = prints
            return self.put(output.result, output.trained, output.predictions)
        except KeyboardInterrupt:
            if self.ledger is not None:  # a cancelled run is recorded apart, never served
                self.ledger.record_failure(run_id, config, "cancelled (KeyboardInterrupt)")
            raise
        except (LnftError, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 — recorded, then raised as it was
            exc.lnft_failure_record = self.record_failure(run_id, config, *error_text(exc))
            raise
