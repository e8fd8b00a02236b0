"""What the committed results ledger proves: the verdicts re-rendered from it, and its runs retrained.

- ``rerender``: execute a profile's notebooks with every run served from the ledger and training forbidden
  (``$LNFT_LEDGER_ONLY``), into a scratch folder, with an empty run store (no weights anywhere);
- ``compare_verdicts`` / ``compare_blocks``: the re-rendered verdicts against the committed
  ``*.verdicts.json`` (words, seeds, stops exactly; numbers to ``TOLERANCE``) and the README block's tables;
- ``reproduce``: retrain a seeded sample of ledger runs (not stored) and compare predictions and metrics with
  the recorded ones: identical where device, precision and processor match, otherwise a table of differences.
``lnft runs rerender`` and ``lnft runs reproduce`` run them; tests/test_ledger_check.py runs the first on every
committed profile whose ledger holds its runs.
"""
from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import pandas as pd

from .errors import LnftError

TOLERANCE = 1e-6  # relative, for estimates and interval ends (another BLAS kernel may round differently)
EXACT_KEYS = ("comparison", "task", "verdict", "unit", "flagged", "seeds", "stopped", "interval")
NUMBER_KEYS = ("estimate", "lo", "hi", "margin", "level")


def rerender(profile: str, ledger: str, *, out: str | None = None, notebooks_dir: str = "notebooks",
             names: list[str] | None = None, log=print) -> str:
    """Re-run the notebooks of ``profile`` from ``ledger`` alone (training forbidden, an empty run store);
    returns the reports folder it wrote (``<out>/<profile>``)."""
    from .reports import run_reports
    from .store.ledger import ENV, ONLY_ENV

    if not os.path.isdir(ledger):
        raise LnftError(f"ledger {ledger!r} does not exist; allowed: a ledger folder")
    out = out or tempfile.mkdtemp(prefix="lnft-rerender-")
    runs = tempfile.mkdtemp(prefix="lnft-rerender-runs-")
    saved = {k: os.environ.get(k) for k in (ENV, ONLY_ENV, "LNFT_RUNS")}
    os.environ.update({ENV: os.path.abspath(ledger), ONLY_ENV: "1", "LNFT_RUNS": runs})
    try:
        run_reports(profile, names, out, notebooks_dir, runs, log=log)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return os.path.join(out, profile)


def compare_verdicts(committed: str, rerendered: str, names: list[str] | None = None) -> list[str]:
    """Differences between two reports folders' recorded verdicts (empty: the same)."""
    from .record import CLAIMS, load

    problems = []
    for name in names or sorted(CLAIMS):
        a, b = load(committed, name), load(rerendered, name)
        if a is None and b is None:
            continue
        if a is None or b is None:
            problems.append(f"{name}: recorded in {'the re-render' if a is None else 'the committed reports'} only")
            continue
        if len(a["verdicts"]) != len(b["verdicts"]):
            problems.append(f"{name}: {len(a['verdicts'])} verdicts committed, {len(b['verdicts'])} re-rendered")
            continue
        for i, (x, y) in enumerate(zip(a["verdicts"], b["verdicts"])):
            for key in EXACT_KEYS:
                if x.get(key) != y.get(key):
                    problems.append(f"{name} row {i} ({x.get('comparison')}, {x.get('task')}): {key} "
                                    f"{x.get(key)!r} committed, {y.get(key)!r} re-rendered")
            for key in NUMBER_KEYS:
                u, v = x.get(key), y.get(key)
                if (u is None) != (v is None) or (u is not None and not math.isclose(u, v, rel_tol=TOLERANCE,
                                                                                     abs_tol=TOLERANCE)):
                    problems.append(f"{name} row {i} ({x.get('comparison')}, {x.get('task')}): {key} {u!r} "
                                    f"committed, {v!r} re-rendered")
    return problems


def compare_blocks(block: str, rerendered: str, link: str = "") -> list[str]:
    """The committed README block's claim tables against the ones the re-rendered folder gives (its first
    lines, when and how long, and a stale mark aside)."""
    from .record import markdown

    def tables(text):
        return [line for line in text.splitlines() if line.startswith("|")]

    wanted = tables(markdown(rerendered, link))
    have = tables(block)
    if wanted == have:
        return []
    differ = [f"committed: {a}\n  re-rendered: {b}" for a, b in zip(have, wanted) if a != b]
    return [f"the README block's tables differ from the re-render ({len(have)} vs {len(wanted)} lines)"] + differ[:5]


def missing_runs(profile: str, ledger, notebooks=None) -> tuple[int, list]:
    """(runs of the profile known before it runs, the Planned ones the ledger lacks). Notebook 3's masked runs
    are known only once its Fishers exist: not counted."""
    from .experiments import NOTEBOOKS
    from .plan import notebook_configs

    known, missing, seen = 0, [], set()
    for nb in notebooks or NOTEBOOKS:
        for p in notebook_configs(nb, profile):
            if not p.known:
                continue
            run_id = p.config.run_id()
            if run_id in seen:
                continue
            seen.add(run_id)
            known += 1
            if not ledger.has(run_id):
                missing.append(p)
    return known, missing


def reproduce(ledger, sample: int, seed: int = 0, *, progress: bool = False, log=print) -> pd.DataFrame:
    """Retrain ``sample`` runs drawn (seeded) from the ledger and compare them with their records: one row per
    run (metrics recorded and now, share of identical predictions, largest difference, whether the device,
    precision and processor match, so that identical results are expected)."""
    from .store.ledger import environment
    from .train import finetune

    run_ids = ledger.run_ids()
    if sample < 1:
        raise LnftError(f"invalid --sample {sample}; allowed: an integer >= 1")
    if not run_ids:
        raise LnftError(f"the ledger {ledger.root!r} holds no runs; allowed: a ledger with runs")
    chosen = sorted(np.random.default_rng(seed).choice(run_ids, size=min(sample, len(run_ids)), replace=False))
    here = environment()
    rows = []
    for run_id in chosen:
        recorded = ledger.load(run_id)
        if recorded is None:
            rows.append({"run_id": run_id, "outcome": "broken record"})
            continue
        cfg = recorded.config
        now_id = cfg.run_id()
        if now_id != run_id:
            rows.append({"run_id": run_id, "task": cfg.task, "method": cfg.method, "seed": cfg.seed,
                         "outcome": f"not reproducible here: this code, data or model gives run id {now_id}"})
            continue
        log(f"[lnft runs reproduce] {run_id} ...")
        output = finetune(cfg, progress=progress, run_id=run_id)
        then = recorded.__dict__.get("ledger", {}).get("environment", {})
        same = (recorded.device == output.result.device and then.get("cpu") == here.get("cpu")
                and then.get("platform") == here.get("platform"))
        old, new = recorded.predictions(), output.predictions
        shares, largest = [], 0.0
        for split, p in old.items():
            q = new.get(split)
            if q is None or len(q) != len(p) or q.digest != p.digest:
                shares.append(float("nan"))
                continue
            shares.append(float(np.mean(np.asarray(q.preds) == np.asarray(p.preds))))
            largest = max(largest, float(np.max(np.abs(np.asarray(q.preds, float) - np.asarray(p.preds, float)))))
        identical = all(s == 1.0 for s in shares) and recorded.metrics == output.result.metrics
        rows.append({"run_id": run_id, "task": cfg.task, "method": cfg.method, "seed": cfg.seed,
                     "precision": cfg.precision, "same machine kind": same,
                     "score recorded": recorded.metrics.get("score"), "score now": output.result.metrics.get("score"),
                     "predictions identical": min(shares) if shares else float("nan"), "largest |Δ|": largest,
                     "outcome": "identical" if identical else ("DIFFERS (identical expected)" if same else "differs")})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ command line (lnft runs ...)
def add_actions(actions, parser_class) -> None:
    """``lnft runs rerender``, ``lnft runs reproduce`` and ``lnft runs record`` (called by ``lnft.cli``)."""
    a = actions.add_parser("reproduce", help="retrain a seeded sample of ledger runs and compare predictions and "
                           "metrics with the recorded ones (exact where device, precision and processor match)")
    a.add_argument("--ledger", default=None, help="the ledger (default: $LNFT_LEDGER or ./ledger)")
    a.add_argument("--sample", type=int, default=3, metavar="N")
    a.add_argument("--seed", type=int, default=0)
    a = actions.add_parser("rerender", help="re-run a profile's notebooks from the ledger alone (no training) and "
                           "compare the verdicts with the committed reports")
    a.add_argument("--ledger", default=None, help="the ledger (default: $LNFT_LEDGER or ./ledger)")
    a.add_argument("--profile", default="standard")
    a.add_argument("--reports", default="reports", help="the committed reports folder (a folder per profile inside)")
    a.add_argument("--notebooks-dir", default="notebooks")
    a = actions.add_parser("record", help="record every readable run of the run store into the ledger (what it "
                           "lacks; derived data computed from the weights)")
    a.add_argument("--runs", default=None, help="runs directory (default: $LNFT_RUNS or ./runs)")
    a.add_argument("--ledger", default=None, help="the ledger (default: $LNFT_LEDGER or ./ledger)")


ACTIONS = ("reproduce", "rerender", "record")


def ledger_of(value: str | None):
    from .store.ledger import ENV, Ledger

    path = value or os.environ.get(ENV) or "ledger"
    return Ledger(path)


def cmd(args) -> int:
    ledger = ledger_of(args.ledger)
    if args.action == "record":
        from .store import RunStore

        store = RunStore(args.runs, ledger=ledger)
        added = sum(store.record_in_ledger(r) for r in store.results())
        print(f"{added} run(s) recorded in {ledger.root}; it holds {len(ledger.run_ids())} "
              f"({ledger.size() / 1e6:.2f} MB)")
        return 0
    if args.action == "reproduce":
        table = reproduce(ledger, args.sample, args.seed)
        with pd.option_context("display.width", 200, "display.max_columns", None):
            print(table.to_string(index=False))
        return 1 if table["outcome"].astype(str).str.startswith(("DIFFERS", "broken")).any() else 0
    folder = rerender(args.profile, ledger.root, notebooks_dir=args.notebooks_dir)
    problems = compare_verdicts(os.path.join(args.reports, args.profile), folder)
    for p in problems:
        print(f"lnft runs rerender: {p}")
    print(f"lnft runs rerender: {'the verdicts differ' if problems else 'every verdict is the committed one'} "
          f"({folder})")
    return 1 if problems else 0
