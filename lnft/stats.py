"""Paired bootstrap intervals of metric differences, and the one verdict vocabulary of lnft.

Why: a difference of seed means says nothing about how sure it is. Every verdict in the notebooks and the
README is a difference with a 95 % interval and one of four words, all defined here:

* **better** / **worse** — the interval lies above / below 0;
* **equivalent within ±1 point** — the interval lies inside [−1, +1] points (and does not exclude 0);
* **inconclusive** — anything else: the data cannot decide.

(An interval that excludes 0 but lies inside ±1 point, e.g. [+0.2, +0.8], reads *better*: the printed
interval shows how small the gain is.) For a ranking (notebook 1: is the output LayerNorm the component
that changed most?) the same rule, without an equivalence margin (weight changes have no point scale),
reads *largest* / *not largest* / *inconclusive* (``LEAD_WORDS``).

The interval comes from a **two-level paired bootstrap** of the task score (the GLUE metric mean × 100):
each replicate draws the evaluation examples with replacement, **the same example indices for both
methods** (they were scored on the same examples, so example difficulty cancels), and the seeds of each
method with replacement (methods' seeds independently: different runs). Every seed's metric is recomputed
on the drawn examples — for every GLUE metric (accuracy, F1, Matthews, Pearson, Spearman) from weighted
sufficient statistics, so thousands of replicates cost one matrix product. A method's replicate score is
its all-seed mean on the drawn examples (the example level) plus the mean of the drawn seeds' deviations
(each seed's full-sample score minus the seed mean: the seed level). A plain bootstrap of two or three
seeds is far too narrow (two seeds give a mean only three possible values), so the seed level is widened
by ``seed_inflation(n)`` = sqrt(n/(n−1))·t₍ₙ₋₁₎/z: it then has the width of a Student-t interval over n
seeds, and example noise is not amplified with it. The interval is the 2.5–97.5 % percentile interval of
the replicate differences (``REPLICATES`` = 2,000 by default, seeded). A task average bootstraps each task
and averages the replicates. With one seed per method only the examples are resampled: the interval then
ignores training noise, which the seed counts in every table make visible.

Runs evaluated on different examples (another ``max_eval_samples``, data source or data seed) are
never paired: ``compare`` refuses them with one error naming both runs.

Notebook use (a results list from ``sweep.run_all`` or a tidy frame with ``run_id``)::

    from lnft import stats
    table = stats.method_verdicts(results, chosen, reference="layernorm")      # notebook 2
    table = stats.fraction_verdicts(subsets, store=store)                       # notebook 3
    table = stats.reference_verdicts(subsets, store=store)                      # notebook 3, vs all-LN
    for line in stats.lines(table): print(line)
    lead = stats.change_lead(change_frame)                                      # notebook 1
"""
from __future__ import annotations

import zlib
import numpy as np
import pandas as pd

from .errors import LnftError
from .tasks import get_task

REPLICATES = 2000
LEVEL = 0.95
MARGIN = 1.0  # points: the equivalence margin
BETTER, WORSE, EQUIVALENT, INCONCLUSIVE = "better", "worse", "equivalent within ±1 point", "inconclusive"
VERDICTS = (BETTER, WORSE, EQUIVALENT, INCONCLUSIVE)
LEAD_WORDS = {BETTER: "largest", WORSE: "not largest", INCONCLUSIVE: INCONCLUSIVE}
_BLOCK = 4_000_000  # replicate × example cells per block (memory bound for large dev sets)


# ------------------------------------------------------------------ the vocabulary
def verdict(lo: float, hi: float, margin: float | None = MARGIN) -> str:
    """The verdict word for an interval [lo, hi] of a difference (points). ``margin=None``: no
    equivalence verdict (for quantities without a ±1 point scale)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if lo > 0:
        return BETTER
    if hi < 0:
        return WORSE
    if margin is not None and -margin <= lo and hi <= margin:
        return EQUIVALENT if margin == MARGIN else f"equivalent within ±{margin:g} point"
    return INCONCLUSIVE


def describe(diff: float, lo: float, hi: float, word: str | None = None, unit: str = "points",
             digits: int = 1) -> str:
    """``worse: −2.4 points (95 % CI −4.0 to −0.9)`` — a verdict always printed with its difference
    and interval."""
    word = word or verdict(lo, hi)
    f = f"{{:+.{digits}f}}"
    return (f"{word}: {f.format(diff)} {unit} ({LEVEL * 100:.0f} % CI {f.format(lo)} to {f.format(hi)})"
            .replace("-", "−"))


def interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates."""
    tail = (1 - level) / 2
    lo, hi = np.quantile(np.asarray(replicates, dtype=np.float64), [tail, 1 - tail])
    return float(lo), float(hi)


# ------------------------------------------------------------------ metrics under bootstrap weights
def weighted_metric(name: str, labels: np.ndarray, preds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A GLUE metric (fraction) of every seed on every resample, vectorised.

    ``preds``: (seeds, n); ``labels``: (n,); ``weights``: (replicates, n) counts of each example in each
    resample (all ones = the full sample). Returns (replicates, seeds). A resample with integer weights
    gives exactly the metric of the expanded sample, as scikit-learn/scipy compute it (tested), with the
    conventions of ``lnft.tasks``: F1 and Matthews are 0 when undefined, Pearson/Spearman 0 for constant
    predictions.
    """
    preds = np.atleast_2d(preds)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if name in ("accuracy", "f1", "matthews"):
        return _confusion_metric(name, np.asarray(labels).astype(np.int64), preds.astype(np.int64), weights)
    if name in ("pearson", "spearman"):
        x, y = preds.astype(np.float64), np.asarray(labels, dtype=np.float64)
        if name == "spearman":
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
    """Pearson correlation of each row of x (seeds, n) with y (n,) under each row of w: moments by one
    matrix product (values centred on their full-sample means first, against cancellation); 0 where
    the predictions are constant."""
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean()
    seeds = x.shape[0]
    moments = w @ np.concatenate([x, x * x, x * y, y[None], (y * y)[None]]).T / w.sum(axis=1, keepdims=True)
    mx, mxx, mxy = moments[:, :seeds], moments[:, seeds:2 * seeds], moments[:, 2 * seeds:3 * seeds]
    my, myy = moments[:, -2:-1], moments[:, -1:]
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
    """Bootstrap the task score (points) of several methods on the same examples.

    ``labels``: split -> (n,); ``preds``: method -> split -> (seeds, n) predictions in the same example
    order. Returns method -> (full-sample score per seed (seeds,), replicate scores (replicates,)), the
    replicate score being the mean over that method's resampled seeds. Example draws depend on
    (seed, key, split) only, seed draws on (seed, key, method): the same for every pairing.
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
        rng = _rng(seed, key, split)
        block = max(1, _BLOCK // max(1, len(y)))
        point += sum(weighted_metric(name, y, stacked, np.ones((1, len(y))))[0] for name in task.metrics)
        for start in range(0, replicates, block):
            w = _example_weights(rng, min(block, replicates - start), len(y))
            total[start:start + len(w)] += sum(weighted_metric(name, y, stacked, w) for name in task.metrics)
    out = {}
    for m in names:
        scores = 100.0 * total[:, cols[m]] / n_metrics
        seeds = scores.shape[1]
        draw = _rng(seed, key, "seeds", m).integers(0, seeds, size=(replicates, seeds))
        full_sample = 100.0 * point[cols[m]] / n_metrics
        drawn = scores.mean(axis=1)  # the all-seed mean on the drawn examples: the example level
        if seeds > 1:  # the seed level: drawn seeds' deviations at the full sample, widened (seed_inflation)
            deviation = full_sample - full_sample.mean()
            drawn = drawn + seed_inflation(seeds) * deviation[draw].mean(axis=1)
        out[m] = (full_sample, drawn)
    return out


def seed_inflation(n: int, level: float = LEVEL) -> float:
    """Factor applied to the resampled seed mean's deviation from the all-seed mean.

    Why: resampling n seeds with replacement gives the seed mean a variance of s²(n−1)/n², and its
    normal-like percentiles ignore that s itself is estimated from n values. sqrt(n/(n−1)) restores the
    unbiased variance s²/n; t_{n−1}/z widens it to a Student-t interval (n=2: ×9.2, n=3: ×2.7, n=5: ×1.6,
    n=20: ×1.1), so two or three seeds cannot yield a confident verdict from training noise alone.
    """
    from scipy.stats import norm, t

    if n < 2:
        return 0.0
    q = 0.5 + level / 2
    return float(np.sqrt(n / (n - 1)) * t.ppf(q, n - 1) / norm.ppf(q))


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
            predictions: dict | None = None) -> pd.DataFrame:
    """``a`` minus each of ``b`` (one name or a list), per group of ``by``, with paired bootstrap intervals.

    ``runs``: a list of RunResults, or a tidy frame with ``run_id``, ``seed``, ``on`` and ``by`` columns
    (e.g. ``sweep.results_frame(results)`` filtered to the chosen rate; its predictions are read from
    ``store``, default ``RunStore()``). Every seed of a method in a group is one run; two runs with the
    same seed in one group (say, two learning rates) are refused: filter first. ``average``: with ``task``
    in ``by`` and more than one task, also a row ``task="average"`` (per remaining group): each task
    bootstrapped, replicates averaged. ``predictions``: optional run_id -> {split: Predictions}
    (benchmarks, tests). Returns one row per group × other: ``*by, a, b, a_score, b_score, diff, lo, hi,
    verdict, summary, a_seeds, b_seeds, examples, replicates`` (scores and differences in points).
    """
    by = (by,) if isinstance(by, str) else tuple(by)
    index, given = _index(runs, on, by)
    return _compare(index, given, a, b, on=on, by=by, store=store, split=split, average=average,
                    replicates=replicates, seed=seed, margin=margin, predictions=predictions)


def _compare(index, given, a, b, *, on, by, store, split, average, replicates, seed, margin, predictions):
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < REPLICATES:
        raise LnftError(f"invalid replicates {replicates!r}; allowed: an integer >= {REPLICATES}")
    others = [b] if isinstance(b, str) else list(b)
    load = _loader(given, store, predictions)
    rows, reps = [], {}
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
        members = {}
        for m in methods:
            part = group[group[on] == m].sort_values("seed")
            dup = part["seed"][part["seed"].duplicated()].tolist()
            if dup:
                raise LnftError(f"{on} {m!r} in {labels_by} has several runs with seed {dup[0]} "
                                f"({', '.join(part[part['seed'] == dup[0]]['run_id'])}); filter to one "
                                f"configuration per seed (e.g. the chosen learning rate) first")
            members[m] = part["run_id"].tolist()
        splits = _splits(task, split)
        labels = _check_paired([r for ids in members.values() for r in ids], load, splits)
        preds = {m: {s: np.stack([load(r)[s].preds for r in ids]) for s in splits} for m, ids in members.items()}
        boot = task_replicates(task, labels, preds, replicates=replicates, seed=seed, key=(task.name, *key))
        for other in methods[1:]:
            diff_reps = boot[a][1] - boot[other][1]
            rows.append(_row(labels_by, a, other, boot[a][0].mean(), boot[other][0].mean(), diff_reps,
                             len(members[a]), len(members[other]), sum(len(labels[s]) for s in splits),
                             replicates, margin))
            reps[(*key, other)] = (boot[a][0].mean(), boot[other][0].mean(), diff_reps, len(members[a]),
                                   len(members[other]), sum(len(labels[s]) for s in splits))
    table = pd.DataFrame(rows)
    if average and "task" in by and len(table) and table["task"].nunique() > 1:
        rest = [c for c in by if c != "task"]
        pos = by.index("task")
        averaged = []
        for other in others:
            groups = {}
            for k, v in reps.items():
                if k[-1] == other:
                    groups.setdefault(tuple(x for i, x in enumerate(k[:-1]) if i != pos), []).append(v)
            for rk, vals in sorted(groups.items(), key=lambda kv: str(kv[0])):
                if len(vals) < 2:
                    continue
                labels_by = {**dict(zip(rest, rk)), "task": "average"}
                averaged.append(_row(labels_by, a, other, np.mean([v[0] for v in vals]), np.mean([v[1] for v in vals]),
                                     np.mean([v[2] for v in vals], axis=0), min(v[3] for v in vals),
                                     min(v[4] for v in vals), sum(v[5] for v in vals), replicates, margin))
        table = pd.concat([table, pd.DataFrame(averaged)], ignore_index=True)
    columns = [*by, "a", "b", "a_score", "b_score", "diff", "lo", "hi", "verdict", "summary", "a_seeds", "b_seeds",
               "examples", "replicates"]
    return table.reindex(columns=columns)


def _row(labels_by, a, b, a_score, b_score, diff_reps, a_seeds, b_seeds, examples, replicates, margin) -> dict:
    lo, hi = interval(diff_reps)
    diff = float(a_score - b_score)
    word = verdict(lo, hi, margin)
    return {**labels_by, "a": a, "b": b, "a_score": float(a_score), "b_score": float(b_score), "diff": diff,
            "lo": lo, "hi": hi, "verdict": word, "summary": describe(diff, lo, hi, word),
            "a_seeds": a_seeds, "b_seeds": b_seeds, "examples": examples, "replicates": replicates}


def lines(table: pd.DataFrame) -> list[str]:
    """One printable line per comparison: ``sst2: layernorm − full = worse: −2.4 points (95 % CI …; 2 vs 2
    seeds, 400 examples)``."""
    keys = [c for c in table.columns if c not in ("a", "b", "a_score", "b_score", "diff", "lo", "hi", "verdict",
                                                  "summary", "a_seeds", "b_seeds", "examples", "replicates")]
    out = []
    for _, row in table.iterrows():
        where = ", ".join(f"{row[k]}" if k == "task" else f"{k} {row[k]}" for k in keys)
        out.append(f"{where}: {row['a']} − {row['b']} = {row['summary']}; {row['a']} {row['a_score']:.1f}, "
                   f"{row['b']} {row['b_score']:.1f}; {row['a_seeds']} vs {row['b_seeds']} seeds, "
                   f"{row['examples']} examples")
    return out


# ------------------------------------------------------------------ what the notebooks call
def method_verdicts(runs, chosen: pd.DataFrame | None = None, reference: str = "layernorm",
                    others=None, *, store=None, **options) -> pd.DataFrame:
    """Notebook 2: ``reference`` minus each other method, per task and on average over tasks.

    ``runs``: ``sweep.run_all``'s results (or ``sweep.results_frame``); ``chosen``: ``aggregate.select_lr``'s
    frame (task, method, lr) — only runs at each method's chosen rate count. ``others``: default every
    other method present. Example::

        verdicts = stats.method_verdicts(results, chosen, reference="layernorm")
        for line in stats.lines(verdicts): print(line)
    """
    index, given = _index(runs, "method", ("task", "lr"))
    if chosen is not None:
        index = index.merge(chosen[["task", "method", "lr"]], on=["task", "method", "lr"])
    if others is None:
        others = [m for m in dict.fromkeys(index["method"]) if m != reference]
    options = {"split": "dev", "average": True, "replicates": REPLICATES, "seed": 0, "margin": MARGIN,
               "predictions": None, **options}
    return _compare(index, given, reference, list(others), on="method", by=("task",), store=store, **options)


def fraction_verdicts(subsets: pd.DataFrame, rule: str = "fisher-global", control: str = "random", *,
                      store=None, by=("task", "fraction"), **options) -> pd.DataFrame:
    """Notebook 3: Fisher top-k (``rule``) minus random-k (``control``) at each fraction, per task and
    averaged over tasks. ``subsets``: one row per run with ``run_id, task, selection, fraction, seed`` (the
    notebook's ``subsets`` frame). Add a column (say ``fisher_point``) to ``by`` to split further. Example::

        versus = stats.fraction_verdicts(subsets, store=store)
        for line in stats.lines(versus): print(line)
    """
    return compare(subsets, rule, control, on="selection", by=by, store=store, **options)


def change_lead(frame: pd.DataFrame, component: str = "output LN", measure: str = "mean_abs", kind: str = "all",
                scope: str = "layers", *, replicates: int = REPLICATES, seed: int = 0) -> pd.DataFrame:
    """Notebook 1: per task, ``component``'s change (layer-averaged, seed-averaged) minus the largest
    change of any other component (the runner-up when ``component`` ranks first), with a two-level
    bootstrap: seeds (runs) and layers drawn with replacement, the same layers for every component
    (paired). Each replicate recomputes the lead against the largest of the others *in that replicate*,
    so a close runner-up widens the interval.

    ``frame``: ``changes.run_changes`` rows (task, seed, group, layer, component, kind, measure, value).
    ``scope``: "layers" (the components inside the transformer layers, the paper's view) or "all"
    (embeddings and pooler too: one instance each, resampled over seeds only). Returns per task:
    ``largest_other``, ``value`` and ``other_value``, ``diff`` with ``lo, hi`` (measure units), ``ratio``
    with ``ratio_lo, ratio_hi`` (component / largest other), ``verdict`` (largest / not largest /
    inconclusive), ``first_seeds`` (seeds in which the component ranks first), ``seeds``, ``layers``.
    With one seed the interval reflects the spread over layers only. Example::

        lead = stats.change_lead(frame)      # frame from changes.run_changes over the runs
        for line in lead["summary"]: print(line)
    """
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
        rng = _rng(seed, "change lead", task, measure, kind, scope)
        seed_draw = rng.integers(0, len(seeds), size=(replicates, len(seeds)))
        layer_draw = rng.integers(0, len(layers), size=(replicates, len(layers)))
        layer_weights = np.stack([np.bincount(row, minlength=len(layers)) for row in layer_draw]) / len(layers)
        per_seed = np.einsum("rl,slc->rsc", layer_weights, values)  # replicate, seed, component
        per_seed = np.concatenate([per_seed, np.broadcast_to(singles.to_numpy()[None],
                                                             (replicates, *singles.shape))], axis=2)
        reps = np.take_along_axis(per_seed, seed_draw[:, :, None], axis=1).mean(axis=1)  # replicate, component
        full_seed = np.concatenate([values.mean(axis=1), singles.to_numpy()], axis=1)  # seed, component
        point = full_seed.mean(axis=0)
        ci = names.index(component)
        others = [i for i in range(len(names)) if i != ci]
        runner = others[int(np.argmax(point[others]))]
        lead_reps = reps[:, ci] - reps[:, others].max(axis=1)
        ratio_reps = reps[:, ci] / reps[:, others].max(axis=1)
        lo, hi = interval(lead_reps)
        ratio_lo, ratio_hi = interval(ratio_reps)
        diff, ratio = point[ci] - point[runner], point[ci] / point[runner]
        word = LEAD_WORDS[verdict(lo, hi, margin=None)]
        first = int((full_seed[:, ci] > full_seed[:, others].max(axis=1)).sum())
        rows.append({"task": task, "measure": measure, "scope": scope, "component": component,
                     "largest_other": names[runner], "value": point[ci], "other_value": point[runner],
                     "diff": diff, "lo": lo, "hi": hi, "ratio": ratio, "ratio_lo": ratio_lo, "ratio_hi": ratio_hi,
                     "verdict": word, "first_seeds": first, "seeds": len(seeds), "layers": len(layers),
                     "replicates": replicates,
                     "summary": (f"{task}: {component} {word} among {len(names)} components ({scope}); "
                                 f"{ratio:.2f}× the largest other, {names[runner]} ({LEVEL * 100:.0f} % CI "
                                 f"{ratio_lo:.2f}× to {ratio_hi:.2f}×); first in {first} of {len(seeds)} seeds")})
    return pd.DataFrame(rows)


def reference_verdicts(subsets: pd.DataFrame, reference: str = "all LayerNorm",
                       rules=("fisher-global", "fisher-per-module", "random"), *, store=None,
                       **options) -> pd.DataFrame:
    """Notebook 3: each selection rule at each fraction minus training all LayerNorm parameters (the
    ``reference`` runs, whatever their ``fraction`` value), per task and averaged over tasks. "Loses
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
    tables = [compare(frame, rule, reference, on="selection", by=("task", "fraction"), store=store, **options)
              for rule in present]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def smallest_fraction(table: pd.DataFrame, accept=(EQUIVALENT, BETTER)) -> pd.DataFrame:
    """Per task and rule (column ``a``) of a ``reference_verdicts`` table: the smallest fraction whose
    verdict is in ``accept`` (missing, NaN, when no fraction qualifies), with that row's summary."""
    rows = []
    for (task, rule), part in table.groupby(["task", "a"], sort=True):
        ok = part[part["verdict"].isin(accept)].sort_values("fraction")
        rows.append({"task": task, "rule": rule, "smallest fraction": ok["fraction"].iloc[0] if len(ok) else None,
                     "summary": ok["summary"].iloc[0] if len(ok) else None, "fractions tried": len(part)})
    return pd.DataFrame(rows)
