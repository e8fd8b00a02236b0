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
FOREST = "verdicts.png"  # the forest plot of a folder's verdicts (lnft.forest writes it; the README links it)
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
           "interval", "seeds_needed", "seeds", "stopped", "level", "eq_lo", "eq_hi",
           "bound", "bound_level", "bound_text", "margin_reason",
           # the examples a verdict rests on: dev, plus a held-out pool (lnft.pool, lnft.evidence), and the dev-only
           # estimate and interval beside a dev ∪ pool verdict
           "examples", "dev_examples", "pool_examples", "dev_estimate", "dev_lo", "dev_hi"]
# Said once with every results table (issue 33, item 6): no correction over the report's verdicts.
STANDS_ALONE = ("Each verdict stands alone: its error rate (5 %, or 2.5 % for a one-sided bound) holds for that "
                "comparison, not for the report's verdicts together; with about 18 verdicts, one false word among "
                "them is not unlikely. For family-wise control, apply Holm within a claim (lnft.bounds.holm on the "
                "tables' p-values).")


def rows(table: pd.DataFrame, comparison, *, value: str = "diff", lo: str = "lo", hi: str = "hi",
         verdict: str = "verdict", unit: str = "points", flag: str = "undertrained", flags: str = "flags",
         summary: str = "summary") -> pd.DataFrame:
    """A verdict frame of ``lnft.stats`` (one row per task, ``task="average"`` included) in the recorded
    layout: ``comparison`` (a string, or a Series aligned with ``table``), task, verdict word, estimate with
    its interval, unit, whether a possibly undertrained run enters it (†) and why; and, where the table
    has them, the equivalence ``margin``, what the ``interval`` covers ("examples only" with one seed on a
    side) and ``seeds_needed`` (inconclusive rows: seeds per side that would decide); always ``seeds`` (per
    side: decide mode's stopping look, else the fewer of ``a_seeds``/``b_seeds``), ``stopped`` (why it stopped:
    ``lnft.decide.STOPS``; a table without decide mode: "fixed seeds") and ``level`` of its interval; where the
    table has them, the one-sided ``bound`` it establishes (at ``bound_level``), said in ``bound_text``, and
    ``margin_reason`` (where the margin came from)."""
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
        # the equivalence (TOST) interval behind an "equivalent" word, so that the word can be checked
        "eq_lo": table["eq_lo"].astype(float).to_numpy() if "eq_lo" in table else np.nan,
        "eq_hi": table["eq_hi"].astype(float).to_numpy() if "eq_hi" in table else np.nan,
        "bound": table["bound"].astype(float).to_numpy() if "bound" in table else np.nan,
        "bound_level": table["bound_level"].astype(float).to_numpy() if "bound_level" in table else np.nan,
        "bound_text": table["bound_text"].fillna("").astype(str).to_numpy() if "bound_text" in table else "",
        "margin_reason": table["margin_reason"].fillna("").astype(str).to_numpy() if "margin_reason" in table else "",
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


def read(folder: str, name: str) -> dict | None:
    """A notebook's record in ``folder``, checked: None when there is none; a one-line LnftError naming the
    file when it exists but cannot be read, is not a record, or holds a verdict word its own interval does
    not support (``verdict_problem``). The README block and the index are made from this, never from a
    record that would silently show "no verdicts" or a word the numbers contradict."""
    path = os.path.join(folder, name + SUFFIX)
    if not os.path.lexists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0][:200]
        raise LnftError(f"verdicts file {path} is unreadable ({type(exc).__name__}: {why}); allowed: the JSON "
                        f"lnft.record.save writes (rerun the notebook: lnft reports)") from None
    if not isinstance(record, dict) or not isinstance(record.get("verdicts"), list) or not all(
            isinstance(v, dict) for v in record["verdicts"]):
        raise LnftError(f"verdicts file {path} is not a verdict record (no list of verdicts); allowed: the JSON "
                        f"lnft.record.save writes (rerun the notebook: lnft reports)")
    for i, v in enumerate(record["verdicts"]):
        problem = verdict_problem(v)
        if problem:
            raise LnftError(f"verdicts file {path}: verdict {i + 1} ({v.get('comparison', '?')}, {v.get('task', '?')}) "
                            f"{problem}")
    return record


RANKING = ("largest", "not largest")  # lnft.stats.LEAD_WORDS: a ranking's words (no equivalence margin)


def verdict_problem(v: dict) -> str:
    """What is wrong with one recorded verdict ("" when nothing): its word must be one of ``lnft.stats``'
    vocabulary and agree with its own interval at its own level (``lo``, ``hi``: the interval at ``level``;
    ``unit`` "×": a ratio, compared with 1 instead of 0):

    * better / largest: the interval lies above 0 (1); worse / not largest: below;
    * equivalent within ±m point: m is the row's ``margin``, the interval does not exclude 0 (better / worse
      come first) and the equivalence interval (``eq_lo``, ``eq_hi``) lies inside ±m (records made before it
      was recorded: the estimate does);
    * inconclusive (a points comparison): the interval does not exclude 0 (unless it has no width: an
      estimate without variance is never better / worse) and is not equivalent; a ranking's
      inconclusive may exclude 1 (largest needs a lead over every component, not only the runner-up);
    * non-inferior within m point: the interval does not exclude 0 and is not equivalent, and its lower end
      (the one-sided bound) lies above −m;
    * needs ≥ 2 seeds: fewer than 2 seeds on a side."""
    from . import bounds, stats

    def num(key):
        x = v.get(key)
        ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
        return float(x) if ok else None

    word, level = v.get("verdict"), v.get("level", stats.LEVEL)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.5 < level < 1:
        return f"has level {level!r}; allowed: a number between 0.5 and 1"
    words = [stats.BETTER, stats.WORSE, "equivalent within ±m point", "non-inferior within m point",
             stats.INCONCLUSIVE, stats.NEEDS_SEEDS, *RANKING]
    equivalent = isinstance(word, str) and word.startswith("equivalent within ±") and word.endswith(" point")
    noninferior = isinstance(word, str) and word.startswith(bounds.NONINFERIOR_PREFIX) and word.endswith(" point")
    if not isinstance(word, str) or not (word in words or equivalent or noninferior):
        return f"has verdict word {word!r}; allowed: {', '.join(words)}"
    seeds = num("seeds")
    if word == stats.NEEDS_SEEDS:
        return f"says {word!r} with {seeds:g} seeds per side" if seeds is not None and seeds >= 2 else ""
    lo, hi, est = num("lo"), num("hi"), num("estimate")
    ref = 1.0 if v.get("unit") == "×" else 0.0
    if lo is None or hi is None:  # a ranking's ratio interval may be unbounded (Fieller): its word is the diff's
        return "" if word == stats.INCONCLUSIVE or (word in RANKING and ref == 1.0) else \
            f"says {word!r} without an interval (lo {v.get('lo')!r}, hi {v.get('hi')!r}); allowed: inconclusive"
    interval = f"its {stats.level_text(level)} interval [{lo:g}, {hi:g}]"
    if lo > hi:
        return f"has {interval}: lo above hi"
    if est is not None and not lo - 1e-9 * max(1.0, abs(est)) <= est <= hi + 1e-9 * max(1.0, abs(est)):
        return f"has estimate {est:g} outside {interval}"
    if word in (stats.BETTER, "largest"):
        return "" if lo > ref else f"says {word!r} but {interval} does not lie above {ref:g}"
    if word in (stats.WORSE, "not largest"):
        return "" if hi < ref else f"says {word!r} but {interval} does not lie below {ref:g}"
    margin, eq_lo, eq_hi = num("margin"), num("eq_lo"), num("eq_hi")
    inside = None  # whether the equivalence interval lies inside ±margin (None: cannot tell)
    if margin is not None and ref == 0.0:
        if eq_lo is not None and eq_hi is not None:
            if not lo - 1e-9 <= eq_lo <= eq_hi <= hi + 1e-9:
                return f"has an equivalence interval [{eq_lo:g}, {eq_hi:g}] outside {interval}"
            inside = -margin <= eq_lo and eq_hi <= margin
        elif equivalent and est is not None:
            inside = -margin <= est <= margin
    if equivalent:
        if margin is None or ref != 0.0 or word != stats.equivalent_word(margin):
            return f"says {word!r} but its margin is {v.get('margin')!r}"
        if lo > 0 or hi < 0:
            return f"says {word!r} but {interval} excludes 0 (better / worse)"
        return "" if inside else f"says {word!r} but its equivalence interval does not lie inside ±{margin:g}"
    if noninferior:
        if margin is None or ref != 0.0 or word != bounds.noninferior_word(margin):
            return f"says {word!r} but its margin is {v.get('margin')!r}"
        if lo > 0 or hi < 0:
            return f"says {word!r} but {interval} excludes 0 (better / worse)"
        if inside:
            return f"says {word!r} but its equivalence interval lies inside ±{margin:g}: {stats.equivalent_word(margin)}"
        return "" if lo > -margin else f"says {word!r} but {interval} does not lie above −{margin:g}"
    # inconclusive
    # a ranking (is a component larger than every other? lnft.lead, lnft.revert) shows the interval against the
    # largest other, but its word needs a lead over every component (or a Holm-corrected deficit): its
    # inconclusive may exclude 0
    ranking = "largest other" in str(v.get("comparison", ""))
    if word == stats.INCONCLUSIVE and ref == 0.0 and not ranking:
        if (lo > 0 or hi < 0) and lo < hi:
            return f"says {word!r} but {interval} excludes 0: {stats.BETTER if lo > 0 else stats.WORSE}"
        if inside and margin is not None and lo <= 0 <= hi:
            return f"says {word!r} but its equivalence interval lies inside ±{margin:g}: {stats.equivalent_word(margin)}"
        # records made before the word existed carry no bound: their inconclusive stands
        if margin is not None and num("bound") is not None and lo > -margin and lo <= 0 <= hi and lo < hi:
            return f"says {word!r} but {interval} lies above −{margin:g}: {bounds.noninferior_word(margin)}"
    return ""


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
    """`` (±1)``: the equivalence margin of a comparison's recorded rows, when they have one; margins that differ
    by task are shown in each cell instead (``bound_label``)."""
    margins = {v.get("margin") for v in verdicts if str(v.get("comparison", "")) == comparison
               and isinstance(v.get("margin"), (int, float))}
    return f" (±{margins.pop():.3g})" if len(margins) == 1 else ""


def bound_label(v: dict, per_cell_margin: bool = False) -> str:
    """``bound −5.5 (98.7 %, one-sided)``: what a recorded verdict establishes whatever the margin (a − b is at
    least this); with ``per_cell_margin`` also ``, margin 1.4``."""
    bound, level = v.get("bound"), v.get("bound_level")
    if not isinstance(bound, (int, float)) or isinstance(bound, bool) or not isinstance(level, (int, float)):
        return ""
    margin = v.get("margin")
    extra = f", margin {margin:.3g}" if per_cell_margin and isinstance(margin, (int, float)) else ""
    return f"bound {f'{bound:+.1f}'.replace('-', '−')} ({round(level * 100, 2):g} %, one-sided{extra})"


def margin_reasons(verdicts: list[dict]) -> list[str]:
    """The distinct reasons of a record's margins, in order."""
    return list(dict.fromkeys(str(v["margin_reason"]) for v in verdicts if v.get("margin_reason")))


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
           "verdict — its word, the difference with its interval (95 %, or the look's level in decide mode) and the "
           "one-sided *bound* the data establish whatever the margin (the comparison's first method is at least "
           "that many points above the second; *non-inferior within m* where it clears −m); † = a possibly "
           "undertrained run enters it. The cell's note [n], under its table, gives the seeds per side it used, the "
           "examples it rests on (dev, or dev ∪ a held-out pool with the dev-only estimate beside it), why it "
           "stopped (decided / maximum reached / futile / fixed seeds) and, where it could not decide, the seeds "
           "that would. " + STANDS_ALONE]
    if link and os.path.exists(os.path.join(folder, FOREST)):
        out.append(f"\n![Forest plot: every verdict's estimate and interval, 0 and the margins marked]({link}/{FOREST})")
    for number, name in enumerate(sorted(set(CLAIMS) | set(runs)), 1):
        run, record = runs.get(name), read(folder, name)
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
            notes = []
            for c in comparisons:
                row = []
                for t in tasks:
                    v = cells.get((c, t))
                    if v is None:
                        row.append("—")
                        continue
                    label = margin_label(record["verdicts"], c)
                    bound = f"; {bound_label(v, not label)}" if bound_label(v) else ""
                    detail = "; ".join(x for x in (seeds_text(v), str(v.get("seeds_needed") or "")) if x)
                    if detail:
                        notes.append(f"{t}, {c}: {detail}")
                    mark = f" [{len(notes)}]" if detail else ""
                    row.append(f"*{v.get('verdict', '')}*{' †' if v.get('flagged') else ''} {numbers(v)}{bound}"
                               f"{mark}".strip())
                label = c + margin_label(record["verdicts"], c)
                out.append("| " + " | ".join(x.replace("|", "\\|") for x in (label, *row)) + " |")
            if notes:
                out.append("\n" + "\n".join(f"- [{i}] {n}" for i, n in enumerate(notes, 1)))
            reasons = margin_reasons(record["verdicts"])
            if reasons:
                out.append("\nMargin: " + "; ".join(reasons) + ".")
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
