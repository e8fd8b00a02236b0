"""Verdicts on dev ∪ pool: every comparison of runs that scored a held-out pool (``lnft.pool``) is judged on the
dev examples and the pool's together, as one set of examples, with the dev-only estimate kept beside it.

Why: dev alone (408 MRPC, 872 SST-2, 1,500 STS-B examples) leaves a 1-point question undecidable by seeds alone;
the pool adds unseen examples of the same distribution (SST-2's pool holds whole sentences, as dev does). The
statistics (``lnft.stats``) are not changed: they receive each run's dev and pool predictions concatenated as its
``dev`` split (``union_predictions``), so the paired example bootstrap resamples dev and pool examples alike and
every metric (F1, Matthews, Pearson, …) is computed on the union. ``on_union`` runs a verdict function twice — on
dev ∪ pool (the verdict) and on dev alone (``dev_diff``, ``dev_lo``, ``dev_hi``, ``dev_verdict``: what published
GLUE dev numbers mean) — and says how many examples each rests on (``examples`` = ``dev_examples`` +
``pool_examples``). Runs without a pool: the dev table, with ``dev_examples`` = ``examples`` and no pool.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from .errors import LnftError
from .pool import SPLIT
from .result import Predictions

DEV_COLUMNS = ("diff", "lo", "hi", "verdict", "summary")


def _run_ids(runs) -> list[str]:
    if isinstance(runs, pd.DataFrame):
        return list(dict.fromkeys(runs["run_id"]))
    return list(dict.fromkeys(r.run_id for r in runs))


def _results(runs, store) -> dict:
    given = {} if isinstance(runs, pd.DataFrame) else {r.run_id: r for r in runs}
    out = {}
    for run_id in _run_ids(runs):
        result = given.get(run_id)
        if result is None:
            from .store import RunStore

            result = (store or RunStore()).load(run_id)
            if result is None:
                raise LnftError(f"run {run_id!r} is not in the run store {(store or RunStore()).root!r}")
        out[run_id] = result
    return out


def union_predictions(runs, store=None) -> dict[str, dict[str, Predictions]] | None:
    """run_id -> {"dev": dev and pool predictions concatenated (dev first), "validation": as stored} for every run
    that scored a pool (a run without one: its stored predictions); None when none did. Runs of one task with
    different pools are never paired: their dev ∪ pool digests differ, and ``lnft.stats`` refuses them."""
    from .tasks import get_task

    results = _results(runs, store)
    if not any(r.config.pool_size for r in results.values()):
        return None
    out = {}
    for run_id, result in results.items():
        stored = result.predictions()
        if not result.config.pool_size:
            out[run_id] = stored
            continue
        (dev_split,) = get_task(result.config.task).dev_split_names
        if SPLIT not in stored:
            raise LnftError(f"run {run_id} has pool_size {result.config.pool_size} but no stored pool predictions; "
                            "re-run it")
        dev, pool = stored[dev_split], stored[SPLIT]
        digest = hashlib.sha256(f"{dev.digest}+{pool.digest}".encode()).hexdigest()
        out[run_id] = {**stored, dev_split: Predictions(np.concatenate([dev.preds, pool.preds]),
                                                        np.concatenate([dev.labels, pool.labels]), digest)}
    return out


def on_union(verdicts, runs, *args, store=None, **options) -> pd.DataFrame:
    """``verdicts(runs, *args, store=store, **options)`` (``stats.method_verdicts``, ``subsets.fisher_vs_random``,
    …) judged on dev ∪ pool where the runs scored a pool, with the dev-only columns ``dev_diff``, ``dev_lo``,
    ``dev_hi``, ``dev_verdict``, ``dev_summary`` and the counts ``dev_examples``, ``pool_examples`` added."""
    dev = verdicts(runs, *args, store=store, **options)
    union = union_predictions(runs, store) if len(dev) else None
    if union is None:
        return dev.assign(dev_examples=dev["examples"] if "examples" in dev else np.nan, pool_examples=0)
    both = verdicts(runs, *args, store=store, predictions=union, **options)
    keys = [c for c in ("task", "a", "b", "fraction", "point") if c in both and c in dev]
    if len(both) != len(dev) or not both[keys].astype(str).equals(dev[keys].astype(str)):
        raise LnftError("dev ∪ pool and dev-only verdicts do not line up row by row; allowed: one verdict function "
                        "called the same way")
    out = both.copy()
    for column in DEV_COLUMNS:
        out[f"dev_{column}"] = dev[column].to_numpy()
    out["dev_examples"] = dev["examples"].to_numpy()
    out["pool_examples"] = both["examples"].to_numpy() - dev["examples"].to_numpy()
    return out


def interval_widths(table: pd.DataFrame) -> pd.DataFrame:
    """Per row of an ``on_union`` table: the interval's width on dev alone and on dev ∪ pool, and their ratio."""
    keys = [c for c in ("task", "a", "b", "fraction", "point") if c in table]
    return table[keys].assign(dev_examples=table["dev_examples"], examples=table["examples"],
                              dev_width=table["dev_hi"] - table["dev_lo"], width=table["hi"] - table["lo"],
                              ratio=(table["hi"] - table["lo"]) / (table["dev_hi"] - table["dev_lo"]))
