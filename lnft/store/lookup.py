"""Finding and serving stored runs: by config or run id, every run, and each run's status for ``lnft runs``.

A run is served only when its record passes ``files.read_run``'s cheap check; anything else is *broken*:
treated as absent with one warning line, never an error for other runs. ``entries()`` says ok / stale (made
by other code, data or model than now) / broken / unknown (its fingerprints cannot be recomputed here).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..config import RunConfig
from ..errors import LnftError
from ..paths import check_dir_path
from ..result import RunResult
from .files import BrokenRun, read_run, warn

DEFAULT_ROOT = "runs"
# Directories lnft keeps beside the runs in a store's root, never runs themselves: the Fisher cache
# (lnft.fisher) and the masks notebook 3 writes (its mask_dir). Not listed, not warned about, never pruned.
FISHER_DIR, MASKS_DIR = "fisher", "masks"
SIDE_DIRS = (FISHER_DIR, MASKS_DIR)


@dataclass
class Entry:
    """One run directory as ``lnft runs`` sees it."""

    run_id: str
    path: str
    status: str  # ok | stale | broken | unknown
    reason: str = ""
    result: RunResult | None = None


class StoreReader:
    """The reading half of ``RunStore``: a root directory and the runs in it."""

    def __init__(self, root: str | os.PathLike | None = None, ledger=None):
        """``ledger``: a ``ledger.Ledger`` or its folder; None: ``$LNFT_LEDGER`` (none when unset); False: none."""
        from .ledger import Ledger

        self.root = os.path.abspath(os.path.expanduser(str(root or os.environ.get("LNFT_RUNS", DEFAULT_ROOT))))
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise LnftError(f"runs directory {self.root!r} is a file; allowed: a directory (or a path to create)")
        check_dir_path(self.root, "runs directory")  # a symbolic link loop would fail only once work started
        if ledger is None:
            self.ledger = Ledger.from_env()
        else:  # False: none, whatever the environment says
            self.ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger) if ledger is not False else None

    def __repr__(self) -> str:
        return f"RunStore({self.root!r})"

    def run_dir(self, run_id: str) -> str:
        return os.path.join(self.root, run_id)

    @property
    def fisher_dir(self) -> str:
        """The Fisher cache beside the runs (``lnft.fisher``)."""
        return os.path.join(self.root, FISHER_DIR)

    @property
    def mask_dir(self) -> str:
        """The mask files notebook 3 writes beside the runs (content-named: ``subsets.store_mask``)."""
        return os.path.join(self.root, MASKS_DIR)

    def get(self, config: RunConfig) -> RunResult | None:
        """The stored result for this config, or None; never trains."""
        return self.load(config.run_id())

    def load(self, run_id: str) -> RunResult | None:
        """The stored run (its directory, else its ledger record), or None if absent or broken (broken: one
        warning line, once per process)."""
        if os.path.lexists(self.run_dir(run_id)):
            try:
                return self.read(run_id)
            except BrokenRun as exc:
                warn(f"run directory {self.run_dir(run_id)} is broken ({exc}); treated as absent")
        return self.ledger.load(run_id) if self.ledger is not None else None

    def trained_tensors(self, result: RunResult) -> dict[str, torch.Tensor]:
        """A run's trained tensors: from its derived data when it holds them (a ledger run has no weights),
        else from its directory."""
        from ..derived import trained_tensors

        held = trained_tensors(result)
        if held is not None:
            return held
        if not result.run_dir:
            raise LnftError(f"run {result.run_id} was served from the ledger, which keeps no weights of a "
                            f"{result.config.method!r} run; allowed: a run store holding it (train it there)")
        return self.tensors(result)

    def read(self, run_id: str, *, deep: bool = False) -> RunResult:
        """Read and check one run; ``deep`` also hashes and parses every file. Raises BrokenRun."""
        return read_run(self.run_dir(run_id), run_id, deep=deep)

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
            status, reason = freshness(result)
            out.append(Entry(name, result.run_dir, status, reason, result))
        return out

    def _run_names(self) -> list[str]:
        if not os.path.isdir(self.root):
            return []
        return sorted(n for n in os.listdir(self.root)
                      if not n.startswith(".") and n not in SIDE_DIRS and os.path.isdir(self.run_dir(n)))


def freshness(result: RunResult) -> tuple[str, str]:
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
