"""Group-sequential arithmetic for decide mode: exact look levels from the looks' information fractions,
the conditional power behind the futility stop, and the range of a seeds-needed estimate.

Why: decide mode (``lnft.decide``) looks at a comparison at n0, n0 + 1, …, N seeds per side. Giving each look
its spent share of α as a Bonferroni level ignores that the looks share most of their data, and spends more
than needed (3 → 5 seeds: 97.74 %, 98.45 %, 98.82 %). Here every look uses Pocock's constant boundary, exact
for the looks' information fractions t_k = n_k / N (97.37 % at 3, 4 and 5 seeds), found by the recursive
numerical integration of Armitage, McPherson and Rowe (1969; Jennison & Turnbull 2000, ch. 19): the statistic
at look k is the difference over its standard error, and the differences of nested seed sets behave as a
Brownian motion in information time (Cov(D_j, D_k) = Var(D_k) for j < k).

Information grows as 1 / (V_E + s²/n): with example noise V_E > 0 it grows *slower* than n, the looks are
more correlated than t_k = n_k / N says, and the same boundaries cross less often: the levels are exact
when the seeds dominate and conservative otherwise, valid for every V_E (the simulation in
``scripts/verdict_simulation.py --sequential`` and ``tests/test_decide.py`` checks it with t-intervals).

Futility: a comparison stops early only when the *conditional power* — the chance that the last look gives
it a word (better, worse, equivalent or non-inferior), if the true difference were the observed one and the
variance components as estimated — is below ``FUTILITY`` (10 %). Stopping for futility never raises a false
rate (it only removes chances to decide).
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import ndtr, ndtri

FUTILITY = 0.10  # stop early when the chance of a word by the last look is below this
STRONGER = 0.5  # a non-inferior comparison goes on while the chance of *better* by the last look is at least this
_GRID = 401  # points of the numerical integration per look


def crossing(fractions: tuple[float, ...], crit: float) -> float:
    """P(|Z_k| ≥ ``crit`` at some look) under H0 for looks at information ``fractions`` (increasing, the last
    1): recursive integration of the sub-density of S = Z·sqrt(t) inside the continuation region."""
    t = np.asarray(fractions, dtype=np.float64)
    b = crit * math.sqrt(t[0])
    s = np.linspace(-b, b, _GRID)
    dens = np.exp(-0.5 * s * s / t[0]) / math.sqrt(2 * math.pi * t[0])  # sub-density of S_1 inside
    out = 2 * float(ndtr(-crit))
    for k in range(1, len(t)):
        step, sd = t[k] - t[k - 1], math.sqrt(t[k] - t[k - 1])
        w = _simpson(s) * dens  # quadrature weights × density
        bk = crit * math.sqrt(t[k])
        out += float(w @ (ndtr((-bk - s) / sd) + ndtr((s - bk) / sd)))
        new = np.linspace(-bk, bk, _GRID)
        dens = np.exp(-0.5 * (new[:, None] - s[None, :]) ** 2 / step) / math.sqrt(2 * math.pi * step) @ w
        s = new
    return out


@functools.lru_cache(maxsize=256)
def boundary(fractions: tuple[float, ...], alpha: float) -> float:
    """Pocock's constant two-sided critical value c for looks at information ``fractions``: P(|Z_k| ≥ c at
    some look) = ``alpha`` exactly, the looks' correlation sqrt(t_j / t_k) taken into account."""
    t = np.asarray(fractions, dtype=np.float64)
    if len(t) == 0 or np.any(np.diff(t) <= 0) or not 0 < t[0] or abs(t[-1] - 1) > 1e-12:
        raise ValueError(f"information fractions must increase to 1, got {fractions}")
    lo, hi = float(ndtri(1 - alpha / 2)), float(ndtri(1 - alpha / (2 * len(t))))  # one look .. Bonferroni
    if len(t) == 1:
        return lo
    for _ in range(32):  # crossing decreases in c
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if crossing(fractions, mid) > alpha else (lo, mid)
    return hi


def _simpson(x: np.ndarray) -> np.ndarray:
    """Simpson weights on an evenly spaced grid of odd length."""
    h = x[1] - x[0]
    w = np.ones(len(x))
    w[1:-1:2], w[2:-1:2] = 4, 2
    return w * h / 3


def level(first: int, most: int, alpha: float) -> float:
    """The two-sided interval level of every look at ``first``…``most`` seeds per side (information fractions
    n / most; Pocock's constant boundary): 1 − 2·(1 − Φ(c))."""
    return float(1 - 2 * ndtr(-boundary(tuple(n / most for n in range(first, most + 1)), alpha)))


def _measure(intervals, mean: float, sd: float) -> float:
    """Normal(mean, sd) probability of a union of intervals (lo, hi), overlaps counted once."""
    parts = sorted((lo, hi) for lo, hi in intervals if hi > lo)
    total, end = 0.0, -math.inf
    for lo, hi in parts:
        lo = max(lo, end)
        if hi > lo:
            total += (ndtr((hi - mean) / sd) if math.isfinite(hi) else 1.0) - (
                ndtr((lo - mean) / sd) if math.isfinite(lo) else 0.0)
            end = hi
    return float(min(max(total, 0.0), 1.0))


def conditional_power(diff: float, v_examples: float, s2: float, n: int, most: int, margin: float | None,
                      level: float, target: str = "any") -> float:
    """The chance that the look at ``most`` seeds per side gives a word (better, worse, equivalent within
    ±margin, non-inferior within margin), given the difference ``diff`` at ``n`` seeds, if the true difference
    were ``diff`` and the example variance ``v_examples`` and the summed per-seed variances ``s2``
    (s_a² + s_b²) as estimated; ``level``: the last look's two-sided level (normal quantiles: an
    approximation, for a futility rule only). Conditional on D_n, D_N is normal with mean ``diff`` and
    variance Var_N·(1 − Var_N / Var_n). ``target="better"``: the chance of *better* alone (a non-inferior
    comparison goes on when that is at least ``STRONGER``)."""
    var_n, var_last = v_examples + s2 / n, v_examples + s2 / most
    if var_last <= 0:
        return 0.0
    sd = math.sqrt(max(var_last * (1 - var_last / var_n), 1e-300)) if var_n > 0 else 1e-150
    se = math.sqrt(var_last)
    c, c_eq = float(ndtri(0.5 + level / 2)), float(ndtri(level))
    regions = [(-math.inf, -c * se), (c * se, math.inf)]
    if target == "better":
        return _measure(regions[1:], diff, sd)
    if margin is not None:
        regions.append((-margin + c * se, math.inf))
        if margin - c_eq * se > 0:
            regions.append((-margin + c_eq * se, margin - c_eq * se))
    return _measure(regions, diff, sd)


def variance_range(s2a: float, s2b: float, na: int, nb: int, quantiles=(0.1, 0.9)) -> tuple[float, float]:
    """Factors by which the true per-seed variances may differ from the observed ones at the ``quantiles``
    of their sampling distribution (Satterthwaite df of s_a²/1 + s_b²/1, chi-square): multiply s² by them
    for the range of a seeds-needed estimate. (1, 1) without seed variance."""
    from scipy.stats import chi2

    den = (s2a ** 2 / (na - 1) if na > 1 else 0) + (s2b ** 2 / (nb - 1) if nb > 1 else 0)
    if s2a + s2b <= 0 or den <= 0:
        return 1.0, 1.0
    df = (s2a + s2b) ** 2 / den
    return float(df / chi2.ppf(quantiles[1], df)), float(df / chi2.ppf(quantiles[0], df))
