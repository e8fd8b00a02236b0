"""Many configs through the run store with one progress bar, and tidy frames of their results.

Finished runs are read back, not retrained; an interrupted sweep re-run continues where it stopped
(every finished run is already in the store).
"""
from __future__ import annotations

import itertools

import pandas as pd

from .config import RunConfig
from .progress import progress_bar
from .result import RunResult
from .store import RunStore


def grid(base: RunConfig, **axes) -> list[RunConfig]:
    """The cartesian product of ``axes`` (field -> list of values) applied to ``base``."""
    import dataclasses

    names = list(axes)
    return [dataclasses.replace(base, **dict(zip(names, values))) for values in itertools.product(*axes.values())]


class SweepResults(list):
    """run_all's results (one RunResult per config that succeeded, in config order) and its ``failures``."""

    def __init__(self, results=(), failures=()):
        super().__init__(results)
        self.failures = list(failures)


def run_all(configs: list[RunConfig], store: RunStore, *, engine=None, address: str | None = None,
            progress: bool = True, desc: str = "runs", allow_failures: bool = False) -> SweepResults:
    """Every config's result: read from the store, or trained by the engine (``local``: here, one after
    another; ``ray``: one Ray task per run; see lnft/engine.py) and stored. ``engine``/``address``
    None: $LNFT_ENGINE / $LNFT_RAY_ADDRESS, else local. Runs already in the store are never trained
    again. A run that fails does not stop the others; at the end, ``RunsFailed`` lists the failures
    (or, with ``allow_failures``, the results of the others are returned with ``.failures``)."""
    from .engine import execute, resolve_engine
    from .errors import RunsFailed

    eng = resolve_engine(engine, address)
    identities = [cfg.identity() for cfg in configs]  # validates every config before the first run starts
    todo = {}
    for cfg, (run_id, prints) in zip(configs, identities):
        if run_id not in todo and store.load(run_id) is None:
            todo[run_id] = (cfg, prints)
    unique = len({run_id for run_id, _ in identities})
    failures = []
    if todo:
        store.check_writable()
        bar = progress_bar(total=unique, initial=unique - len(todo), enabled=progress,
                           desc=f"{desc} ({len(todo)} to train, {eng.name})")

        def done(cfg: RunConfig) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{cfg.task} {cfg.method} seed={cfg.seed}" + (f", {len(failures)} failed" if failures else ""))

        try:
            failures += execute(todo, store, eng, done)
        finally:
            bar.close()
    failed = {f.run_id for f in failures}
    results = [store.load(run_id) for run_id, _ in identities if run_id not in failed]
    for r in results:  # served from a run directory: the ledger (when configured) records it too, as get_or_run does
        if r is not None and r.run_dir:
            store.record_in_ledger(r)
    if failures and not allow_failures:
        lines = "; ".join(f.line() for f in failures[:5]) + (f"; ... ({len(failures) - 5} more)" if len(failures) > 5 else "")
        raise RunsFailed(f"{len(failures)} of {unique} runs failed (the other runs are stored; details in "
                         f"the run store's .failed/ folder): {lines}", failures)
    return SweepResults(results, failures)


def failures_frame(failures) -> pd.DataFrame:
    """One row per failed run (task, method, seed, lr, run id, error)."""
    return pd.DataFrame([{"task": f.config.task, "method": f.config.method, "seed": f.config.seed, "lr": f.config.lr,
                          "run_id": f.run_id, "error": f.error} for f in failures],
                        columns=["task", "method", "seed", "lr", "run_id", "error"])


def _labels(r: RunResult) -> dict:
    from .aggregate import last_gain

    c = r.config
    return {"task": c.task, "method": c.method, "seed": c.seed, "lr": c.lr, "select_on": c.select_on,
            "trainable_params": r.trainable_params, "trainable_percent": r.trainable_percent,
            "train_seconds": r.train_seconds, "eval_seconds": r.eval_seconds, "best_epoch": r.best_epoch,
            "best_step": r.best_step, "steps": r.steps, "max_steps": r.max_steps, "stopped_early": r.stopped_early,
            "still_improving": r.still_improving, "last_gain": last_gain(r), "run_id": r.run_id}


def results_frame(results: list[RunResult]) -> pd.DataFrame:
    """Long format: one row per run × split (dev, validation, and ``pool`` for a run that scored a held-out pool,
    ``lnft.pool``) × metric (``score`` is in points)."""
    rows = []
    for r in results:
        base = _labels(r)
        for split, metrics in (("dev", r.metrics), ("validation", r.validation_metrics), ("pool", r.pool_metrics)):
            rows += [{**base, "split": split, "metric": m, "value": v} for m, v in metrics.items()]
    return pd.DataFrame(rows)


def history_frame(results: list[RunResult]) -> pd.DataFrame:
    """One row per run × evaluation (step, fractional epoch, train loss, train seconds so far, validation
    metrics) with the run's labels as columns (for learning curves)."""
    rows = [{**_labels(r), **h} for r in results for h in r.history]
    return pd.DataFrame(rows)
