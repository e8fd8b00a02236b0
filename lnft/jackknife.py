"""Degrees of freedom of V_E, the example-sampling variance of a difference, from a jackknife over examples.

Why: lnft's interval adds V_E (from the paired example bootstrap) to the seeds' variance and took V_E as
known (infinite degrees of freedom). When example noise dominates, the interval's t quantile then rests on
V_E alone, and how sure V_E itself is matters: it is a sum over examples, and when few examples carry it (two
accurate methods that disagree on a handful of dev examples) it is as uncertain as a variance with few df.

Each run's score is linearised by its delete-one jackknife over the examples (every GLUE metric from its
sufficient statistics: accuracy, F1 and Matthews from the confusion matrix less one example, Pearson from
its sums less one; Spearman as Pearson on the full sample's ranks). g_{i,x} = (ψ_{i,x} − ψ̄_i) / N, ψ the
pseudo-values, so that a resample's score moves by Σ_x (w_x − 1)·g_{i,x}. The example variance of the
difference of seed-expected scores is then V = Σ_x h_x with h_x the distinct-run cross products (as V_E
counts them: a run with itself is left out), and Var(V) ≈ N·var_x(h_x): df_E = 2·V² / Var(V)
(Satterthwaite), which ``lnft.stats.difference`` adds to the Welch–Satterthwaite df. Any number of examples
per run and several splits (their examples concatenated) are fine: the cost is one pass over the predictions.
"""
from __future__ import annotations

import numpy as np

from .errors import LnftError


def _confusion_values(name: str, conf: np.ndarray) -> np.ndarray:
    """A confusion metric from counts conf[..., true, pred] (lnft.tasks' conventions: 0 when undefined)."""
    total = conf.sum(axis=(-2, -1))
    correct = np.trace(conf, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "accuracy":
            return correct / total
        if name == "f1":
            tp, fp, fn = conf[..., 1, 1], conf[..., 0, 1], conf[..., 1, 0]
            den = 2 * tp + fp + fn
            return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)
        t, p = conf.sum(axis=-1), conf.sum(axis=-2)
        cov_tp = correct * total - (t * p).sum(-1)
        den = (total ** 2 - (p * p).sum(-1)) * (total ** 2 - (t * t).sum(-1))
        return np.where(den > 0, cov_tp / np.sqrt(np.where(den > 0, den, 1)), 0.0)


def _pearson_drop_one(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of x (runs, n) with y ((n,) or (runs, n)) with example j left out, for
    every j: (runs, n). Values centred first (against cancellation); 0 where the rest is constant."""
    x = x - x.mean(axis=1, keepdims=True)
    y = np.broadcast_to(np.atleast_2d(y), x.shape)
    y = y - y.mean(axis=1, keepdims=True)
    n = x.shape[1] - 1
    sx, sy = x.sum(1, keepdims=True) - x, y.sum(1, keepdims=True) - y
    sxx, syy = (x * x).sum(1, keepdims=True) - x * x, (y * y).sum(1, keepdims=True) - y * y
    sxy = (x * y).sum(1, keepdims=True) - x * y
    vx, vy, cov = sxx - sx * sx / n, syy - sy * sy / n, sxy - sx * sy / n
    ok = (vx > 1e-12 * np.maximum(sxx, 1e-300)) & (vy > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, cov / np.sqrt(np.where(ok, vx * vy, 1)), 0.0)


def drop_one(name: str, labels: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(full-sample metric per run (runs,), metric with each example left out (runs, n)) for a GLUE metric.
    ``labels``: (n,), or (runs, n) for accuracy and Pearson (as ``lnft.stats.weighted_metric``)."""
    from scipy.stats import rankdata

    preds = np.atleast_2d(preds)
    if name in ("pearson", "spearman"):
        x, y = preds.astype(np.float64), np.asarray(labels, dtype=np.float64)
        if name == "spearman":
            x, y = rankdata(x, axis=1), rankdata(y, axis=-1)
        yc = np.broadcast_to(np.atleast_2d(y), x.shape)
        full = np.array([np.corrcoef(a, b)[0, 1] if a.std() > 0 and b.std() > 0 else 0.0 for a, b in zip(x, yc)])
        return full, _pearson_drop_one(x, y)
    if name not in ("accuracy", "f1", "matthews"):
        raise LnftError(f"unknown metric {name!r}; allowed: accuracy, f1, matthews, pearson, spearman")
    labels = np.broadcast_to(np.atleast_2d(np.asarray(labels).astype(np.int64)), preds.shape)
    preds = preds.astype(np.int64)
    if name == "accuracy":
        right = (preds == labels).astype(np.float64)
        n = right.shape[1]
        full = right.mean(axis=1)
        return full, (right.sum(axis=1, keepdims=True) - right) / (n - 1)
    k = int(max(labels.max(), preds.max())) + 1
    cells = labels * k + preds  # (runs, n)
    conf = np.stack([np.bincount(c, minlength=k * k) for c in cells]).astype(np.float64)  # (runs, k*k)
    less = conf[:, None, :] - np.eye(k * k)[None, :, :]  # (runs, cell left out, k*k)
    values = _confusion_values(name, less.reshape(len(conf), k * k, k, k))  # (runs, k*k)
    full = _confusion_values(name, conf.reshape(len(conf), k, k))
    return full, np.take_along_axis(values, cells, axis=1)


def influence(name: str, labels: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """g (runs, n): each example's linear influence on each run's metric (a resample with counts w moves the
    metric by about Σ_x (w_x − 1)·g_x)."""
    full, less = drop_one(name, labels, preds)
    n = less.shape[1]
    pseudo = n * full[:, None] - (n - 1) * less
    return (pseudo - pseudo.mean(axis=1, keepdims=True)) / n


def task_influence(task, labels: dict, preds: dict) -> dict[str, np.ndarray]:
    """Per method, g (seeds, examples of every split) of its task score in points (the mean of the task's
    metrics over its splits × 100), as ``lnft.stats.task_replicates`` scores it."""
    parts = {m: [] for m in preds}
    scale = 100.0 / (len(task.metrics) * len(labels))
    for split, y in labels.items():
        for m in preds:
            p = np.atleast_2d(preds[m][split])
            parts[m].append(scale * sum(influence(name, y, p) for name in task.metrics))
    return {m: np.concatenate(g, axis=1) for m, g in parts.items()}


def example_df(ga: np.ndarray, gb: np.ndarray) -> float:
    """Satterthwaite df of the example variance of mean(a) − mean(b), from the runs' influences ga (na, N)
    and gb (nb, N) on the same examples: 2·V² / Var(V), V = Σ_x h_x over distinct-run cross products.
    inf when V <= 0 (then V_E adds nothing) or with fewer than 2 runs a side."""
    ga, gb = np.atleast_2d(ga), np.atleast_2d(gb)
    na, nb, n = ga.shape[0], gb.shape[0], ga.shape[1]
    if na < 2 or nb < 2 or n < 2:
        return float("inf")
    sa, sb = ga.sum(0), gb.sum(0)
    h = ((sa * sa - (ga * ga).sum(0)) / (na * (na - 1)) + (sb * sb - (gb * gb).sum(0)) / (nb * (nb - 1))
         - 2 * sa * sb / (na * nb))
    v = h.sum()
    var = n * h.var(ddof=1)
    if v <= 0 or var <= 0:
        return float("inf")
    return float(2 * v * v / var)
