"""``lnft plan``: what a profile will cost before it runs — runs per notebook, training examples × epochs
(the budget; early stopping only shortens it), how many runs are in the store already, and hours on this
machine from measured throughput (the store's own records, or a short calibration run per method): the
optimisation steps, the validation passes (one per evaluation) and the dev splits (``eval hours``), and the
scoring of a held-out pool (``lnft.pool``: ``pool examples``, ``pool hours``) once per run.

The configs are the notebooks' own: ``lnft.experiments`` builds each notebook's runs, and the notebooks
call the same functions. Notebook 3's masked runs depend on Fisher values that do not exist before
it runs: they are counted by rule (the profile's ``rules``: Fisher global, per module, random shared by
the points; union and intersection) × rate (``masked_lrs``) with the all-LayerNorm budget, and never "in
the store"; Fisher passes are not counted. The Fisher start runs are ``subsets.start_config``'s (a
cross-fitting run where the train file leaves too few rows outside the run for the Fisher).
"""
from __future__ import annotations

import math
import statistics

import pandas as pd

from . import experiments
from .config import RunConfig
from .constants import EMBEDDED, EMBEDDED_TASKS, HUB_GLUE
from .errors import LnftError
from .experiments import NOTEBOOKS, Planned
# One GPU's seconds per training example-step per million model parameters: an ASSUMPTION, not a measurement
# (no GPU was lent to the sessions that built lnft): about 0.5 ms per example-step for MiniLM-L6 (22.7 M) and
# 7 ms for bert-large (335 M) at batch 32, sequence 128, fp32 on an A100-class card. `lnft plan --gpu-rate`
# takes a measured value (benchmarks/gpu.sh prints seconds per step; divide by the batch size).
GPU_SECONDS_PER_EXAMPLE_STEP_PER_MPARAM = 2.2e-5
# millions of parameters of the models the profiles name (others: pass --gpu-rate)
MODEL_MPARAMS = {"embedded": 22.7, "bert-base-cased": 108.3, "bert-base-uncased": 109.5, "bert-large-cased": 333.6,
                 "bert-large-uncased": 335.1, "roberta-base": 124.6, "roberta-large": 355.4}


# Scoring one example (a forward pass, no backward, no optimizer) against one training example-step: an ASSUMPTION
# used for a held-out pool's scoring time (lnft.pool) until the store holds pooled runs, whose measured
# ``pool_seconds`` replace it (``scoring_rates_from_store``).
SCORING_SHARE = 1 / 3
# Method rates are measured on this task; a run of another task scales its method's rate by the task's factor (a
# step on sentence pairs costs about 2-4x one on single sentences), measured from stored runs or by --calibrate.
CALIBRATION_TASK = "sst2"


def notebook_configs(notebook: str, profile: str) -> list[Planned]:
    """The runs one notebook trains under a profile, in the notebook's order (``lnft.experiments``)."""
    from . import profiles

    if notebook not in NOTEBOOKS:
        raise LnftError(f"unknown notebook(s) [{notebook!r}]; allowed: {', '.join(NOTEBOOKS)}")
    stand_in = offline_stand_in(profile)
    return experiments.runs(profiles.resolve(notebook, profile, **({"data": stand_in} if stand_in else {})))


# Where the hub's GLUE cannot be reached (no internet), a profile on it is planned on the embedded copy: the same
# GLUE train and dev files for these tasks (lnft/glue_data/README.md), so the plan (sizes, steps, GPU hours) of the
# paper profile prints offline; its run ids are the embedded copy's (no stored run of the hub data exists offline).
OFFLINE_SIZES = []  # the hub datasets planned on the embedded copy in this process (plan says so)


def offline_stand_in(profile: str) -> str | None:
    """``EMBEDDED`` when the profile reads the hub's GLUE, the hub cannot be reached and the embedded copy holds
    every task the profile names (then noted in ``OFFLINE_SIZES``); else None (plan the profile as it is)."""
    from .profiles import PROFILES
    from .sources import data_source
    from .tasks import get_task

    values = {k: v for part in PROFILES[profile].values() for k, v in part.items()}
    tasks = {t for part in PROFILES[profile].values() for t in part.get("tasks", [])}
    if values.get("data") != HUB_GLUE or not tasks <= set(EMBEDDED_TASKS):
        return None
    try:
        data_source(HUB_GLUE, get_task(sorted(tasks)[0])).check()
        return None
    except LnftError as exc:
        if "cannot be loaded" not in str(exc):
            raise
    if HUB_GLUE not in OFFLINE_SIZES:
        OFFLINE_SIZES.append(HUB_GLUE)
    return EMBEDDED


def _run_id(cfg: RunConfig, offline: bool = False) -> str:
    """The run id, or a stand-in key of the config where the profile is planned offline (``offline``: its hub data
    stands in as the embedded copy, whose run ids are not the hub data's) or a hub model cannot be reached here;
    the plan then counts the run as not stored (noted in ``OFFLINE_SIZES``)."""
    if offline:
        return f"offline:{cfg!r}"
    try:
        return cfg.run_id()
    except LnftError as exc:
        if "cannot be loaded" not in str(exc) or cfg.model == EMBEDDED:
            raise
        if cfg.model not in OFFLINE_SIZES:
            OFFLINE_SIZES.append(cfg.model)
        return f"offline:{cfg!r}"


def train_examples(cfg: RunConfig) -> int:
    """Training examples of a config (after the validation hold-out and max_train_samples)."""
    return split_sizes(cfg)["train"]


def split_sizes(cfg: RunConfig) -> dict[str, int]:
    """Examples per split of a config: train, validation (scored at every evaluation) and the dev splits and
    pool (scored once, at the selected checkpoint)."""
    from .data import load_task_data
    from .tasks import get_task

    task = get_task(cfg.task)
    splits = load_task_data(cfg, task)
    return {"train": len(splits["train"]), "validation": len(splits["validation"]),
            "dev": sum(len(splits[s]) for s in task.dev_files)}


def evaluations(cfg: RunConfig, steps: int) -> int:
    """Evaluations of the validation split a run makes at most: one per epoch, or one every ``eval_every`` steps
    (lnft.train; the last step is always evaluated)."""
    if not cfg.eval_every:
        return cfg.epochs
    return math.ceil(steps / cfg.eval_every)


def rates_from_store(results) -> dict[tuple[str, str, str, str], float]:
    """Measured seconds per training example-step, (model, device, precision, method) -> median over stored
    runs: the optimisation steps' seconds (``train_seconds``, as ``calibrate`` measures them; the evaluations
    and the pool are counted apart, by ``scoring_rates_from_store``) / (steps × batch size). Precision is part
    of the key: bf16 autocast and fp32 runs of the same method differ in speed (a stored config holds its
    resolved precision, fp32 or bf16). On ``CALIBRATION_TASK``'s runs where the store has any of that key (other
    tasks scale the rate by their ``task_factors_from_store``), else on every task's."""
    samples: dict[tuple[str, str, str, str], list[float]] = {}
    base: dict[tuple[str, str, str, str], list[float]] = {}
    for (*key, task), rate in _run_rates(results):
        samples.setdefault(tuple(key), []).append(rate)
        if task == CALIBRATION_TASK:
            base.setdefault(tuple(key), []).append(rate)
    return {k: statistics.median(base.get(k) or v) for k, v in samples.items()}


def _run_rates(results):
    """((model, device, precision, method, task), seconds per training example-step) of each stored run that
    measured its steps: ``train_seconds``, or the total where a record has no split."""
    for r in results:
        seconds = getattr(r, "train_seconds", None) or r.total_seconds
        if r.steps and seconds:
            yield ((r.config.model, r.device, r.config.precision, r.config.method, r.config.task),
                   seconds / (r.steps * r.config.batch_size))


def _step_rates(results) -> dict[tuple[str, str, str, str, str], float]:
    """(model, device, precision, method, task) -> median seconds per training example-step of stored runs."""
    samples: dict[tuple[str, str, str, str, str], list[float]] = {}
    for key, rate in _run_rates(results):
        samples.setdefault(key, []).append(rate)
    return {k: statistics.median(v) for k, v in samples.items()}


def task_factors_from_store(results) -> dict[tuple[str, str, str, str], float]:
    """(model, device, precision, task) -> a step's cost on the task over its cost on ``CALIBRATION_TASK``
    (longer inputs cost more: sentence pairs about 2-4x single sentences), median over the methods stored on
    both; measured, never assumed."""
    rates, ratios = _step_rates(results), {}
    for (model, device, precision, method, task), rate in rates.items():
        base = rates.get((model, device, precision, method, CALIBRATION_TASK))
        if base and task != CALIBRATION_TASK:
            ratios.setdefault((model, device, precision, task), []).append(rate / base)
    return {k: statistics.median(v) for k, v in ratios.items()}


def scoring_rates_from_store(results) -> dict[tuple[str, str, str], float]:
    """Measured seconds to score one held-out pool example at the selected checkpoint, (model, device, precision)
    -> median over stored pooled runs (``RunResult.pool_seconds`` / ``pool_size``)."""
    samples: dict[tuple[str, str, str], list[float]] = {}
    for r in results:
        if r.config.pool_size and r.pool_seconds:
            samples.setdefault((r.config.model, r.device, r.config.precision), []).append(
                r.pool_seconds / r.config.pool_size)
    return {k: statistics.median(v) for k, v in samples.items()}


def rate_key(cfg: RunConfig, method: str | None = None) -> tuple[str, str, str, str]:
    """The throughput key of a config (``rates_from_store``): its device and precision resolved here."""
    from .models import resolve_device, resolve_precision

    return (cfg.model, resolve_device(cfg.device).type, resolve_precision(cfg.precision, cfg.device),
            method or cfg.method)


def calibrate(model: str, methods, device: str = "auto", examples: int = 256,
              precision: str = "auto") -> dict[tuple[str, str, str, str], float]:
    """Seconds per example-step from one short run per method (256 SST-2 examples, one epoch), not stored. The
    optimisation steps only (``train_seconds``): a run this short is mostly model loading, which a real run pays
    once, so its total time would overstate the rate several-fold; evaluations are counted apart."""
    from .train import finetune

    rates = {}
    for method in sorted(set(methods)):
        cfg = RunConfig(task=CALIBRATION_TASK, method=method, model=model, max_train_samples=examples, max_eval_samples=64,
                        epochs=1, device=device, precision=precision)
        out = finetune(cfg, progress=False)
        rates[rate_key(cfg)] = out.result.train_seconds / (out.result.steps * cfg.batch_size)
    return rates


def calibrate_tasks(model: str, tasks, device: str = "auto", examples: int = 128,
                    precision: str = "auto") -> dict[tuple[str, str, str, str], float]:
    """Task factors (``task_factors_from_store``) from one short full fine-tuning run per task and one on
    ``CALIBRATION_TASK``, not stored: the optimisation steps' seconds per example-step over the calibration
    task's."""
    from .train import finetune

    def rate(task):
        cfg = RunConfig(task=task, method="full", model=model, max_train_samples=examples, max_eval_samples=64,
                        epochs=1, device=device, precision=precision)
        out = finetune(cfg, progress=False)
        return cfg, out.result.train_seconds / (out.result.steps * cfg.batch_size)

    tasks = sorted(set(tasks) - {CALIBRATION_TASK})
    if not tasks:
        return {}
    _, base = rate(CALIBRATION_TASK)
    factors = {}
    for task in tasks:
        cfg, value = rate(task)
        factors[rate_key(cfg)[:3] + (task,)] = value / base
    return factors


def plan_frame(profile: str, notebooks=None, store=None, *, rates: dict | None = None,
               factors: dict | None = None, gpu_rate: float | None = None) -> pd.DataFrame:
    """One row per notebook × run group: runs, runs new to the plan, in the store, to train, examples ×
    epochs of the runs to train, the estimated hours here (NaN where no throughput is known) and on one GPU
    (``gpu_rate`` seconds per example-step, default from ``GPU_SECONDS_PER_EXAMPLE_STEP_PER_MPARAM``). A run's
    step rate: the store's own for its method and task, else its method's (``rates``, on ``CALIBRATION_TASK``)
    times its task's factor (``factors``, ``task_factors_from_store``; unknown: NaN, not guessed)."""
    from .profiles import PROFILES

    if profile not in PROFILES:
        raise LnftError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    notebooks = list(notebooks or NOTEBOOKS)
    unknown = [n for n in notebooks if n not in NOTEBOOKS]
    if unknown:
        raise LnftError(f"unknown notebook(s) {unknown}; allowed: {', '.join(NOTEBOOKS)}")
    OFFLINE_SIZES.clear()  # this plan's own notes
    offline = offline_stand_in(profile) is not None
    planned = [p for nb in notebooks for p in notebook_configs(nb, profile)]
    rates, factors, scoring, exact = dict(rates or {}), dict(factors or {}), {}, {}
    if store is not None:  # the ledger's records measure throughput too (a fresh clone has no runs/)
        recorded = store.ledger.results() if store.ledger is not None else []
        stored = [*recorded, *store.results()]
        rates, scoring = {**rates_from_store(stored), **rates}, scoring_rates_from_store(stored)
        factors, exact = {**task_factors_from_store(stored), **factors}, _step_rates(stored)
    seen, sizes, rows = set(), {}, []
    for p in planned:
        cfg = p.config
        run_id = _run_id(cfg, offline) if p.known else None
        new = run_id is None or run_id not in seen
        seen.add(run_id)
        real = run_id is not None and not run_id.startswith("offline:")
        stored = bool(new and real and store is not None and store.load(run_id) is not None)
        ledgered = bool(new and real and store is not None and store.ledger is not None and store.ledger.has(run_id))
        key = (cfg.task, cfg.data, cfg.max_train_samples, cfg.max_eval_samples, cfg.data_seed, cfg.validation_fraction,
               cfg.pool_size)
        if key not in sizes:
            sizes[key] = split_sizes(cfg)
        steps = math.ceil(sizes[key]["train"] / cfg.batch_size) * cfg.epochs
        rate = _rate(cfg, rates, exact, factors)
        todo = new and not stored
        gpu = gpu_rate if gpu_rate is not None else _gpu_rate(cfg.model)
        pooled = cfg.pool_size if todo else 0  # held-out pool rows scored once at the selected checkpoint
        score_rate = scoring.get(rate_key(cfg)[:3], rate * SCORING_SHARE if rate is not None else None)
        pool_hours = (score_rate * pooled / 3600 if score_rate is not None else math.nan) if pooled else 0.0
        scored = (evaluations(cfg, steps) * sizes[key]["validation"] + sizes[key]["dev"]) if todo else 0
        eval_hours = (score_rate * scored / 3600 if score_rate is not None else math.nan) if scored else 0.0
        rows.append({"notebook": p.notebook, "task": cfg.task, "group": p.group, "runs": 1, "new": int(new),
                     "in store": int(stored), "in ledger": int(ledgered), "to train": int(todo),
                     "examples x epochs": sizes[key]["train"] * cfg.epochs if todo else 0,
                     "max steps": steps if todo else 0, "pool examples": pooled, "pool hours": pool_hours,
                     "eval hours": eval_hours,
                     "hours": ((rate * steps * cfg.batch_size / 3600 + eval_hours + pool_hours) if rate is not None
                               else math.nan) if todo else 0.0,
                     "GPU hours": gpu * (steps * cfg.batch_size + SCORING_SHARE * (pooled + scored)) / 3600
                     if todo else 0.0})
    frame = pd.DataFrame(rows)
    return (frame.groupby(["notebook", "task", "group"], sort=False, as_index=False)
            .agg({"runs": "sum", "new": "sum", "in store": "sum", "in ledger": "sum", "to train": "sum", "examples x epochs": "sum",
                  "max steps": "sum", "pool examples": "sum",
                  "pool hours": lambda h: h.sum(min_count=1) if h.notna().all() else math.nan,
                  "eval hours": lambda h: h.sum(min_count=1) if h.notna().all() else math.nan, "hours": lambda h: h.sum(min_count=1) if h.notna().all() else math.nan,
                  "GPU hours": lambda h: h.sum(min_count=1) if h.notna().all() else math.nan}))


def _rate(cfg: RunConfig, rates: dict, exact: dict, factors: dict) -> float | None:
    """Seconds per example-step of a planned run (``plan_frame``); None where unknown."""
    key = rate_key(cfg)
    if key + (cfg.task,) in exact:
        return exact[key + (cfg.task,)]
    rate = rates.get(key)
    if rate is None and cfg.method == "layernorm-masked":
        rate = rates.get(rate_key(cfg, "layernorm"))
    if rate is None or cfg.task == CALIBRATION_TASK:
        return rate
    factor = factors.get(key[:3] + (cfg.task,))
    return rate * factor if factor is not None else None


def _gpu_rate(model: str) -> float:
    """Assumed GPU seconds per example-step of a model (``GPU_SECONDS_PER_EXAMPLE_STEP_PER_MPARAM`` × its size)."""
    size = MODEL_MPARAMS.get(model)
    return GPU_SECONDS_PER_EXAMPLE_STEP_PER_MPARAM * size if size else math.nan


def decide_note(profile: str, notebooks=None) -> str:
    """What decide mode may add on top of the first look the plan counts."""
    from .profiles import PROFILES

    parts = []
    for nb in notebooks or NOTEBOOKS:
        values = PROFILES[profile].get(nb, {})
        if values.get("decide") and values.get("max_seeds"):
            first = len(values.get("seeds") or [])
            parts.append(f"{nb[:2]}: {first} seeds at the first look, up to {values['max_seeds']} "
                         f"(at most ×{values['max_seeds'] / first:.2f} of its runs, only where a verdict is open)")
    return "decide mode — " + "; ".join(parts) if parts else "decide mode off"


def add_cli(sub) -> None:
    p = sub.add_parser("plan", help="what a profile will cost before it runs: runs, examples × epochs, in the "
                       "store, estimated hours")
    p.add_argument("--profile", default="quick", help="smoke, quick, standard, full or paper")
    p.add_argument("--notebooks", nargs="+", metavar="NAME", help="notebook names (default: all)")
    p.add_argument("--runs", default=None, help="runs directory (default: $LNFT_RUNS or ./runs)")
    p.add_argument("--ledger", default=None, help="results ledger (default: $LNFT_LEDGER; none when unset): what it "
                   "lacks is what a report must train")
    p.add_argument("--gpu-rate", type=float, default=None, metavar="SECONDS",
                   help="one GPU's seconds per training example-step (default: an assumption scaled by model size, "
                        "lnft.plan.GPU_SECONDS_PER_EXAMPLE_STEP_PER_MPARAM; benchmarks/gpu.sh measures it)")
    p.add_argument("--calibrate", action="store_true",
                   help="time one short run per method here when the store has no record of that method")
    p.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    from .profiles import PROFILES
    from .store import RunStore

    if args.profile not in PROFILES:
        raise LnftError(f"unknown profile {args.profile!r}; allowed: {', '.join(PROFILES)}")
    unknown = [n for n in args.notebooks or () if n not in NOTEBOOKS]
    if unknown:
        raise LnftError(f"unknown notebook(s) {unknown}; allowed: {', '.join(NOTEBOOKS)}")
    store = RunStore(args.runs, ledger=args.ledger)
    rates, factors = {}, {}
    if args.calibrate:
        common = PROFILES[args.profile]["common"]
        planned = [p.config.method for nb in args.notebooks or NOTEBOOKS for p in notebook_configs(nb, args.profile)]
        measured = rates_from_store(store.results())
        probe = RunConfig(model=common["model"], device=common.get("device", "auto"),
                          precision=common.get("precision", "auto"))
        missing = [m for m in set(planned) - {"layernorm-masked"} if rate_key(probe, m) not in measured]
        rates = calibrate(probe.model, missing, probe.device, precision=probe.precision) if missing else {}
        known = task_factors_from_store([*store.results(), *(store.ledger.results() if store.ledger else [])])
        tasks = {p.config.task for nb in args.notebooks or NOTEBOOKS for p in notebook_configs(nb, args.profile)}
        factors = calibrate_tasks(probe.model, [t for t in tasks if rate_key(probe)[:3] + (t,) not in known],
                                  probe.device, precision=probe.precision)
    if args.gpu_rate is not None and not (args.gpu_rate > 0 and math.isfinite(args.gpu_rate)):
        raise LnftError(f"invalid --gpu-rate {args.gpu_rate!r}; allowed: a finite number of seconds > 0")
    frame = plan_frame(args.profile, args.notebooks, store, rates=rates, factors=factors, gpu_rate=args.gpu_rate)
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.float_format", "{:.2f}".format):
        print(frame.to_string(index=False))
    total = frame[["runs", "new", "in store", "to train", "examples x epochs"]].sum()
    hours = frame["hours"].sum(min_count=1) if frame["hours"].notna().all() else math.nan
    print(f"profile {args.profile}: {total['new']} distinct runs, {total['in store']} in the store ({store.root}), "
          f"{total['to train']} to train ({total['examples x epochs']:,} examples × epochs); estimated "
          + (f"{hours:.2f} hours here at most (early stopping shortens it; Fisher passes not counted"
             + f"; evaluation passes: {frame['eval hours'].sum():.2f} of those hours"
             + (f"; {frame['pool examples'].sum():,} held-out pool examples scored: "
                f"{frame['pool hours'].sum():.2f} of those hours" if frame["pool examples"].sum() else "") + ")"
             if not math.isnan(hours) else "hours: unknown for some methods or tasks (no stored run of "
             "them here; run with --calibrate)")
          + f"; one GPU: {frame['GPU hours'].sum(min_count=1):.2f} hours ("
          + ("--gpu-rate" if args.gpu_rate is not None else "assumed rate, not measured: pass --gpu-rate") + ")")
    if store.ledger is not None:
        print(ledger_note(frame, store.ledger))
    print(decide_note(args.profile, args.notebooks))
    if OFFLINE_SIZES:
        print(f"unreachable here: {', '.join(OFFLINE_SIZES)}; planned offline (the hub's GLUE as the embedded copy "
              "of its train and dev files, the same sizes; no run counted as stored)")
    return 0


def ledger_note(frame: pd.DataFrame, ledger) -> str:
    """What the ledger holds of the plan, what it lacks and what that costs (the runs to train)."""
    missing = frame[frame["to train"] > 0]
    hours = missing["hours"].sum(min_count=1) if missing["hours"].notna().all() else math.nan
    where = ", ".join(f"{r['notebook'][:2]} {r['task']} {r['group']}: {r['to train']}"
                      for _, r in missing.iterrows()) or "nothing"
    return (f"ledger {ledger.root}: {int(frame['in ledger'].sum())} of {int(frame['new'].sum())} distinct runs "
            f"({len(ledger.run_ids())} records, {ledger.size() / 1e6:.2f} MB); missing: {where}; to train: "
            f"{int(frame['to train'].sum())} runs, "
            + (f"{hours:.2f} hours here at most" if not math.isnan(hours) else "hours unknown (run with --calibrate)"))

