"""What each method costs beside its score: trainable parameters, training seconds, seconds per step, peak
memory and the bytes that must be stored per task.

Read from the records (``RunResult``: counts, seconds, memory); nothing is measured here. The bytes stored per
task are what differs from the pre-trained model: the trained elements (the task head included) at 4 bytes
(fp32), as ``trainable_params`` counts them; a masked method also stores which elements it chose
(``stored_bytes``). LayerNorm-only saves storage, not
compute: every step still runs the whole forward and backward pass, so ``step_ratio`` (seconds per step over
full fine-tuning's on the same task) stays near 1 while ``storage_ratio`` falls by orders of magnitude.
"""
from __future__ import annotations

import pandas as pd

BYTES_PER_ELEMENT = 4  # fp32: parameters, and so the stored deltas, stay fp32 under bf16 autocast (lnft.models)


def stored_bytes(result) -> int:
    """Bytes one run of this method stores per task beyond the pre-trained model: its trained elements in fp32;
    a masked run (``layernorm-masked``) also an int32 index per trained element (an upper bound: the head needs
    none). ``random-channels`` redraws its mask from its seed, so it stores no index."""
    per_element = BYTES_PER_ELEMENT + (4 if result.config.method == "layernorm-masked" else 0)
    return int(result.trainable_params * per_element)


def costs_frame(results, chosen: pd.DataFrame | None = None, reference: str = "full") -> pd.DataFrame:
    """Per task × method (at the chosen rate when ``chosen``, a frame with task, method, lr, is given): trainable
    parameters, training seconds, optimisation steps and seconds per step (seed means), peak memory (MB, seed
    max), bytes stored per task, and each ratio to ``reference``'s on the same task (NaN where it did not run).
    Timings are only comparable between runs on the same machine and load."""
    rows = [{"task": r.config.task, "method": r.config.method, "lr": r.config.lr, "seed": r.config.seed,
             "trainable_params": r.trainable_params, "total_params": r.total_params,
             "train_seconds": r.train_seconds, "steps": r.steps,
             "seconds_per_step": r.train_seconds / r.steps if r.steps else float("nan"),
             "peak_memory_mb": r.peak_memory_mb, "stored_bytes": stored_bytes(r), "device": r.device}
            for r in results]
    frame = pd.DataFrame(rows, columns=["task", "method", "lr", "seed", "trainable_params", "total_params",
                                        "train_seconds", "steps", "seconds_per_step", "peak_memory_mb",
                                        "stored_bytes", "device"])
    if chosen is not None:
        frame = frame.merge(chosen[["task", "method", "lr"]], on=["task", "method", "lr"])
    out = frame.groupby(["task", "method"], as_index=False, sort=False).agg(
        trainable_params=("trainable_params", "first"), total_params=("total_params", "first"),
        train_seconds=("train_seconds", "mean"), steps=("steps", "mean"),
        seconds_per_step=("seconds_per_step", "mean"), peak_memory_mb=("peak_memory_mb", "max"),
        stored_bytes=("stored_bytes", "first"), runs=("seed", "size"))
    ref = out[out["method"] == reference].set_index("task")
    for column, ratio in (("seconds_per_step", "step_ratio"), ("peak_memory_mb", "memory_ratio"),
                          ("stored_bytes", "storage_ratio")):
        out[ratio] = out[column] / out["task"].map(ref[column]) if len(ref) else float("nan")
    return out


def costs_table(costs: pd.DataFrame, methods: list[str] | None = None) -> pd.DataFrame:
    """One row per method (means over tasks), readable: trainable count, stored size, step time and memory
    relative to full fine-tuning."""
    methods = methods or list(dict.fromkeys(costs["method"]))
    mean = costs.groupby("method").agg(
        trainable=("trainable_params", "first"), stored_bytes=("stored_bytes", "first"),
        train_seconds=("train_seconds", "mean"), seconds_per_step=("seconds_per_step", "mean"),
        step_ratio=("step_ratio", "mean"), peak_memory_mb=("peak_memory_mb", "max"),
        memory_ratio=("memory_ratio", "mean"), storage_ratio=("storage_ratio", "mean"))
    table = pd.DataFrame({
        "trainable": mean["trainable"].map("{:,}".format),
        "stored per task": mean["stored_bytes"].map(_size),
        "storage vs full": mean["storage_ratio"].map(lambda v: "—" if pd.isna(v) else f"{v:.2g}×"),
        "train s/run": mean["train_seconds"].map("{:.0f}".format),
        "s/step": mean["seconds_per_step"].map("{:.3f}".format),
        "step vs full": mean["step_ratio"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}×"),
        "peak MB": mean["peak_memory_mb"].map("{:,.0f}".format),
        "memory vs full": mean["memory_ratio"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}×"),
    })
    return table.reindex([m for m in methods if m in table.index])


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"
