"""Each notebook's experiment, defined once: one function per notebook builds the runs it trains from its
resolved parameters (``lnft.profiles.resolve``). The notebook trains them, ``lnft plan`` counts them and
``lnft reports`` checks them before any notebook starts (``validate``), so a notebook's parameter checks
have one home.

* ``change_analysis(P)`` — notebook 1: full fine-tuning per task × seed, then one LayerNorm-only run (the
  frozen-weights check).
* ``peft_comparison(P, seeds_by_arm=None)`` — notebook 2: every (task, method) arm at every rate of its grid
  (``method_configs``; ``decide_methods`` adds seeds to open arms, ``decide_subsets`` to open tasks), then the "why LayerNorm"
  comparators.
* ``fisher_subsets(P)`` — notebook 3: the Fisher start runs (``fisher_start``), per task × seed the
  all-LayerNorm reference and the masked runs, and the full fine-tuning baselines (``baselines``). The masked
  runs depend on Fisher values that exist only once the notebook runs (``masked_runs`` builds them then):
  here they are counted by rule (``P.rules``) × rate (``P.masked_lrs``) with the all-LayerNorm budget and
  marked ``known=False``; union / intersection runs (``cv_runs``) likewise.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import RunConfig
from .errors import LnftError

if TYPE_CHECKING:
    import pandas as pd

NOTEBOOKS = ("01_change_analysis", "02_peft_comparison", "03_fisher_subsets")

FULL = "full fine-tuning"
FROZEN_CHECK = "layernorm (frozen-weights check)"


@dataclass(frozen=True)
class Planned:
    notebook: str
    config: RunConfig  # for masked runs: the same budget without the (not yet existing) mask
    group: str  # what the run is for, e.g. "full fine-tuning", "Fisher top-k (masked)"
    known: bool = True  # False: its exact config (mask) is only known once the notebook runs


# ------------------------------------------------------------------ notebook 1
def change_analysis(P) -> list[Planned]:
    """Notebook 1's runs: full fine-tuning per task × seed at ``P.lr`` (group ``FULL``), then one
    LayerNorm-only run on the first task and seed at ``P.layernorm_lr`` (group ``FROZEN_CHECK``)."""
    nb = "01_change_analysis"
    runs = [Planned(nb, P.run_config(task=t, method="full", seed=s, lr=P.lr), FULL) for t in P.tasks for s in P.seeds]
    return runs + [Planned(nb, P.run_config(task=P.tasks[0], method="layernorm", seed=P.seeds[0], lr=P.layernorm_lr),
                           FROZEN_CHECK)]


# ------------------------------------------------------------------ notebook 2
def method_tasks(P, method: str) -> list[str]:
    """The tasks ``method`` runs on in notebook 2: the profile's, or those ``method_tasks`` gives it."""
    only = P.values.get("method_tasks") or {}
    return [t for t in P.tasks if t in only.get(method, P.tasks)]


def tuning_seeds(P) -> list[int]:
    """The seeds whose validation scores choose each arm's rate: the first ``tune_seeds`` of the profile's seeds
    (profile key; None: every seed, each look's seeds)."""
    n = P.values.get("tune_seeds")
    return list(P.seeds) if n is None else list(P.seeds[:n])


def lr_grid(P, method: str) -> list[float]:
    """``method``'s rates in notebook 2: its own ``lr_grid`` entry, else the ``default`` one."""
    return list(P.lr_grid.get(method, P.lr_grid["default"]))


def method_configs(P, methods, seeds_by_arm: dict | None = None, chosen: dict | None = None) -> list[RunConfig]:
    """Notebook 2's runs of ``methods``: every (task, method) arm at every rate of its grid for its seeds
    (default: the profile's, the first look), task by task. With ``tune_seeds`` (profile key) only the tuning
    seeds run the whole grid; every other seed runs the rate its arm chose on them (``chosen``: (task, method)
    -> lr, from ``chosen_rates``; None: the grid's middle rate, a stand-in for planning before any run exists)."""
    tune = tuning_seeds(P) if P.values.get("tune_seeds") else None
    seeds_of = lambda t, m: P.seeds if seeds_by_arm is None else seeds_by_arm.get((t, m), [])  # noqa: E731

    def rates(t, m, s):
        grid = lr_grid(P, m)
        if tune is None or s in tune:
            return grid
        return [chosen[(t, m)]] if chosen is not None else [grid[len(grid) // 2]]

    return [P.run_config(task=t, method=m, seed=s, lr=lr, select_on=P.select_on)
            for t in P.tasks for m in methods if t in method_tasks(P, m) for s in seeds_of(t, m)
            for lr in rates(t, m, s)]


def choose_rates(P, frame):
    """Each (task, method)'s rate, chosen on the selection split from the tuning seeds' runs in ``frame`` (a
    ``sweep.results_frame``): ``aggregate.select_lr`` on those seeds (with ``lr_rates`` and ``lr_at_edge``)."""
    from . import aggregate

    return aggregate.select_lr(frame[frame["seed"].isin(tuning_seeds(P))], on=P.select_on)


def chosen_rates(P, results) -> dict:
    """(task, method) -> the rate chosen on the tuning seeds' validation, from trained runs."""
    from . import sweep

    chosen = choose_rates(P, sweep.results_frame(results))
    return {(t, m): float(lr) for t, m, lr in zip(chosen["task"], chosen["method"], chosen["lr"])}


def run_tuned(P, methods, run, seeds_by_arm: dict | None = None):
    """Train (or read back) notebook 2's runs of ``methods``: with ``tune_seeds``, first the tuning seeds at every
    rate, then every other seed at its arm's chosen rate; otherwise every seed at every rate. ``run(configs)``:
    ``sweep.run_all``. Returns its results (every run, tuning runs included)."""
    if not P.values.get("tune_seeds"):
        return run(method_configs(P, methods, seeds_by_arm))
    tune = set(tuning_seeds(P))
    base = {(t, m): P.seeds for t in P.tasks for m in methods} if seeds_by_arm is None else seeds_by_arm
    first = run(method_configs(P, methods, {arm: [s for s in seeds if s in tune] for arm, seeds in base.items()}))
    return run(method_configs(P, methods, seeds_by_arm, chosen_rates(P, first)))


def peft_comparison(P, seeds_by_arm: dict | None = None) -> list[Planned]:
    """Notebook 2's runs: ``P.methods`` (group: the method), then ``P.comparators`` (group "why LayerNorm:
    <method>"); ``seeds_by_arm`` as in ``method_configs`` (default: the first look; decide mode may add seeds)."""
    nb = "02_peft_comparison"
    tune = tuning_seeds(P) if P.values.get("tune_seeds") else None
    known = lambda c: tune is None or c.seed in tune  # noqa: E731 — other seeds' rate is chosen once tuning ran
    return ([Planned(nb, c, c.method, known(c)) for c in method_configs(P, P.methods, seeds_by_arm)]
            + [Planned(nb, c, f"why LayerNorm: {c.method}", known(c))
               for c in method_configs(P, P.comparators, seeds_by_arm)])


# ------------------------------------------------------------------ notebook 3
def make_config(P):
    """Notebook 3's ``make(task=, method=, seed=, ...)``: runs at ``P.lr`` (the same configs as notebook 2's
    where they coincide, so those runs are read back)."""
    def make(**fields) -> RunConfig:
        return P.run_config(lr=P.lr, **fields)

    return make


def held_out(P) -> int:
    """Rows a trained point's Fisher reads outside what its start run fit: folds × examples per fold."""
    return P.folds * P.fisher_samples


def fisher_start(P, point: str, task: str, seed: int, *, exact: bool = True):
    """The run a Fisher point starts from (``lnft.subsets.start_config``; None at ``pretrained``).
    ``exact=False``: the same run before any cross-fitting shortfall is applied (no data is read)."""
    from .subsets import start_config, start_method

    if exact:
        return start_config(point, make_config(P), task, seed, held_out=held_out(P))
    method = start_method(point)
    return None if method is None else make_config(P)(task=task, method=method, seed=seed)


def fisher_examples(point: str) -> str:
    """The rows a Fisher point reads: the run's training examples at ``pretrained``, else rows its start run did
    not fit (``lnft.fisher.fisher_for_task``'s ``examples``)."""
    return "train" if point == "pretrained" else "held-out"


def fold_fishers(P, store, task: str, point: str, seed: int, relabel=None, progress: bool = False):
    """Notebook 3's per-fold Fishers of one task × point × seed (``relabel``: the label control's seed), cached
    next to the run store."""
    from .fisher import fisher_for_task

    return fisher_for_task(make_config(P)(task=task, method="layernorm", seed=seed), n_samples=P.fisher_samples,
                           folds=P.folds, kind=P.fisher_kind, at=point, relabel=relabel,
                           examples=fisher_examples(point), per_example=relabel is None,
                           start=fisher_start(P, point, task, seed), store=store, progress=progress)


def baselines(P) -> list[RunConfig]:
    """Notebook 3's full fine-tuning baselines per task × seed at ``P.baseline_lr["full"]``."""
    return [P.run_config(task=t, method="full", seed=s, lr=P.baseline_lr["full"]) for t in P.tasks for s in P.seeds]


def masked_runs(P, fishers: dict, mask_dir: str, chosen: dict | None = None) -> list[tuple[dict, RunConfig]]:
    """Notebook 3's subset runs once the Fishers exist (``fishers[(task, point, seed)]``): every fraction,
    rule of ``P.rules`` and rate of ``P.masked_lrs`` (``lnft.subsets.subset_plan``). With ``tune_seeds``
    (profile key) only the tuning seeds run every rate; every other seed runs the rate its rule chose on them
    (``chosen``: (task, point, fraction, selection) -> lr, from ``subset_rates``; None: the grid's middle rate,
    a stand-in for planning before the tuning runs exist)."""
    from .subsets import RATE_KEYS, subset_plan

    plan = subset_plan(fishers, P.fractions, make_config(P), mask_dir, lrs=P.masked_lrs, rules=P.rules)
    if P.values.get("reference_grid"):  # the all-LayerNorm reference on the same rate grid (lnft.curve)
        from .curve import reference_on_grid

        plan = reference_on_grid(plan, P.masked_lrs)
    if not P.values.get("tune_seeds"):
        return plan
    tune = set(tuning_seeds(P))
    rates_of = {}
    for labels, _ in plan:
        rates_of.setdefault(tuple(labels[k] for k in RATE_KEYS), []).append(labels["lr"])

    def keep(labels) -> bool:
        key = tuple(labels[k] for k in RATE_KEYS)
        grid = sorted(set(rates_of[key]))
        if labels["seed"] in tune or len(grid) == 1:
            return True
        rate = chosen.get(key) if chosen is not None else grid[len(grid) // 2]
        if rate is None:
            raise LnftError(f"no rate chosen on the tuning seeds {sorted(tune)} for {key}; allowed: run the "
                            f"tuning seeds first (subset_rates)")
        return labels["lr"] == rate

    return [(labels, cfg) for labels, cfg in plan if keep(labels)]


def subset_rates(P, scores) -> pd.DataFrame:
    """Notebook 3's rate per task × Fisher point × fraction × rule, chosen on validation from the tuning seeds'
    runs (``tune_seeds``; None: every seed in ``scores``): ``lnft.subsets.choose_rates``."""
    from .subsets import choose_rates

    if P.values.get("tune_seeds"):
        scores = scores[scores["seed"].isin(tuning_seeds(P))]
    return choose_rates(scores)


def chosen_subset_rates(P, scores) -> dict:
    """(task, point, fraction, selection) -> the rate ``subset_rates`` chose."""
    from .subsets import RATE_KEYS

    chosen = subset_rates(P, scores)
    return {tuple(row[k] for k in RATE_KEYS): float(row["lr"]) for _, row in chosen.iterrows()}


def cv_runs(P, folds: dict, mask_dir: str) -> list[tuple[dict, RunConfig]]:
    """Notebook 3's union / intersection runs at ``P.cv_fractions`` for the profile's seeds
    (``lnft.subsets.union_intersection_plan``)."""
    from .subsets import union_intersection_plan

    return union_intersection_plan(folds, P.cv_fractions, P.seeds, make_config(P), mask_dir, lrs=P.masked_lrs)


def fisher_subsets(P, *, exact: bool = True) -> list[Planned]:
    """Notebook 3's runs: the Fisher start runs, then per task and seed the all-LayerNorm reference (100 %)
    and the masked runs counted by rule × rate (``known=False``: their masks need the Fishers; the config is
    the all-LayerNorm budget at that rate), then the full baselines. ``exact=False``: start runs before any
    cross-fitting (``fisher_start``; reads no data)."""
    nb = "03_fisher_subsets"
    from .subsets import SELECTIONS

    make = make_config(P)
    out = [Planned(nb, c, f"{c.method} (Fisher start)") for t in P.tasks for p in P.fisher_points for s in P.seeds
           if (c := fisher_start(P, p, t, s, exact=exact)) is not None]
    below = [f for f in P.fractions if f < 100]
    fisher_rules = [r for r in P.rules if r in SELECTIONS and r != "random"]
    tune = set(tuning_seeds(P)) if P.values.get("tune_seeds") else set(P.seeds)
    middle = P.masked_lrs[len(P.masked_lrs) // 2]  # an untuned seed's rate is chosen once the tuning seeds ran
    for t in P.tasks:
        masked = make(task=t, method="layernorm")  # the masked runs' budget and the task's own settings (its pool)
        for s in P.seeds:
            grid = P.masked_lrs if s in tune else [middle]
            if any(f >= 100 for f in P.fractions):
                ref = make(task=t, method="layernorm", seed=s)
                tuned = P.values.get("reference_grid")  # lnft.curve.reference_on_grid: its rate chosen like a rule's
                rates = grid if tuned else [P.lr]
                out += [Planned(nb, dataclasses.replace(ref, lr=lr), "layernorm (100 %)", s in tune or not tuned)
                        for lr in rates]  # an untuned seed's rate: known once the tuning seeds ran
            for _ in below:
                for lr in grid:  # every rule at every rate of the grid (tuning seeds); each rule chooses its own
                    cfg = dataclasses.replace(masked, seed=s, lr=lr)
                    out += [Planned(nb, cfg, "Fisher top-k (masked)", known=False)] * (len(fisher_rules)
                                                                                      * len(P.fisher_points))
                    if "random" in P.rules:  # one per seed and rate, shared by the points
                        out.append(Planned(nb, cfg, "random-k (masked)", known=False))
            for _ in P.cv_fractions:
                for lr in P.masked_lrs:
                    cfg = dataclasses.replace(masked, seed=s, lr=lr)
                    out += [Planned(nb, cfg, "union / intersection (masked)", known=False)] * (2 * len(P.fisher_points))
        out += [Planned(nb, c, "full (baseline)") for c in baselines(P) if c.task == t]
    return out


# ------------------------------------------------------------------ every notebook
def margins(P) -> dict:
    """The claim's margin and its reason from a notebook's parameters (``lnft.bounds``; the default 1 point
    when a profile names none), as ``lnft.stats.compare`` takes them."""
    from .stats import MARGIN

    return {"margin": P.values.get("margin", MARGIN),
            "margin_reason": P.values.get("margin_reason", "the default 1 point (not derived from data)")}


# ------------------------------------------------------------------ notebook 2 decided (lnft.decide)
def decide_methods(P, store, methods, reference: str = "layernorm", *, run, log=print):
    """Notebook 2's verdicts, decided when ``P.decide``: ``reference`` minus each other of ``methods`` per task
    (and on average over tasks), every method at its own rate chosen on the selection split from the seeds of the
    look (``aggregate.select_lr``). An arm is (task, method): all its rates for one seed. ``run(configs)`` trains
    or reads them (``sweep.run_all``). Returns (results of every run trained, the verdict frame with
    ``seeds``/``stopped``/``looks``, the seeds each (task, method) ended with)."""
    from . import aggregate, evidence, stats, sweep
    from .decide import design, until_decided

    plan = design(P.seeds, P.values.get("decide", False), P.values.get("max_seeds"))
    others = [m for m in methods if m != reference]
    runs_on = lambda m: method_tasks(P, m)  # noqa: E731
    comparisons = {(t, b): ((t, reference), (t, b)) for b in others for t in runs_on(b)}
    comparisons = dict(sorted(comparisons.items(), key=lambda kv: P.tasks.index(kv[0][0])))
    comparisons.update({("average", b): tuple((t, m) for t in runs_on(b) for m in (reference, b))
                        for b in others if len(runs_on(b)) > 1})

    def train(seeds_by_arm):
        return run_tuned(P, [reference, *others], run, seeds_by_arm)

    def judge(results, key, seeds, level, needed_level):
        task, b = key
        keep = [r for r in results if r.config.method in (reference, b) and r.config.seed in seeds
                and (task == "average" or r.config.task == task)]
        frame = sweep.results_frame(keep)
        chosen = choose_rates(P, frame)  # from the look's seeds only (its tuning seeds, with tune_seeds)
        table = evidence.on_union(stats.method_verdicts, keep, chosen, reference=reference, others=[b], store=store,
                                  level=level, needed_level=needed_level, average=task == "average",
                                  **margins(P))
        # judged on dev ∪ pool where the runs scored a pool (lnft.evidence), the dev-only estimate beside it
        # † flags from the runs this look used (its seeds, its chosen rates), frozen with the verdict
        table = aggregate.flag_verdicts(table, aggregate.summarize(frame, chosen))
        row = table[table["task"] == task].iloc[0].to_dict()
        rate = lambda m: "/".join(f"{x:g}" for x in dict.fromkeys(chosen.loc[chosen["method"] == m, "lr"]))  # noqa: E731
        return {**row, "a_lr": rate(reference), "b_lr": rate(b)}

    return until_decided(plan, P.seeds, comparisons, train, judge, log=log)


# ------------------------------------------------------------------ notebook 3 decided (lnft.decide)
def decide_subsets(P, store, fishers_for, mask_dir: str, run, *, log=print):
    """Notebook 3's masked runs and verdicts, decided when ``P.decide`` (``lnft.decide``): Fisher top-k − random-k
    and every rule − all LayerNorm, per task × Fisher point × fraction (and on average over tasks), every rule
    at its own rate chosen on validation from the tuning seeds (``tune_seeds``: fixed once, every look reads the
    runs at that rate; without it, from the look's seeds). An arm is a task: a seed in this notebook is a
    whole pipeline (its Fisher at every point, the masks, every rule at every rate), so a seed is added to a
    task while any of its comparisons is open. ``fishers_for(task, point, seed)``: the mean Fisher (computed on
    demand for added seeds); ``run(configs)``: ``sweep.run_all``; the runs: ``masked_runs``.
    Returns ((plan, results, all_rates) of every
    masked run, the Fisher − random rows, the rule − all-LayerNorm rows (each at the look that stopped it, with
    ``seeds``/``stopped``/``looks``), the seeds each task ended with)."""
    from . import decide
    from .evidence import on_union
    from .subsets import SELECTIONS, at_chosen_rates, fisher_vs_random, scores_frame, versus_all_layernorm

    plan_design = decide.design(P.seeds, P.values.get("decide", False), P.values.get("max_seeds"))
    below = [f for f in P.fractions if f < 100]
    units = [(t, (t,)) for t in P.tasks] + ([("average", tuple(P.tasks))] if len(P.tasks) > 1 else [])
    comparisons = {}
    for task, arms in units:
        for point in P.fisher_points:
            for fraction in below:
                comparisons[("versus", task, point, fraction, "fisher-global")] = arms
                for rule in [r for r in SELECTIONS if r in P.rules]:
                    comparisons[("vs_all", task, point, fraction, rule)] = arms
    tables = {}

    def train(seeds_by_task):
        fishers = {(t, p, s): fishers_for(t, p, s) for t, seeds in seeds_by_task.items() for p in P.fisher_points
                   for s in seeds}
        chosen = None
        if P.values.get("tune_seeds"):  # the tuning seeds at every rate first; the others at the rates they chose
            tune = set(tuning_seeds(P))
            first = masked_runs(P, {k: v for k, v in fishers.items() if k[2] in tune}, mask_dir)
            chosen = chosen_subset_rates(P, scores_frame(first, run([c for _, c in first])))
        plan = masked_runs(P, fishers, mask_dir, chosen)  # every fraction × rule (× rate: the tuning seeds)
        results = run([c for _, c in plan])
        tables.clear()
        return plan, results, scores_frame(plan, results)

    def judge(state, key, seeds, level, needed_level):
        kind, task, point, fraction, rule = key
        cached = (kind, task, tuple(seeds), level)
        if cached not in tables:
            part = state[2][state[2]["seed"].isin(seeds)]
            if task != "average":
                part = part[part["task"] == task]
            scores = at_chosen_rates(part, subset_rates(P, part))  # chosen on the look's tuning seeds
            options = {"level": level, "needed_level": needed_level, **margins(P)}
            judge_on = fisher_vs_random if kind == "versus" else versus_all_layernorm
            tables[cached] = on_union(judge_on, scores, store=store, **options)  # dev ∪ pool (lnft.evidence)
        table = tables[cached]
        row = table[(table["task"] == task) & (table["point"] == point) & (table["fraction"] == fraction)
                    & (table["a"] == rule)]
        if len(row) != 1:
            raise LnftError(f"decide: no single {kind} row for {task} @ {point}, {fraction:g} %, {rule} "
                            f"({len(row)} rows)")
        return {**row.iloc[0].to_dict(), "kind": kind}

    state, frame, seeds = decide.until_decided(plan_design, P.seeds, comparisons, train, judge, log=log)
    versus = frame[frame["kind"] == "versus"].drop(columns="kind").reset_index(drop=True)
    vs_all = frame[frame["kind"] == "vs_all"].drop(columns="kind").reset_index(drop=True)
    return state, versus, vs_all, {arm: s for arm, s in seeds.items()}


BUILDERS = {"01_change_analysis": change_analysis, "02_peft_comparison": peft_comparison,
            "03_fisher_subsets": fisher_subsets}


def runs(P) -> list[Planned]:
    """The runs ``P.notebook`` trains (its first look), in the notebook's order."""
    if P.notebook not in BUILDERS:
        raise LnftError(f"unknown notebook(s) [{P.notebook!r}]; allowed: {', '.join(NOTEBOOKS)}")
    return BUILDERS[P.notebook](P)


def validate(P) -> int:
    """The up-front checks of a notebook's resolved parameters, before any work starts: every value against
    the schema and the notebook's rules (``profiles.check_values``, as ``profiles.resolve`` checks them), then
    every kind of run it trains as ``RunConfig.validate`` checks it (one config per distinct run but for seed
    and rate, which the schema checks). Notebook 3's start runs are checked before cross-fitting (no data
    read). Returns the number of configs validated; a bad value fails with a one-line ``LnftError``."""
    from .profiles import check_values

    check_values(P.notebook, dict(P.values))
    planned = fisher_subsets(P, exact=False) if P.notebook == "03_fisher_subsets" else runs(P)
    seen = set()
    for p in planned:
        key = repr(dataclasses.replace(p.config, seed=0, lr=None))
        if key not in seen:
            seen.add(key)
            p.config.validate()
    return len(seen)
