"""Seed statistics, learning-rate selection and method comparisons on tidy result frames, with the flags
that say a result may be undertrained: a run still improving when its budget ran out (best evaluation =
last evaluation, gained more than ``IMPROVING_GAIN`` points there) and a chosen learning rate at the edge
of its grid (a better one may lie beyond it). A run whose best evaluation is its last by a smaller gain
*annealed to the end* (the linear schedule decays the rate to 0 over the budget): noted, not flagged.
The flag texts have one home, here (``budget_flag``, ``lr_flag``, and ``caveat``: the "[† possibly
undertrained: …]" a verdict line carries); ``lnft.subsets`` uses them too. ``early_stopping_problems``: the
invariants every trained run's early stopping must satisfy (notebook 2 checks its runs with it)."""
from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["task", "method"]
IMPROVING_GAIN = 0.5  # points of the selection score gained at the last evaluation: above it, "still improving"


def last_gain(result) -> float:
    """Selection score (points) of a run's last evaluation minus the best before it: how much it was still
    gaining when it ended (inf with a single evaluation: nothing shows it had converged; NaN without
    history). With the linear decay to 0 a run that anneals to the end also has its best at its last
    evaluation, by a hair: ``end_state`` tells the two apart by this gain. (Here, not on ``RunResult``: the
    result module is on the training path, whose source is part of every run id.)"""
    if not result.history:
        return float("nan")
    key = f"{result.config.select_on}_score"
    earlier = [h[key] for h in result.history[:-1] if key in h]
    return float(result.history[-1].get(key, float("nan")) - max(earlier)) if earlier else float("inf")


def end_state(still_improving: bool, last_gain: float, threshold: float = IMPROVING_GAIN) -> str:
    """How a run ended: "improving" (best = last evaluation, with a last gain above ``threshold`` points,
    or a single evaluation), "annealed" (best = last evaluation by at most ``threshold``: flat while the
    schedule decayed to 0) or "" (its best evaluation came earlier: converged)."""
    if not still_improving:
        return ""
    return "annealed" if (np.isfinite(last_gain) and last_gain <= threshold) else "improving"


def budget_flag(state: str, count: int, total: int, unit: str = "seeds", threshold: float = IMPROVING_GAIN) -> str:
    """The text of one end-of-budget note: ``state`` "improving" (a † flag) or "annealed" (a note)."""
    if state == "improving":
        return (f"still improving at the end of its budget (last gain > {threshold:g} points or a single "
                f"evaluation) in {count} of {total} {unit}")
    if state == "annealed":
        return (f"annealed to the end (best = last evaluation by ≤ {threshold:g} points while the rate decayed "
                f"to 0) in {count} of {total} {unit}")
    raise ValueError(f"unknown end state {state!r}; allowed: improving, annealed")


def lr_flag(lr: float, at_edge: bool, rates: int) -> str:
    """The learning-rate note of one chosen rate: at the edge of a grid of two or more rates, or untested."""
    if at_edge:
        return f"lr {lr:g} at the edge of its grid ({rates} rates)"
    return "one lr tried (untuned)" if rates == 1 else ""


def join_texts(parts) -> str:
    """Flag or note texts joined by "; ", each once, in order, empty ones left out: the ``flags`` / ``notes``
    of a verdict row (``flag_verdicts`` here, ``lnft.subsets.flag_runs``)."""
    return "; ".join(dict.fromkeys(p for p in parts if p))


def caveat(undertrained: bool, flags: str, *, unflagged: bool = False) -> str:
    """The text a verdict line carries for its flags: " [† possibly undertrained: <flags>]" when
    ``undertrained``; otherwise, with ``unflagged``, the flags alone (" [one lr tried]") or ""."""
    if undertrained:
        return f" [† possibly undertrained: {flags}]"
    return f" [{flags}]" if unflagged and flags else ""


def early_stopping_problems(results) -> list[str]:
    """What breaks early stopping's invariants in trained runs (``RunResult``s), one text per problem naming
    the run (empty: none): steps within the budget; the last evaluation at the last step; the reported
    checkpoint is an evaluated one with the best selection score; a run that stopped early had patience and
    its last ``patience`` evaluations were no better than the best before them; ``still_improving`` means
    best = last evaluation."""
    out = []
    for r in results:
        cfg, steps = r.config, [h["step"] for h in r.history]
        if not steps:
            out.append(f"{r.run_id}: no evaluation in its history")
            continue
        if r.steps > r.max_steps:
            out.append(f"{r.run_id}: {r.steps} steps, over its budget of {r.max_steps}")
        if steps[-1] != r.steps:
            out.append(f"{r.run_id}: last evaluation at step {steps[-1]}, not at its last step {r.steps}")
        if r.best_step not in steps:
            out.append(f"{r.run_id}: best step {r.best_step} was not evaluated ({steps})")
            continue
        selection = [h[f"{cfg.select_on}_score"] for h in r.history]
        if selection[steps.index(r.best_step)] != max(selection):
            out.append(f"{r.run_id}: the reported checkpoint (step {r.best_step}) is not the best on {cfg.select_on}")
        wait = cfg.patience
        if r.stopped_early and (not wait or len(selection) <= wait
                                or any(s > max(selection[:-wait]) for s in selection[-wait:])):
            out.append(f"{r.run_id}: stopped early at step {r.steps} without patience {cfg.patience} evaluations "
                       "without improvement")
        if r.still_improving != (r.best_step == steps[-1]):
            out.append(f"{r.run_id}: still_improving {r.still_improving} but best step {r.best_step}, last {steps[-1]}")
    return out


def scores(frame: pd.DataFrame, split: str = "dev", metric: str = "score") -> pd.DataFrame:
    """One row per run: the chosen split's metric as column ``score``."""
    part = frame[(frame["split"] == split) & (frame["metric"] == metric)]
    return part.drop(columns=["split", "metric"]).rename(columns={"value": "score"})


def select_lr(frame: pd.DataFrame, on: str = "validation", keys=KEYS) -> pd.DataFrame:
    """Per task × method (or per ``keys``, e.g. notebook 3's task × point × fraction × selection rule), the
    learning rate with the best seed-mean score on ``on`` ("validation" is the honest protocol; "dev" is
    what the paper and BitFit did). Returns the keys, lr, selection score, the number of rates tried and
    ``lr_at_edge``: the chosen rate is the lowest or highest of two or more rates tried (with a single
    rate the choice is untested: ``lr_rates`` = 1)."""
    keys = list(keys)
    sel = scores(frame, split=on).groupby([*keys, "lr"], as_index=False)["score"].mean()
    best = sel.loc[sel.groupby(keys)["score"].idxmax()].rename(columns={"score": f"{on}_score"})
    grid = sel.groupby(keys)["lr"].agg(lr_rates="nunique", lr_min="min", lr_max="max").reset_index()
    best = best.merge(grid, on=keys)
    best["lr_at_edge"] = (best["lr_rates"] > 1) & ((best["lr"] == best["lr_min"]) | (best["lr"] == best["lr_max"]))
    return best.drop(columns=["lr_min", "lr_max"]).reset_index(drop=True)


def flags(row) -> str:
    """The undertraining flags of one summary row, as text ("" when none)."""
    out = []
    if row.get("still_improving", 0):
        out.append(budget_flag("improving", row["still_improving"], row["seeds"]))
    if row.get("annealed", 0):
        out.append(budget_flag("annealed", row["annealed"], row["seeds"]))
    if "lr_rates" in row or "lr_at_edge" in row:
        rates = row.get("lr_rates", 0)
        out.append(lr_flag(row["lr"], bool(row.get("lr_at_edge", False)), int(rates) if pd.notna(rates) else 0))
    return "; ".join(x for x in out if x)


def undertrained(row) -> bool:
    """Possibly undertrained: some seed still improving at the end, the chosen rate at a grid edge, or an arm
    given one rate only (its rate was never tuned: ``lr_rates`` = 1)."""
    rates = row.get("lr_rates", float("nan"))
    untuned = bool(pd.notna(rates) and int(rates) == 1)
    return bool(row.get("still_improving", 0)) or bool(row.get("lr_at_edge", False)) or untuned


def summarize(frame: pd.DataFrame, chosen: pd.DataFrame | None = None) -> pd.DataFrame:
    """Dev score mean ± std over seeds per task × method (at the chosen rate when given), the compute spent
    (steps and training seconds per run, seed mean), the number of seeds still improving at the end of their
    budget (with a ``last_gain`` column: only those that gained more than ``IMPROVING_GAIN`` there; the
    others are counted as ``annealed``), and the undertraining flags (``flags`` text, ``undertrained`` bool)."""
    dev = scores(frame, split="dev")
    if chosen is not None:
        dev = dev.merge(chosen[[*KEYS, "lr"]], on=[*KEYS, "lr"])
    extra = {c: (c, "mean") for c in ("steps", "max_steps", "best_step", "train_seconds") if c in dev}
    if "still_improving" in dev and "last_gain" in dev:
        state = [end_state(bool(s), g) for s, g in zip(dev["still_improving"], dev["last_gain"])]
        dev = dev.assign(still_improving=[x == "improving" for x in state], annealed=[x == "annealed" for x in state])
        extra["annealed"] = ("annealed", "sum")
    if "still_improving" in dev:
        extra["still_improving"] = ("still_improving", "sum")
    out = dev.groupby(KEYS, as_index=False).agg(
        score_mean=("score", "mean"), score_std=("score", "std"), seeds=("seed", "nunique"), lr=("lr", "first"),
        trainable_params=("trainable_params", "first"), trainable_percent=("trainable_percent", "first"), **extra)
    if chosen is not None and "lr_at_edge" in chosen:
        out = out.merge(chosen[[*KEYS, "lr_rates", "lr_at_edge"]], on=KEYS, how="left")
    out["flags"] = out.apply(flags, axis=1)
    out["undertrained"] = out.apply(undertrained, axis=1)
    return out


def glue_table(summary: pd.DataFrame, methods: list[str] | None = None) -> pd.DataFrame:
    """Rows = methods, columns = tasks ("mean ± std", marked † when possibly undertrained) + average +
    trainable parameters and share + compute (steps and training seconds per run, mean over tasks and
    seeds) + the flags behind every †."""
    methods = methods or list(dict.fromkeys(summary["method"]))
    marked = summary["undertrained"] if "undertrained" in summary else pd.Series(False, index=summary.index)
    cell = summary.assign(cell=[(f"{m:.1f} ± {s:.1f}" if np.isfinite(s) else f"{m:.1f}") + (" †" if u else "")
                                for m, s, u in zip(summary["score_mean"], summary["score_std"], marked)])
    table = cell.pivot(index="method", columns="task", values="cell")
    # the average over every task; a method run on some tasks only (method_tasks) has none ("—"), never the mean
    # of its own tasks beside the others' mean of all
    means = summary.pivot(index="method", columns="task", values="score_mean").mean(axis=1, skipna=False)
    table["average"] = means.map(lambda v: "—" if pd.isna(v) else f"{v:.1f}")
    counts = summary.groupby("method")[["trainable_params", "trainable_percent"]].first()
    table["trainable"] = counts["trainable_params"].map("{:,}".format)
    table["% of model"] = counts["trainable_percent"].map("{:.4f}".format)
    if "steps" in summary:
        compute = summary.groupby("method")[["steps", "train_seconds"]].mean()
        table["steps/run"] = compute["steps"].map("{:.0f}".format)
        table["train s/run"] = compute["train_seconds"].map("{:.0f}".format)
    if "flags" in summary:
        flagged = summary[summary["flags"] != ""]
        text = {m: "; ".join(f"{t}: {f}" for t, f in zip(part["task"], part["flags"]))
                for m, part in flagged.groupby("method")}
        table["flags"] = [text.get(m, "") for m in table.index]
    return table.reindex([m for m in methods if m in table.index])


def flag_verdicts(verdicts: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Add ``undertrained`` and ``flags`` to a verdict table of ``lnft.stats`` (columns task, a, b): a
    comparison is flagged when either method is possibly undertrained on that task (on any task for the
    ``average`` row); ``flags`` says which and why."""
    by = summary.set_index(KEYS)

    def caveat(task, method, other):
        ran = lambda m: set(summary.loc[summary["method"] == m, "task"])  # noqa: E731
        tasks = sorted(ran(method) & ran(other)) if task == "average" else [task]
        rows = [(t, by.loc[(t, method)]) for t in tasks if (t, method) in by.index]
        marked = any(bool(r.get("undertrained", False)) for _, r in rows)
        text = join_texts(f"{method}{f' ({t})' if task == 'average' else ''}: {r['flags']}"
                          for t, r in rows if r.get("flags"))
        return marked, text

    out = verdicts.copy()
    marks = [[caveat(row.task, row.a, row.b), caveat(row.task, row.b, row.a)] for row in verdicts.itertuples()]
    out["undertrained"] = [a[0] or b[0] for a, b in marks]
    out["flags"] = [join_texts((a[1], b[1])) for a, b in marks]
    return out
