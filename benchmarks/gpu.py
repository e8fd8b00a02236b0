"""GPU extras (``--gpu-extras``; ``benchmarks/gpu.sh``): the bf16 matmul peak, full and layernorm step
times of a BERT-large-sized model as a fraction of that peak, and runs per hour with 1 and 4 runs packed
on one GPU through Ray. ``--dry-run``: tiny sizes, to test the logic on CPU.
"""
from __future__ import annotations

import os
import tempfile
import time

import torch

from .steps import step_times


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
