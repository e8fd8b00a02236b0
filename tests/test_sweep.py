import numpy as np
import pandas as pd
import pytest

from lnft import aggregate, sweep
from lnft.store import RunStore


def _frame():
    rows = []
    # two methods, two rates, two seeds; validation prefers lr 1e-3 for layernorm, dev would prefer 1e-2
    scores = {("layernorm", 1e-3): (80, 70), ("layernorm", 1e-2): (75, 72), ("full", 1e-4): (82, 74)}
    for (method, lr), (val, dev) in scores.items():
        for seed in (0, 1):
            base = dict(task="sst2", method=method, seed=seed, lr=lr, trainable_params=10 if method != "full" else 100,
                        trainable_percent=0.1 if method != "full" else 100.0)
            rows.append({**base, "split": "validation", "metric": "score", "value": val + seed})
            rows.append({**base, "split": "dev", "metric": "score", "value": dev + 2 * seed})
    return pd.DataFrame(rows)


def test_lr_selection_uses_the_validation_split_by_default():
    chosen = aggregate.select_lr(_frame())
    assert chosen.set_index("method").loc["layernorm", "lr"] == 1e-3
    assert aggregate.select_lr(_frame(), on="dev").set_index("method").loc["layernorm", "lr"] == 1e-2


def test_summary_table_and_comparison():
    frame = _frame()
    chosen = aggregate.select_lr(frame)
    summary = aggregate.summarize(frame, chosen)
    ln = summary.set_index("method").loc["layernorm"]
    assert ln["score_mean"] == 71 and ln["score_std"] == pytest.approx(np.sqrt(2)) and ln["seeds"] == 2
    table = aggregate.glue_table(summary, ["full", "layernorm"])
    assert list(table.index) == ["full", "layernorm"] and not table.isna().any().any()
    # layernorm's chosen 1e-3 is the lower edge of its two-rate grid: marked as possibly undertrained
    assert table.loc["layernorm", "sst2"] == "71.0 ± 1.4 †" and table.loc["full", "trainable"] == "100"
    assert "edge of its grid" in table.loc["layernorm", "flags"]
    # full fine-tuning was given one rate: untuned, a † as well (issue 32)
    assert table.loc["full", "sst2"] == "75.0 ± 1.4 †" and "one lr tried" in table.loc["full", "flags"]
    by = summary.set_index("method")
    assert by.loc["layernorm", "score_mean"] - by.loc["full", "score_mean"] == -4
    verdicts = pd.DataFrame({"task": ["sst2"], "a": ["layernorm"], "b": ["full"]})  # as lnft.stats gives them
    row = aggregate.flag_verdicts(verdicts, summary).iloc[0]  # how notebook 2 flags its verdicts
    assert row["undertrained"] and "layernorm: lr 0.001 at the edge of its grid (2 rates)" in row["flags"]


def test_run_all_skips_finished_runs(tiny, tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    configs = sweep.grid(tiny(task="sst2", method="head"), seed=[0, 1])
    results = sweep.run_all(configs, store, progress=False)
    frame = sweep.results_frame(results)
    assert set(frame["seed"]) == {0, 1} and set(frame["split"]) == {"dev", "validation"}
    assert len(sweep.history_frame(results)) == 2
    import lnft.train

    monkeypatch.setattr(lnft.train, "finetune", lambda *a, **k: pytest.fail("trained again"))
    again = sweep.run_all(configs, store, progress=False)
    assert [r.metrics for r in again] == [r.metrics for r in results]
