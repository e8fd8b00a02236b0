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


def run_all(configs: list[RunConfig], store: RunStore, *, progress: bool = True, desc: str = "runs") -> list[RunResult]:
    for cfg in configs:  # every config is checked before the first run starts
        cfg.validate()
    todo = [cfg for cfg in configs if store.get(cfg) is None]
    if todo:
        store.check_writable()
    results, bar = [], progress_bar(configs, enabled=progress, desc=f"{desc} ({len(todo)} to train)")
    for cfg in bar:
        bar.set_postfix_str(f"{cfg.task} {cfg.method} seed={cfg.seed} lr={cfg.lr}")
        results.append(store.get_or_run(cfg, progress=False))
    return results


def _labels(r: RunResult) -> dict:
    c = r.config
    return {"task": c.task, "method": c.method, "seed": c.seed, "lr": c.lr, "select_on": c.select_on,
            "trainable_params": r.trainable_params, "trainable_percent": r.trainable_percent,
            "train_seconds": r.train_seconds, "eval_seconds": r.eval_seconds, "best_epoch": r.best_epoch,
            "best_step": r.best_step, "steps": r.steps, "max_steps": r.max_steps, "stopped_early": r.stopped_early,
            "still_improving": r.still_improving, "run_id": r.run_id}


def results_frame(results: list[RunResult]) -> pd.DataFrame:
    """Long format: one row per run × split (dev, validation) × metric (``score`` is in points)."""
    rows = []
    for r in results:
        base = _labels(r)
        for split, metrics in (("dev", r.metrics), ("validation", r.validation_metrics)):
            rows += [{**base, "split": split, "metric": m, "value": v} for m, v in metrics.items()]
    return pd.DataFrame(rows)


def history_frame(results: list[RunResult]) -> pd.DataFrame:
    """One row per run × evaluation (step, fractional epoch, train loss, train seconds so far, validation
    metrics) with the run's labels as columns (for learning curves)."""
    rows = [{**_labels(r), **h} for r in results for h in r.history]
    return pd.DataFrame(rows)
