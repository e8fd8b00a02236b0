"""Known-truth simulation of lnft's verdict rule (``lnft.stats.difference``) against a Welch t-interval.

Synthetic runs of two methods on the same dev examples, with a known true difference of their expected
task scores (expected over training seeds and over the population of examples):

* classification (accuracy): example x has a difficulty d_x ~ N(0, 1) shared by both methods; run i of
  method m gets x right when d_x + ρ·η_{i,x} < θ_m + τ_i, with η ~ N(0, 1) the run's own per-example
  noise (run-to-run disagreement on single examples) and τ_i ~ N(0, σ_τ²) its training effect. The
  expected accuracy is Φ(θ_m / sqrt(1 + ρ² + σ_τ²)) exactly, so θ_a, θ_b are set to the true scores.
* regression (Pearson): labels y_x ~ N(0, 1); run i predicts y_x + λ_i·(h_x + ρ·η_{i,x}), h_x ~ N(0, 1)
  shared by both methods, λ_i = λ_m + σ_λ·z_i; the expected correlation E[1/sqrt(1 + λ_i²(1 + ρ²))] is
  computed by Gauss–Hermite quadrature and λ_a, λ_b solved for the true scores.

``kappa`` > 0 gives each method its own share of the example difficulty (d_{m,x} = sqrt(1−κ²)·d_x +
κ·u_{m,x}): the methods then err on partly different examples and the example noise V_E grows (a
per-seed Welch interval cannot see it). σ_τ (σ_λ) is set so that the sd of a seed's score on a fixed dev
set is the cell's ``sd`` (the run-specific example noise included).

Each experiment scores every run on the same ``replicates`` example resamples (``stats._example_weights``,
shared by a chunk of independent experiments) with ``stats.weighted_metric`` and calls
``stats.difference`` — the estimator ``stats.compare`` uses. Run ``python scripts/verdict_simulation.py``
for the README's table (``--quick`` for fewer experiments); ``tests/test_stats.py`` runs a subset.
``null_cell``: F1 and Matthews (nonlinear, imbalanced labels) at a true difference of exactly 0 — both
methods from the same model, so the truth needs no formula; a nonzero truth is not simulated for them.
``--bounds`` (``bound_table``): the one-sided bound and the *non-inferior* word (false rate at a true −m,
coverage, power against the number of dev examples ``N`` and seeds); ``--sequential`` (``sequential_table``):
decide mode with its real stop rule. Every cell gives V_E its jackknife df, as ``stats.compare`` does. More
tables: one entry in ``TABLES``.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time
import zlib

import numpy as np
from scipy.special import ndtri, stdtrit

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
from lnft import jackknife, stats  # noqa: E402

N = 400  # shared dev examples
BASE = {"accuracy": 80.0, "pearson": 85.0}  # the worse method's true score (points)
RHO = {"accuracy": 0.15, "pearson": 0.3}  # per-example run-to-run noise
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(60)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


# ------------------------------------------------------------------ the generative models and their truths
def _pearson_truth(lam: float, sigma: float, rho: float) -> float:
    lams = lam + sigma * _NODES
    return float(100 * (_WEIGHTS / np.sqrt(1 + lams ** 2 * (1 + rho ** 2))).sum())


def _solve(f, target, lo, hi):
    """Bisection for a decreasing f: f(x) = target."""
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) > target else (lo, mid)
    return (lo + hi) / 2


def calibrate(metric: str, sd: float) -> float:
    """``_calibrate`` at the current number of shared dev examples ``N``."""
    return _calibrate(metric, sd, N)


@functools.lru_cache(maxsize=None)
def _calibrate(metric: str, sd: float, n: int) -> float:
    """σ_τ (accuracy) or σ_λ (Pearson) that gives a seed's score on a fixed dev set the sd ``sd`` points:
    the run-specific part is measured (σ = 0, many runs on a few dev sets), the training part added on
    top by the slope of the expected score."""
    rng = np.random.default_rng(12345)
    rho = RHO[metric]
    run_var = []
    for _ in range(8):
        if metric == "accuracy":
            theta = np.sqrt(1 + rho ** 2) * ndtri(BASE[metric] / 100)
            d = rng.normal(size=n)
            scores = 100 * (d + rho * rng.normal(size=(400, n)) < theta).mean(axis=1)
        else:
            lam = _solve(lambda x: _pearson_truth(x, 0.0, rho), BASE[metric], 0.0, 10.0)
            y, h = rng.normal(size=n), rng.normal(size=n)
            p = y + lam * (h + rho * rng.normal(size=(400, n)))
            scores = 100 * np.array([np.corrcoef(row, y)[0, 1] for row in p])
        run_var.append(scores.var(ddof=1))
    train_sd = np.sqrt(max(sd ** 2 - np.mean(run_var), 1e-6))
    if metric == "accuracy":
        s = np.sqrt(1 + rho ** 2)
        slope = 100 * np.exp(-0.5 * (ndtri(BASE[metric] / 100)) ** 2) / np.sqrt(2 * np.pi) / s  # d score / d τ
        return float(train_sd / slope)
    lam = _solve(lambda x: _pearson_truth(x, 0.0, rho), BASE[metric], 0.0, 10.0)
    slope = abs(_pearson_truth(lam + 1e-4, 0.0, rho) - _pearson_truth(lam - 1e-4, 0.0, rho)) / 2e-4
    return float(train_sd / slope)


def _levels(metric: str, sd: float, truth: float, kappa: float) -> tuple[float, float, float]:
    return _levels_at(metric, sd, truth, kappa, N)


@functools.lru_cache(maxsize=None)
def _levels_at(metric: str, sd: float, truth: float, kappa: float, n: int) -> tuple[float, float, float]:
    """(level of a, level of b, σ) for the true difference ``truth`` (points) with ``n`` dev examples."""
    sigma, rho = _calibrate(metric, sd, n), RHO[metric]
    if metric == "accuracy":
        s = np.sqrt(1 + rho ** 2 + sigma ** 2)
        return float(s * ndtri((BASE[metric] + truth) / 100)), float(s * ndtri(BASE[metric] / 100)), sigma
    lam_b = _solve(lambda x: _pearson_truth(x, sigma, rho), BASE[metric], 0.0, 10.0)
    lam_a = _solve(lambda x: _pearson_truth(x, sigma, rho), BASE[metric] + truth, 0.0, 10.0)
    return lam_a, lam_b, sigma


def experiment_data(rng, metric: str, seeds: int, sd: float, truth: float, kappa: float = 0.0, count: int = 1,
                    positive: float | None = None):
    """``count`` independent dev sets with ``seeds`` runs per method each: labels (count, N) and predictions
    (count, 2·seeds, N), a's runs first. ``positive``: classification only, the share of label 1 (default:
    balanced labels)."""
    level_a, level_b, sigma = _levels(metric, sd, truth, kappa)
    rho = RHO[metric]
    levels = np.repeat([level_a, level_b], seeds)[None, :, None]  # (1, runs, 1)
    shared = rng.normal(size=(count, 1, N))
    own = np.sqrt(1 - kappa ** 2) * shared + kappa * rng.normal(size=(count, 2, N))  # per method
    own = np.repeat(own, seeds, axis=1)  # (count, runs, N)
    train = sigma * rng.normal(size=(count, 2 * seeds, 1))  # each run's training effect
    noise = rho * rng.normal(size=(count, 2 * seeds, N))  # each run's own per-example noise
    if metric == "accuracy":
        labels = (rng.integers(0, 2, size=(count, N)) if positive is None
                  else (rng.random(size=(count, N)) < positive).astype(np.int64))
        right = own + noise < levels + train
        return labels, np.where(right, labels[:, None, :], 1 - labels[:, None, :])
    labels = rng.normal(size=(count, N))
    return labels, labels[:, None, :] + (levels + train) * (own + noise)


def welch(a: np.ndarray, b: np.ndarray, level: float = stats.LEVEL) -> tuple[float, float]:
    """Welch t-interval of mean(a) − mean(b) over per-seed scores (the comparator)."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = a.mean() - b.mean()
    if va + vb == 0:  # all seeds of both sides scored the same: a zero-width interval
        return diff, diff
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = stdtrit(df, 0.5 + level / 2) * np.sqrt(va + vb)
    return diff - half, diff + half


def run_cell(metric: str, seeds: int, sd: float, truth: float, experiments: int, *, kappa: float = 0.0,
             replicates: int = stats.REPLICATES, seed: int = 0, chunk: int = 50, margin: float = stats.MARGIN) -> dict:
    """``experiments`` independent experiments at one cell; per experiment lnft's interval, TOST interval
    and verdict, and Welch's interval. Returns arrays (lo, hi, verdict, welch_lo, welch_hi, ...) and truth."""
    rng = np.random.default_rng([seed, seeds, int(sd * 100), int(truth * 100) + 10_000, int(kappa * 100),
                                 0 if metric == "accuracy" else 1, N])
    out = {k: np.empty(experiments) for k in ("diff", "lo", "hi", "eq_lo", "eq_hi", "welch_lo", "welch_hi", "v_examples",
                                              "se")}
    words = []
    ones = np.ones((1, N))
    runs = 2 * seeds
    for start in range(0, experiments, chunk):
        weights = stats._example_weights(rng, replicates, N)  # shared by this chunk's experiments
        batch = range(start, min(start + chunk, experiments))
        labels, preds = experiment_data(rng, metric, seeds, sd, truth, kappa, count=len(batch))
        labels = np.repeat(labels, runs, axis=0)  # each run with its own experiment's labels
        preds = preds.reshape(len(batch) * runs, N)
        full = 100 * stats.weighted_metric(metric, labels, preds, ones)[0]
        reps = 100 * stats.weighted_metric(metric, labels, preds, weights)
        g = 100 * jackknife.influence(metric, labels, preds)  # V_E's df, as stats.compare gives it
        for j, e in enumerate(batch):
            a, b = slice(runs * j, runs * j + seeds), slice(runs * j + seeds, runs * (j + 1))
            d = stats.difference(full[a], full[b], reps[:, a], reps[:, b], margin, needed=False,
                                 influence=(g[a], g[b]))
            for k in ("diff", "lo", "hi", "eq_lo", "eq_hi", "v_examples", "se"):
                out[k][e] = d[k]
            words.append(d["verdict"])
            out["welch_lo"][e], out["welch_hi"][e] = welch(full[a], full[b])
    out["verdict"] = np.array(words)
    out["truth"] = truth
    return out


def null_cell(metric: str, seeds: int, sd: float, experiments: int, *, kappa: float = 0.0, positive: float = 0.7,
              replicates: int = stats.REPLICATES, seed: int = 0) -> dict:
    """A true difference of exactly 0 for any metric: both methods from the same classification model
    (accuracy's, with seed sd ``sd`` on accuracy), labels with a share ``positive`` of class 1, scored by
    a nonlinear metric (``f1``, ``matthews``) one experiment at a time. Returns what ``run_cell`` returns."""
    rng = np.random.default_rng([seed, seeds, int(sd * 100), int(kappa * 100), int(positive * 100),
                                 zlib.crc32(metric.encode())])
    out = {k: np.empty(experiments) for k in ("diff", "lo", "hi", "eq_lo", "eq_hi", "welch_lo", "welch_hi")}
    words, ones = [], np.ones((1, N))
    for e in range(experiments):
        weights = stats._example_weights(rng, replicates, N)
        labels, preds = experiment_data(rng, "accuracy", seeds, sd, 0.0, kappa, count=1, positive=positive)
        full = 100 * stats.weighted_metric(metric, labels[0], preds[0], ones)[0]
        reps = 100 * stats.weighted_metric(metric, labels[0], preds[0], weights)
        d = stats.difference(full[:seeds], full[seeds:], reps[:, :seeds], reps[:, seeds:], needed=False)
        for k in ("diff", "lo", "hi", "eq_lo", "eq_hi"):
            out[k][e] = d[k]
        words.append(d["verdict"])
        out["welch_lo"][e], out["welch_hi"][e] = welch(full[:seeds], full[seeds:])
    out["verdict"] = np.array(words)
    out["truth"] = 0.0
    return out


def sequential_cell(metric: str, first: int, most: int, sd: float, truth: float, experiments: int, *,
                    kappa: float = 0.0, naive: bool = False, replicates: int = 500, seed: int = 0,
                    chunk: int = 50, margin: float = stats.MARGIN, worst_case: bool = False) -> dict:
    """Decide mode (``lnft.decide``) with a known truth: per experiment ``most`` runs per method on one dev set;
    look at n = ``first``…``most`` seeds per side (the first n runs), stop as ``Design.stop`` says (the real
    rule: decided, futile by conditional power, or the maximum). ``naive``: every look at the plain 95 % rule.
    ``worst_case``: an open comparison always goes on to the next look (every look taken, the most chances of
    a false call), whatever its conditional power. Returns the stopping verdict, its lower bound, the seeds
    it used and why it stopped, per experiment."""
    from lnft.decide import CANNOT, Design

    design = Design(first, most)
    rng = np.random.default_rng([seed, first, most, int(sd * 100), int(truth * 100) + 10_000, int(kappa * 100),
                                 0 if metric == "accuracy" else 1, int(naive), N])
    words, used, why, lows = [], [], [], []
    ones, runs = np.ones((1, N)), 2 * most
    for start in range(0, experiments, chunk):
        weights = stats._example_weights(rng, replicates, N)
        batch = range(start, min(start + chunk, experiments))
        labels, preds = experiment_data(rng, metric, most, sd, truth, kappa, count=len(batch))
        labels = np.repeat(labels, runs, axis=0)
        preds = preds.reshape(len(batch) * runs, N)
        full = 100 * stats.weighted_metric(metric, labels, preds, ones)[0]
        reps = 100 * stats.weighted_metric(metric, labels, preds, weights)
        g = 100 * jackknife.influence(metric, labels, preds)
        for j, _ in enumerate(batch):
            for n in range(first, most + 1):
                a, b = slice(runs * j, runs * j + n), slice(runs * j + most, runs * j + most + n)
                level = stats.LEVEL if naive else design.level(n)
                d = stats.difference(full[a], full[b], reps[:, a], reps[:, b], margin, level=level, needed=False,
                                     influence=(g[a], g[b]))
                stop = design.stop(d, n)
                if worst_case and stop == CANNOT:
                    stop = "continue"
                if stop != "continue":
                    break
            words.append(d["verdict"])
            lows.append(d["lo"])
            used.append(n)
            why.append(stop)
    return {"verdict": np.array(words), "lo": np.array(lows), "seeds": np.array(used), "stopped": np.array(why),
            "truth": truth}


def _false(cell) -> float:
    return float(np.isin(cell["verdict"], [stats.BETTER, stats.WORSE]).mean())


def sequential_table(first: int = 3, most: int = 5, metrics=("accuracy", "pearson"), sds=(1.0, 2.0),
                     experiments: int = 2000, kappas=(0.0, 0.3), margin: float = stats.MARGIN) -> list[dict]:
    """The docs' decide-mode table, every cell under the real stop rule: false better/worse at a true 0 (and in
    the worst case, every look taken, with the exact level and at a naive 95 % per look), a false
    non-inferior at a true −margin (the bound above −m), words and mean seeds at a true +3 and at 0."""
    from lnft.decide import CANNOT

    rows = []
    for metric in metrics:
        for sd in sds:
            for kappa in kappas:
                zero = sequential_cell(metric, first, most, sd, 0.0, experiments, kappa=kappa, margin=margin)
                worst = sequential_cell(metric, first, most, sd, 0.0, experiments, kappa=kappa, worst_case=True)
                naive = sequential_cell(metric, first, most, sd, 0.0, experiments, kappa=kappa, naive=True,
                                        worst_case=True)
                edge = sequential_cell(metric, first, most, sd, -margin, experiments, kappa=kappa, margin=margin)
                three = sequential_cell(metric, first, most, sd, 3.0, experiments // 2, kappa=kappa, margin=margin)
                rows.append({"metric": metric, "sd": sd, "kappa": kappa, "looks": f"{first}-{most}",
                             "false better/worse at 0": _false(zero), "same, every look taken": _false(worst),
                             "naive, every look taken": _false(naive),
                             "non-inferior at -m": float((edge["lo"] > -margin).mean()),
                             "better at +3": float((three["verdict"] == stats.BETTER).mean()),
                             "mean seeds at +3": float(three["seeds"].mean()),
                             "mean seeds at 0": float(zero["seeds"].mean()),
                             "futile at 0": float((zero["stopped"] == CANNOT).mean())})
                r = rows[-1]
                print(f"| {metric} | {sd:g} | {kappa:g} | {r['looks']} | {r['false better/worse at 0']:.3f} | "
                      f"{r['same, every look taken']:.3f} | {r['naive, every look taken']:.3f} | "
                      f"{r['non-inferior at -m']:.3f} | {r['better at +3']:.2f} | {r['mean seeds at +3']:.1f} | "
                      f"{r['mean seeds at 0']:.1f} |", flush=True)
    return rows


def bound_table(metrics=("accuracy", "pearson"), seed_counts=(3, 5), examples=(400, 872, 1500), sds=(1.0,),
                kappas=(0.0, 0.6), experiments: int = 1000, margin: float = stats.MARGIN,
                replicates: int = 500) -> list[dict]:
    """The one-sided bound with a known truth: at a true −margin the chance that the bound clears −margin
    (a false *non-inferior*: at most 2.5 %), the bound's coverage (truth >= bound: at least 97.5 %), pooled over
    the truths −margin and 0, and the power to show non-inferiority at a true 0 against the number of dev
    examples and seeds (kappa 0.6: the methods err on different examples, so example noise dominates)."""
    global N
    rows, keep = [], N
    try:
        for metric in metrics:
            for n_examples in examples:
                N = n_examples
                for seeds in seed_counts:
                    for sd in sds:
                        for kappa in kappas:
                            edge = run_cell(metric, seeds, sd, -margin, experiments, kappa=kappa, margin=margin,
                                            replicates=replicates)
                            zero = run_cell(metric, seeds, sd, 0.0, experiments, kappa=kappa, margin=margin,
                                            replicates=replicates)
                            covered = np.concatenate([edge["lo"] <= -margin, zero["lo"] <= 0.0])
                            share = float(np.median(zero["v_examples"] / zero["se"] ** 2))
                            rows.append({"metric": metric, "examples": n_examples, "seeds": seeds, "sd": sd,
                                         "kappa": kappa, "example share": share,
                                         "non-inferior at -m": float((edge["lo"] > -margin).mean()),
                                         "bound coverage": float(covered.mean()),
                                         "two-sided coverage": float(np.mean(np.concatenate(
                                             [(c["lo"] <= c["truth"]) & (c["truth"] <= c["hi"]) for c in (edge, zero)]))),
                                         "non-inferior at 0": float((zero["lo"] > -margin).mean())})
                            r = rows[-1]
                            print(f"| {metric} | {n_examples} | {seeds} | {sd:g} | {kappa:g} | {share:.2f} | "
                                  f"{r['non-inferior at -m']:.3f} | {r['bound coverage']:.3f} | "
                                  f"{r['two-sided coverage']:.3f} | {r['non-inferior at 0']:.2f} |", flush=True)
    finally:
        N = keep
    return rows


def summarise(cells: dict[float, dict]) -> dict:
    """The table's numbers from the cells of one setting at truths 0, 2 and 5 (keys)."""
    def covered(c, lo="lo", hi="hi"):
        return (c[lo] <= c["truth"]) & (c["truth"] <= c[hi])

    every = list(cells.values())
    zero, two, five = cells.get(0.0), cells.get(2.0), cells.get(5.0)
    row = {"coverage": float(np.mean(np.concatenate([covered(c) for c in every]))),
           "welch coverage": float(np.mean(np.concatenate([covered(c, "welch_lo", "welch_hi") for c in every]))),
           "experiments": sum(len(c["lo"]) for c in every)}
    if zero is not None:
        row["false better/worse at 0"] = float(np.isin(zero["verdict"], [stats.BETTER, stats.WORSE]).mean())
        row["welch false better/worse at 0"] = float(((zero["welch_lo"] > 0) | (zero["welch_hi"] < 0)).mean())
        row["equivalent at 0"] = float((zero["verdict"] == stats.EQUIVALENT).mean())
        row["width"] = float(np.median(zero["hi"] - zero["lo"]))
        row["welch width"] = float(np.median(zero["welch_hi"] - zero["welch_lo"]))
    if two is not None:
        row["false equivalent at 2"] = float((two["verdict"] == stats.EQUIVALENT).mean())
    if five is not None:
        row["better at +5"] = float((five["verdict"] == stats.BETTER).mean())
        row["welch better at +5"] = float((five["welch_lo"] > 0).mean())
    return row


def table(metrics=("accuracy", "pearson"), seed_counts=(2, 3, 5), sds=(1.0, 2.0), experiments=(3000, 1000, 1000),
          replicates=stats.REPLICATES, kappa=0.0) -> list[dict]:
    rows = []
    for metric in metrics:
        for seeds in seed_counts:
            for sd in sds:
                cells = {truth: run_cell(metric, seeds, sd, truth, count, replicates=replicates, kappa=kappa)
                         for truth, count in zip((0.0, 2.0, 5.0), experiments)}
                rows.append({"metric": metric, "seeds": seeds, "sd": sd, "kappa": kappa, **summarise(cells)})
                print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict) -> str:
    return (f"| {r['metric']} | {r['seeds']} | {r['sd']:g} | {r['coverage']:.3f} / {r['welch coverage']:.3f} | "
            f"{r['false better/worse at 0']:.3f} / {r['welch false better/worse at 0']:.3f} | "
            f"{r['false equivalent at 2']:.3f} | {r['equivalent at 0']:.2f} | "
            f"{r['better at +5']:.2f} / {r['welch better at +5']:.2f} | {r['width']:.1f} / {r['welch width']:.1f} |")


def _sequential(args):
    print("| metric | seed sd | kappa | looks (seeds per side) | false better/worse at a true 0 (real stop rule) "
          "| same, every look taken | same, every look at 95 % (naive) | non-inferior (±1) at a true −1 | better at "
          "a true +3 | mean seeds per side at +3 | mean seeds per side at 0 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    sequential_table(metrics=args.metrics, experiments=args.experiments or (300 if args.quick else 2000))


def _bounds(args):
    print("| metric | dev examples | seeds per side | seed sd | kappa | example share of the variance | "
          "non-inferior (1) at a true −1 | coverage of the one-sided bound | coverage of the two-sided interval "
          "| non-inferior (1) at a true 0 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    bound_table(metrics=args.metrics, experiments=args.experiments or (300 if args.quick else 1000))


# Extra tables, each a command-line flag: name -> (help, function of the parsed arguments that prints the table).
# Another rule's simulation (say, claim 1's ranking with a fixed or corrected comparator) adds one entry here and
# reuses the generative models and cells above.
TABLES = {
    "sequential": ("decide mode's repeated looks (3 to 5 seeds per side, kappa 0 and 0.3), the real stop rule",
                   _sequential),
    "bounds": ("the one-sided bound: false non-inferior at −1, coverage, power against examples and seeds", _bounds),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="300/300/300 experiments per truth")
    parser.add_argument("--kappa", type=float, default=0.0, help="methods' own share of the example difficulty")
    parser.add_argument("--replicates", type=int, default=stats.REPLICATES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 5])
    parser.add_argument("--metrics", nargs="+", default=["accuracy", "pearson"])
    parser.add_argument("--experiments", type=int, default=None, help="experiments per cell (the extra tables)")
    for name, (text, _) in TABLES.items():
        parser.add_argument(f"--{name}", action="store_true", help=f"{text} instead")
    args = parser.parse_args(argv)
    tick = time.perf_counter()
    for name, (_, show) in TABLES.items():
        if getattr(args, name.replace("-", "_")):
            show(args)
            print(f"({time.perf_counter() - tick:.0f} s)")
            return 0
    print("| metric | seeds per side | seed sd | coverage of the 95 % interval: lnft / Welch | false better/worse "
          "at a true 0: lnft / Welch | false equivalent at a true +2 | equivalent (±1) at a true 0 | better at a "
          "true +5: lnft / Welch | median width at a true 0 (points): lnft / Welch |")
    print("|---|---|---|---|---|---|---|---|---|")
    table(args.metrics, args.seeds, experiments=(300, 300, 300) if args.quick else (3000, 1000, 1000),
          replicates=args.replicates, kappa=args.kappa)
    print(f"({time.perf_counter() - tick:.0f} s; kappa {args.kappa:g}, {args.replicates} replicates)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
