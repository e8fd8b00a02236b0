"""What an executed notebook found, recorded next to it for the reports index and the README.

Why: a reader should see whether the paper's claims held without opening three long notebooks, and the
index and README must show the numbers the notebooks computed, never re-typed ones. The last cell of each
notebook calls ``save`` with the very verdict frames it displays; ``save`` writes
``<notebook>.verdicts.json`` and ``<notebook>.png`` (the key figure, a thumbnail) into the folder named
by ``$LNFT_REPORT_DIR``, which ``lnft reports`` sets while it executes the notebooks. Run interactively
(no ``$LNFT_REPORT_DIR``) nothing is written. Example (notebook 2)::

    from lnft import record
    record.save("02_peft_comparison", [record.rows(verdict, "layernorm − " + verdict["b"])],
                figure=fig, facts={"tasks": P.tasks, "seeds": P.seeds})
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd

from .errors import LnftError

ENV = "LNFT_REPORT_DIR"
SUFFIX = ".verdicts.json"
FORMAT = 1
# The paper's claim each notebook tests: the index shows it even when the notebook failed or recorded nothing.
CLAIMS = {
    "01_change_analysis": "Fine-tuning changes the output LayerNorm more than any other component (mean |Δθ|).",
    "02_peft_comparison": "Training only the LayerNorms (plus the head) matches full fine-tuning and beats the "
                          "head alone.",
    "03_fisher_subsets": "A small Fisher-ranked subset of the LayerNorm elements loses little against training all "
                         "of them, and beats a random subset of the same size.",
}
COLUMNS = ["comparison", "task", "verdict", "estimate", "lo", "hi", "unit", "flagged", "flags", "summary", "margin",
           "interval", "seeds_needed", "seeds", "stopped", "level",
           # the examples a verdict rests on: dev, plus a held-out pool (lnft.pool, lnft.evidence), and the dev-only
           # estimate and interval beside a dev ∪ pool verdict
           "examples", "dev_examples", "pool_examples", "dev_estimate", "dev_lo", "dev_hi"]


def rows(table: pd.DataFrame, comparison, *, value: str = "diff", lo: str = "lo", hi: str = "hi",
         verdict: str = "verdict", unit: str = "points", flag: str = "undertrained", flags: str = "flags",
         summary: str = "summary") -> pd.DataFrame:
    """A verdict frame of ``lnft.stats`` (one row per task, ``task="average"`` included) in the recorded
    layout: ``comparison`` (a string, or a Series aligned with ``table``), task, verdict word, estimate with
    its interval, unit, whether a possibly undertrained run enters it (†) and why; and, where the table
    has them, the equivalence ``margin``, what the ``interval`` covers ("examples only" with one seed on a
    side) and ``seeds_needed`` (inconclusive rows: seeds per side that would decide); always ``seeds`` (per
    side: decide mode's stopping look, else the fewer of ``a_seeds``/``b_seeds``), ``stopped`` (why it stopped:
    ``lnft.decide.STOPS``; a table without decide mode: "fixed seeds") and ``level`` of its interval."""
    from .decide import FIXED
    missing = [c for c in ("task", value, lo, hi, verdict) if c not in table]
    if missing:
        raise LnftError(f"verdict table lacks column(s) {missing}; allowed: a frame of lnft.stats with "
                        f"task, {value}, {lo}, {hi}, {verdict}")
    out = pd.DataFrame({
        "comparison": (comparison.astype(str).to_numpy() if isinstance(comparison, pd.Series)
                       else [str(comparison)] * len(table)),
        "task": table["task"].astype(str).to_numpy(),
        "verdict": table[verdict].astype(str).to_numpy(),
        "estimate": table[value].astype(float).to_numpy(), "lo": table[lo].astype(float).to_numpy(),
        "hi": table[hi].astype(float).to_numpy(), "unit": unit,
        "flagged": table[flag].astype(bool).to_numpy() if flag in table else False,
        "flags": table[flags].fillna("").astype(str).to_numpy() if flags in table else "",
        "summary": table[summary].astype(str).to_numpy() if summary in table else "",
        "margin": table["margin"].astype(float).to_numpy() if "margin" in table else np.nan,
        "interval": table["interval"].fillna("").astype(str).to_numpy() if "interval" in table else "",
        "seeds_needed": table["seeds_needed"].fillna("").astype(str).to_numpy() if "seeds_needed" in table else "",
        "seeds": (table["seeds"].to_numpy() if "seeds" in table else
                  np.minimum(table["a_seeds"], table["b_seeds"]).to_numpy() if {"a_seeds", "b_seeds"} <= set(table)
                  else np.nan),
        "stopped": table["stopped"].fillna(FIXED).astype(str).to_numpy() if "stopped" in table else FIXED,
        "level": table["level"].astype(float).to_numpy() if "level" in table else 0.95,
        "examples": table["examples"].to_numpy() if "examples" in table else np.nan,
        "dev_examples": (table["dev_examples"] if "dev_examples" in table else
                         table["examples"] if "examples" in table else pd.Series(np.nan, table.index)).to_numpy(),
        "pool_examples": table["pool_examples"].to_numpy() if "pool_examples" in table else 0,
        **{f"dev_{k}": table[f"dev_{c}"].astype(float).to_numpy() if f"dev_{c}" in table else np.nan
           for k, c in (("estimate", "diff"), ("lo", "lo"), ("hi", "hi"))},
    }, index=range(len(table)))
    return out[COLUMNS]


def save(name: str, tables: list[pd.DataFrame], figure=None, facts: dict | None = None,
         claim: str | None = None, out: str | None = None) -> pd.DataFrame:
    """Record a notebook's verdicts (``rows`` frames) and key figure; returns the recorded frame (the
    notebook displays it: what the index will show). Writes only when ``out`` or ``$LNFT_REPORT_DIR`` names
    a folder; the JSON is written last and atomically, so a half-written record is never read."""
    frame = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
    out = out or os.environ.get(ENV)
    if not out:
        return frame
    if not os.path.isdir(out):
        raise LnftError(f"report folder {out!r} (${ENV}) does not exist; allowed: an existing directory")
    picture = None
    if figure is not None:
        picture = name + ".png"
        figure.savefig(os.path.join(out, picture), dpi=72, bbox_inches="tight")
    record = {"format": FORMAT, "notebook": name, "claim": claim or CLAIMS.get(name, ""), "figure": picture,
              "facts": _plain(facts or {}), "verdicts": [_plain(r) for r in frame.to_dict("records")]}
    path = os.path.join(out, name + SUFFIX)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1, ensure_ascii=False, allow_nan=False)
    os.replace(tmp, path)
    return frame


def load(folder: str, name: str) -> dict | None:
    """A notebook's record in ``folder``, or None when there is none (not run, failed before its last cell)
    or it cannot be read."""
    path = os.path.join(folder, name + SUFFIX)
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("verdicts"), list) else None


def _plain(value):
    """JSON-safe: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------ reading the records back
def numbers(v: dict) -> str:
    """``+0.2 (−8.3 to +8.9)`` (points) or ``1.03× (0.98× to 1.08×)`` (ratios): a recorded estimate with its
    95 % interval, as the index and the README print it; ``(… , examples only)`` when the interval leaves
    training noise out (one seed on a side), ``(no interval)`` when there is none."""
    from . import stats

    def number(k):
        return isinstance(v.get(k), (int, float)) and not isinstance(v.get(k), bool)

    if not number("estimate"):
        return ""
    f = (lambda x: f"{x:.2f}×") if v.get("unit") == "×" else (lambda x: f"{x:+.1f}".replace("-", "−"))
    if not (number("lo") and number("hi")):
        return f"{f(v['estimate'])} (no interval)"
    only = ", examples only" if v.get("interval") == "examples only" else ""
    level = v.get("level")
    at = f"{stats.level_text(level)}: " if isinstance(level, (int, float)) and abs(level - stats.LEVEL) > 1e-9 else ""
    return f"{f(v['estimate'])} ({at}{f(v['lo'])} to {f(v['hi'])}{only})"


def seeds_text(v: dict) -> str:
    """``3 seeds, decided`` / ``6 seeds, maximum reached``: how many seeds per side a verdict used and why it
    stopped (decide mode, ``lnft.decide``)."""
    seeds, stopped = v.get("seeds"), v.get("stopped")
    if not isinstance(seeds, (int, float)) or isinstance(seeds, bool):
        return ""
    examples = examples_text(v)
    return (f"{int(seeds)} seed{'s' if seeds != 1 else ''}" + (f", {examples}" if examples else "")
            + (f", {stopped}" if stopped else ""))


def examples_text(v: dict) -> str:
    """``872 dev examples``, or with a held-out pool ``2,372 examples: 872 dev + 1,500 pool; dev alone −2.4 (−5.5 to
    +0.7)``: how many examples a recorded verdict rests on, and the dev-only estimate beside a dev ∪ pool one."""
    def count(k):
        x = v.get(k)
        return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else 0

    total, pool = count("examples"), count("pool_examples")
    if not total:
        return ""
    if not pool:
        return f"{total:,} dev examples"
    text = f"{total:,} examples: {count('dev_examples'):,} dev + {pool:,} pool"
    alone = numbers({"estimate": v.get("dev_estimate"), "lo": v.get("dev_lo"), "hi": v.get("dev_hi"),
                     "unit": v.get("unit"), "level": v.get("level")})
    return text + (f"; dev alone {alone}" if alone else "")


def margin_label(verdicts: list[dict], comparison: str) -> str:
    """`` (±1)``: the equivalence margin of a comparison's recorded rows, when they have one."""
    margins = {v.get("margin") for v in verdicts if str(v.get("comparison", "")) == comparison
               and isinstance(v.get("margin"), (int, float))}
    return f" (±{margins.pop():g})" if len(margins) == 1 else ""


def grid(verdicts: list[dict]) -> tuple[list[str], list[str], dict]:
    """Comparisons (rows, in recorded order), tasks (columns, ``average`` last) and the cell of each."""
    comparisons = list(dict.fromkeys(str(v.get("comparison", "")) for v in verdicts))
    tasks = list(dict.fromkeys(str(v.get("task", "")) for v in verdicts))
    tasks = [t for t in tasks if t != "average"] + (["average"] if "average" in tasks else [])
    return comparisons, tasks, {(str(v.get("comparison", "")), str(v.get("task", ""))): v for v in verdicts}


def markdown(folder: str, link: str = "", state: dict | None = None) -> str:
    """The README's results block from a reports folder: run facts, then per claim a table of verdicts
    (comparisons × tasks) read from ``<notebook>.verdicts.json``; ``link``: the folder as seen from the
    README (for links to the reports). A missing record says so."""
    state = state if state is not None else read_state(folder)
    facts, runs = state.get("facts", {}), {r["name"]: r for r in state.get("notebooks", [])}
    commits = sorted({r.get("commit", "") or "unknown" for r in runs.values()}) or ["unknown"]
    times = ", ".join(f"{n[:2]}: {r.get('seconds', 0):.0f} s" for n, r in sorted(runs.items()))
    out = [f"Profile `{facts.get('profile', '?')}`, made {facts.get('made', '?')} at commit "
           f"`{', '.join(commits)}` on {facts.get('platform version', '?')}, torch {facts.get('torch version', '?')}: "
           f"{sum(r.get('seconds', 0) for r in runs.values()):.0f} s ({times}). Generated by "
           f"`scripts/readme_results.py` from `{link or folder}/*.verdicts.json`: every cell is a notebook's "
           "verdict with its difference and interval (95 %, or the look's level in decide mode), the seeds per side "
           "it used, the examples it rests on (dev, or dev ∪ a held-out pool with the dev-only estimate beside it) "
           "and why it stopped (decided / maximum reached / cannot decide within the maximum / fixed "
           "seeds); † = a possibly undertrained run enters it."]
    for number, name in enumerate(sorted(set(CLAIMS) | set(runs)), 1):
        run, record = runs.get(name), load(folder, name)
        claim = (record or {}).get("claim") or CLAIMS.get(name, "")
        page = f"[report]({link}/{name}.html)" if run and run.get("html") and link else name
        out.append(f"\n**Claim {number}.** {claim} ({page})\n")
        stale = run is not None and run.get("status") != "ok" and run.get("previous") and record is not None
        if run is None:
            out.append("Not run: no verdict.")
        elif stale:
            how = "was interrupted" if run.get("status") == "interrupted" else "failed"
            out.append(f"The latest run {how} ({run.get('error') or run.get('status')}). **Stale:** the verdicts below "
                       f"are the previous good report's (commit `{run['previous'].get('commit') or '?'}`).\n")
        elif run.get("status") != "ok":
            out.append(f"The notebook failed, so this claim has no verdict: {run.get('error') or run.get('status')}.")
        if run is None or (run.get("status") != "ok" and not stale):
            continue
        if record is None:
            out.append("The notebook recorded no verdicts.")
        else:
            comparisons, tasks, cells = grid(record["verdicts"])
            out.append("| comparison | " + " | ".join(tasks) + " |")
            out.append("|---|" + "---|" * len(tasks))
            for c in comparisons:
                row = []
                for t in tasks:
                    v = cells.get((c, t))
                    needed = f"; {v['seeds_needed']}" if v is not None and v.get("seeds_needed") else ""
                    used = f" [{seeds_text(v)}]" if v is not None and seeds_text(v) else ""
                    row.append("—" if v is None else
                               f"*{v.get('verdict', '')}*{' †' if v.get('flagged') else ''} {numbers(v)}{used}{needed}"
                               .strip())
                label = c + margin_label(record["verdicts"], c)
                out.append(f"| {label} | " + " | ".join(x.replace("|", "\\|") for x in row) + " |")
    return "\n".join(out) + "\n"


def read_state(folder: str) -> dict:
    """``reports.json`` of a reports folder as ``{"facts": ..., "notebooks": [...]}`` (older folders hold a
    plain list); empty when absent or unreadable."""
    try:
        with open(os.path.join(folder, "reports.json"), encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        return {}
    return {"facts": {}, "notebooks": state} if isinstance(state, list) else state
