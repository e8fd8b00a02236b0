"""Warm run store: wall time of ``lnft reports --profile ...`` when every run is already stored (a first
call warms the store, the second is timed). Key: ``warm_quick_reports_seconds``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from .common import ROOT, log


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
