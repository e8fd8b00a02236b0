"""The benchmark report as Markdown: one table or paragraph per measurement that ran."""
from __future__ import annotations

from .common import STEP_METHODS


def print_table(report: dict, keys: dict) -> None:
    print(f"# lnft benchmarks — {report['date']} — {report['machine']} — size {report['size']}, "
          f"device {report['device']}")
    if "throughput" in report:
        rows = report["throughput"]
        print(f"\nWhole-run comparison, {report['date']}, {report.get('cpu', 'CPU unknown')} "
              f"({report.get('threads', '?')} torch thread(s)), device {report['device']}: full fine-tuning, "
              f"{rows[0]['epochs']} epoch(s), batch 32; lnft and the tuned Trainer in lnft's precision, the "
              "run_glue defaults in fp32 (each row: the precision its runs trained in).")
        print("\n| task | recipe | precision | train examples | train s | samples/s | dev score |"
              "\n|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['task']} | {r['recipe']} | {r.get('precision', '')} | {r['train_examples']} | "
                  f"{r.get('train_seconds', float('nan')):.1f} | {r['samples_per_second']:.1f} | {r['dev_score']:.1f} |")
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
