"""Claim 3 as a curve: score against the fraction of LayerNorm elements trained, per selection rule, and the
smallest fraction whose Fisher subset is non-inferior to training all LayerNorm parameters.

Why (issue 35): "fine-tuning a small portion loses little" is a statement about a curve, not one fraction.
The pieces here sit on top of ``lnft.subsets`` (masks, the plan, rate choice, verdict tables):

* ``reference_on_grid`` — the all-LayerNorm reference trained at every rate of the masked runs' grid, so
  that it too chooses its rate on validation (``subsets.choose_rates``) like every subset rule, instead of
  running at one untuned rate;
* ``curve_frame`` / ``figure`` — each rule's seed-mean dev score at each fraction with the interval of its
  difference from all-LayerNorm (``lnft.stats``: seeds and examples, each once), drawn around the score;
* ``noninferior`` / ``verdict`` — the smallest fraction whose Fisher subset is **non-inferior** within the
  claim's margin m: the one-sided bound of (subset − all-LayerNorm), the lower end ``lo`` of the table's
  two-sided interval (so 97.5 % one-sided at a 95 % level), lies above −m. Read as a **fixed sequence** from
  the largest fraction down, stopping at the first fraction that fails: each test at the full one-sided
  level, and the family-wise error of the claim "non-inferior at every fraction down to F" stays at that
  level without correction, because a fraction is only tested once every larger one passed. Then whether
  Fisher top-k beats random-k at that fraction.

**Shared rankings.** Within a seed, every fraction's Fisher mask is the top of the same ranking (nested
masks), and the random masks of one seed are nested draws too; so the points of one curve are positively
correlated. Each point's interval is valid on its own (it is a comparison at one fraction), but neighbouring
points that agree are not independent confirmations, and a smallest fraction picked as the minimum over
fractions that pass would be a selection: hence the fixed sequence. The differences *between* fractions of
one rule are estimated more precisely than the two intervals suggest (the shared ranking cancels).

``margin``: the claim's margin in points (default ``lnft.stats.MARGIN``; a profile's recorded margin, where
one exists, is passed by the notebook).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .errors import LnftError
from .subsets import REFERENCE

FISHER = "fisher-global"
CONTROL = "random"


def reference_on_grid(plan, lrs) -> list[tuple[dict, object]]:
    """``plan`` (``subsets.subset_plan``) with each all-LayerNorm reference run replaced by one run per rate of
    ``lrs`` (the masked runs' grid), labels ``lr`` set: the reference then chooses its rate on validation as
    every rule does (``subsets.choose_rates`` keys it by task × point × fraction × selection)."""
    lrs = [float(x) for x in lrs]
    if not lrs or any(not x > 0 for x in lrs):
        raise LnftError(f"invalid learning-rate grid {lrs!r}; allowed: a non-empty list of positive rates")
    out = []
    for labels, cfg in plan:
        if labels.get("selection") != REFERENCE:
            out.append((labels, cfg))
            continue
        out += [({**labels, "lr": lr}, dataclasses.replace(cfg, lr=lr)) for lr in lrs]
    return out


def curve_frame(vs_all: pd.DataFrame) -> pd.DataFrame:
    """One row per task × point × rule × fraction (from ``subsets.versus_all_layernorm`` or the decided
    table): the rule's seed-mean score, the all-LayerNorm score, and the rule's score interval = its score
    shifted by the interval of its difference from all-LayerNorm (``lo``, ``hi`` at the row's ``level``)."""
    need = {"task", "point", "a", "fraction", "a_score", "b_score", "diff", "lo", "hi"}
    missing = sorted(need - set(vs_all.columns))
    if missing:
        raise LnftError(f"curve_frame needs column(s) {missing}; allowed: a subsets.versus_all_layernorm table")
    out = vs_all.rename(columns={"a": "rule", "a_score": "score", "b_score": "all_ln"}).copy()
    out["score_lo"] = out["score"] + (out["lo"] - out["diff"])
    out["score_hi"] = out["score"] + (out["hi"] - out["diff"])
    keep = ["task", "point", "rule", "fraction", "score", "score_lo", "score_hi", "all_ln", "diff", "lo", "hi",
            *[c for c in ("level", "a_lr", "b_lr", "undertrained", "flags", "a_seeds") if c in out]]
    return out[keep].sort_values(["task", "point", "rule", "fraction"]).reset_index(drop=True)


def noninferior(vs_all: pd.DataFrame, margin: float | dict | None = None) -> pd.DataFrame:
    """Every row of a rule − all-LayerNorm table with ``bound`` (the one-sided bound: the subset is at most
    −bound points worse, at the row's one-sided level (1 + level) / 2), ``margin`` and ``noninferior``
    (bound > −margin), and ``in_sequence``: non-inferior at this fraction and at every larger one of the same
    task × point × rule (the fixed sequence from the largest fraction down)."""
    from . import stats

    from . import bounds

    out = vs_all.copy()
    out["bound"] = out["lo"]
    # the claim's margin: points, or {task or "default": points} (the profile's, fixed before the run)
    out["margin"] = [stats.MARGIN if margin is None else bounds.margin_for(margin, t) for t in out["task"]]
    seeds = out["a_seeds"].ge(2) if "a_seeds" in out else True  # one seed: an interval over examples only
    out["noninferior"] = np.isfinite(out["lo"]) & (out["lo"] > -out["margin"]) & seeds
    out["in_sequence"] = False
    for _, part in out.groupby(["task", "point", "a"], sort=False):
        ok = True
        for i in part.sort_values("fraction", ascending=False).index:
            ok = ok and bool(out.at[i, "noninferior"])
            out.at[i, "in_sequence"] = ok
    return out


def verdict(vs_all: pd.DataFrame, versus: pd.DataFrame, margin: float | dict | None = None, rule: str = FISHER,
            control: str = CONTROL) -> pd.DataFrame:
    """Per task × Fisher point: the smallest fraction at which ``rule`` is non-inferior to all-LayerNorm within
    ``margin`` (fixed sequence from the largest fraction down; ``None`` when even the largest fraction fails),
    its one-sided bound there, and ``rule`` − ``control`` at that fraction (verdict word and summary; "beats
    random" only when that word is *better*). ``undertrained`` / ``flags``: every row read (†)."""
    from . import stats

    table = noninferior(vs_all[vs_all["a"] == rule], margin)
    rows = []
    for (task, point), part in table.groupby(["task", "point"], sort=False):
        passed = part[part["in_sequence"]].sort_values("fraction")
        smallest = float(passed["fraction"].iloc[0]) if len(passed) else None
        row = {"task": task, "point": point, "rule": rule, "margin": float(part["margin"].iloc[0]),
               "fractions": ", ".join(f"{f:g}" for f in sorted(part["fraction"])),
               "smallest non-inferior %": smallest}
        read = [part]
        if smallest is not None:
            at = passed.iloc[0]
            row["bound"] = float(at["bound"])
            row["level (one-sided)"] = (1 + float(at.get("level", stats.LEVEL))) / 2
            gap = versus[(versus["task"] == task) & (versus["point"] == point) & (versus["fraction"] == smallest)
                         & (versus["a"] == rule) & (versus["b"] == control)]
            if len(gap):
                g = gap.iloc[0]
                row.update({"vs random": g["verdict"], "vs random summary": g["summary"],
                            "beats random": g["verdict"] == stats.BETTER})
                read.append(gap)
        else:
            row.update({"bound": float("nan"), "level (one-sided)": float("nan")})
        row.setdefault("vs random", "")
        row.setdefault("vs random summary", "")
        row.setdefault("beats random", False)
        both = pd.concat(read, ignore_index=True)
        row["undertrained"] = bool(both["undertrained"].any()) if "undertrained" in both else False
        row["flags"] = "; ".join(dict.fromkeys(f for x in both.get("flags", pd.Series(dtype=str)).fillna("")
                                               if x for f in x.split("; ")))
        row["summary"] = _summary(row)
        rows.append(row)
    return pd.DataFrame(rows)


def _num(x: float) -> str:
    return f"{x:.2f}".replace("-", "−")


def _summary(row: dict) -> str:
    where = f"{row['task']} @ {row['point']}"
    dagger = " †" if row["undertrained"] else ""
    if row["smallest non-inferior %"] is None:
        return (f"{where}: Fisher top-k is non-inferior to all LayerNorm within {row['margin']:g} point at no fraction "
                f"tried (fractions {row['fractions']} %){dagger}")
    text = (f"{where}: Fisher top-k non-inferior to all LayerNorm within {row['margin']:g} point from "
            f"{row['smallest non-inferior %']:g} % (at most {_num(-row['bound'])} points worse, "
            f"{row['level (one-sided)'] * 100:g} % one-sided){dagger}")
    if row["vs random"]:
        text += f"; there, Fisher − random: {row['vs random summary']}"
    return text


def figure(frame: pd.DataFrame, margin: float | dict | None = None):
    """Score against fraction (log x), one panel per task × Fisher point, a line per rule with the interval of
    its difference from all-LayerNorm drawn around its score; solid line: the all-LayerNorm score (its own
    chosen rate), dashed: all-LayerNorm − margin (the non-inferiority line). † in the legend: a flagged row."""
    import matplotlib.pyplot as plt

    from . import bounds, stats

    panels = list(dict.fromkeys(zip(frame["task"], frame["point"])))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.4 * max(1, len(panels)), 4), squeeze=False,
                             sharey=False)
    for ax, (task, point) in zip(axes[0], panels):
        part = frame[(frame["task"] == task) & (frame["point"] == point)]
        for i, (rule, r) in enumerate(part.groupby("rule", sort=True)):
            r = r.sort_values("fraction")
            flagged = " †" if "undertrained" in r and r["undertrained"].any() else ""
            ax.errorbar(r["fraction"], r["score"], yerr=[r["score"] - r["score_lo"], r["score_hi"] - r["score"]],
                        fmt="-o", capsize=3, color=f"C{i}", label=f"{rule}{flagged}")
        ref = float(part["all_ln"].iloc[0])
        m = stats.MARGIN if margin is None else bounds.margin_for(margin, task)  # the panel's task margin
        ax.axhline(ref, color="k", lw=1, label="all LayerNorm (100 %)")
        ax.axhline(ref - m, color="k", lw=1, ls="--", label=f"all LayerNorm − {m:g}")
        ax.set_xscale("log")
        ax.set_xlabel("fraction of LayerNorm elements trained (%)")
        ax.set_ylabel("dev score (points)")
        ax.set_title(f"{task}: Fisher at {point}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
