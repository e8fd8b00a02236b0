"""CPU bf16: one training step per method in fp32 and under bf16 autocast (``precision="bf16"``), as
interleaved A/B pairs in one process on the same batches; speed-up = fp32 seconds / bf16 seconds per pair,
median and range over the pairs (``cpu_bf16_step_speedup_<method>``), beside the CPU's bf16 flags and what
``precision="auto"`` resolves to here (CPU only).
"""
from __future__ import annotations

import os
import statistics
import time

from .common import STEP_METHODS, log
from .steps import fixed_batches, make_trainer_step


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
