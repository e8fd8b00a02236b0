"""Verdict table: ``lnft.stats.method_verdicts`` on stored per-example predictions of quick-profile size
(SST-2 and STS-B, 400 dev examples, 5 methods x 3 seeds, 2,000 replicates), reading included.
Key: ``verdict_table_seconds``.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np

from lnft.tasks import get_task


def verdict_table(tasks=("sst2", "stsb"), methods_=("layernorm", "full", "bitfit", "lora", "head"), seeds=3,
                  examples=400, repeats=3) -> dict:
    """Seconds for a whole notebook-2 verdict table (LayerNorm minus each method, per task and on average)
    on synthetic per-example predictions of quick-profile size, written as the run store writes them and
    read back inside the timing. Median of ``repeats``."""
    import pandas as pd

    from lnft import stats
    from lnft.result import Predictions, read_predictions, write_predictions

    rng = np.random.default_rng(0)
    rows, paths = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            regression = get_task(task).is_regression
            labels = np.round(rng.uniform(0, 5, examples), 1) if regression else rng.integers(0, 2, examples)
            for i, method in enumerate(methods_):
                for seed in range(seeds):
                    noise = rng.normal(0, 1 + i / 2, examples)
                    preds = labels + noise if regression else np.where(noise < 1.2, labels, 1 - labels)
                    run_id = f"{task}-{method}-{seed}"
                    paths[run_id] = os.path.join(tmp, f"{run_id}.npz")
                    write_predictions(paths[run_id], {"dev": Predictions(preds, labels, task),
                                                      "validation": Predictions(preds, labels, task)})
                    rows.append({"run_id": run_id, "task": task, "method": method, "seed": seed, "lr": 0.01})
        frame = pd.DataFrame(rows)
        times = []
        for _ in range(repeats):
            tick = time.perf_counter()
            predictions = {run_id: read_predictions(path) for run_id, path in paths.items()}
            table = stats.method_verdicts(frame, reference=methods_[0], predictions=predictions)
            times.append(time.perf_counter() - tick)
    return {"seconds": statistics.median(times), "rows": len(table), "runs": len(rows), "examples": examples,
            "replicates": int(table["replicates"].iloc[0])}
