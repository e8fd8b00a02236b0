"""Claim 1 both ways: which component changed most without selection on the same data (lnft.lead: Holm /
intersection–union, per kind, scale-free), and which component's change matters (lnft.revert: revert it)."""
import numpy as np
import pandas as pd
import pytest

from lnft import lead, revert, stats


# ------------------------------------------------------------------ lnft.lead on synthetic values
def _estimates(diffs, se=0.1, df=4.0):
    return pd.DataFrame({"other": [f"c{i}" for i in range(len(diffs))], "diff": diffs, "se": se, "df": df})


def test_largest_needs_every_other_component_beaten():
    assert lead.holm_word(_estimates([1.0, 1.0, 1.0]))[0] == lead.LARGEST
    # one other component within noise: not largest, but not shown to be larger either
    assert lead.holm_word(_estimates([1.0, 1.0, 0.05]))[0] == stats.INCONCLUSIVE


def test_not_largest_is_holm_corrected_over_every_other_component():
    # one-sided p of -0.32/0.1 at 4 df is ~0.016: below 0.025 alone, above 0.025/2 after Holm over two others
    single = lead.holm_word(_estimates([-0.32]))
    assert single[0] == lead.NOT_LARGEST and single[1] == "c0"
    word, who, p = lead.holm_word(_estimates([-0.32, 0.5]))
    assert word == stats.INCONCLUSIVE and p == pytest.approx(2 * single[2])
    assert lead.holm_word(_estimates([-2.0, 0.5]))[:2] == (lead.NOT_LARGEST, "c0")


def test_one_seed_gives_no_word():
    assert lead.holm_word(_estimates([1.0], se=np.nan, df=0.0))[0] == stats.NEEDS_SEEDS


def test_holm_keeps_the_familywise_error_when_the_target_ties_the_largest():
    """Known truth: the target ties the largest of 6 others (the rest far below); a false *not largest* must
    stay at most (1 - level)/2 = 2.5 % over the whole family; without Holm, picking the runner-up after seeing
    the data and testing it alone is not what the word rests on."""
    rng = np.random.default_rng(0)
    false = 0
    trials = 2000
    for _ in range(trials):
        values = rng.normal(0, 1, size=(3, 7)) + np.array([5, 5, 5, 5, 5, 5, 0])  # target = column 0
        words = lead.holm_word(lead.paired_estimates(values, 0).assign(other=[f"c{i}" for i in range(6)]))
        false += words[0] == lead.NOT_LARGEST
    assert false / trials <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / trials)


def _change_frame(seeds=(0, 1, 2)):
    """A change frame with two layers: the output LN gain moves most by mean |Δθ|, a matrix most overall."""
    rows = []
    rng = np.random.default_rng(1)
    base = {("output LN", "weight"): 2.0, ("output LN", "bias"): 1.0, ("attn-out LN", "weight"): 1.0,
            ("attn-out LN", "bias"): 3.0, ("query", "weight"): 5.0, ("query", "bias"): 0.5}
    for seed in seeds:
        for layer in (0, 1):
            for (component, kind), v in base.items():
                for measure in ("mean_abs", "relative_abs", "relative_l2"):
                    rows.append({"task": "t", "seed": seed, "group": "layer", "layer": layer, "component": component,
                                 "kind": kind, "measure": measure, "value": v + rng.normal(0, 0.01)})
    frame = pd.DataFrame(rows)
    both = frame.groupby(["task", "seed", "group", "layer", "component", "measure"], as_index=False)["value"].mean()
    return pd.concat([frame, both.assign(kind="all")], ignore_index=True)


def test_change_leads_per_kind():
    leads = lead.change_leads(_change_frame(), measures=["mean_abs"], scopes=["layers"])
    word = leads.set_index("kind")["verdict"]
    assert word["gain"] == lead.LARGEST  # gains against gains: 2.0 vs 1.0
    assert word["bias"] == lead.NOT_LARGEST  # biases against biases: 1.0 vs 3.0
    assert word["all"] == lead.NOT_LARGEST  # the paper's mixing: the query's matrix dominates
    assert "matrix" not in set(leads["kind"])  # the output LN has no weight matrix: no word
    row = leads.set_index("kind").loc["bias"]
    assert row["largest_other"] == "attn-out LN" and row["larger_by_holm"] == "attn-out LN"
    assert row["ratio_lo"] <= row["ratio"] <= row["ratio_hi"]
    leaders = lead.kind_leaders(_change_frame())
    assert leaders.query("measure == 'mean_abs' and kind == 'matrix'")["largest"].item() == "query"


# ------------------------------------------------------------------ lnft.revert on a real tiny run
def test_revert_reproduces_the_run_and_is_kept_in_the_run_directory(tiny, tmp_path):
    from lnft.store import RunStore

    store = RunStore(tmp_path)
    runs = [store.get_or_run(tiny(task="sst2", method="full", lr=1e-3, seed=s, precision="fp32"), progress=False)
            for s in (0, 1)]
    frame = revert.revert_frame(runs, store)
    units = set(frame["component"])
    assert revert.NONE in units and "output LN" in units and len(units) == 1 + 12  # every changed component
    # (12: the embedded model reads the mean over tokens, so it has no pooler: lnft.pooling)
    assert (frame["layer"] == revert.EVERY_LAYER).all()
    again = revert.reproduced(frame, runs)
    assert (again["same"] == 1.0).all()  # the fine-tuned model re-evaluated: the run's own predictions
    path = f"{runs[0].run_dir}/{revert.REVERT_FILE}"
    stamp = __import__("os").path.getmtime(path)
    assert store.load(runs[0].run_id) is not None  # the run stays servable with the extra file beside it
    pd.testing.assert_frame_equal(revert.predictions(runs[0], store), frame[frame["run_id"] == runs[0].run_id]
                                  .reset_index(drop=True))
    assert __import__("os").path.getmtime(path) == stamp  # read back, not computed again
    table = revert.losses(frame, replicates=200)
    assert len(table) == 12 and (table["lo"] <= table["hi"]).all()
    ln = table.set_index("component").loc["output LN"]
    assert ln["lost"] == pytest.approx(ln["fine_tuned"] - ln["reverted"])
    verdict = revert.lead(frame, replicates=200)
    assert len(verdict) == 1 and verdict["verdict"].iloc[0] in set(stats.LEAD_WORDS.values())
    assert verdict["others"].iloc[0] == 11


def test_revert_per_layer_units(tiny, tmp_path):
    from lnft.store import RunStore

    store = RunStore(tmp_path)
    run = store.get_or_run(tiny(task="sst2", method="layernorm", lr=1e-2, precision="fp32"), progress=False)
    frame = revert.predictions(run, store, per_layer=True)
    units = frame[["component", "layer"]].drop_duplicates()
    # a LayerNorm-only run changed only LayerNorms: only they are reverted, in every layer and layer by layer
    assert set(units["component"]) == {revert.NONE, "emb LN", "attn-out LN", "output LN"}
    assert len(units) == 1 + 3 + 2 * 6
    none = frame[frame["component"] == revert.NONE]
    assert (none["pred"].to_numpy() == run.predictions()["dev"].preds).all()


def test_reverts_are_kept_in_the_ledger_and_read_back_without_weights(tiny, tmp_path, monkeypatch):
    """A run served from the results ledger has no weights: its reverts, computed once where the weights were,
    are kept in its ledger record (derived data) and read back from there."""
    from lnft.store import RunStore
    from lnft.store.ledger import Ledger

    store = RunStore(tmp_path / "runs", ledger=tmp_path / "ledger")
    run = store.get_or_run(tiny(task="sst2", method="full", lr=1e-3, seed=0, precision="fp32"), progress=False)
    frame = revert.predictions(run, store)
    served = Ledger(tmp_path / "ledger").load(run.run_id)  # as a fresh clone reads it: no run directory
    assert served is not None and revert.LEDGER_KEY in served.derived
    served.run_dir = None

    def no_weights(*args, **kwargs):
        raise AssertionError("the reverts were computed again instead of read from the ledger")

    monkeypatch.setattr(revert, "compute", no_weights)
    pd.testing.assert_frame_equal(revert.predictions(served, store), frame)
