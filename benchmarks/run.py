"""lnft benchmarks: measured side by side in one run, reported as medians and ratios.

    python benchmarks/run.py [--quick] [--device cpu|cuda] [--repeats N]     (also: make bench)

1. training throughput: lnft's ``finetune`` vs a Hugging Face ``Trainer`` set up like transformers'
   ``run_glue.py`` defaults (pad every example to 128, random batches) and vs a tuned ``Trainer``
   (per-batch padding with DataCollatorWithPadding, ``train_sampling_strategy="group_by_length"``); same
   model, examples, epochs, batch size, learning rate, seed, no warm-up and no weight decay (run_glue's
   defaults) — A and B runs interleaved;
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
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("LNFT_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lnft import RunConfig, fisher, methods  # noqa: E402
from lnft.data import Collator, length_grouped_batches, load_task_data, tokenize  # noqa: E402
from lnft.models import load_model, load_tokenizer, resolve_device  # noqa: E402
from lnft.tasks import get_task  # noqa: E402
from lnft.train import finetune, seed_everything  # noqa: E402

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
STEP_METHODS = ["full", "layernorm", "bitfit", "lora", "head"]


_START = time.perf_counter()


def log(*args):
    print(f"[{time.perf_counter() - _START:6.1f} s]", *args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- 1. throughput vs Trainer
def trainer_run(cfg: RunConfig, recipe: str, out_dir: str) -> dict:
    """A Trainer run on exactly lnft's training examples; ``recipe`` is "run_glue" or "tuned"."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, default_data_collator

    task = get_task(cfg.task)
    tokenizer = load_tokenizer(cfg.model)
    splits = load_task_data(cfg, task)
    pad = "max_length" if recipe == "run_glue" else False

    def encode(split):
        ds = splits[split]
        texts = (ds["sentence1"][:], ds["sentence2"][:]) if task.is_pair else (ds["sentence1"][:],)
        enc = tokenizer(*texts, truncation=True, max_length=cfg.max_seq_length, padding=pad)
        enc["labels"] = ds["label"][:]
        if recipe == "tuned":
            enc["length"] = [len(x) for x in enc["input_ids"]]
        return Dataset.from_dict(dict(enc))

    train, dev = encode("train"), encode("dev")
    seed_everything(cfg.seed)
    model = load_model(cfg.model, task.num_labels)
    args = TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        num_train_epochs=cfg.epochs, learning_rate=cfg.lr, weight_decay=0.0, warmup_steps=0, seed=cfg.seed,
        save_strategy="no", eval_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True,
        use_cpu=resolve_device(cfg.device).type == "cpu", bf16=resolve_device(cfg.device).type == "cuda",
        train_sampling_strategy="group_by_length" if recipe == "tuned" else "random")
    collator = DataCollatorWithPadding(tokenizer) if recipe == "tuned" else default_data_collator
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator)
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # keep stdout for the table
    metrics = trainer.train().metrics
    preds = trainer.predict(dev).predictions
    preds = preds[:, 0] if task.is_regression else preds.argmax(-1)
    score = task.score(task.compute_metrics(np.asarray(dev["labels"]), preds))
    return {"samples_per_second": len(train) * cfg.epochs / metrics["train_runtime"], "dev_score": score,
            "seconds": metrics["train_runtime"]}


def lnft_run(cfg: RunConfig) -> dict:
    assert cfg.epochs == 1, "one epoch: lnft's selected epoch is then the final model, like the Trainer's"
    r = finetune(cfg, progress=False).result
    return {"samples_per_second": r.samples_per_second, "dev_score": r.metrics["score"], "seconds": r.train_seconds}


def throughput(tasks: dict[str, int], epochs: int, repeats: int, device: str,
               eval_samples: int) -> tuple[list[dict], dict]:
    rows = []
    for task, n in tasks.items():
        cfg = RunConfig(task=task, method="full", lr=1e-4, epochs=epochs, batch_size=32, max_train_samples=n,
                        max_eval_samples=eval_samples, warmup_ratio=0.0, weight_decay=0.0, seed=42, device=device).validate()
        runs = {"lnft": [], "run_glue": [], "tuned": []}
        for rep in range(repeats):  # interleaved A/B/C so drift hits all alike
            for name in runs:
                log(f"[throughput] {task} n={n} repeat {rep + 1}/{repeats}: {name}")
                with tempfile.TemporaryDirectory() as tmp:
                    runs[name].append(lnft_run(cfg) if name == "lnft" else trainer_run(cfg, name, tmp))
        for name, results in runs.items():
            rows.append({"task": task, "recipe": name, "train_examples": n, "epochs": epochs,
                         "samples_per_second": statistics.median(r["samples_per_second"] for r in results),
                         "dev_score": statistics.median(r["dev_score"] for r in results)})
    by = {(r["task"], r["recipe"]): r for r in rows}
    task_names = list(tasks)
    speed = lambda other: float(np.exp(np.mean([np.log(by[(t, "lnft")]["samples_per_second"] /  # noqa: E731
                                                       by[(t, other)]["samples_per_second"]) for t in task_names])))
    keys = {"train_speedup_vs_run_glue_defaults": speed("run_glue"),
            "dev_metric_delta_vs_run_glue_defaults": float(np.mean(
                [by[(t, "lnft")]["dev_score"] - by[(t, "run_glue")]["dev_score"] for t in task_names])),
            "train_speedup_vs_tuned_trainer": speed("tuned")}
    return rows, keys


# ---------------------------------------------------------------- 2. per-method step cost
def fixed_batches(n_batches: int, batch: int, length: int, task: str = "sst2"):
    """Real SST-2 sentences padded/truncated to a fixed shape, the same stream for every method."""
    cfg = RunConfig(task=task, max_train_samples=n_batches * batch).validate()
    tok = load_tokenizer(cfg.model)
    train = load_task_data(cfg, get_task(task))["train"]
    enc = tok(train["sentence1"][:], truncation=True, max_length=length, padding="max_length", return_tensors="pt")
    labels = torch.tensor(train["label"][:])
    return [{"input_ids": enc["input_ids"][i:i + batch], "attention_mask": enc["attention_mask"][i:i + batch],
             "token_type_ids": enc["token_type_ids"][i:i + batch], "labels": labels[i:i + batch]}
            for i in range(0, n_batches * batch, batch)]


def make_trainer_step(method: str, device, model_fn=None, autocast=None):
    seed_everything(0)
    model = model_fn() if model_fn else load_model("embedded", 2)
    prepared = methods.prepare(model, RunConfig(method=method))
    model = prepared.model.to(device).train()
    opt = torch.optim.AdamW(list(prepared.trainable.values()), lr=1e-5, fused=True)  # as lnft trains
    from contextlib import nullcontext

    def step(batch):
        with autocast or nullcontext():
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step, prepared


def step_times(device, repeats: int, batch: int, length: int, model_fn=None, autocast=None,
               methods_: list[str] = STEP_METHODS) -> dict[str, float]:
    batches = fixed_batches(max(2, repeats), batch, length)
    if model_fn is not None:  # random-token batches for a model built from a config
        vocab = model_fn().config.vocab_size
        batches = [{**b, "input_ids": torch.randint(0, vocab, b["input_ids"].shape)} for b in batches]
    steps = {m: make_trainer_step(m, device, model_fn, autocast)[0] for m in methods_}
    for m in methods_:  # warm-up
        steps[m](batches[0])
    times = {m: [] for m in methods_}
    for i in range(repeats):
        for m in methods_:
            tick = time.perf_counter()
            steps[m](batches[i % len(batches)])
            times[m].append(time.perf_counter() - tick)
    return {m: statistics.median(t) for m, t in times.items()}


def bf16_step_speedups(device, pairs: int, batch: int, length: int, methods_: list[str] = STEP_METHODS) -> dict:
    """Per method: ``pairs`` interleaved fp32/bf16-autocast training steps on the same batches (the order
    within a pair alternates), speed-up per pair = fp32 seconds / bf16 seconds; median and range."""
    from lnft.models import autocast

    batches = fixed_batches(max(2, pairs), batch, length)
    out = {}
    for m in methods_:
        log(f"[bf16] {m}: {pairs} pairs at {batch} x {length}")
        steps = {p: make_trainer_step(m, device, autocast=autocast(p, device))[0] for p in ("fp32", "bf16")}
        for p in steps:  # warm-up
            steps[p](batches[0])
        times = {"fp32": [], "bf16": []}
        for i in range(pairs):
            for p in (("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32")):
                tick = time.perf_counter()
                steps[p](batches[i % len(batches)])
                times[p].append(time.perf_counter() - tick)
        ratios = [a / b for a, b in zip(times["fp32"], times["bf16"])]
        out[m] = {"fp32_seconds": statistics.median(times["fp32"]), "bf16_seconds": statistics.median(times["bf16"]),
                  "speedup": statistics.median(ratios), "low": min(ratios), "high": max(ratios), "pairs": pairs}
        del steps
    return out


def cpu_precision_facts() -> dict:
    """The CPU's bf16-related flags, its capability and what precision "auto" resolves to here."""
    from lnft.models import cpu_bf16_capability, cpu_flags, resolve_precision

    flags = sorted(f for f in cpu_flags() if "bf16" in f or f.startswith(("amx", "avx512f", "avx512_vnni")))
    limits = {k: os.environ[k] for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY") if k in os.environ}
    return {"flags": flags, "capability": cpu_bf16_capability(), "auto": resolve_precision("auto", "cpu"),
            "isa_limits": limits}


MEMORY_CHILD = """
import json, os, sys
sys.path.insert(0, {root!r})
os.environ["LNFT_PROGRESS"] = "0"
import torch
sys.path.insert(0, {bench!r})
import run as bench
from lnft.train import PeakMemory
device = torch.device({device!r})
batches = bench.fixed_batches(2, {batch}, {length})
base = bench.current_rss_mb()
with PeakMemory(device) as mem:
    step, _ = bench.make_trainer_step({method!r}, device)
    for b in batches + batches:
        step(b)
    peak = mem.peak_mb()
print(json.dumps({{"peak_mb": peak, "baseline_mb": base if device.type == "cpu" else 0.0}}))
"""


def current_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_memory(method: str, device: str, batch: int, length: int) -> dict:
    code = MEMORY_CHILD.format(root=ROOT, bench=os.path.dirname(os.path.abspath(__file__)), device=device,
                               batch=batch, length=length, method=method)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- 3. Fisher
def fisher_cost(n: int, compare_n: int, device) -> dict:
    cfg = RunConfig(task="sst2", max_train_samples=max(n, compare_n)).validate()
    task = get_task("sst2")
    tok = load_tokenizer(cfg.model)
    train = tokenize(load_task_data(cfg, task), tok, task, cfg.max_seq_length)["train"]
    collate = Collator(tok, False)
    seed_everything(0)
    model = load_model(cfg.model, 2).to(device)

    def batches(count):
        sub = train.select(range(count))
        return [collate([sub[i] for i in idx]) for idx in length_grouped_batches(sub["length"], 32, None)]

    kw = dict(regression=False, num_labels=2, kind="empirical", device=device)
    main = fisher.fisher_diagonal(model, batches(n), algorithm="hooks", **kw)
    small = batches(compare_n)
    results = {alg: fisher.fisher_diagonal(model, small, algorithm=alg, **kw) for alg in ("hooks", "vmap", "loop")}
    scale = max(float(v.abs().max()) for v in results["loop"].values.values())
    agreement = {alg: max(float((results[alg].values[k] - results["loop"].values[k]).abs().max())
                          for k in results["loop"].values) / scale for alg in ("hooks", "vmap")}
    return {"examples": main.n_examples, "hooks_seconds": main.seconds, "compare_examples": compare_n,
            **{f"{a}_seconds_on_subset": r.seconds for a, r in results.items()},
            "vmap_vs_loop_max_rel_diff": agreement["vmap"], "hooks_vs_loop_max_rel_diff": agreement["hooks"]}


# ---------------------------------------------------------------- 4. warm reports
def warm_reports(profile: str, notebooks: list[str] | None = None) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    lnft = [sys.executable, "-m", "lnft", "reports", "--profile", profile] + (["--notebooks", *notebooks] if notebooks else [])
    with tempfile.TemporaryDirectory() as tmp:
        cmd = lnft + ["--out", tmp, "--notebooks-dir", os.path.join(ROOT, "notebooks")]
        log(f"[reports] warming the store for profile {profile} (trains only what is missing)")
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        tick = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        return time.perf_counter() - tick


# ---------------------------------------------------------------- GPU extras
def gpu_extras(device, dry_run: bool, repeats: int) -> dict:
    """bf16 matmul peak, and a BERT-large-sized model (random weights, built from its config): full and
    layernorm step times at batch 32 × 128 and the fraction of the measured peak they reach."""
    from contextlib import nullcontext

    from transformers import BertConfig, BertForSequenceClassification

    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    n = 256 if dry_run else 8192
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    reps = 3 if dry_run else 50
    tick = time.perf_counter()
    for _ in range(reps):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    peak = 2 * n ** 3 * reps / (time.perf_counter() - tick)
    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128) if dry_run else \
        dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
    config = BertConfig(num_labels=2, **size)
    batch, length = (4, 16) if dry_run else (32, 128)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    times = step_times(device, repeats, batch, length, model_fn=lambda: BertForSequenceClassification(config),
                       autocast=autocast, methods_=["full", "layernorm"])
    model = BertForSequenceClassification(config)
    matrix_params = sum(p.numel() for n_, p in model.named_parameters() if "embeddings" not in n_ and p.dim() == 2)
    tokens = batch * length
    # forward 2·P·T; backward 2·P·T for activation gradients, + 2·P·T for weight gradients (full only)
    flops = {"full": 6 * matrix_params * tokens, "layernorm": 4 * matrix_params * tokens}
    return {"matmul_dtype": str(dtype).replace("torch.", ""), "matmul_n": n, "peak_tflops": peak / 1e12,
            "model": f"BERT {size['num_hidden_layers']} layers, hidden {size['hidden_size']} (random weights)",
            "batch": f"{batch} x {length}", "matrix_params": matrix_params,
            **{f"{m}_step_seconds": t for m, t in times.items()},
            **{f"{m}_fraction_of_peak": flops[m] / times[m] / peak for m in times}}


# ---------------------------------------------------------------- 5. verdict table
def verdict_table(tasks=("sst2", "stsb"), methods_=("layernorm", "full", "bitfit", "lora", "head"), seeds=3,
                  examples=400, repeats=3) -> dict:
    """Seconds for a whole notebook-2 verdict table (LayerNorm minus each method, per task and on average)
    on synthetic per-example predictions of quick-profile size, written as the run store writes them and
    read back inside the timing. Median of ``repeats``."""
    import pandas as pd

    from lnft import stats
    from lnft.result import Predictions, read_predictions, write_predictions

    rng = np.random.default_rng(0)
    rows, paths = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            regression = get_task(task).is_regression
            labels = np.round(rng.uniform(0, 5, examples), 1) if regression else rng.integers(0, 2, examples)
            for i, method in enumerate(methods_):
                for seed in range(seeds):
                    noise = rng.normal(0, 1 + i / 2, examples)
                    preds = labels + noise if regression else np.where(noise < 1.2, labels, 1 - labels)
                    run_id = f"{task}-{method}-{seed}"
                    paths[run_id] = os.path.join(tmp, f"{run_id}.npz")
                    write_predictions(paths[run_id], {"dev": Predictions(preds, labels, task),
                                                      "validation": Predictions(preds, labels, task)})
                    rows.append({"run_id": run_id, "task": task, "method": method, "seed": seed, "lr": 0.01})
        frame = pd.DataFrame(rows)
        times = []
        for _ in range(repeats):
            tick = time.perf_counter()
            predictions = {run_id: read_predictions(path) for run_id, path in paths.items()}
            table = stats.method_verdicts(frame, reference=methods_[0], predictions=predictions)
            times.append(time.perf_counter() - tick)
    return {"seconds": statistics.median(times), "rows": len(table), "runs": len(rows), "examples": examples,
            "replicates": int(table["replicates"].iloc[0])}


# ---------------------------------------------------------------- 6. Ray sweep vs local
def ray_sweep(profile: str, limit: int | None, shrink: bool = False) -> dict:
    """Wall seconds of one sweep from a cold store, local engine vs Ray (start-up included), and whether
    the two gave the same dev scores. ``shrink`` (--tiny): 16 examples, one evaluation per run."""
    import dataclasses

    from lnft import plan, sweep
    from lnft.engine import EngineConfig
    from lnft.store import RunStore

    configs, seen = [], set()
    for nb in ("01_change_analysis", "02_peft_comparison"):
        for p in plan.notebook_configs(nb, profile):
            if p.config.run_id() not in seen:
                seen.add(p.config.run_id())
                configs.append(p.config)
    configs = configs[:limit] if limit else configs
    if shrink:
        configs = [dataclasses.replace(c, max_train_samples=16, max_eval_samples=16, epochs=1, eval_every=None,
                                       patience=0) for c in configs]
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    out = {"profile": profile, "runs": len(configs), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        log(f"[ray] {len(configs)} {profile} runs, local engine")
        tick = time.perf_counter()
        local = sweep.run_all(configs, RunStore(os.path.join(tmp, "local")), engine="local", progress=False)
        out["local_seconds"] = time.perf_counter() - tick
        import ray

        log("[ray] the same runs through a local Ray")
        tick = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False,
                 _temp_dir=os.path.join(tmp, "ray"))
        out["ray_start_seconds"] = time.perf_counter() - tick
        try:
            remote = sweep.run_all(configs, RunStore(os.path.join(tmp, "ray")), progress=False,
                                   engine=EngineConfig(name="ray", num_cpus=1))
        finally:
            out["ray_seconds"] = time.perf_counter() - tick
            ray.shutdown()
    diffs = [abs(a.metrics["score"] - b.metrics["score"]) for a, b in zip(local, remote)]
    out["max_dev_score_difference"] = max(diffs)
    out["speedup"] = out["local_seconds"] / out["ray_seconds"]
    return out


def gpu_packing(device, dry_run: bool, runs: int = 8) -> dict:
    """Runs per hour on one GPU with 1 and with 4 runs packed on it (Ray tasks with num_gpus 1 and 0.25),
    quick-profile SST-2 LayerNorm runs of distinct seeds, cold stores. Dry run (CPU): two smoke runs,
    on a Ray that declares one stand-in GPU, to test the logic."""
    import dataclasses

    import ray

    from lnft import profiles, sweep
    from lnft.engine import EngineConfig
    from lnft.store import RunStore

    P = profiles.resolve("02_peft_comparison", "smoke" if dry_run else "quick")
    runs = 2 if dry_run else runs
    base = P.run_config(task="sst2", method="layernorm", lr=1e-2, device=device.type)
    out = {"runs": runs}
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    with tempfile.TemporaryDirectory() as tmp:
        ray.init(num_cpus=os.cpu_count(), num_gpus=1 if dry_run else None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False, _temp_dir=os.path.join(tmp, "ray"))
        try:
            for per_gpu in (1, 4):
                configs = [dataclasses.replace(base, seed=100 * per_gpu + i) for i in range(runs)]
                tick = time.perf_counter()
                sweep.run_all(configs, RunStore(os.path.join(tmp, f"runs-{per_gpu}")), progress=False,
                              engine=EngineConfig(name="ray", num_gpus=1 / per_gpu, num_cpus=1))
                out[f"runs_per_hour_{per_gpu}_per_gpu"] = runs / (time.perf_counter() - tick) * 3600
        finally:
            ray.shutdown()
    out["packing_speedup"] = out["runs_per_hour_4_per_gpu"] / out["runs_per_hour_1_per_gpu"]
    return out


# ---------------------------------------------------------------- main
def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((l.split(":", 1)[1].strip() for l in fh if l.startswith("model name")), cpu)
    except OSError:
        pass
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
    p.add_argument("--skip", nargs="*", action="extend", default=[],
                   choices=["throughput", "steps", "memory", "fisher", "reports", "verdicts", "ray", "bf16"])
    p.add_argument("--ray-profile", default=None, help="profile of the Ray sweep (default: quick; tiny: smoke)")
    p.add_argument("--ray-limit", type=int, default=None, help="Ray sweep: only the first N runs of the profile")
    p.add_argument("--bf16-lengths", nargs="+", type=int, default=None,
                   help="tokens per example of the bf16 step pairs (default: 64 128; the key: the first)")
    p.add_argument("--json", help="also write every measurement to this JSON file")
    p.add_argument("--gpu-extras", action="store_true", help="also: matmul peak and BERT-large step times")
    p.add_argument("--dry-run", action="store_true", help="with --gpu-extras: tiny sizes, to test the logic on CPU")
    args = p.parse_args(argv)
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
    report = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(), "size": size, "device": device.type}
    keys: dict[str, float] = {}
    log(f"lnft benchmarks ({size}) on {report['machine']}")

    if "throughput" not in args.skip:
        rows, k = throughput(plan["tasks"], plan["epochs"], repeats, device.type, plan["eval"])
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


def print_table(report: dict, keys: dict) -> None:
    print(f"# lnft benchmarks — {report['date']} — {report['machine']} — size {report['size']}, "
          f"device {report['device']}")
    if "throughput" in report:
        print("\n| task | recipe | train examples | samples/s | dev score |\n|---|---|---|---|---|")
        for r in report["throughput"]:
            print(f"| {r['task']} | {r['recipe']} | {r['train_examples']} | {r['samples_per_second']:.1f} | "
                  f"{r['dev_score']:.1f} |")
    if "step_seconds" in report or "memory" in report:
        print("\n| method | s/step (median) | ratio to full | peak MB | peak − baseline MB | ratio to full |"
              "\n|---|---|---|---|---|---|")
        steps, mem = report.get("step_seconds", {}), report.get("memory", {})
        net = {k: v["peak_mb"] - v["baseline_mb"] for k, v in mem.items()}
        fmt = lambda value, spec: "" if value is None else format(value, spec)  # noqa: E731
        for m in STEP_METHODS:
            s, n = steps.get(m), net.get(m)
            ratio = s / steps["full"] if s is not None and "full" in steps else None
            net_ratio = n / net["full"] if n is not None and "full" in net else None
            peak = mem[m]["peak_mb"] if m in mem else None
            print(f"| {m} | {fmt(s, '.3f')} | {fmt(ratio, '.2f')} | {fmt(peak, '.0f')} | {fmt(n, '.0f')} | "
                  f"{fmt(net_ratio, '.2f')} |")
    if "bf16_steps" in report:
        c = report["cpu_precision"]
        limits = ", ".join(f"{k}={v}" for k, v in c["isa_limits"].items())
        print(f"\nCPU bf16 (autocast) vs fp32, one training step, interleaved pairs. CPU flags: "
              f"{' '.join(c['flags']) or 'none bf16-related'}{f' (limited: {limits})' if limits else ''}; "
              f"capability {c['capability']}; precision auto resolves to {c['auto']} here.")
        print("\n| method | batch | fp32 ms/step | bf16 ms/step | speed-up (median of pairs, range) |\n|---|---|---|---|---|")
        for length, rows in report["bf16_steps"].items():
            for m, v in rows.items():
                print(f"| {m} | {report['bf16_batch']} x {length} | {v['fp32_seconds'] * 1e3:,.0f} | "
                      f"{v['bf16_seconds'] * 1e3:,.0f} | {v['speedup']:.2f} ({v['low']:.2f}–{v['high']:.2f}), "
                      f"{v['pairs']} pairs |")
        first = next(iter(report["bf16_steps"].values()))
        faster = all(v["speedup"] > 1 for v in first.values())
        agree = (c["auto"] == "bf16") == faster
        print(f"auto's choice ({c['auto']}) {'agrees with' if agree else 'CONTRADICTS'} these measurements "
              f"(bf16 {'faster' if faster else 'not faster'} on every method).")
    if "fisher" in report:
        f = report["fisher"]
        print(f"\nFisher (empirical, all 9,984 LayerNorm elements of MiniLM-L6, SST-2): {f['examples']} examples in "
              f"{f['hooks_seconds']:.1f} s (hooks). On {f['compare_examples']} examples: hooks "
              f"{f['hooks_seconds_on_subset']:.1f} s, vmap {f['vmap_seconds_on_subset']:.1f} s, loop "
              f"{f['loop_seconds_on_subset']:.1f} s; max relative difference to the loop: vmap "
              f"{f['vmap_vs_loop_max_rel_diff']:.1e}, hooks {f['hooks_vs_loop_max_rel_diff']:.1e}.")
    if "gpu" in report:
        g = report["gpu"]
        print(f"\n{g['matmul_dtype']} matmul peak ({g['matmul_n']}²): {g['peak_tflops']:.1f} TFLOP/s. {g['model']}, batch "
              f"{g['batch']}: full {g['full_step_seconds'] * 1e3:.1f} ms/step ({100 * g['full_fraction_of_peak']:.0f}% "
              f"of peak), layernorm {g['layernorm_step_seconds'] * 1e3:.1f} ms/step "
              f"({100 * g['layernorm_fraction_of_peak']:.0f}% of peak).")
    if "verdicts" in report:
        v = report["verdicts"]
        print(f"\nVerdict table (lnft.stats.method_verdicts): {v['rows']} rows from {v['runs']} runs' stored "
              f"predictions ({v['examples']} dev examples per task, {v['replicates']:,} replicates) in "
              f"{v['seconds']:.2f} s.")
    if "ray" in report:
        r = report["ray"]
        print(f"\nRay sweep ({r['runs']} {r['profile']} runs, cold stores, {r['cpus']} cores): local engine "
              f"{r['local_seconds']:.0f} s, Ray {r['ray_seconds']:.0f} s (of which {r['ray_start_seconds']:.0f} s "
              f"starting Ray; one CPU per run): {r['speedup']:.2f}x; largest dev-score difference between the "
              f"engines {r['max_dev_score_difference']:.2g} points.")
    if "gpu_packing" in report:
        g = report["gpu_packing"]
        print(f"\nGPU packing (Ray, {g['runs']} runs): {g['runs_per_hour_1_per_gpu']:.0f} runs/hour at 1 run per "
              f"GPU, {g['runs_per_hour_4_per_gpu']:.0f} at 4 per GPU ({g['packing_speedup']:.2f}x).")
    if "reports_profile" in report:
        print(f"\nWarm run store: `lnft reports --profile {report['reports_profile']}` "
              f"(notebooks: {report['reports_notebooks']}) took "
              f"{keys['warm_quick_reports_seconds']:.0f} s with every run already stored.")
    print()


if __name__ == "__main__":
    raise SystemExit(main())
