"""Fisher cost: the empirical Fisher of all LayerNorm elements over 1,024 SST-2 training examples (the
default ``hooks`` algorithm), and ``hooks`` and ``vmap`` against the per-example ``loop`` on a common subset
(time and agreement). Keys: ``fisher_1024_seconds``, ``fisher_vmap_speedup_vs_loop``.
"""
from __future__ import annotations

from lnft import RunConfig, fisher
from lnft.data import Collator, length_grouped_batches, load_task_data, tokenize
from lnft.models import load_model, load_tokenizer
from lnft.tasks import get_task
from lnft.train import seed_everything


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
