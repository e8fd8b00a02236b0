"""What a comparison establishes whatever its margin: the one-sided bound, the *non-inferior within m* word,
margins fixed before the run (with their reason), retention (a share of a reference's gain over a floor,
Fieller) and Holm's step-down over a family of verdicts.

Why: "inconclusive" against a ±1 point margin hides what the data do establish. The lower end of a
comparison's interval at level L is a one-sided (1 + L) / 2 bound (97.5 % for the plain 95 % rule): "LayerNorm
is at most 0.4 points worse than full fine-tuning (97.5 %, one-sided)". That statement holds for every margin
at once, so no choice of margin hides it; the *non-inferior within m* word (``noninferior_word``) is the same
bound read against a margin m fixed before the run (``lnft.profiles``: ``margin`` and ``margin_reason`` per
notebook). Read the words in this order: *better* / *worse* (the two-sided interval excludes 0), *equivalent
within ±m* (TOST: both directions bounded by m), *non-inferior within m* (only the direction that matters for
"matches": a is not worse than b by m or more), else *inconclusive*; the bound is printed with every word.

A margin fixed from data: ``retention_margin`` turns "a keeps at least 90 % of the reference's gain over the
floor" into points, from an earlier run (the quick profile's report for the standard profile), and
``retention`` tests the share itself (Fieller: the set of shares R whose contrast a − [R·b + (1 − R)·floor]
the rule does not reject), from the runs being judged.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import LnftError

NONINFERIOR_PREFIX = "non-inferior within "
EQUIVALENT_PREFIX = "equivalent within ±"
RETENTION_SHARE = 0.9  # the default share of the reference's gain over the floor a method must keep


def noninferior_word(margin: float) -> str:
    """``non-inferior within 1 point``: the one-sided bound lies above −margin."""
    return f"{NONINFERIOR_PREFIX}{margin:.3g} point"


def one_sided_level(level: float) -> float:
    """The one-sided level of the lower end of a two-sided ``level`` interval: 0.95 -> 0.975."""
    return (1 + level) / 2


def bound_text(a: str, b: str, bound: float, level: float, unit: str = "points", digits: int = 1) -> str:
    """``layernorm is at most 2.4 points worse than full (97.5 %, one-sided)`` from the lower bound of a − b
    (``bound``) of a two-sided ``level`` interval; ``at least … better`` when the bound is above 0."""
    if bound is None or not np.isfinite(bound):
        return ""
    side = f"at least {bound:.{digits}f} {unit} better than" if bound >= 0 else \
        f"at most {-bound:.{digits}f} {unit} worse than"
    return f"{a} is {side} {b} ({round(one_sided_level(level) * 100, 2):g} %, one-sided)"


def margin_for(margin, task: str, tasks=None) -> float:
    """The margin (points) of one row: ``margin`` a number, or {task: points, "default": points}; the
    ``average`` row (``tasks``: the tasks it averages) takes the mean of its tasks' margins — for a retention
    margin exactly the margin of the average gain."""
    if not isinstance(margin, dict):
        return float(margin)
    if task == "average" and tasks:
        return float(np.mean([margin_for(margin, t) for t in tasks]))
    if task in margin:
        return float(margin[task])
    if "default" in margin:
        return float(margin["default"])
    raise LnftError(f"margin {margin!r} has no entry for task {task!r}; allowed: add it or a 'default'")


def check_margin(margin) -> None:
    """A margin is a positive finite number, or {task or 'default': positive number}."""
    def ok(x):
        return not isinstance(x, bool) and isinstance(x, (int, float)) and 0 < x < math.inf
    if not (ok(margin) or (isinstance(margin, dict) and margin and all(isinstance(k, str) and ok(v)
                                                                      for k, v in margin.items()))):
        raise LnftError(f"invalid margin {margin!r}; allowed: a positive number of points, or "
                        "{task or 'default': positive number}")


def retention_margin(reference: float, floor: float, share: float = RETENTION_SHARE) -> float:
    """Points a method may lose against ``reference`` while keeping ``share`` of its gain over ``floor``:
    (1 − share)·(reference − floor). Scores in points, from a run made before the one judged."""
    if not 0 < share < 1:
        raise LnftError(f"invalid share {share!r}; allowed: 0 < share < 1")
    if not reference > floor:
        raise LnftError(f"retention needs the reference above the floor, got {reference!r} <= {floor!r}")
    return (1 - share) * (reference - floor)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control at any level): p_(i)·(m − i + 1),
    made monotone, capped at 1. NaN stays NaN and is not counted."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, p[j] * (m - i)))
        out[j] = running
    return out
