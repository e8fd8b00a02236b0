"""Seed statistics, learning-rate selection and method comparisons on tidy result frames, with the flags
that say a result may be undertrained: a run still improving when its budget ran out (best evaluation =
last evaluation) and a chosen learning rate at the edge of its grid (a better one may lie beyond it)."""
from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["task", "method"]


def scores(frame: pd.DataFrame, split: str = "dev", metric: str = "score") -> pd.DataFrame:
    """One row per run: the chosen split's metric as column ``score``."""
    part = frame[(frame["split"] == split) & (frame["metric"] == metric)]
    return part.drop(columns=["split", "metric"]).rename(columns={"value": "score"})


def select_lr(frame: pd.DataFrame, on: str = "validation") -> pd.DataFrame:
    """Per task × method, the learning rate with the best seed-mean score on ``on`` ("validation" is the
    honest protocol; "dev" is what the paper and BitFit did). Returns task, method, lr, selection score,
    the number of rates tried and ``lr_at_edge``: the chosen rate is the lowest or highest of two or more
    rates tried (with a single rate the choice is untested: ``lr_rates`` = 1)."""
    sel = scores(frame, split=on).groupby([*KEYS, "lr"], as_index=False)["score"].mean()
    best = sel.loc[sel.groupby(KEYS)["score"].idxmax()].rename(columns={"score": f"{on}_score"})
    grid = sel.groupby(KEYS)["lr"].agg(lr_rates="nunique", lr_min="min", lr_max="max").reset_index()
    best = best.merge(grid, on=KEYS)
    best["lr_at_edge"] = (best["lr_rates"] > 1) & ((best["lr"] == best["lr_min"]) | (best["lr"] == best["lr_max"]))
    return best.drop(columns=["lr_min", "lr_max"]).reset_index(drop=True)


def flags(row) -> str:
    """The undertraining flags of one summary row, as text ("" when none)."""
    out = []
    if row.get("still_improving", 0):
        out.append(f"still improving at the end of its budget in {row['still_improving']} of {row['seeds']} seeds")
    if row.get("lr_at_edge", False):
        out.append(f"lr {row['lr']:g} at the edge of its grid")
    elif row.get("lr_rates", 0) == 1:
        out.append("one lr tried")
    return "; ".join(out)


def undertrained(row) -> bool:
    """Possibly undertrained: some seed still improving at the end, or the chosen rate at a grid edge."""
    return bool(row.get("still_improving", 0)) or bool(row.get("lr_at_edge", False))


def summarize(frame: pd.DataFrame, chosen: pd.DataFrame | None = None) -> pd.DataFrame:
    """Dev score mean ± std over seeds per task × method (at the chosen rate when given), the compute spent
    (steps and training seconds per run, seed mean), the number of seeds still improving at the end of their
    budget, and the undertraining flags (``flags`` text, ``undertrained`` bool)."""
    dev = scores(frame, split="dev")
    if chosen is not None:
        dev = dev.merge(chosen[[*KEYS, "lr"]], on=[*KEYS, "lr"])
    extra = {c: (c, "mean") for c in ("steps", "max_steps", "best_step", "train_seconds") if c in dev}
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
    table["average"] = summary.pivot(index="method", columns="task", values="score_mean").mean(axis=1).map("{:.1f}".format)
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


def compare(summary: pd.DataFrame, reference: str = "layernorm",
            others: tuple[str, ...] = ("full", "bitfit", "lora", "head"), chosen: pd.DataFrame | None = None,
            noise_factor: float = 1.0) -> pd.DataFrame:
    """Per task: reference minus each other method (points) and the seed spreads.

    Superseded for verdicts by ``lnft.stats.method_verdicts`` (paired bootstrap interval + the verdict
    vocabulary): "within seed noise" here is a crude screen, not a verdict. ``within_seed_noise`` is
    |difference| <= noise_factor × the larger seed std, and None unless both methods have a std.
    ``undertrained`` is True when either side is possibly undertrained; ``flags`` says which and why."""
    rows = []
    by = summary.set_index(KEYS)
    for task in sorted(summary["task"].unique()):
        if (task, reference) not in by.index:
            continue
        ref = by.loc[(task, reference)]
        for other in others:
            if (task, other) not in by.index:
                continue
            o = by.loc[(task, other)]
            diff = ref["score_mean"] - o["score_mean"]
            noise = max(ref["score_std"], o["score_std"])  # NaN (one seed) on either side: no estimate
            finite = np.isfinite(ref["score_std"]) and np.isfinite(o["score_std"])
            within = bool(abs(diff) <= noise_factor * noise) if finite else None
            caveat = "; ".join(f"{name}: {row['flags']}" for name, row in ((reference, ref), (other, o))
                               if row.get("flags"))
            rows.append({"task": task, "comparison": f"{reference} − {other}", "difference": diff,
                         "reference_std": ref["score_std"], "other_std": o["score_std"], "within_seed_noise": within,
                         "undertrained": bool(ref.get("undertrained", False) or o.get("undertrained", False)),
                         "flags": caveat})
    return pd.DataFrame(rows)


def flag_verdicts(verdicts: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Add ``undertrained`` and ``flags`` to a verdict table of ``lnft.stats`` (columns task, a, b): a
    comparison is flagged when either method is possibly undertrained on that task (on any task for the
    ``average`` row); ``flags`` says which and why."""
    by = summary.set_index(KEYS)

    def caveat(task, method):
        tasks = sorted(summary["task"].unique()) if task == "average" else [task]
        rows = [(t, by.loc[(t, method)]) for t in tasks if (t, method) in by.index]
        marked = any(bool(r.get("undertrained", False)) for _, r in rows)
        text = "; ".join(f"{method}{f' ({t})' if task == 'average' else ''}: {r['flags']}"
                         for t, r in rows if r.get("flags"))
        return marked, text

    out = verdicts.copy()
    marks = [[caveat(row.task, row.a), caveat(row.task, row.b)] for row in verdicts.itertuples()]
    out["undertrained"] = [a[0] or b[0] for a, b in marks]
    out["flags"] = ["; ".join(x for x in (a[1], b[1]) if x) for a, b in marks]
    return out
