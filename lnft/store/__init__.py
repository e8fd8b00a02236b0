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

The package, one concept a module: ``files`` (the record format: writing a run's files and reading one
back with its checks, ``BrokenRun``), ``lookup`` (finding and serving runs, their status for ``lnft runs``),
``failures`` (``.failed/`` records), ``writing`` (atomic ``put``, replacing and removing, leftovers) and
``runstore`` (``RunStore.get_or_run``: serve, or train under the run's lock). ``fisher/`` and ``masks/``
beside the runs are not runs (``lookup.SIDE_DIRS``). ``ledger`` is the results ledger: one compact committed
record per run without weights (``$LNFT_LEDGER``), served when no run directory holds the run.
"""
from .files import RECORD, TRAINED, BrokenRun
from .failures import FAILED
from .ledger import Ledger
from .lookup import DEFAULT_ROOT, SIDE_DIRS, Entry
from .runstore import RunStore

__all__ = ["RunStore", "Ledger", "BrokenRun", "Entry", "DEFAULT_ROOT", "RECORD", "TRAINED", "FAILED", "SIDE_DIRS"]
