"""Figures from tidy frames (seaborn). Each returns the matplotlib Figure so notebooks can show or save it."""
from __future__ import annotations

import matplotlib

if matplotlib.get_backend().lower() == "agg" or not matplotlib.get_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .components import LAYER_LABELS  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")


def change_heatmaps(frame: pd.DataFrame, measure: str, kind: str = "all"):
    """One heatmap per task: layers (rows) × layer components (columns), seed-averaged."""
    part = frame[(frame["measure"] == measure) & (frame["kind"] == kind) & (frame["group"] == "layer")]
    tasks = sorted(part["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.8 * len(tasks), 0.45 * part["layer"].nunique() + 2.4),
                             squeeze=False)
    columns = [c for c in LAYER_LABELS if c in set(part["component"].astype(str))]
    for ax, task in zip(axes[0], tasks):
        grid = (part[part["task"] == task].assign(component=lambda f: f["component"].astype(str))
                .pivot_table(index="layer", columns="component", values="value", aggfunc="mean")[columns])
        sns.heatmap(grid, ax=ax, cmap="viridis", cbar_kws={"label": measure})
        ax.set_title(f"{task}: {measure}")
        ax.set_xlabel("")
    fig.tight_layout()
    return fig


def component_bars(frame: pd.DataFrame, measure: str, kind: str = "all"):
    """Each component's change averaged over layers, per task; error bars = spread over seeds (sd)."""
    from .changes import layer_average

    part = layer_average(frame[(frame["measure"] == measure) & (frame["kind"] == kind)])
    part = part.assign(component=part["component"].astype(str))
    order = [c for c in pd.unique(frame["component"].cat.categories) if c in set(part["component"])]
    fig, ax = plt.subplots(figsize=(max(7, 0.75 * len(order)), 4))
    sns.barplot(data=part, x="component", y="value", hue="task", order=order, errorbar="sd", ax=ax)
    ax.set_yscale("log")
    ax.set_ylabel(f"{measure} (log)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=45)
    ax.set_title(f"change per component, averaged over layers ({measure})")
    fig.tight_layout()
    return fig


def efficiency(table: pd.DataFrame, x: str = "trainable_percent", y: str = "score"):
    """Score vs share of trainable parameters (log x), one point per method per task, seed sd as bars."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for task, part in table.groupby("task"):
        ax.errorbar(part[x], part[f"{y}_mean"], yerr=part[f"{y}_std"].fillna(0), fmt="o", capsize=3, label=task)
        for _, row in part.iterrows():
            ax.annotate(row["method"], (row[x], row[f"{y}_mean"]), textcoords="offset points", xytext=(4, 3),
                        fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (% of the model, log)")
    ax.set_ylabel(f"dev {y} (points)")
    ax.legend(title="task")
    fig.tight_layout()
    return fig


def learning_curves(history: pd.DataFrame, metric: str = "validation_score", x: str = "step"):
    """Validation metric against training steps, one line per method (band: seed spread), one panel per
    task. A run that stopped early leaves the mean to the seeds still training after its last point."""
    tasks = sorted(history["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sns.lineplot(data=history[history["task"] == task], x=x, y=metric, hue="method", errorbar="sd",
                     marker="o", markersize=3, ax=ax)
        ax.set_title(f"{task}: {metric} per {x}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _panels(frame: pd.DataFrame) -> list[tuple]:
    """(task, point) panels in order; point is None when the frame has no ``point`` column."""
    if "point" not in frame:
        return [(t, None) for t in sorted(frame["task"].unique())]
    return list(dict.fromkeys(zip(frame["task"], frame["point"])))


def fraction_curves(frame: pd.DataFrame, baselines: pd.DataFrame | None = None):
    """Score vs fraction of LayerNorm elements trained (log x) per selection rule, one panel per task
    (× Fisher point, side by side, shared y); dashed lines for reference methods (all-LayerNorm, full)."""
    panels = _panels(frame)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False, sharey=True)
    for ax, (task, point) in zip(axes[0], panels):
        part = frame[(frame["task"] == task) & ((frame["point"] == point) if point else True)]
        sns.lineplot(data=part, x="fraction", y="score", hue="selection", errorbar="sd", marker="o", ax=ax)
        if baselines is not None:
            for i, (_, row) in enumerate(baselines[baselines["task"] == task].iterrows()):
                ax.axhline(row["score_mean"], ls="--", color=f"C{i + 3}", label=f"{row['method']} (all)")
        ax.set_xscale("log")
        ax.set_xlabel("fraction of LayerNorm elements trained (%)")
        ax.set_ylabel("dev score (points)")
        ax.set_title(task if point is None else f"{task}: Fisher at {point}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fisher_heatmaps(mass: pd.DataFrame):
    """Fisher mass per layer × LayerNorm component, one panel per task (× Fisher point), log colour."""
    panels = _panels(mass)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (task, point) in zip(axes[0], panels):
        part = mass[(mass["task"] == task) & ((mass["point"] == point) if point else True)].copy()
        part["layer"] = part["layer"].astype("string").fillna("emb")
        seeds = part["seed"].nunique() if "seed" in part else 1
        grid = part.pivot_table(index="layer", columns="component", values="fisher_mass", aggfunc="sum") / seeds
        sns.heatmap(np.log10(grid.astype(float) + 1e-30), ax=ax, cmap="magma", cbar_kws={"label": "log10 mass"})
        ax.set_title(f"{task}: Fisher mass" if point is None else f"{task}, {point}")
    fig.tight_layout()
    return fig


def intervals(table: pd.DataFrame, label: str | list[str] = "task", value: str = "diff", lo: str = "lo",
              hi: str = "hi", ref: float = 0.0, margin: float | None = 1.0, xlabel: str = "difference (points)",
              title: str = "", log: bool = False, flag: str = "undertrained"):
    """Forest plot: one row per comparison, a dot at the estimate and a bar over its interval (the table's
    ``lo``/``hi``: lnft.stats' 95 % intervals); a solid line at ``ref`` (no difference)
    and dashed lines at ``ref ± margin`` (the equivalence band; ``margin=None``: none). Rows whose ``flag``
    column is true (possibly undertrained) are labelled with " †"."""
    labels = table[label].astype(str).agg(" · ".join, axis=1) if isinstance(label, list) else table[label].astype(str)
    if flag in table:
        labels = labels + np.where(table[flag].astype(bool), " †", "")
    fig, ax = plt.subplots(figsize=(7, 0.42 * len(table) + 1.4))
    y = np.arange(len(table))[::-1]
    ax.errorbar(table[value], y, xerr=[table[value] - table[lo], table[hi] - table[value]], fmt="o", capsize=3,
                color="C0")
    ax.axvline(ref, color="black", lw=1)
    if margin is not None:
        for edge in (ref - margin, ref + margin):
            ax.axvline(edge, color="grey", lw=1, ls="--")
    ax.set_yticks(y, labels)
    ax.set_xlabel(xlabel)
    if log:
        ax.set_xscale("log")
    ax.set_title(title or "estimate and 95 % interval")
    fig.tight_layout()
    return fig
