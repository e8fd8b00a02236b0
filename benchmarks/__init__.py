"""lnft benchmarks: one module per measurement, run together by ``python benchmarks/run.py`` (``make bench``).

``throughput`` (lnft vs a run_glue-like and a tuned Trainer), ``steps`` (seconds per training step per method),
``precision`` (CPU bf16 vs fp32 steps), ``memory`` (peak memory per method), ``fisher_cost``,
``warm_reports`` (``lnft reports`` on a warm store), ``verdict_table`` (``stats.method_verdicts``),
``ray_sweep`` (Ray vs local engine), ``gpu`` (matmul peak, BERT-large steps, runs packed per GPU);
``run`` parses the options, calls them, prints the table (``table``) and writes the JSON.
"""
