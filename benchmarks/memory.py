"""Peak memory of a few training steps per method, each method in a fresh process (peak minus the
process's resident memory before the model was built, on CPU). Key: ``layernorm_peak_memory_ratio_vs_full``.
"""
from __future__ import annotations

import json
import subprocess
import sys

from .common import ROOT

MEMORY_CHILD = """
import json, os, sys
sys.path.insert(0, {root!r})
os.environ["LNFT_PROGRESS"] = "0"
import torch
from benchmarks.memory import current_rss_mb
from benchmarks.steps import fixed_batches, make_trainer_step
from lnft.train import PeakMemory
device = torch.device({device!r})
batches = fixed_batches(2, {batch}, {length})
base = current_rss_mb()
with PeakMemory(device) as mem:
    step, _ = make_trainer_step({method!r}, device)
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
    code = MEMORY_CHILD.format(root=ROOT, device=device, batch=batch, length=length, method=method)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])
