"""Ray sweep: the quick profile's runs (notebooks 1 and 2: the runs whose configs exist before any Fisher;
``--ray-limit N``: the first N) from a cold store through ``engine="ray"`` (a local Ray, one CPU and one
torch thread per run, Ray's start-up included) vs ``engine="local"`` (one process, all threads); metrics
compared run by run. Key: ``ray_sweep_speedup_vs_local``.
"""
from __future__ import annotations

import os
import tempfile
import time

from .common import log


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
