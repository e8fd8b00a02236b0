"""lnft benchmarks: measured side by side in one run, reported as medians and ratios.

    python benchmarks/run.py [--quick|--tiny] [--device cpu|cuda] [--repeats N] [--only STAGE ...]  (make bench)

1. training throughput (whole runs): lnft's ``finetune`` in its resolved precision (``--precision``, default
   auto: bf16 where the CPU computes it natively) vs a Hugging Face ``Trainer`` set up like transformers'
   ``run_glue.py`` defaults (pad every example to 128, random batches, fp32) and vs a tuned ``Trainer``
   (per-batch padding with DataCollatorWithPadding, ``train_sampling_strategy="group_by_length"``, and
   lnft's precision: ``TrainingArguments(bf16=True, use_cpu=True)`` on CPU); same model, examples, epochs,
   batch size, learning rate, seed, no warm-up and no weight decay (run_glue's defaults) — the three
   recipes' runs interleaved, one process, one machine; the table gives the date and the CPU model;
2. per-method cost: seconds per training step (interleaved, one process) and peak memory (one process
   per method) for full, layernorm, bitfit, lora, head on the same batches;
3. Fisher cost: empirical Fisher of all LayerNorm elements over 1,024 training examples (default
   ``hooks`` algorithm), and the ``vmap`` path against the per-example ``loop`` on a common subset;
4. warm run store: wall time of ``lnft reports --profile quick`` when every run is already stored;
5. verdict table: ``lnft.stats.method_verdicts`` on stored per-example predictions of quick-profile size
   (SST-2 and STS-B, 400 dev examples, 5 methods x 3 seeds, 2,000 replicates), reading included;
6. Ray sweep: the quick profile's runs (notebooks 1 and 2: the runs whose configs exist before any
   Fisher; ``--ray-limit N``: the first N) from a cold store through ``engine="ray"`` (a local Ray, one
   CPU and one torch thread per run, Ray's start-up included) vs ``engine="local"`` (one process, all
   threads); metrics compared run by run.
7. CPU bf16: one training step per method in fp32 and under bf16 autocast (``precision="bf16"``), as
   interleaved A/B pairs in one process on the same batches; speed-up = fp32 seconds / bf16 seconds per
   pair, median and range over the pairs (``cpu_bf16_step_speedup_<method>``), printed beside the CPU's
   bf16 flags and what ``precision="auto"`` resolves to here (CPU only).

The last lines are ``key=value`` pairs (see KEYS), then a PASS/MISS line per target.

One module per measurement (``benchmarks/<name>.py``: throughput, steps, precision, memory, fisher_cost,
warm_reports, verdict_table, ray_sweep, gpu); this runner parses the options, calls each stage not skipped,
prints the table (``table.py``) and writes the JSON. A new benchmark: a module with one function returning
its measurements, a stage below, its key in KEYS (and TARGETS if it has a goal), its lines in ``table.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == HERE:
    sys.path[0] = ROOT  # the benchmark modules import as ``benchmarks.<name>``, never as top-level names
elif ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.common import STEP_METHODS, log  # noqa: E402 — sets LNFT_PROGRESS=0 before lnft loads

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.fisher_cost import fisher_cost  # noqa: E402
from benchmarks.gpu import gpu_extras, gpu_packing  # noqa: E402
from benchmarks.memory import peak_memory  # noqa: E402
from benchmarks.precision import bf16_step_speedups, cpu_precision_facts  # noqa: E402
from benchmarks.ray_sweep import ray_sweep  # noqa: E402
from benchmarks.steps import step_times  # noqa: E402
from benchmarks.table import print_table  # noqa: E402
from benchmarks.throughput import throughput  # noqa: E402
from benchmarks.verdict_table import verdict_table  # noqa: E402
from benchmarks.warm_reports import warm_reports  # noqa: E402
from lnft.models import resolve_device  # noqa: E402


STAGES = ["throughput", "steps", "memory", "fisher", "reports", "verdicts", "ray", "bf16"]
KEYS = ["train_speedup_vs_run_glue_defaults", "dev_metric_delta_vs_run_glue_defaults",
        "train_speedup_vs_tuned_trainer", "layernorm_step_time_ratio_vs_full",
        "layernorm_peak_memory_ratio_vs_full", "fisher_1024_seconds", "fisher_vmap_speedup_vs_loop",
        "warm_quick_reports_seconds", "verdict_table_seconds", "ray_sweep_speedup_vs_local",
        *[f"cpu_bf16_step_speedup_{m}" for m in ("full", "layernorm", "bitfit", "lora", "head")]]
TARGETS = {"train_speedup_vs_run_glue_defaults": (">=", 2.0), "dev_metric_delta_vs_run_glue_defaults": ("abs<=", 1.0),
           "train_speedup_vs_tuned_trainer": (">=", 1.0), "layernorm_step_time_ratio_vs_full": ("<=", 0.7),
           "layernorm_peak_memory_ratio_vs_full": ("<=", 0.8), "fisher_1024_seconds": ("<=", 30.0),
           "warm_quick_reports_seconds": ("<=", 60.0), "verdict_table_seconds": ("<=", 5.0),
           "ray_sweep_speedup_vs_local": (">=", 1.5)}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or what the platform says."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((l.split(":", 1)[1].strip() for l in fh if l.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu


def machine() -> str:
    cpu = cpu_model()
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{os.cpu_count()} cores, {cpu}{gpu}, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def verdicts(keys: dict) -> list[str]:
    lines = []
    for key, (op, target) in TARGETS.items():
        value = keys.get(key)
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            lines.append(f"target {key} {op} {target}: NOT MEASURED")
            continue
        ok = {">=": value >= target, "<=": value <= target, "abs<=": abs(value) <= target}[op]
        lines.append(f"target {key} {op.replace('abs', '|x| ')} {target}: {'PASS' if ok else 'MISS'} ({value:.3g})")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes: a check that everything runs (minutes)")
    p.add_argument("--tiny", action="store_true", help="smallest sizes, for the test suite (numbers meaningless)")
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--reports-profile", default=None, help="profile for the warm-store measurement")
    p.add_argument("--reports-notebooks", nargs="*", default=None, help="notebooks for it (default: all)")
    p.add_argument("--skip", nargs="*", action="extend", default=[], choices=STAGES)
    p.add_argument("--only", nargs="+", default=None, choices=STAGES, help="run only these stages (the others skipped)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="throughput: lnft's precision, which the tuned Trainer copies (default auto: bf16 where native)")
    p.add_argument("--ray-profile", default=None, help="profile of the Ray sweep (default: quick; tiny: smoke)")
    p.add_argument("--ray-limit", type=int, default=None, help="Ray sweep: only the first N runs of the profile")
    p.add_argument("--bf16-lengths", nargs="+", type=int, default=None,
                   help="tokens per example of the bf16 step pairs (default: 64 128; the key: the first)")
    p.add_argument("--json", help="also write every measurement to this JSON file")
    p.add_argument("--gpu-extras", action="store_true", help="also: matmul peak and BERT-large step times")
    p.add_argument("--dry-run", action="store_true", help="with --gpu-extras: tiny sizes, to test the logic on CPU")
    args = p.parse_args(argv)
    if args.only:
        args.skip = sorted(set(args.skip) | (set(STAGES) - set(args.only)))
    device = resolve_device(args.device)
    size = "tiny" if args.tiny else ("quick" if args.quick else "default")
    plan = {
        "default": dict(tasks={"sst2": 1000, "rte": 500}, epochs=1, repeats=2, step_repeats=10, fisher=1024,
                        compare=128, profile="quick", eval=500, bf16_pairs=8, bf16_lengths=[64, 128]),
        "quick": dict(tasks={"sst2": 256, "rte": 128}, epochs=1, repeats=1, step_repeats=4, fisher=1024,
                      compare=32, profile="smoke", eval=200, bf16_pairs=4, bf16_lengths=[64]),
        "tiny": dict(tasks={"sst2": 32, "rte": 16}, epochs=1, repeats=1, step_repeats=2, fisher=32, compare=8,
                     profile="smoke", eval=32, bf16_pairs=2, bf16_lengths=[32]),
    }[size]
    repeats = args.repeats or plan["repeats"]
    batch, length = (32, 128) if size != "tiny" else (8, 32)
    report = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(), "cpu": cpu_model(),
              "threads": torch.get_num_threads(), "size": size, "device": device.type}
    keys: dict[str, float] = {}
    log(f"lnft benchmarks ({size}) on {report['machine']}")

    if "throughput" not in args.skip:
        rows, k = throughput(plan["tasks"], plan["epochs"], repeats, device.type, plan["eval"], args.precision)
        report["throughput"], keys = rows, {**keys, **k}
    log("stage: steps")
    if "steps" not in args.skip:
        report["step_seconds"] = step_times(device, plan["step_repeats"], batch, length)
        keys["layernorm_step_time_ratio_vs_full"] = report["step_seconds"]["layernorm"] / report["step_seconds"]["full"]
    log("stage: bf16")
    if "bf16" not in args.skip and device.type == "cpu":
        report["cpu_precision"] = cpu_precision_facts()
        report["bf16_batch"] = batch
        lengths = args.bf16_lengths or plan["bf16_lengths"]
        report["bf16_steps"] = {n: bf16_step_speedups(device, plan["bf16_pairs"], batch, n) for n in lengths}
        for m, v in report["bf16_steps"][lengths[0]].items():
            keys[f"cpu_bf16_step_speedup_{m}"] = v["speedup"]
    log("stage: memory")
    if "memory" not in args.skip:
        measured = STEP_METHODS if size != "tiny" else ["full", "layernorm"]  # one process each
        report["memory"] = {m: peak_memory(m, device.type, batch, length) for m in measured}
        net = {m: v["peak_mb"] - v["baseline_mb"] for m, v in report["memory"].items()}
        keys["layernorm_peak_memory_ratio_vs_full"] = net["layernorm"] / net["full"]
    log("stage: fisher")
    if "fisher" not in args.skip:
        report["fisher"] = fisher_cost(plan["fisher"], plan["compare"], device)
        scale = 1024 / report["fisher"]["examples"]
        keys["fisher_1024_seconds"] = report["fisher"]["hooks_seconds"] * scale
        keys["fisher_vmap_speedup_vs_loop"] = (report["fisher"]["loop_seconds_on_subset"]
                                               / report["fisher"]["vmap_seconds_on_subset"])
    log("stage: reports")
    if "reports" not in args.skip:
        profile = args.reports_profile or plan["profile"]
        report["reports_profile"] = profile
        notebooks = args.reports_notebooks if args.reports_notebooks is not None else \
            (["01_change_analysis"] if size == "tiny" else None)
        report["reports_notebooks"] = notebooks or "all"
        keys["warm_quick_reports_seconds"] = warm_reports(profile, notebooks)

    log("stage: verdicts")
    if "verdicts" not in args.skip:
        report["verdicts"] = verdict_table()
        keys["verdict_table_seconds"] = report["verdicts"]["seconds"]

    log("stage: ray")
    if "ray" not in args.skip:
        report["ray"] = ray_sweep(args.ray_profile or ("smoke" if size == "tiny" else "quick"),
                                  args.ray_limit or (2 if size == "tiny" else None), shrink=size == "tiny")
        keys["ray_sweep_speedup_vs_local"] = report["ray"]["speedup"]

    log("stage: gpu extras" if args.gpu_extras else "done")
    if args.gpu_extras:
        report["gpu"] = gpu_extras(device, args.dry_run, 3 if args.dry_run else 10)
        if "ray" not in args.skip:
            log("stage: gpu packing (Ray, 1 vs 4 runs per GPU)")
            report["gpu_packing"] = gpu_packing(device, args.dry_run)
    print_table(report, keys)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({**report, "keys": keys}, fh, indent=1, default=str)
    for key in KEYS:
        value = keys.get(key)
        print(f"{key}={'nan' if value is None else f'{value:.4g}'}")
    for line in verdicts(keys):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
