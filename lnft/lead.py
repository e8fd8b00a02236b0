"""Claim 1 without selection on the same data: is one component's value (its weight change, or the dev score
lost when it is reverted) larger than **every** other component's?

Why (issue 33, item 4): ``stats.change_lead`` picks the runner-up as the largest other component on the very
runs it then tests at 5 %, with no correction for that choice. Here the word never depends on a choice:

* **largest** — the ``level`` interval of ``target − other`` lies above 0 for *every* other component (an
  intersection–union test: each at ``level``, no correction needed, since all must hold);
* **not largest** — at least one other component is larger, by Holm's step-down over the one-sided tests of
  every other component (family-wise error ≤ (1 − level)/2, the one-sided α of a two-sided ``level``
  interval, as the *worse* word uses);
* **inconclusive** — neither; **needs ≥ 2 seeds** — one seed.

The table still shows the largest other component on the full sample (``largest_other``) and the interval
against it, for reading; the word does not rest on it. ``comparator=`` fixes the comparison before the run
instead (say from the quick profile): then one test at ``level`` against it, no correction.

Weight changes are compared **per kind** as well (``KINDS``): LayerNorm gains against gains, biases against
biases, weight matrices against matrices, and ``all`` (the paper's mixing of a component's tensors); and with
a scale-free measure beside the paper's (``changes.MEASURES``). A component without tensors of a kind (the
output LayerNorm has no matrix) gets no word for that kind.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .components import LAYERNORM_COMPONENTS
from .errors import LnftError
from .stats import LEAD_WORDS, LEVEL, NEEDS_SEEDS, INCONCLUSIVE, BETTER, WORSE

# kind families of a change frame's rows: (frame kind, LayerNorm component?) -> family; "all": the paper's
KINDS = ("all", "gain", "bias", "matrix")
LARGEST, NOT_LARGEST = LEAD_WORDS[BETTER], LEAD_WORDS[WORSE]


def kind_rows(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The rows of a change frame (``lnft.changes``) of one kind family: ``gain`` = LayerNorm weights, ``matrix``
    = every other weight tensor, ``bias`` = every bias, ``all`` = each component's tensors together."""
    if kind not in KINDS:
        raise LnftError(f"invalid kind {kind!r}; allowed: {', '.join(KINDS)}")
    is_ln = frame["component"].astype(str).isin(LAYERNORM_COMPONENTS)
    if kind == "all":
        return frame[frame["kind"] == "all"]
    if kind == "bias":
        return frame[frame["kind"] == "bias"]
    return frame[(frame["kind"] == "weight") & (is_ln if kind == "gain" else ~is_ln)]


def seed_values(frame: pd.DataFrame, scope: str = "layers") -> tuple[list, list[str], np.ndarray]:
    """(seeds, components, values[seed, component]) of one task × measure × kind: each component's value
    averaged over the model's layers (they are its layers, not a sample: averaged, never resampled); embeddings
    and pooler parts (one instance) only in ``scope="all"``."""
    if scope not in ("layers", "all"):
        raise LnftError(f"invalid scope {scope!r}; allowed: layers, all")
    part = frame if scope == "all" else frame[frame["group"] == "layer"]
    part = part.assign(component=part["component"].astype(str))
    table = (part.groupby(["seed", "group", "component"], observed=True)["value"].mean()
             .groupby(["seed", "component"]).mean().unstack("component"))
    if table.isna().any().any():
        raise LnftError("change frame is incomplete: every seed needs every component in every layer")
    return list(table.index), list(table.columns), table.to_numpy(dtype=np.float64)


def paired_estimates(values: np.ndarray, target: int) -> pd.DataFrame:
    """target − every other column over paired rows (seeds of the same runs): diff, se, df (n − 1)."""
    n = values.shape[0]
    gaps = values[:, [target]] - np.delete(values, target, axis=1)
    se = gaps.std(axis=0, ddof=1) / math.sqrt(n) if n >= 2 else np.full(gaps.shape[1], np.nan)
    return pd.DataFrame({"diff": gaps.mean(axis=0), "se": se, "df": float(n - 1)})


def holm_word(estimates: pd.DataFrame, level: float = LEVEL) -> tuple[str, str, float]:
    """(word, the other component Holm finds larger or "", its Holm-adjusted one-sided p) from rows with
    ``other, diff, se, df`` (diff = target − other). See the module docstring."""
    from scipy.stats import t as student

    if estimates.empty:
        return INCONCLUSIVE, "", math.nan
    if estimates["se"].isna().any() or (estimates["df"] < 1).any():
        return NEEDS_SEEDS, "", math.nan
    alpha = (1 - level) / 2
    se, diff, df = (estimates[c].to_numpy(dtype=np.float64) for c in ("se", "diff", "df"))
    q = student.ppf(1 - alpha, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        lows = np.where(se > 0, diff - q * se, -np.inf)  # no word from an estimate without variance
        p_lower = np.where(se > 0, student.cdf(diff / np.where(se > 0, se, 1), df), 1.0)  # H0: target >= other
    if (lows > 0).all():
        return LARGEST, "", math.nan
    order = np.argsort(p_lower)
    k = len(order)
    adjusted = np.maximum.accumulate(np.minimum(1.0, p_lower[order] * (k - np.arange(k))))
    if adjusted[0] <= alpha:
        return NOT_LARGEST, str(estimates["other"].iloc[order[0]]), float(adjusted[0])
    return INCONCLUSIVE, "", float(adjusted[0])


def lead_row(values: np.ndarray, names: list[str], target: str, estimates: pd.DataFrame, *, level: float = LEVEL,
             comparator: str | None = None) -> dict:
    """One verdict row: the target's value, the largest other (full sample, for reading), the interval of the
    difference against it at ``level`` (t over its ``df``), the ratio of the two values, and the word
    (``holm_word``, or one test against a fixed ``comparator``)."""
    from scipy.stats import t as student

    point = values.mean(axis=0)
    ti = names.index(target)
    others = [n for n in names if n != target]
    estimates = estimates.assign(other=others)
    if comparator is not None:
        if comparator not in others:
            raise LnftError(f"comparator {comparator!r} is not among the components ({', '.join(others)})")
        fixed = estimates[estimates["other"] == comparator]
        word, beaten_by, p_holm = _single(fixed.iloc[0], level), "", math.nan
        shown = comparator
    else:
        word, beaten_by, p_holm = holm_word(estimates, level)
        shown = others[int(np.argmax(np.delete(point, ti)))]
    row = estimates[estimates["other"] == shown].iloc[0]
    half = float(student.ppf(0.5 + level / 2, row["df"]) * row["se"]) if np.isfinite(row["se"]) else math.nan
    other_value = float(point[names.index(shown)])
    ratio = float(point[ti] / other_value) if other_value else math.nan
    lo, hi = row["diff"] - half, row["diff"] + half
    return {"component": target, "value": float(point[ti]), "largest_other": shown, "other_value": other_value,
            "diff": float(row["diff"]), "lo": lo, "hi": hi, "ratio": ratio, "ratio_lo": math.nan, "ratio_hi": math.nan,
            "verdict": word, "larger_by_holm": beaten_by, "holm_p": p_holm, "others": len(others),
            "comparator": comparator or "every other (Holm)", "level": level}


def _single(row, level: float) -> str:
    from scipy.stats import t as student

    if not np.isfinite(row["se"]):
        return NEEDS_SEEDS
    half = student.ppf(0.5 + level / 2, row["df"]) * row["se"]
    if row["se"] > 0 and row["diff"] - half > 0:
        return LARGEST
    if row["se"] > 0 and row["diff"] + half < 0:
        return NOT_LARGEST
    return INCONCLUSIVE


def change_leads(frame: pd.DataFrame, component: str = "output LN", *, measures=None, kinds=KINDS,
                 scopes=("layers", "all"), level: float = LEVEL, comparator: str | None = None) -> pd.DataFrame:
    """Per task × measure × kind × scope: is ``component``'s weight change the largest? (``lead_row``; paired
    over seeds: both changes come from the same run). ``frame``: ``changes.run_changes`` rows. A kind the
    component has no tensor of is left out (the output LayerNorm has no matrix)."""
    from scipy.stats import t as student

    from .changes import MEASURES
    from .stats import _fieller

    rows = []
    for measure in measures or MEASURES:
        for kind in kinds:
            part = kind_rows(frame[frame["measure"] == measure], kind)
            for scope in scopes:
                for task, t in part.groupby("task", sort=True):
                    seeds, names, values = seed_values(t, scope)
                    if component not in names:
                        continue
                    est = paired_estimates(values, names.index(component))
                    row = lead_row(values, names, component, est, level=level, comparator=comparator)
                    if len(seeds) >= 2:  # Fieller's interval of the ratio, paired over seeds (stats.change_lead's)
                        q = float(student.ppf(0.5 + level / 2, len(seeds) - 1))
                        row["ratio_lo"], row["ratio_hi"] = _fieller(values[:, names.index(component)],
                                                                    values[:, names.index(row["largest_other"])], q * q)
                    first = int((values[:, names.index(component)] > np.delete(values, names.index(component),
                                                                              axis=1).max(axis=1)).sum())
                    rows.append({"task": task, "measure": measure, "kind": kind, "scope": scope, **row,
                                 "first_seeds": first, "seeds": len(seeds),
                                 "summary": _summary(task, row, f"{measure}, {kind}, {scope}", len(seeds))})
    return pd.DataFrame(rows)


def _summary(task, row, where, seeds) -> str:
    beaten = f"; {row['larger_by_holm']} larger (Holm p {row['holm_p']:.3g})" if row["larger_by_holm"] else ""
    return (f"{task}: {row['component']} {row['verdict']} of {row['others'] + 1} ({where}); {row['ratio']:.2f}× the "
            f"{row['largest_other']} ({row['level'] * 100:.0f} % CI {row['ratio_lo']:.2f}× to {row['ratio_hi']:.2f}×, "
            f"{seeds} seeds){beaten}")


def kind_leaders(frame: pd.DataFrame, scope: str = "layers") -> pd.DataFrame:
    """Per task × measure × kind: the component whose change is largest (seed mean), and its value: the
    per-kind ranking the change frame always held but no verdict read."""
    from .changes import MEASURES

    rows = []
    for measure in MEASURES:
        for kind in KINDS:
            part = kind_rows(frame[frame["measure"] == measure], kind)
            for task, t in part.groupby("task", sort=True):
                _, names, values = seed_values(t, scope)
                point = values.mean(axis=0)
                order = np.argsort(-point)
                rows.append({"task": task, "measure": measure, "kind": kind, "scope": scope,
                             "largest": names[order[0]], "value": float(point[order[0]]),
                             "second": names[order[1]] if len(order) > 1 else "",
                             "second_value": float(point[order[1]]) if len(order) > 1 else math.nan,
                             "components": len(names)})
    return pd.DataFrame(rows)
