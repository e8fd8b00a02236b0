"""Intervals of metric differences, equivalence by TOST, seeds needed, and the one verdict vocabulary of lnft.

Why: a difference of seed means says nothing about how sure it is. Every verdict in the notebooks and the
README is a difference with an interval and one of these words, all defined here:

* **better** / **worse** — the 95 % interval lies above / below 0;
* **equivalent within ±m points** — two one-sided tests (TOST) at 5 % each: the **90 %** interval lies
  inside [−m, +m]; m is stated per claim (``margin``, default ``MARGIN`` = 1 point) and shown in every
  table (column ``margin``);
* **non-inferior within m** — not better, worse or equivalent, but the interval's lower end (a one-sided
  97.5 % bound) lies above −m: a is not worse than b by m or more (``lnft.bounds``);
* **inconclusive** — anything else: the data cannot decide. Such a row carries how many seeds per side
  would decide it (``seeds_needed``, below);
* **needs ≥ 2 seeds** — a side has one seed: its training noise cannot be estimated, so no word is given;
  the row shows the difference and an interval over the dev examples only (``interval`` = "examples only").

(An interval that excludes 0 but lies inside ±m, e.g. [+0.2, +0.8], reads *better*: the printed interval
shows how small the gain is.) Every row also states the bound it establishes whatever the margin
(``bound``, ``bound_text``: "a is at most 2.4 points worse than b (97.5 %, one-sided)"; ``lnft.bounds``), and
``margin`` may differ per task ({task: points, "default": points}: the average row takes its tasks' mean).

**The interval.** A method's score is the mean over its seeds of each seed's full-sample task score (the
GLUE metric mean × 100 on the dev examples). For the difference D = mean_a − mean_b two sources of noise
enter, each once:

* training noise: s_a²/n_a + s_b²/n_b, from the sample variances of the per-seed scores. A seed's score on
  the fixed dev set already holds its run-to-run disagreement on single examples;
* example sampling of the seed-expected models, V_E: the dev examples are a sample, shared by both
  methods (paired). It is estimated from a paired example bootstrap (the same example weights for every
  run of both methods; every GLUE metric — accuracy, F1, Matthews, Pearson, Spearman — recomputed from
  weighted sufficient statistics): V_E = mean cov(a_i, a_i') + mean cov(b_k, b_k') − 2 mean cov(a_i, b_k)
  over *distinct* runs (i ≠ i', k ≠ k'), so the run-specific part, already in s², is not counted again.

The 95 % interval is D ± t_df·sqrt(V_E + s_a²/n_a + s_b²/n_b), df by Welch–Satterthwaite, V_E with the
degrees of freedom of a jackknife over the examples (``lnft.jackknife``; ``df_examples``). When every seed of each side scored exactly the same (s_a = s_b = 0, e.g.
two seeds with tied scores), V_E is floored at the runs' whole example noise (the variance of the
replicate difference of the seed means), and an estimate with no variance at all never reads better /
worse. **Seeds are not paired**, decided before looking at any result: a seed id
gives both methods the same head initialisation and batch order, but the methods train different
parameters, so how much their seed effects correlate is unknown; the unpaired (Welch) form is valid for
any non-negative correlation, while the paired form (n−1 df on d_s = a_s − b_s) would spend half the
degrees of freedom of 2–5 seeds (3 seeds: t = 4.30 instead of about 2.8). The notebook designs do run the
same seed ids on both sides; ``method_verdicts``, ``fraction_verdicts`` and ``reference_verdicts`` check
it (a missing run is an error, not a silently smaller sample) and every table says ``same_seeds``.
Checked by a known-truth simulation (``tests/test_stats.py``; the README has the measured table).

**Seeds needed** (inconclusive rows): the smallest number of seeds per side at which the test would reach
``POWER`` (80 %) if the true difference were the observed one and the per-seed spreads and V_E stayed
as observed — to decide against 0 (``seeds_to_decide``) and to show equivalence within ±m
(``seeds_to_equivalence``: the chance that the *rule* says equivalent — TOST passes and the 95 % interval
keeps 0, since better / worse is checked first); noncentral-t power with the Welch df of that n (scipy;
statsmodels' ``TTestIndPower`` has no term for V_E). The estimate rests on seed variances with few df: the
text adds its range over the 10–90 % range of the true seed variance (``lnft.sequential.variance_range``). ``inf`` = "none suffice" (cannot by seeds alone): the example
noise V_E of a fixed dev set, or an observed difference of exactly 0 or beyond ±m, prevents it however
many seeds run; more dev examples would help instead.

A task average averages each seed's task scores and the tasks' bootstrap replicates (tasks' examples
drawn independently); every task must hold the same seed ids (else an error naming each task's seeds).
Runs evaluated on different examples (another
``max_eval_samples``, data source or data seed) are never paired: ``compare`` refuses them with one error
naming both runs.

For a ranking (notebook 1: is the output LayerNorm the component that changed most?) ``change_lead``
uses the same rule without an equivalence margin (weight changes have no point scale): *largest* /
*not largest* / *inconclusive* (``LEAD_WORDS``), against a fixed runner-up, over seeds only.

Notebook use (a results list from ``sweep.run_all`` or a tidy frame with ``run_id``)::

    from lnft import stats
    table = stats.method_verdicts(results, chosen, reference="layernorm")      # notebook 2
    table = stats.fraction_verdicts(subsets, store=store)                       # notebook 3
    table = stats.reference_verdicts(subsets, store=store)                      # notebook 3, vs all-LN
    for line in stats.lines(table): print(line)
    lead = stats.change_lead(change_frame)                                      # notebook 1
"""
from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd

from . import bounds, jackknife, sequential
from .errors import LnftError
from .tasks import get_task

REPLICATES = 2000  # example bootstrap replicates behind V_E
MIN_REPLICATES = 200
LEVEL = 0.95  # better / worse
EQUIVALENCE_LEVEL = 0.90  # TOST: two one-sided tests at 5 % each
POWER = 0.80  # seeds needed: the power asked for
MOST_SEEDS = 1000  # seeds needed: searched up to this many per side
MARGIN = 1.0  # points: the default equivalence margin
BETTER, WORSE, INCONCLUSIVE = "better", "worse", "inconclusive"
NEEDS_SEEDS = "needs ≥ 2 seeds"
EXAMPLES_ONLY, EXAMPLES_AND_SEEDS = "examples only", "examples and seeds"


def equivalent_word(margin: float = MARGIN) -> str:
    """``equivalent within ±1 point`` (the word for margin m)."""
    return f"equivalent within ±{margin:.3g} point"


EQUIVALENT = equivalent_word(MARGIN)
NONINFERIOR = bounds.noninferior_word(MARGIN)
VERDICTS = (BETTER, WORSE, EQUIVALENT, NONINFERIOR, INCONCLUSIVE, NEEDS_SEEDS)


def is_verdict(word) -> bool:
    """A verdict word of this vocabulary, at any margin (``VERDICTS`` holds the default margin's words)."""
    return isinstance(word, str) and (word in VERDICTS or word.startswith(bounds.EQUIVALENT_PREFIX)
                                      or word.startswith(bounds.NONINFERIOR_PREFIX))


def accepts_little_loss(word) -> bool:
    """*better*, *equivalent within ±m* or *non-inferior within m*: a loses less than the margin."""
    return isinstance(word, str) and (word == BETTER or word.startswith(bounds.EQUIVALENT_PREFIX)
                                      or word.startswith(bounds.NONINFERIOR_PREFIX))
LEAD_WORDS = {BETTER: "largest", WORSE: "not largest", INCONCLUSIVE: INCONCLUSIVE, NEEDS_SEEDS: NEEDS_SEEDS}
_BLOCK = 4_000_000  # replicate × example cells per block (memory bound for large dev sets)
# the columns of a comparison table besides its group keys (lines() prints the keys)
RESULT_COLUMNS = ("a", "b", "a_score", "b_score", "diff", "lo", "hi", "verdict", "summary", "a_seeds", "b_seeds",
                  "examples", "replicates", "margin", "eq_lo", "eq_hi", "se", "df", "v_examples", "v_seeds",
                  "interval", "same_seeds", "seeds_to_decide", "seeds_to_equivalence", "seeds_needed", "level",
                  "bound", "bound_level", "bound_text", "p", "p_noninferior", "df_examples", "margin_reason")


# decide mode's columns (lnft.decide): seeds per side at the look that stopped the comparison, and why it stopped
SEQUENTIAL_COLUMNS = ("seeds", "stopped", "looks", "conditional_power")


# ------------------------------------------------------------------ the vocabulary
def verdict(lo: float, hi: float, margin: float | None = MARGIN, eq_lo: float | None = None,
            eq_hi: float | None = None) -> str:
    """The verdict word for a 95 % interval [lo, hi] of a difference (points) and, for equivalence, its
    90 % interval [eq_lo, eq_hi] (TOST; default: [lo, hi], which is stricter); *non-inferior within m* when
    only the lower end lo (a one-sided 97.5 % bound) clears −m. ``margin=None``: no equivalence or
    non-inferiority verdict (for quantities without a point scale)."""
    eq_lo, eq_hi = (lo, hi) if eq_lo is None or eq_hi is None else (eq_lo, eq_hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if lo > 0:
        return BETTER
    if hi < 0:
        return WORSE
    if margin is not None and np.isfinite(eq_lo) and np.isfinite(eq_hi) and -margin <= eq_lo and eq_hi <= margin:
        return equivalent_word(margin)
    if margin is not None and lo > -margin:
        return bounds.noninferior_word(margin)
    return INCONCLUSIVE


def describe(diff: float, lo: float, hi: float, word: str | None = None, unit: str = "points",
             digits: int = 1, interval: str = EXAMPLES_AND_SEEDS, level: float = LEVEL) -> str:
    """``worse: −2.4 points (95 % CI −4.0 to −0.9)`` — a verdict always printed with its difference
    and interval; an interval over the examples only says so."""
    word = word or verdict(lo, hi)
    f = f"{{:+.{digits}f}}"
    what = " over examples only" if interval == EXAMPLES_ONLY else ""
    return (f"{word}: {f.format(diff)} {unit} ({level_text(level)} CI{what} {f.format(lo)} to {f.format(hi)})"
            .replace("-", "−"))


# ------------------------------------------------------------------ metrics under bootstrap weights
def weighted_metric(name: str, labels: np.ndarray, preds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A GLUE metric (fraction) of every seed on every resample, vectorised.

    ``preds``: (seeds, n); ``labels``: (n,), or (seeds, n) per row for accuracy and Pearson (independent
    data sets scored on shared resamples: the simulation); ``weights``: (replicates, n) counts of each
    example in each resample (all ones = the full sample). Returns (replicates, seeds). A resample with integer weights
    gives exactly the metric of the expanded sample, as scikit-learn/scipy compute it (tested), with the
    conventions of ``lnft.tasks``: F1 and Matthews are 0 when undefined, Pearson/Spearman 0 for constant
    predictions.
    """
    preds = np.atleast_2d(preds)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if name == "accuracy":  # the share of correct predictions: one matrix product
        correct = (preds.astype(np.int64) == np.atleast_2d(labels).astype(np.int64)).astype(np.float64)
        return (weights @ correct.T) / weights.sum(axis=1, keepdims=True)
    if name in ("f1", "matthews"):
        return _confusion_metric(name, np.asarray(labels).astype(np.int64), preds.astype(np.int64), weights)
    if name in ("pearson", "spearman"):
        x, y = preds.astype(np.float64), np.asarray(labels, dtype=np.float64)
        if name == "spearman":
            if y.ndim != 1:
                raise LnftError("spearman takes one label vector (n,); per-row labels: accuracy and pearson only")
            ry = _weighted_ranks(y, weights)
            return np.stack([_rank_pearson(_weighted_ranks(xs, weights), ry, weights) for xs in x], axis=1)
        return _weighted_pearson(x, y, weights)
    raise LnftError(f"unknown metric {name!r}; allowed: accuracy, f1, matthews, pearson, spearman")


def _confusion_metric(name, labels, preds, weights):
    k = int(max(labels.max(), preds.max())) + 1
    seeds = preds.shape[0]
    cells = labels[None, :] * k + preds  # (seeds, n): confusion cell of each example
    onehot = np.zeros((labels.shape[0], seeds * k * k))
    onehot[np.arange(labels.shape[0])[:, None], np.arange(seeds)[None, :] * k * k + cells.T] = 1.0
    conf = (weights @ onehot).reshape(weights.shape[0], seeds, k, k)  # [r, s, true, pred]
    total = conf.sum(axis=(2, 3))
    correct = np.trace(conf, axis1=2, axis2=3)
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "accuracy":
            return correct / total
        if name == "f1":  # binary, positive class 1 (scikit-learn's default)
            tp, fp, fn = conf[..., 1, 1], conf[..., 0, 1], conf[..., 1, 0]
            den = 2 * tp + fp + fn
            return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)
        t, p = conf.sum(axis=3), conf.sum(axis=2)  # true and predicted counts per class
        cov_tp = correct * total - (t * p).sum(-1)
        cov_pp = total ** 2 - (p * p).sum(-1)
        cov_tt = total ** 2 - (t * t).sum(-1)
        den = cov_pp * cov_tt
        return np.where(den > 0, cov_tp / np.sqrt(np.where(den > 0, den, 1)), 0.0)


def _weighted_pearson(x, y, w):
    """Pearson correlation of each row of x (seeds, n) with y (n,) — or with its own row of y (seeds, n) —
    under each row of w: moments by one matrix product (values centred on their full-sample means first,
    against cancellation); 0 where the predictions are constant."""
    x = x - x.mean(axis=1, keepdims=True)
    y = np.atleast_2d(y)
    y = y - y.mean(axis=1, keepdims=True)
    seeds, k = x.shape[0], y.shape[0]
    moments = w @ np.concatenate([x, x * x, x * y, y, y * y]).T / w.sum(axis=1, keepdims=True)
    mx, mxx, mxy = moments[:, :seeds], moments[:, seeds:2 * seeds], moments[:, 2 * seeds:3 * seeds]
    my, myy = moments[:, 3 * seeds:3 * seeds + k], moments[:, 3 * seeds + k:]
    vx, vy, cov = mxx - mx * mx, myy - my * my, mxy - mx * my
    ok = vx > 1e-12 * np.maximum(mxx, 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, cov / np.sqrt(np.where(ok, vx * vy, 1)), 0.0)


def _rank_pearson(rx, ry, w):
    """Pearson correlation of weighted ranks per row: a resample of N draws has mean rank (N + 1) / 2."""
    mean = (w.sum(axis=1, keepdims=True) + 1) / 2
    dx, dy = rx - mean, ry - mean
    wdx = w * dx
    vx, vy = np.einsum("ij,ij->i", wdx, dx), np.einsum("ij,ij->i", w * dy, dy)
    cov = np.einsum("ij,ij->i", wdx, dy)
    ok = vx > 1e-9 * np.einsum("ij,ij->i", w, rx * rx)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, cov / np.sqrt(np.where(ok, vx * vy, 1)), 0.0)


def _weighted_ranks(values, w):
    """Average ranks (ties share their mean rank) of each example within each weighted resample: the
    ranks scipy gives the expanded sample, so weighted Pearson on them is Spearman's rho."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    group = np.empty(len(values), dtype=np.int64)
    group[order] = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(values)]))
    counts = np.add.reduceat(w[:, order], starts, axis=1)  # weight of each distinct value
    below = np.cumsum(counts, axis=1) - counts
    return (below + (counts + 1) / 2)[:, group]


# ------------------------------------------------------------------ bootstrap of task scores

# ------------------------------------------------------------------ bootstrap of task scores
def _rng(seed: int, *keys) -> np.random.Generator:
    """A generator per (seed, keys): an interval does not depend on what else is in the table."""
    return np.random.default_rng([seed, *(zlib.crc32(str(k).encode()) for k in keys)])


def _example_weights(rng: np.random.Generator, replicates: int, n: int) -> np.ndarray:
    idx = rng.integers(0, n, size=(replicates, n))
    flat = (idx + np.arange(replicates)[:, None] * n).ravel()
    return np.bincount(flat, minlength=replicates * n).reshape(replicates, n).astype(np.float64)


def task_replicates(task, labels: dict[str, np.ndarray], preds: dict[str, dict[str, np.ndarray]], *,
                    replicates: int = REPLICATES, seed: int = 0, key: str = "") -> dict[str, tuple[np.ndarray,
                                                                                                  np.ndarray]]:
    """The task score (points) of every seed of several methods, on the full sample and on paired example
    bootstrap resamples.

    ``task``: a task name or object with ``metrics`` (the score is their mean × 100, over every split);
    ``labels``: split -> (n,); ``preds``: method -> split -> (seeds, n) predictions in the same example
    order. Returns method -> (full-sample score per seed (seeds,), scores per resample and seed
    (replicates, seeds)). Every run of every method is scored on the same resamples, which depend on
    (seed, key, split) only: the same for every pairing.
    """
    task = get_task(task) if isinstance(task, str) else task
    splits = list(labels)
    n_metrics = len(task.metrics) * len(splits)
    names = list(preds)
    sizes = [np.atleast_2d(preds[m][splits[0]]).shape[0] for m in names]
    cols = dict(zip(names, np.split(np.arange(sum(sizes)), np.cumsum(sizes)[:-1])))
    point, total = np.zeros(sum(sizes)), np.zeros((replicates, sum(sizes)))
    for split in splits:  # all methods' seeds as rows of one matrix: one pass per metric and block
        y = np.asarray(labels[split])
        stacked = np.concatenate([np.atleast_2d(preds[m][split]) for m in names])
        # identical prediction rows are scored once and share that column: runs that predicted the same get
        # bit-identical scores (a zero difference by construction, whatever BLAS kernel the CPU picks)
        distinct, row_of = np.unique(stacked, axis=0, return_inverse=True)
        row_of = np.asarray(row_of).reshape(-1)
        rng = _rng(seed, key, split)
        block = max(1, _BLOCK // max(1, len(y)))
        point += sum(weighted_metric(name, y, distinct, np.ones((1, len(y))))[0] for name in task.metrics)[row_of]
        for start in range(0, replicates, block):
            w = _example_weights(rng, min(block, replicates - start), len(y))
            total[start:start + len(w)] += sum(weighted_metric(name, y, distinct, w) for name in task.metrics)[:, row_of]
    return {m: (100.0 * point[cols[m]] / n_metrics, 100.0 * total[:, cols[m]] / n_metrics) for m in names}


# ------------------------------------------------------------------ the interval of a difference
def example_variance(a_reps: np.ndarray, b_reps: np.ndarray) -> float:
    """V_E: the example-sampling variance of the difference of the two methods' *seed-expected* scores,
    from paired bootstrap replicates (replicates, seeds) of each run: mean covariance of distinct runs of
    a, plus that of b, minus twice the mean a–b covariance. Covariances of a run with itself would add the
    run-specific example noise, which the seeds' own spread already holds. Needs ≥ 2 seeds per side;
    clipped at 0."""
    a_reps, b_reps = np.atleast_2d(a_reps), np.atleast_2d(b_reps)
    na, nb = a_reps.shape[1], b_reps.shape[1]
    if na < 2 or nb < 2:
        raise LnftError(f"example_variance needs >= 2 seeds per side (got {na} and {nb})")
    x = np.concatenate([a_reps, b_reps], axis=1)
    if (x == x[:, :1]).all():  # every run scored the same on every resample: exactly 0, not a rounding residue
        return 0.0
    x = x - x.mean(axis=0)
    c = x.T @ x / (len(x) - 1)  # covariances of the runs over the resamples
    caa = (c[:na, :na].sum() - np.trace(c[:na, :na])) / (na * (na - 1))
    cbb = (c[na:, na:].sum() - np.trace(c[na:, na:])) / (nb * (nb - 1))
    return float(max(0.0, caa + cbb - 2 * c[:na, na:].mean()))


def level_text(level: float) -> str:
    """``95 %``, ``98.96 %``: an interval's level as printed (decide mode's looks use levels above 95 %)."""
    return f"{round(level * 100, 2):g} %"


def equivalence_level(level: float = LEVEL) -> float:
    """TOST's level for a better / worse level: each one-sided test at the two-sided α of ``level``
    (95 % -> the 90 % interval, ``EQUIVALENCE_LEVEL``)."""
    return 2 * level - 1


def _constant(x) -> bool:
    """Every value the same (NaN never is)."""
    x = np.asarray(x)
    return x.size > 0 and bool((x == x.flat[0]).all())


def _seed_variance(scores: np.ndarray) -> float:
    """s² of per-seed scores; exactly 0 when every seed scored the same (the mean of three equal floats
    can round away from them, leaving a residue of ~1e-34 that would count as training noise)."""
    return 0.0 if _constant(scores) else float(scores.var(ddof=1))


def _replicate_variance(a_reps: np.ndarray, b_reps: np.ndarray) -> float:
    """Variance over resamples of the difference of the two sides' seed means; exactly 0 when both sides
    hold the same replicate scores (the same predictions), by construction rather than arithmetic."""
    if a_reps.shape == b_reps.shape and np.array_equal(a_reps, b_reps):
        return 0.0
    return float(np.var(a_reps.mean(axis=1) - b_reps.mean(axis=1), ddof=1))


def _welch_df(v_examples, va, vb, na, nb, df_examples=math.inf):
    """Welch–Satterthwaite degrees of freedom of V_E + va + vb (va = s_a²/n_a; V_E with ``df_examples``)."""
    den = va ** 2 / (na - 1) + vb ** 2 / (nb - 1) + (v_examples ** 2 / df_examples if df_examples < math.inf else 0)
    return np.where(den > 0, (v_examples + va + vb) ** 2 / np.where(den > 0, den, 1), np.inf)


def difference(a_full, b_full, a_reps, b_reps, margin: float | None = MARGIN, level: float = LEVEL, *,
               needed: bool = True, needed_level: float | None = None, influence=None) -> dict:
    """The difference of two methods' mean task scores with its interval, TOST, verdict and seeds needed.

    ``a_full``/``b_full``: full-sample score per seed (points); ``a_reps``/``b_reps``: the same runs' scores
    on shared example resamples (replicates, seeds), as ``task_replicates`` gives them. Returns diff, lo, hi
    (``level``), eq_lo, eq_hi (``EQUIVALENCE_LEVEL``), se, df, v_examples (V_E), v_seeds
    (s_a²/n_a + s_b²/n_b), interval, verdict, seeds_to_decide, seeds_to_equivalence, seeds_needed.
    With one seed on a side: the example-only interval of these runs (the variance of their replicate
    difference), verdict ``NEEDS_SEEDS``. ``needed=False`` skips the seeds-needed search (simulations).
    ``needed_level``: the level the seeds-needed search assumes (decide mode: the last look's; default ``level``).
    ``influence``: optional (g_a, g_b), the runs' example influences (``lnft.jackknife.task_influence``) that
    give V_E its degrees of freedom (``df_examples``; without them V_E counts as exact). Also ``bound`` (lo:
    the one-sided bound at ``bound_level`` = (1 + level) / 2), ``p`` (two-sided, vs 0) and ``p_noninferior``
    (one-sided, vs −margin).
    """
    from scipy.special import ndtri, stdtrit

    a_full, b_full = np.asarray(a_full, dtype=np.float64), np.asarray(b_full, dtype=np.float64)
    a_reps, b_reps = np.atleast_2d(a_reps), np.atleast_2d(b_reps)
    na, nb = len(a_full), len(b_full)
    same = np.array_equal(np.sort(a_full), np.sort(b_full))  # the same scores on both sides: a difference of 0
    diff = 0.0 if same else float(a_full.mean() - b_full.mean())
    eq_q = 0.5 + equivalence_level(level) / 2
    out = {"diff": diff, "seeds_to_decide": np.nan, "seeds_to_equivalence": np.nan, "seeds_needed": "",
           "bound_level": bounds.one_sided_level(level), "p": np.nan, "p_noninferior": np.nan, "df_examples": np.nan}
    if na < 2 or nb < 2:
        v = _replicate_variance(a_reps, b_reps)
        se = math.sqrt(v)
        z, zq = ndtri(0.5 + level / 2), ndtri(eq_q)
        return {**out, "lo": diff - z * se, "hi": diff + z * se, "eq_lo": diff - zq * se, "eq_hi": diff + zq * se,
                "bound": diff - z * se,
                "se": se, "df": np.inf, "v_examples": v, "v_seeds": np.nan, "interval": EXAMPLES_ONLY,
                "verdict": NEEDS_SEEDS,
                "seeds_needed": f"{NEEDS_SEEDS} per side to estimate training noise"}
    v_e = example_variance(a_reps, b_reps)
    sa2, sb2 = _seed_variance(a_full), _seed_variance(b_full)
    va, vb = sa2 / na, sb2 / nb
    if va + vb == 0:  # every seed of each side scored the same: floor V_E at the runs' whole example noise
        v_e = max(v_e, _replicate_variance(a_reps, b_reps))
    se = math.sqrt(v_e + va + vb)
    df_e = jackknife.example_df(*influence) if influence is not None else math.inf
    df = float(_welch_df(v_e, va, vb, na, nb, df_e))
    half, eq_half = stdtrit(df, 0.5 + level / 2) * se, stdtrit(df, eq_q) * se
    lo, hi, eq_lo, eq_hi = diff - half, diff + half, diff - eq_half, diff + eq_half
    word = verdict(lo, hi, margin, eq_lo, eq_hi)
    if se == 0 and word in (BETTER, WORSE):  # no better / worse from an estimate without any variance
        word = INCONCLUSIVE
    out.update(lo=lo, hi=hi, eq_lo=eq_lo, eq_hi=eq_hi, se=se, df=df, v_examples=v_e, v_seeds=va + vb,
               interval=EXAMPLES_AND_SEEDS, verdict=word, bound=lo, df_examples=df_e)
    if se > 0:
        from scipy.special import stdtr

        out["p"] = float(2 * stdtr(df, -abs(diff) / se))
        if margin is not None:
            out["p_noninferior"] = float(stdtr(df, -(diff + margin) / se))
    if word == INCONCLUSIVE and needed:
        at = needed_level or level
        decide, equal = seeds_needed(diff, sa2, sb2, v_e, margin, level=at)
        low, high = sequential.variance_range(sa2, sb2, na, nb)
        ranges = [seeds_needed(diff, f * sa2, f * sb2, v_e, margin, level=at) for f in (low, high)]
        out.update(seeds_to_decide=decide, seeds_to_equivalence=equal,
                   seeds_needed=_needed_text(decide, equal, margin, ranges))
    return out


def seeds_needed(diff: float, var_a: float, var_b: float, v_examples: float, margin: float | None = MARGIN, *,
                 level: float = LEVEL, power: float = POWER, most: int = MOST_SEEDS) -> tuple[float, float]:
    """Seeds per side (the same n on both) at which the verdict rule would reach ``power`` if the true
    difference were ``diff``, the per-seed variances ``var_a``, ``var_b`` (s², points²) and the example
    variance ``v_examples`` (V_E) as observed: (to decide against 0, to show equivalence within ±margin).
    ``inf``: no number of seeds would (V_E alone, or an observed difference of 0 / beyond ±margin);
    ``most + 1``: more than ``most``. Power to decide from the noncentral t with the Welch df at that n
    (scipy). Equivalence power is the chance the *rule* says equivalent: TOST passes **and** the 95 %
    interval does not exclude 0 (better / worse is checked first), so a difference between 0 and ±margin
    that seeds would resolve as better / worse before its 90 % interval fits inside ±margin gets "none
    suffice" (``_equivalence_power``)."""
    from scipy.stats import nct, norm, t as student

    n = np.arange(2, most + 1, dtype=np.float64)
    se = np.sqrt(v_examples + (var_a + var_b) / n)
    df = _welch_df(v_examples, var_a / n, var_b / n, n, n)
    se_inf = math.sqrt(v_examples)

    def first(ok, reachable):
        if not reachable:
            return math.inf
        hit = np.flatnonzero(ok)
        return float(n[hit[0]]) if len(hit) else float(most + 1)

    with np.errstate(divide="ignore", invalid="ignore"):
        crit = student.ppf(0.5 + level / 2, df)
        decide = nct.sf(crit, df, abs(diff) / se) + nct.cdf(-crit, df, abs(diff) / se)
        z = norm.ppf(0.5 + level / 2)
        reach = diff != 0 and (se_inf == 0 or norm.cdf(abs(diff) / se_inf - z) + norm.cdf(-abs(diff) / se_inf - z)
                               >= power)
        out = [first(decide >= power, reach)]
        if margin is None:
            return out[0], math.nan
        hit = []
        for part in (slice(0, 63), slice(63, None)):  # few seeds first: the rest only when needed
            equal = _equivalence_power(abs(diff), se[part], df[part], margin, level)
            hit = np.flatnonzero(equal >= power)
            if len(hit):
                out.append(float(n[part][hit[0]]))
                break
        if not len(hit):  # beyond ``most`` seeds only if the limit (se -> sqrt(V_E), normal) still reaches the power
            b = max(0.0, min(z * se_inf, margin - norm.ppf(0.5 + equivalence_level(level) / 2) * se_inf))
            limit = (float(diff == 0 and margin > 0) if se_inf == 0 else
                     norm.cdf((b - abs(diff)) / se_inf) - norm.cdf((-b - abs(diff)) / se_inf))
            out.append(float(most + 1) if limit >= power else math.inf)
    return out[0], out[1]


def _equivalence_power(delta, se, df, margin, level=LEVEL, nodes=128):
    """P(the rule says *equivalent*) at true difference ``delta`` ≥ 0, true standard error ``se`` and
    ``df`` (arrays over n): the 90 % interval inside ±margin (TOST) **and** the 95 % interval not excluding
    0 (better / worse is checked first). With D ~ N(delta, se²) and the estimated se ŝ = se·sqrt(χ²_df/df)
    independent of D, that is P(|D| <= min(t95·ŝ, margin − t90·ŝ)), integrated over ŝ at ``nodes``
    equal-probability quantiles of χ²_df (an infinite df: ŝ = se)."""
    from scipy.special import gammaincinv, ndtr, ndtri, stdtrit

    se, df = np.atleast_1d(np.asarray(se, dtype=np.float64)), np.atleast_1d(np.asarray(df, dtype=np.float64))
    u = (np.arange(nodes) + 0.5) / nodes
    finite = np.isfinite(df)
    scale = np.ones((len(df), nodes))
    exact = finite & (df <= 60)  # χ²_df quantiles; above 60 df Wilson–Hilferty's cube (error < 1e-3), far cheaper
    scale[exact] = np.sqrt(2 * gammaincinv(df[exact, None] / 2, u[None, :]) / df[exact, None])
    wide = finite & (df > 60)
    c = 2 / (9 * df[wide, None])
    scale[wide] = np.sqrt(np.maximum(1 - c + ndtri(u)[None, :] * np.sqrt(c), 0) ** 3)
    s_hat = se[:, None] * scale
    safe = np.where(finite, df, 1)
    t95 = np.where(finite, stdtrit(safe, 0.5 + level / 2), ndtri(0.5 + level / 2))
    eq_q = 0.5 + equivalence_level(level) / 2
    t90 = np.where(finite, stdtrit(safe, eq_q), ndtri(eq_q))
    b = np.maximum(0.0, np.minimum(t95[:, None] * s_hat, margin - t90[:, None] * s_hat))
    sd = se[:, None]
    return (ndtr((b - delta) / sd) - ndtr((-b - delta) / sd)).mean(axis=1)


def _needed_text(decide: float, equal: float, margin: float | None, ranges=None) -> str:
    """``seeds per side for 80 % power: 9 to decide vs 0, none suffice for ±1 equivalence``; with ``ranges``
    (the same two estimates at the low and high end of the seed variance's 10–90 % range) each estimate is
    followed by its range: ``20 (11–74)``."""
    def say(n):
        if n == math.inf:
            return "none suffice"
        return f"> {MOST_SEEDS}" if n > MOST_SEEDS else f"{int(n)}"

    def spread(i, n):
        if ranges is None or n == math.inf:
            return ""
        lo, hi = ranges[0][i], ranges[1][i]
        return "" if say(lo) == say(hi) else f" ({say(lo).replace('none suffice', '∞')}–{say(hi).replace('none suffice', '∞')})"
    text = f"seeds per side for {POWER * 100:.0f} % power: {say(decide)}{spread(0, decide)} to decide vs 0"
    if margin is not None:
        text += f", {say(equal)}{spread(1, equal)} for ±{margin:.3g} equivalence"
    if ranges is not None and any(n != math.inf for n in (decide, equal)):
        text += " (range: the 10–90 % range of the true seed variance)"
    return text


# ------------------------------------------------------------------ runs -> comparisons
def _index(runs, on: str, by: tuple[str, ...]) -> tuple[pd.DataFrame, dict]:
    """A frame with one row per run (run_id, seed, ``on`` and ``by`` columns) and a dict of RunResults
    given directly."""
    given = {}
    if isinstance(runs, pd.DataFrame):
        frame = runs
    else:
        rows = []
        for r in runs:
            given[r.run_id] = r
            rows.append({**r.config.to_dict(), "run_id": r.run_id})
        frame = pd.DataFrame(rows)
    missing = sorted({"run_id", "seed", on, *by} - set(frame.columns))
    if missing:
        raise LnftError(f"cannot compare: column(s) {missing} missing; allowed input: RunResults, or a tidy frame "
                        f"with run_id, seed, {on} and {', '.join(by)}")
    columns = list(dict.fromkeys(["run_id", "seed", on, *by]))
    return frame[columns].drop_duplicates().reset_index(drop=True), given  # a run may serve several groups


def _loader(given: dict, store, predictions: dict | None):
    cache = dict(predictions or {})

    def load(run_id: str):
        if run_id not in cache:
            result = given.get(run_id)
            if result is None:
                from .store import RunStore

                result = (store or RunStore()).load(run_id)
                if result is None:
                    raise LnftError(f"run {run_id!r} is not in the run store {(store or RunStore()).root!r}")
            cache[run_id] = result.predictions()
        return cache[run_id]
    return load


def _splits(task, split: str) -> list[str]:
    if split == "dev":
        return list(task.dev_split_names)
    if split == "validation":
        return ["validation"]
    raise LnftError(f"invalid split {split!r}; allowed: dev, validation")


def _check_paired(runs: list[str], load, splits: list[str]) -> dict[str, np.ndarray]:
    """Labels per split, after checking that every run saw the same examples in the same order."""
    first = runs[0]
    ref = load(first)
    for split in splits:
        if split not in ref:
            raise LnftError(f"run {first} has no predictions for split {split!r} (has: {', '.join(ref)})")
    for other in runs[1:]:
        mine = load(other)
        for split in splits:
            if split not in mine:
                raise LnftError(f"run {other} has no predictions for split {split!r} (has: {', '.join(mine)})")
            a, b = ref[split], mine[split]
            if a.digest != b.digest or len(a) != len(b) or not np.array_equal(a.labels, b.labels):
                raise LnftError(
                    f"cannot pair runs {first} and {other}: they were evaluated on different {split} examples "
                    f"({len(a)} vs {len(b)} examples{', not the same ones' if len(a) == len(b) else ''}); "
                    f"compare runs with the same data, data_seed and max_eval_samples")
    return {split: np.asarray(ref[split].labels) for split in splits}



def compare(runs, a: str, b, *, on: str = "method", by=("task",), store=None, split: str = "dev",
            average: bool = True, replicates: int = REPLICATES, seed: int = 0, margin: float = MARGIN,
            predictions: dict | None = None, same_seeds: bool = False, level: float = LEVEL,
            needed_level: float | None = None, margin_reason: str = "") -> pd.DataFrame:
    """``a`` minus each of ``b`` (one name or a list), per group of ``by``: the difference of seed-mean task
    scores with its interval (training noise and paired example sampling, each once; Welch df), TOST
    equivalence within ±``margin`` and the verdict (module docstring).

    ``runs``: a list of RunResults, or a tidy frame with ``run_id``, ``seed``, ``on`` and ``by`` columns
    (e.g. ``sweep.results_frame(results)`` filtered to the chosen rate; its predictions are read from
    ``store``, default ``RunStore()``). Every seed of a method in a group is one run; two runs with the
    same seed in one group (say, two learning rates) are refused: filter first. ``same_seeds``: refuse a
    group whose two sides ran different seed ids (designs that run every seed on both sides). ``average``:
    with ``task`` in ``by`` and more than one task, also a row ``task="average"`` (per remaining group).
    ``replicates``: example bootstrap replicates behind V_E (>= ``MIN_REPLICATES``). ``predictions``:
    optional run_id -> {split: Predictions} (benchmarks, tests). Returns one row per group × other:
    ``*by, a, b, a_score, b_score, diff, lo, hi, verdict, summary, a_seeds, b_seeds, examples, replicates``
    (scores and differences in points; lo, hi: the 95 % interval), then ``margin``, ``eq_lo, eq_hi`` (the
    90 % interval of TOST), ``se``, ``df``, ``v_examples`` (V_E), ``v_seeds`` (s_a²/n_a + s_b²/n_b),
    ``interval`` (what it covers), ``same_seeds``, ``seeds_to_decide``, ``seeds_to_equivalence`` and
    ``seeds_needed`` (inconclusive rows; see ``seeds_needed``). ``level``: of the better / worse interval
    (TOST at ``equivalence_level(level)``); decide mode (``lnft.decide``) passes each look's level.
    ``margin``: points, or {task: points, "default": points} (``lnft.bounds.margin_for``); ``margin_reason``:
    where it came from (recorded with every row). Every row also holds ``bound`` / ``bound_text`` (what it
    establishes for every margin), ``p``, ``p_noninferior`` and ``df_examples`` (``difference``).
    """
    by = (by,) if isinstance(by, str) else tuple(by)
    index, given = _index(runs, on, by)
    return _compare(index, given, a, b, on=on, by=by, store=store, split=split, average=average,
                    replicates=replicates, seed=seed, margin=margin, predictions=predictions, same_seeds=same_seeds,
                    level=level, needed_level=needed_level, margin_reason=margin_reason)


def _seed_text(seeds) -> str:
    return "{" + ", ".join(str(s) for s in seeds) + "}"


def _compare(index, given, a, b, *, on, by, store, split, average, replicates, seed, margin, predictions,
             same_seeds=False, level=LEVEL, needed_level=None, margin_reason=""):
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < MIN_REPLICATES:
        raise LnftError(f"invalid replicates {replicates!r}; allowed: an integer >= {MIN_REPLICATES}")
    bounds.check_margin(margin)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not (0.5 < level < 1):
        raise LnftError(f"invalid level {level!r}; allowed: a number between 0.5 and 1 (e.g. 0.95)")
    others = [b] if isinstance(b, str) else list(b)
    load = _loader(given, store, predictions)
    rows, per = [], {}
    for key, group in index.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        labels_by = dict(zip(by, key))
        tasks = group["task"].unique() if "task" in group else []
        if len(tasks) != 1:
            raise LnftError(f"cannot compare group {labels_by}: it holds runs of tasks {list(tasks)}; "
                            f"put 'task' in by")
        task = get_task(tasks[0])
        methods = [m for m in [a, *others] if m in set(group[on])]
        if a not in methods or len(methods) < 2:
            continue
        members, seeds_of = {}, {}
        for m in methods:
            part = group[group[on] == m].sort_values("seed")
            dup = part["seed"][part["seed"].duplicated()].tolist()
            if dup:
                raise LnftError(f"{on} {m!r} in {labels_by} has several runs with seed {dup[0]} "
                                f"({', '.join(part[part['seed'] == dup[0]]['run_id'])}); filter to one "
                                f"configuration per seed (e.g. the chosen learning rate) first")
            members[m], seeds_of[m] = part["run_id"].tolist(), part["seed"].tolist()
        if same_seeds:
            for other in methods[1:]:
                if seeds_of[other] != seeds_of[a]:
                    raise LnftError(f"cannot compare {a} and {other} in {labels_by}: they ran different seeds "
                                    f"({_seed_text(seeds_of[a])} vs {_seed_text(seeds_of[other])}); this design "
                                    f"runs every seed on both sides — a run is missing")
        splits = _splits(task, split)
        labels = _check_paired([r for ids in members.values() for r in ids], load, splits)
        preds = {m: {s: np.stack([load(r)[s].preds for r in ids]) for s in splits} for m, ids in members.items()}
        boot = task_replicates(task, labels, preds, replicates=replicates, seed=seed, key=(task.name, *key))
        examples = sum(len(labels[s]) for s in splits)
        influences = jackknife.task_influence(task, labels, preds)  # the df of V_E
        for m in methods:
            per[(key, m)] = (seeds_of[m], *boot[m], examples, influences[m])
        for other in methods[1:]:
            rows.append(_row(labels_by, a, other, per[(key, a)], per[(key, other)], replicates,
                             bounds.margin_for(margin, task.name), level, needed_level, margin_reason))
    table = pd.DataFrame(rows)
    if average and "task" in by and len(table) and table["task"].nunique() > 1:
        rest = [c for c in by if c != "task"]
        pos = by.index("task")
        averaged = []
        for other in others:
            groups = {}
            for (k, m) in per:
                if m == other and (k, a) in per:
                    groups.setdefault(tuple(x for i, x in enumerate(k) if i != pos), []).append(k)
            for rk, keys in sorted(groups.items(), key=lambda kv: str(kv[0])):
                if len(keys) < 2:
                    continue
                labels_by = {**dict(zip(rest, rk)), "task": "average"}
                names = [k[pos] for k in keys]
                averaged.append(_row(labels_by, a, other, _average([per[(k, a)] for k in keys], names, a),
                                     _average([per[(k, other)] for k in keys], names, other), replicates,
                                     bounds.margin_for(margin, "average", names), level, needed_level,
                                     margin_reason))
        table = pd.concat([table, pd.DataFrame(averaged)], ignore_index=True)
    columns = [*by, *RESULT_COLUMNS]
    return table.reindex(columns=columns)


def _average(parts, tasks=None, method=""):
    """One method's (seeds, full-sample scores, replicate scores, examples) averaged over tasks: per seed id,
    its task scores averaged; the tasks' replicates (independent example draws) averaged the same way. Every
    task must hold the same seed ids: a seed missing on one task is an error, not a silently smaller
    sample."""
    tasks = list(tasks) if tasks is not None else [str(i) for i in range(len(parts))]
    if any(sorted(p[0]) != sorted(parts[0][0]) for p in parts):
        held = "; ".join(f"{t} {_seed_text(p[0])}" for t, p in zip(tasks, parts))
        raise LnftError(f"cannot average {method!r} over tasks: its seeds differ by task ({held}); run every seed "
                        f"on every task, or pass average=False")
    common = list(parts[0][0])
    full = np.mean([p[1][[p[0].index(s) for s in common]] for p in parts], axis=0)
    reps = np.mean([p[2][:, [p[0].index(s) for s in common]] for p in parts], axis=0)
    # example influences: each task's examples once, on the average's scale (1 / tasks)
    influence = np.concatenate([p[4][[p[0].index(s) for s in common]] for p in parts], axis=1) / len(parts)
    return common, full, reps, sum(p[3] for p in parts), influence


def _row(labels_by, a, b, side_a, side_b, replicates, margin, level=LEVEL, needed_level=None,
         margin_reason="") -> dict:
    (seeds_a, full_a, reps_a, examples, g_a), (seeds_b, full_b, reps_b, _, g_b) = side_a, side_b
    d = difference(full_a, full_b, reps_a, reps_b, margin, level, needed_level=needed_level, influence=(g_a, g_b))
    summary = describe(d["diff"], d["lo"], d["hi"], d["verdict"], interval=d["interval"], level=level)
    d["bound_text"] = bounds.bound_text(a, b, d["bound"], level) if d["interval"] == EXAMPLES_AND_SEEDS else ""
    if d["bound_text"]:
        summary += f"; {d['bound_text']}"
    if d["verdict"] == INCONCLUSIVE:
        summary += f"; {d['seeds_needed']}"
    if d["verdict"] == NEEDS_SEEDS:
        d["seeds_needed"] = ""
    return {**labels_by, "a": a, "b": b, "a_score": float(full_a.mean()), "b_score": float(full_b.mean()),
            **d, "summary": summary, "a_seeds": len(full_a), "b_seeds": len(full_b), "examples": examples,
            "replicates": replicates, "margin": float(margin), "same_seeds": list(seeds_a) == list(seeds_b),
            "level": float(level), "margin_reason": margin_reason}


def lines(table: pd.DataFrame) -> list[str]:
    """One printable line per comparison: ``sst2: layernorm − full = worse: −2.4 points (95 % CI …; 2 vs 2
    seeds, 400 examples, margin 1)``."""
    keys = [c for c in table.columns if c not in RESULT_COLUMNS and c not in SEQUENTIAL_COLUMNS]
    out = []
    for _, row in table.iterrows():
        where = ", ".join(f"{row[k]}" if k == "task" else f"{k} {row[k]}" for k in keys)
        margin = f", margin {row['margin']:.3g}" if "margin" in row and pd.notna(row["margin"]) else ""
        out.append(f"{where}: {row['a']} − {row['b']} = {row['summary']}; {row['a']} {row['a_score']:.1f}, "
                   f"{row['b']} {row['b_score']:.1f}; {row['a_seeds']} vs {row['b_seeds']} seeds, "
                   f"{row['examples']} examples{margin}"
                   + (f"; stopped: {row['stopped']}" if isinstance(row.get("stopped"), str) and row["stopped"] else ""))
    return out


# ------------------------------------------------------------------ what the notebooks call
def method_verdicts(runs, chosen: pd.DataFrame | None = None, reference: str = "layernorm",
                    others=None, *, store=None, **options) -> pd.DataFrame:
    """Notebook 2: ``reference`` minus each other method, per task and on average over tasks.

    ``runs``: ``sweep.run_all``'s results (or ``sweep.results_frame``); ``chosen``: ``aggregate.select_lr``'s
    frame (task, method, lr) — only runs at each method's chosen rate count. ``others``: default every
    other method present. Every method runs the same seeds (checked: ``same_seeds=True``). Example::

        verdicts = stats.method_verdicts(results, chosen, reference="layernorm")
        for line in stats.lines(verdicts): print(line)
    """
    index, given = _index(runs, "method", ("task", "lr"))
    if chosen is not None:
        index = index.merge(chosen[["task", "method", "lr"]], on=["task", "method", "lr"])
    if others is None:
        others = [m for m in dict.fromkeys(index["method"]) if m != reference]
    options = {"split": "dev", "average": True, "replicates": REPLICATES, "seed": 0, "margin": MARGIN,
               "predictions": None, "same_seeds": True, "level": LEVEL, "margin_reason": "", **options}
    return _compare(index, given, reference, list(others), on="method", by=("task",), store=store, **options)


def fraction_verdicts(subsets: pd.DataFrame, rule: str = "fisher-global", control: str = "random", *,
                      store=None, by=("task", "fraction"), **options) -> pd.DataFrame:
    """Notebook 3: Fisher top-k (``rule``) minus random-k (``control``) at each fraction, per task and
    averaged over tasks. ``subsets``: one row per run with ``run_id, task, selection, fraction, seed`` (the
    notebook's ``subsets`` frame); both arms run the same seeds (checked). Add a column (say
    ``fisher_point``) to ``by`` to split further. Example::

        versus = stats.fraction_verdicts(subsets, store=store)
        for line in stats.lines(versus): print(line)
    """
    return compare(subsets, rule, control, on="selection", by=by, store=store, **{"same_seeds": True, **options})


def _fieller(a: np.ndarray, b: np.ndarray, q: float) -> tuple[float, float]:
    """Fieller's interval of mean(a) / mean(b) over paired values (seeds): the ratios R with
    (ā − R·b̄)² <= q·var(a − R·b)/n, q = t²; (nan, nan) when unbounded (b̄ not clearly away from 0). Its
    bounds cross 1 exactly when the paired t-interval of ā − b̄ crosses 0."""
    n = len(a)
    ma, mb = a.mean(), b.mean()
    saa, sbb, sab = a.var(ddof=1), b.var(ddof=1), np.cov(a, b, ddof=1)[0, 1]
    qa = q / n
    A, B, C = mb * mb - qa * sbb, ma * mb - qa * sab, ma * ma - qa * saa
    disc = B * B - A * C
    if -1e-12 * B * B < disc < 0:  # no spread over seeds: a single point, up to rounding
        disc = 0.0
    if A <= 0 or disc < 0:
        return math.nan, math.nan
    root = math.sqrt(disc)
    return float((B - root) / A), float((B + root) / A)


def change_lead(frame: pd.DataFrame, component: str = "output LN", measure: str = "mean_abs", kind: str = "all",
                scope: str = "layers", *, level: float = LEVEL) -> pd.DataFrame:
    """Notebook 1: per task, ``component``'s change (layer-averaged, seed-averaged) minus that of the
    runner-up — the largest other component on the full sample, fixed before any interval — with a
    Student-t interval over seeds (n−1 df, paired: both changes come from the same run) and, for the
    ratio component / runner-up, Fieller's interval (it excludes 1 exactly when the difference's interval
    excludes 0). *largest* needs the interval against **every** other component above 0 (an
intersection–union test: each at 95 %), not only against the runner-up; the interval and ratio shown are
against the runner-up. Layers are what they are (the model's six layers, not a sample of layers): averaged, not
    resampled. One seed gives the estimate without an interval and the word *needs ≥ 2 seeds*.

    ``frame``: ``changes.run_changes`` rows (task, seed, group, layer, component, kind, measure, value).
    ``scope``: "layers" (the components inside the transformer layers, the paper's view) or "all"
    (embeddings and pooler too: one instance each). Returns per task: ``largest_other``, ``value`` and
    ``other_value``, ``diff`` with ``lo, hi`` (measure units), ``ratio`` with ``ratio_lo, ratio_hi``,
    ``verdict`` (largest / not largest / inconclusive / needs ≥ 2 seeds), ``first_seeds`` (seeds in which
    the component ranks first), ``seeds``, ``layers``, ``summary``. Example::

        lead = stats.change_lead(frame)      # frame from changes.run_changes over the runs
        for line in lead["summary"]: print(line)
    """
    from scipy.stats import t as student

    if scope not in ("layers", "all"):
        raise LnftError(f"invalid scope {scope!r}; allowed: layers, all")
    part = frame[(frame["measure"] == measure) & (frame["kind"] == kind)]
    if scope == "layers":
        part = part[part["group"] == "layer"]
    if component not in set(part["component"].astype(str)):
        raise LnftError(f"component {component!r} is not in the change frame ({measure}, {kind}, {scope})")
    rows = []
    for task, t in part.groupby("task", sort=True):
        t = t.assign(component=t["component"].astype(str))
        layered, flat = t[t["group"] == "layer"], t[t["group"] != "layer"]
        grid = layered.pivot_table(index=["seed", "layer"], columns="component", values="value", aggfunc="mean")
        seeds = sorted(t["seed"].unique())
        layers = sorted(layered["layer"].dropna().unique())
        grid = grid.reindex(pd.MultiIndex.from_product([seeds, layers], names=["seed", "layer"]))
        names = list(grid.columns)
        values = grid.to_numpy().reshape(len(seeds), len(layers), len(names))  # [seed, layer, component]
        singles = flat.pivot_table(index="seed", columns="component", values="value", aggfunc="mean").reindex(seeds)
        names += list(singles.columns)
        if np.isnan(values).any() or singles.isna().any().any():
            raise LnftError(f"change frame of task {task!r} is incomplete: every seed needs every component "
                            f"in every layer")
        full_seed = np.concatenate([values.mean(axis=1), singles.to_numpy()], axis=1)  # seed, component
        point = full_seed.mean(axis=0)
        ci = names.index(component)
        others = [i for i in range(len(names)) if i != ci]
        runner = others[int(np.argmax(point[others]))]
        mine, theirs = full_seed[:, ci], full_seed[:, runner]
        diff, ratio = float(point[ci] - point[runner]), float(point[ci] / point[runner])
        n = len(seeds)
        if n >= 2:
            q = float(student.ppf(0.5 + level / 2, n - 1))
            half = q * float(np.std(mine - theirs, ddof=1)) / math.sqrt(n)
            lo, hi = diff - half, diff + half
            ratio_lo, ratio_hi = _fieller(mine, theirs, q * q)
            word = LEAD_WORDS[verdict(lo, hi, margin=None)]
            if word == LEAD_WORDS[BETTER]:  # intersection-union: largest only if it beats every other one
                gaps = mine[:, None] - full_seed[:, others]  # (seeds, others), paired within a run
                lows = gaps.mean(axis=0) - q * gaps.std(axis=0, ddof=1) / math.sqrt(n)
                if not (lows > 0).all():
                    word = INCONCLUSIVE
            interval_text = (f"{ratio:.2f}× the {names[runner]} ({level * 100:.0f} % CI {ratio_lo:.2f}× to "
                             f"{ratio_hi:.2f}×, over {n} seeds)")
        else:
            lo = hi = ratio_lo = ratio_hi = math.nan
            word = NEEDS_SEEDS
            interval_text = f"{ratio:.2f}× the {names[runner]} (no interval from one seed)"
        first = int((full_seed[:, ci] > full_seed[:, others].max(axis=1)).sum())
        rows.append({"task": task, "measure": measure, "scope": scope, "component": component,
                     "largest_other": names[runner], "value": point[ci], "other_value": point[runner],
                     "diff": diff, "lo": lo, "hi": hi, "ratio": ratio, "ratio_lo": ratio_lo, "ratio_hi": ratio_hi,
                     "verdict": word, "first_seeds": first, "seeds": n, "layers": len(layers),
                     "summary": (f"{task}: {component} " + (f"{word} among {len(names)} components" if n >= 2 else
                                                            f"among {len(names)} components: {word}")
                                 + f" ({scope}); {interval_text}; first in {first} of {n} seeds")})
    return pd.DataFrame(rows)


def reference_verdicts(subsets: pd.DataFrame, reference: str = "all LayerNorm",
                       rules=("fisher-global", "fisher-per-module", "random"), *, store=None,
                       **options) -> pd.DataFrame:
    """Notebook 3: each selection rule at each fraction minus training all LayerNorm parameters (the
    ``reference`` runs, whatever their ``fraction`` value), per task and averaged over tasks; every rule ran the reference's seeds (checked). "Loses
    little" reads *equivalent within ±1 point* (or *better*). ``subsets`` as for ``fraction_verdicts``.
    Example::

        vs_all = stats.reference_verdicts(subsets, store=store)
        stats.smallest_fraction(vs_all)     # per task and rule: smallest fraction equivalent or better
    """
    present = [r for r in rules if r in set(subsets["selection"])]
    ref = subsets[subsets["selection"] == reference]
    fractions = sorted(subsets[subsets["selection"].isin(present)]["fraction"].unique())
    frame = pd.concat([subsets[subsets["selection"].isin(present)], *[ref.assign(fraction=f) for f in fractions]],
                      ignore_index=True)
    options = {"same_seeds": True, **options}
    tables = [compare(frame, rule, reference, on="selection", by=("task", "fraction"), store=store, **options)
              for rule in present]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def smallest_fraction(table: pd.DataFrame, accept=None) -> pd.DataFrame:
    """Per task and rule (column ``a``) of a ``reference_verdicts`` table: the smallest fraction whose
    verdict is in ``accept`` (default: *better*, *equivalent* or *non-inferior* at the row's margin:
    ``accepts_little_loss``; missing, NaN, when no fraction qualifies), with that row's summary."""
    rows = []
    for (task, rule), part in table.groupby(["task", "a"], sort=True):
        ok = part["verdict"].map(accepts_little_loss) if accept is None else part["verdict"].isin(accept)
        ok = part[ok.astype(bool)].sort_values("fraction")
        rows.append({"task": task, "rule": rule, "smallest fraction": ok["fraction"].iloc[0] if len(ok) else None,
                     "summary": ok["summary"].iloc[0] if len(ok) else None, "fractions tried": len(part)})
    return pd.DataFrame(rows)
