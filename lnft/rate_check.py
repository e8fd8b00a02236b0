"""Does choosing a rate on the tuning seeds pick the rate the full grid picks? (issue 37.3)

The profiles choose each arm's rate on the first seed's validation (``tune_seeds=1``) and run the other seeds at
that rate only: a grid of 3 rates then costs 3 + (seeds − 1) runs per arm instead of 3 × seeds. The cheaper
choice is only as good as its agreement with the full grid's, where every seed runs every rate and the rate
with the best seed-mean validation score wins. ``check`` trains the full grid of a profile's notebook 2 arms and
notebook 3 rules (the runs of the report itself are read back from the store), then compares the two choices
per arm: the same rate or not, and what the disagreement costs on dev (the full grid's rate minus the tuning
seeds' rate, seed mean over every seed: what a reader loses by the cheap choice).
"""
from __future__ import annotations

import dataclasses

import pandas as pd

from .aggregate import select_lr
from .errors import LnftError


def compare_choices(long: pd.DataFrame, tune_seeds, keys) -> pd.DataFrame:
    """One row per arm (``keys``): the rate chosen on the ``tune_seeds``' validation and on every seed's, whether
    they agree, and each choice's seed-mean dev score over every seed. ``long``: ``sweep.results_frame`` rows
    (keys, seed, lr, split, metric, value; metric ``score`` is read), every seed at every rate."""
    keys = list(keys)
    every = sorted(set(long["seed"]))
    if not set(tune_seeds) < set(every):
        raise LnftError(f"invalid tuning seeds {sorted(tune_seeds)} for seeds {every}; allowed: a proper subset")
    long = long[long["metric"] == "score"]
    complete = long[long["split"] == "validation"].groupby([*keys, "lr"])["seed"].nunique()
    if (complete != len(every)).any():
        missing = complete[complete != len(every)].index[0]
        raise LnftError(f"the full grid is incomplete at {missing}; allowed: every seed at every rate")
    cheap = select_lr(long[long["seed"].isin(tune_seeds)], on="validation", keys=keys)
    full = select_lr(long, on="validation", keys=keys)
    dev = (long[long["split"] == "dev"].groupby([*keys, "lr"])["value"].mean().rename("dev").reset_index())
    out = cheap[[*keys, "lr"]].rename(columns={"lr": "tuned lr"}).merge(
        full[[*keys, "lr"]].rename(columns={"lr": "full-grid lr"}), on=keys)
    out["same"] = out["tuned lr"] == out["full-grid lr"]
    out = out.merge(dev.rename(columns={"lr": "tuned lr", "dev": "dev at tuned lr"}), on=[*keys, "tuned lr"])
    out = out.merge(dev.rename(columns={"lr": "full-grid lr", "dev": "dev at full-grid lr"}), on=[*keys, "full-grid lr"])
    out["dev cost"] = out["dev at full-grid lr"] - out["dev at tuned lr"]
    out.insert(len(keys), "seeds", len(every))
    return out


def _long(frame: pd.DataFrame, keys) -> pd.DataFrame:
    return pd.concat([frame[[*keys, "seed", "lr"]].assign(split=split, metric="score", value=frame[column].to_numpy())
                      for split, column in (("dev", "score"), ("validation", "validation"))], ignore_index=True)


def full_grid(P):
    """``P`` with every seed at every rate (``tune_seeds`` None)."""
    return dataclasses.replace(P, values={**P.values, "tune_seeds": None})


def check_methods(P, store, *, progress: bool = False) -> pd.DataFrame:
    """Notebook 2's arms (methods and comparators) at every rate for every seed of the first look."""
    from . import experiments, sweep

    full = full_grid(P)
    results = sweep.run_all(experiments.method_configs(full, [*P.methods, *P.comparators]), store, progress=progress,
                            desc="full grid (notebook 2)")
    keys = ["task", "method"]
    return compare_choices(sweep.results_frame(results), experiments.tuning_seeds(P), keys).assign(notebook="02")


def check_subsets(P, store, *, progress: bool = False) -> pd.DataFrame:
    """Notebook 3's rules (and the all-LayerNorm reference on its grid) at every rate for every seed, with each
    seed's own Fisher at each point (the notebook's functions, its cache)."""
    from . import experiments, fisher, sweep
    from .subsets import RATE_KEYS, scores_frame

    full = full_grid(P)
    fishers = {(t, point, s): fisher.mean_fisher(experiments.fold_fishers(full, store, t, point, s, progress=progress))
               for t in P.tasks for point in P.fisher_points for s in P.seeds}
    plan = experiments.masked_runs(full, fishers, store.mask_dir)
    results = sweep.run_all([c for _, c in plan], store, progress=progress, desc="full grid (notebook 3)")
    scores = scores_frame(plan, results)
    keys = list(RATE_KEYS)
    return compare_choices(_long(scores, keys), experiments.tuning_seeds(P), keys).assign(notebook="03")


def summary(table: pd.DataFrame) -> str:
    """One line: how often the cheap choice is the full grid's, and the largest dev cost of a disagreement."""
    same = int(table["same"].sum())
    worst = table.loc[~table["same"], "dev cost"]
    return (f"the tuning seeds chose the full grid's rate for {same} of {len(table)} arms"
            + (f"; where they differ, the full grid's rate scores {_span(worst)} dev points against the tuned rate "
               f"(seed mean over {int(table['seeds'].iloc[0])} seeds)" if len(worst) else ""))


def _span(values) -> str:
    lo, hi = float(values.min()), float(values.max())
    return f"{lo:+.2f}" if lo == hi else f"{lo:+.2f} to {hi:+.2f}"
