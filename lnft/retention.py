"""The share of a reference's gain over a floor that a method keeps, tested directly (Fieller), for a
retention margin read from the runs being judged rather than converted to points from an earlier report
(``lnft.bounds.retention_margin``). Its own module: it reads ``lnft.stats``, which reads ``lnft.bounds``."""
from __future__ import annotations

import math

import numpy as np

from .bounds import one_sided_level
from .errors import LnftError
from .stats import difference


def retention(a_full, b_full, floor_full, a_reps, b_reps, floor_reps, level: float = 0.95, **options) -> dict:
    """The share of b's gain over the floor that a keeps, (ā − f̄) / (b̄ − f̄), with its one-sided lower
    bound at (1 + level) / 2 by Fieller's method under lnft's verdict rule: the bound is the largest share R
    at which the contrast a − [R·b + (1 − R)·floor] still has its lower interval end above 0
    (``lnft.stats.difference``: training noise and paired example sampling, Welch df). The floor's seeds
    pair with b's (the same seed ids, e.g. the head-only runs). ``options`` go to ``stats.difference``."""
    a_full, b_full, f_full = (np.asarray(x, dtype=np.float64) for x in (a_full, b_full, floor_full))
    a_reps, b_reps, f_reps = (np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (a_reps, b_reps, floor_reps))
    if len(b_full) != len(f_full):
        raise LnftError(f"retention pairs the floor's seeds with the reference's: got {len(f_full)} and {len(b_full)}")
    gain = float(b_full.mean() - f_full.mean())
    share = float((a_full.mean() - f_full.mean()) / gain) if gain else math.nan

    def lower(r):
        return difference(a_full, r * b_full + (1 - r) * f_full, a_reps, r * b_reps + (1 - r) * f_reps,
                          margin=None, level=level, needed=False, **options)["lo"]

    if not gain > 0 or not lower(-10.0) > 0:  # the floor is not clearly below the reference: no bound
        return {"share": share, "share_lo": math.nan, "level": one_sided_level(level)}
    lo, hi = -10.0, 10.0
    if lower(hi) > 0:
        return {"share": share, "share_lo": hi, "level": one_sided_level(level)}
    for _ in range(50):  # lower(r) decreases in r while b is above the floor
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if lower(mid) > 0 else (lo, mid)
    return {"share": share, "share_lo": lo, "level": one_sided_level(level)}
