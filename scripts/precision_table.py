"""fp32 against bf16 autocast on the quick settings: dev scores, paired verdicts and whole-run times.

    python scripts/precision_table.py [--runs DIR] [--tasks sst2 stsb] [--methods ...] [--seeds 0 1 2]
                                      [--table-only] [--json FILE]

Trains (or reads back from the run store ``--runs``, default ``.cache/precision-runs``) every method of
``--methods`` on every task and seed twice, ``precision="fp32"`` and ``precision="bf16"``, with the quick
profile's settings (lnft.profiles ``quick``: 500 training examples, 400 dev, batch 32, evaluate every 24
steps, patience 3, full 6 epochs at 1e-4, the others 12 epochs at 1e-2) on the device ``auto`` picks, and
prints a Markdown table: seed mean ± std of the GLUE dev score per precision, and bf16 − fp32 as the paired
verdict of ``lnft.stats.compare`` (``on="precision"``: both precisions were scored on the same dev examples;
per task and averaged over the tasks), and how many seeds chose the same best step in both precisions.
The median training seconds per precision go to ``--json`` only: on a shared machine they measure the
load more than the precision (``cpu_bf16_step_speedup_<method>`` in benchmarks/precision.py measures speed).

``--table-only`` trains nothing: it reads every run of the store whose config equals a planned one
(whatever code made it; the newest if several) and builds the table from them, so the verdicts can be
recomputed with another ``lnft.stats`` without retraining. The runs are ordered method by method
(layernorm, full, head, bitfit, lora), so an interrupted sweep leaves whole methods.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lnft import profiles, stats, sweep  # noqa: E402
from lnft.models import cpu_bf16_capability, resolve_device  # noqa: E402
from lnft.store import RunStore  # noqa: E402

METHODS = ["layernorm", "full", "head", "bitfit", "lora"]
RATES = {"full": 1e-4, "default": 1e-2}
PRECISIONS = ["fp32", "bf16"]


def planned(tasks, methods, seeds):
    """The configs, method by method: every task, seed and precision of one method before the next."""
    P = profiles.resolve("02_peft_comparison", "quick")
    return [P.run_config(task=task, method=method, seed=seed, precision=precision,
                         lr=RATES.get(method, RATES["default"]))
            for method in methods for seed in seeds for task in tasks for precision in PRECISIONS]


def from_store(configs, store: RunStore):
    """The stored run of each config (equal validated config, any code; the newest), skipping missing ones."""
    wanted = [c.validate() for c in configs]
    found = {}
    for r in store.results():
        for cfg in wanted:
            if r.config == cfg and (cfg not in found or r.created > found[cfg].created):
                found[cfg] = r
    return [found[c] for c in wanted if c in found]


def table(results) -> tuple[str, list[dict]]:
    import pandas as pd

    frame = pd.DataFrame([{"task": r.config.task, "method": r.config.method, "seed": r.config.seed,
                           "precision": r.config.precision, "score": r.metrics["score"], "steps": r.steps,
                           "best_step": r.best_step, "train_seconds": r.train_seconds, "run_id": r.run_id}
                          for r in results])
    verdicts = stats.compare(results, "bf16", "fp32", on="precision", by=("task", "method"))
    rows, out = [], ["| task | method | seeds | fp32 dev | bf16 dev | bf16 − fp32 (95 % interval) | same best step |",
                     "|---|---|---|---|---|---|---|"]
    order = {m: i for i, m in enumerate(METHODS)}
    verdicts = verdicts.assign(_t=verdicts["task"].map(lambda t: (t == "average", t)),
                               _m=verdicts["method"].map(lambda m: order.get(m, 99))).sort_values(["_t", "_m"])
    for _, v in verdicts.iterrows():
        part = frame[frame["method"] == v["method"]]
        if v["task"] != "average":
            part = part[part["task"] == v["task"]]
        a, b = part[part["precision"] == "fp32"], part[part["precision"] == "bf16"]
        paired = a.merge(b, on=["task", "seed"], suffixes=("_fp32", "_bf16"))
        same = int((paired["best_step_fp32"] == paired["best_step_bf16"]).sum())
        ms = lambda s: f"{s.mean():.2f} ± {s.std(ddof=1):.2f}" if v["task"] != "average" and len(s) > 1 \
            else f"{s.mean():.2f}"  # noqa: E731
        secs_a, secs_b = statistics.median(a["train_seconds"]), statistics.median(b["train_seconds"])
        row = {"task": v["task"], "method": v["method"], "seeds": int(v["a_seeds"]), "fp32": float(v["b_score"]),
               "bf16": float(v["a_score"]), "diff": float(v["diff"]), "lo": float(v["lo"]), "hi": float(v["hi"]),
               "verdict": v["verdict"], "same_best_step": f"{same}/{len(paired)}",
               "fp32_train_seconds": secs_a, "bf16_train_seconds": secs_b}
        rows.append(row)
        out.append(f"| {v['task']} | {v['method']} | {row['seeds']} | {ms(a['score'])} | {ms(b['score'])} | "
                   f"*{v['verdict']}* {v['diff']:+.2f} ({v['lo']:+.2f} to {v['hi']:+.2f}) | {row['same_best_step']} |")
    return "\n".join(out), rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=os.path.join(ROOT, ".cache", "precision-runs"))
    p.add_argument("--tasks", nargs="+", default=["sst2", "stsb"])
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--table-only", action="store_true", help="train nothing; read the matching stored runs")
    p.add_argument("--json", help="also write the rows and the machine to this JSON file")
    args = p.parse_args(argv)
    store = RunStore(args.runs)
    configs = planned(args.tasks, args.methods, args.seeds)
    if args.table_only:
        results = from_store(configs, store)
    else:
        results = []
        for i in range(0, len(configs), 2):  # one fp32/bf16 pair at a time: an interruption leaves pairs
            results += sweep.run_all(configs[i:i + 2], store, engine="local", progress=False, allow_failures=True)
            print(f"[{len(results)}/{len(configs)}] {configs[i].task} {configs[i].method} seed {configs[i].seed}",
                  file=sys.stderr, flush=True)
    text, rows = table(results)
    import torch

    machine = (f"device {resolve_device('auto').type}, CPU bf16 capability {cpu_bf16_capability()}, "
               f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(results)} runs; "
               f"lnft.stats.compare with {stats.REPLICATES} replicates")
    print(text)
    print(f"\n{machine}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
