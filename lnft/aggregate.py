"""Seed statistics, learning-rate selection and method comparisons on tidy result frames."""
from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["task", "method"]


def scores(frame: pd.DataFrame, split: str = "dev", metric: str = "score") -> pd.DataFrame:
    """One row per run: the chosen split's metric as column ``score``."""
    part = frame[(frame["split"] == split) & (frame["metric"] == metric)]
    return part.drop(columns=["split", "metric"]).rename(columns={"value": "score"})


def select_lr(frame: pd.DataFrame, on: str = "validation") -> pd.DataFrame:
    """Per task × method, the learning rate with the best seed-mean score on ``on`` ("validation" is the
    honest protocol; "dev" is what the paper and BitFit did). Returns task, method, lr, selection score."""
    sel = scores(frame, split=on).groupby([*KEYS, "lr"], as_index=False)["score"].mean()
    best = sel.loc[sel.groupby(KEYS)["score"].idxmax()]
    return best.rename(columns={"score": f"{on}_score"}).reset_index(drop=True)


def summarize(frame: pd.DataFrame, chosen: pd.DataFrame | None = None) -> pd.DataFrame:
    """Dev score mean ± std over seeds per task × method (at the chosen rate when given)."""
    dev = scores(frame, split="dev")
    if chosen is not None:
        dev = dev.merge(chosen[[*KEYS, "lr"]], on=[*KEYS, "lr"])
    out = dev.groupby(KEYS, as_index=False).agg(
        score_mean=("score", "mean"), score_std=("score", "std"), seeds=("seed", "nunique"), lr=("lr", "first"),
        trainable_params=("trainable_params", "first"), trainable_percent=("trainable_percent", "first"))
    return out


def glue_table(summary: pd.DataFrame, methods: list[str] | None = None) -> pd.DataFrame:
    """Rows = methods, columns = tasks ("mean ± std") + average + trainable parameters and share."""
    methods = methods or list(dict.fromkeys(summary["method"]))
    cell = summary.assign(cell=[f"{m:.1f} ± {s:.1f}" if np.isfinite(s) else f"{m:.1f}"
                                for m, s in zip(summary["score_mean"], summary["score_std"])])
    table = cell.pivot(index="method", columns="task", values="cell")
    table["average"] = summary.pivot(index="method", columns="task", values="score_mean").mean(axis=1).map("{:.1f}".format)
    counts = summary.groupby("method")[["trainable_params", "trainable_percent"]].first()
    table["trainable"] = counts["trainable_params"].map("{:,}".format)
    table["% of model"] = counts["trainable_percent"].map("{:.4f}".format)
    return table.reindex([m for m in methods if m in table.index])


def compare(summary: pd.DataFrame, reference: str = "layernorm",
            others: tuple[str, ...] = ("full", "bitfit", "lora", "head"), chosen: pd.DataFrame | None = None,
            noise_factor: float = 1.0) -> pd.DataFrame:
    """Per task: reference minus each other method (points) and the seed spreads.

    Superseded for verdicts by ``lnft.stats.method_verdicts`` (paired bootstrap interval + the verdict
    vocabulary): "within seed noise" here is a crude screen, not a verdict. ``within_seed_noise`` is
    |difference| <= noise_factor × the larger seed std, and None unless both methods have a std."""
    rows = []
    by = summary.set_index(KEYS)
    for task in sorted(summary["task"].unique()):
        if (task, reference) not in by.index:
            continue
        ref = by.loc[(task, reference)]
        for other in others:
            if (task, other) not in by.index:
                continue
            o = by.loc[(task, other)]
            diff = ref["score_mean"] - o["score_mean"]
            noise = max(ref["score_std"], o["score_std"])  # NaN (one seed) on either side: no estimate
            finite = np.isfinite(ref["score_std"]) and np.isfinite(o["score_std"])
            within = bool(abs(diff) <= noise_factor * noise) if finite else None
            rows.append({"task": task, "comparison": f"{reference} − {other}", "difference": diff,
                         "reference_std": ref["score_std"], "other_std": o["score_std"], "within_seed_noise": within})
    return pd.DataFrame(rows)
