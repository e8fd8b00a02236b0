"""The benchmark script runs end to end on a tiny setting and prints every key (numbers not checked:
speed goals belong to the benchmark's own output, not to timed tests)."""
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..")
KEYS = ["train_speedup_vs_run_glue_defaults", "dev_metric_delta_vs_run_glue_defaults",
        "train_speedup_vs_tuned_trainer", "layernorm_step_time_ratio_vs_full",
        "layernorm_peak_memory_ratio_vs_full", "fisher_1024_seconds", "fisher_vmap_speedup_vs_loop",
        "warm_quick_reports_seconds", "verdict_table_seconds", "ray_sweep_speedup_vs_local",
        *[f"cpu_bf16_step_speedup_{m}" for m in ("full", "layernorm", "bitfit", "lora", "head")]]


def _keys(stdout):
    found = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in KEYS:
            found[key] = float(value)
    return found


def _cpu_model() -> str:
    """The model name the table must show (read here, not imported from the benchmark, which sets env vars)."""
    import platform

    try:
        with open("/proc/cpuinfo") as fh:
            return next((l.split(":", 1)[1].strip() for l in fh if l.startswith("model name")), platform.processor())
    except OSError:
        return platform.processor()


def test_benchmark_script_prints_every_key(tmp_path):
    env = {"LNFT_RUNS": str(tmp_path / "runs"), **os.environ}  # make test shares its runs store
    proc = subprocess.run([sys.executable, "benchmarks/run.py", "--tiny", "--device", "cpu"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = _keys(proc.stdout)
    assert list(found) == KEYS and all(v == v for v in found.values()), proc.stdout  # all measured (no nan)
    assert "| sst2 | run_glue |" in proc.stdout and "target fisher_1024_seconds <= 30" in proc.stdout
    # the whole-run comparison: dated, the CPU named, lnft and the tuned Trainer in one precision, run_glue's fp32
    from lnft.models import auto_precision

    assert "Whole-run comparison, " in proc.stdout and _cpu_model() in proc.stdout
    ours = auto_precision("cpu")
    for task in ("sst2", "rte"):
        assert f"| {task} | lnft | {ours} |" in proc.stdout and f"| {task} | tuned | {ours} |" in proc.stdout
        assert f"| {task} | run_glue | fp32 |" in proc.stdout
    assert "Ray sweep (2 smoke runs" in proc.stdout and "difference between the engines" in proc.stdout
    assert "CPU bf16 (autocast) vs fp32" in proc.stdout and "precision auto resolves to" in proc.stdout


def test_gpu_script_dry_run_on_cpu():
    proc = subprocess.run(["bash", "benchmarks/gpu.sh", "--dry-run", "--skip", "throughput", "memory", "fisher",
                           "ray"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PY": sys.executable})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "matmul peak" in proc.stdout and "% of peak" in proc.stdout
    assert "masked_run_ok=cpu" in proc.stdout  # the masked run gpu.sh does on CUDA, here on the CPU
    keys = _keys(proc.stdout)
    assert keys["layernorm_step_time_ratio_vs_full"] > 0 and keys["fisher_1024_seconds"] != keys["fisher_1024_seconds"]
