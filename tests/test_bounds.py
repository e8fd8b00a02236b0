"""The one-sided bound, the non-inferior word, margins with reasons, retention (Fieller), Holm, the
example-jackknife df of V_E (lnft.bounds, lnft.jackknife), and known-truth checks of the bound."""
import importlib.util
import math
import os

import numpy as np
import pytest

from lnft import retention, LnftError, bounds, jackknife, profiles, stats


def test_bound_text_margins_and_words():
    assert bounds.bound_text("layernorm", "full", -2.44, 0.95) == \
        "layernorm is at most 2.4 points worse than full (97.5 %, one-sided)"
    assert bounds.bound_text("layernorm", "head", 11.36, 0.9737) == \
        "layernorm is at least 11.4 points better than head (98.69 %, one-sided)"
    margin = {"sst2": 1.4, "stsb": 6.4, "default": 1.0}
    assert bounds.margin_for(margin, "sst2") == 1.4 and bounds.margin_for(margin, "mrpc") == 1.0
    assert bounds.margin_for(margin, "average", ["sst2", "mrpc", "stsb"]) == pytest.approx(8.8 / 3)
    assert bounds.margin_for(2, "rte") == 2.0
    with pytest.raises(LnftError, match="no entry for task 'rte'"):
        bounds.margin_for({"sst2": 1.0}, "rte")
    for bad in (0, -1, math.inf, True, {}, {"sst2": 0}):
        with pytest.raises(LnftError, match="invalid margin"):
            bounds.check_margin(bad)
    assert bounds.retention_margin(78.5, 64.5) == pytest.approx(1.4)
    with pytest.raises(LnftError, match="above the floor"):
        bounds.retention_margin(60, 64.5)


def test_profiles_record_each_claims_margin_with_its_reason():
    P = profiles.resolve("02_peft_comparison", "standard")
    # retention over the majority class, from the quick report under the fair protocol (lnft/profiles.py)
    assert P.margin["sst2"] == pytest.approx(bounds.retention_margin(79.75, 51.5), abs=0.05)
    assert P.margin["default"] == 1.0  # STS-B, MRPC: no fair earlier run
    assert "90 %" in P.margin_reason and "quick profile" in P.margin_reason
    assert profiles.resolve("03_fisher_subsets", "standard").margin["sst2"] == pytest.approx(
        bounds.retention_margin(80.75, 51.5), abs=0.05)
    mine = profiles.with_margin(profiles.resolve("02_peft_comparison", "quick"), 2.5)
    assert mine.margin == 2.5 and mine.margin_reason == "set by the user (margin=2.5)"
    assert profiles.resolve("02_peft_comparison", "quick", margin=2.0).margin_reason.startswith("set by the user")
    with pytest.raises(LnftError, match="invalid margin -1"):
        profiles.resolve("02_peft_comparison", "quick", margin=-1)


def test_holm_step_down_known_values():
    # sorted 0.005, 0.01, 0.03, 0.04, 0.2 times 5, 4, 3, 2, 1, made monotone: 0.025, 0.04, 0.09, 0.09 (not 0.08), 0.2
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan, 0.2])
    adjusted = bounds.holm(p)
    assert np.allclose(adjusted[[0, 1, 2, 3, 5]], [0.04, 0.09, 0.09, 0.025, 0.2]) and np.isnan(adjusted[4])


def test_retention_share_and_its_fieller_bound():
    """a keeps 80 % of b's 50-point gain over the floor; its lower bound lies below 0.8, and at that share the
    contrast a − [R·b + (1 − R)·floor] has its lower end at 0 (the definition of the Fieller bound)."""
    rng = np.random.default_rng(0)
    a, b, f = 90 + rng.normal(0, 1, 4), 100 + rng.normal(0, 1, 4), 50 + rng.normal(0, 1, 4)
    reps = lambda x: x[None, :] + rng.normal(0, 0.3, (300, 1))  # noqa: E731  shared example noise per replicate
    ra, rb, rf = reps(a), reps(b), reps(f)
    out = retention.retention(a, b, f, ra, rb, rf)
    assert out["share"] == pytest.approx((a.mean() - f.mean()) / (b.mean() - f.mean()))
    assert 0.6 < out["share_lo"] < out["share"] and out["level"] == 0.975
    r = out["share_lo"]
    at = stats.difference(a, r * b + (1 - r) * f, ra, r * rb + (1 - r) * rf, margin=None, needed=False)
    assert at["lo"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("metric", ["accuracy", "f1", "matthews", "pearson"])
def test_jackknife_drop_one_is_exact_and_its_variance_matches_the_bootstrap(metric):
    rng = np.random.default_rng(1)
    n = 300
    if metric == "pearson":
        y = rng.normal(size=n)
        p = np.stack([y + rng.normal(size=n) * s for s in (0.5, 1, 2)])
    else:
        y = rng.integers(0, 2, n)
        p = np.stack([np.where(rng.random(n) < q, y, 1 - y) for q in (0.9, 0.7, 0.6)])
    full, less = jackknife.drop_one(metric, y, p)
    for j in (0, 7, 299):
        w = np.ones((1, n))
        w[0, j] = 0
        assert np.allclose(less[:, j], stats.weighted_metric(metric, y, p, w)[0], atol=1e-12)
    boot = stats.weighted_metric(metric, y, p, stats._example_weights(rng, 3000, n)).var(axis=0)
    assert np.allclose((jackknife.influence(metric, y, p) ** 2).sum(axis=1), boot, rtol=0.15)


def test_example_df_is_small_when_few_examples_carry_the_difference():
    """Two methods differing on 8 of 2,000 examples: V_E rests on 8 examples, so its df are few and the
    interval widens against V_E taken as exact; differing on 40 % of them, the df are in the hundreds."""
    n, seeds = 2000, 3
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, n)
    base = rng.random(n) < 0.8

    def runs(differ):
        a = [np.where(base | differ, y, 1 - y) for _ in range(seeds)]
        b = [np.where(base & ~differ, y, 1 - y) for _ in range(seeds)]
        return np.stack(a), np.stack(b)

    few = np.zeros(n, bool)
    few[rng.permutation(n)[:8]] = True
    a, b = runs(few)
    df_few = jackknife.example_df(100 * jackknife.influence("accuracy", y, a), 100 * jackknife.influence("accuracy", y, b))
    a, b = runs(rng.random(n) < 0.4)
    df_many = jackknife.example_df(100 * jackknife.influence("accuracy", y, a), 100 * jackknife.influence("accuracy", y, b))
    assert df_few < 20 < 200 < df_many, (df_few, df_many)
    # in the verdict: seeds tied (s = 0), so the df are V_E's alone and the t quantile grows
    a, b = runs(few)
    full_a, full_b = 100 * (a == y).mean(1), 100 * (b == y).mean(1)
    w = stats._example_weights(rng, 2000, n)
    ra, rb = 100 * stats.weighted_metric("accuracy", y, a, w), 100 * stats.weighted_metric("accuracy", y, b, w)
    g = (100 * jackknife.influence("accuracy", y, a), 100 * jackknife.influence("accuracy", y, b))
    exact, finite = (stats.difference(full_a, full_b, ra, rb, needed=False, influence=i) for i in (None, g))
    assert finite["df"] < 20 and finite["hi"] - finite["lo"] > 1.05 * (exact["hi"] - exact["lo"])


def _simulation():
    path = os.path.join(os.path.dirname(__file__), "..", "scripts", "verdict_simulation.py")
    spec = importlib.util.spec_from_file_location("verdict_simulation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_sided_bound_with_a_known_truth_where_example_noise_dominates():
    """SST-2-sized (872 dev examples), 3 seeds per side, seed sd 1 point, kappa 0.6 (the methods err on partly
    different examples: example noise about 0.8 of the variance). 1,500 experiments at a true −1 and 1,500 at
    0, 300 resamples each. A false *non-inferior within 1* (the bound above −1 at a true −1) at most 2.5 %
    + 3 SE (SE 0.4 points); the one-sided bound covers the truth in at least 97.5 % − 3 SE of experiments
    (SE 0.29 points); the two-sided interval in at least 95 % − 3 SE (SE 0.4)."""
    sim = _simulation()
    keep = sim.N
    sim.N = 872
    try:
        edge = sim.run_cell("accuracy", 3, 1.0, -1.0, 1500, kappa=0.6, replicates=300)
        zero = sim.run_cell("accuracy", 3, 1.0, 0.0, 1500, kappa=0.6, replicates=300)
    finally:
        sim.N = keep
    assert np.median(zero["v_examples"] / zero["se"] ** 2) > 0.6  # example noise dominates
    false_ni = float((edge["lo"] > -1.0).mean())
    assert false_ni <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / 1500), false_ni
    covered = np.concatenate([edge["lo"] <= -1.0, zero["lo"] <= 0.0]).mean()
    assert covered >= 0.975 - 3 * math.sqrt(0.025 * 0.975 / 3000), covered
    both = np.concatenate([(c["lo"] <= c["truth"]) & (c["truth"] <= c["hi"]) for c in (edge, zero)]).mean()
    assert both >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / 3000), both
    assert (zero["verdict"] == stats.NONINFERIOR).any()  # the word is reachable at a true 0


def test_recorded_rows_carry_the_bound_and_the_margin_reason(tmp_path):
    """A compare table -> record rows -> the README block and the index: the bound, its level, the margin and
    its reason, and the multiplicity statement."""
    import json

    from lnft import record
    from lnft.reports import _verdict_table

    rng = np.random.default_rng(4)
    n = 1000
    y = rng.integers(0, 2, n)
    preds = {m: [np.where(rng.random(n) < q, y, 1 - y) for q in qs] for m, qs in
             (("a", (0.80, 0.81, 0.79)), ("b", (0.82, 0.80, 0.81)))}
    from lnft.result import Predictions
    import pandas as pd

    frame = pd.DataFrame([{"run_id": f"{m}{i}", "task": "sst2", "method": m, "seed": i} for m in preds for i in range(3)])
    pred = {f"{m}{i}": {"dev": Predictions(p, y, "d")} for m in preds for i, p in enumerate(preds[m])}
    table = stats.compare(frame, "a", "b", predictions=pred, margin={"sst2": 4.0}, margin_reason="my reason")
    row = table.iloc[0]
    assert row["margin"] == 4.0 and row["bound"] == row["lo"] and row["bound_level"] == 0.975
    assert row["bound_text"].startswith("a is at most") and row["bound_text"] in row["summary"]
    assert np.isfinite(row["df_examples"]) and 0 < row["p"] <= 1
    rows = record.rows(table, "a − b")
    assert rows.loc[0, "margin_reason"] == "my reason" and rows.loc[0, "bound"] == row["lo"]
    record.save("02_peft_comparison", [rows], out=str(tmp_path))
    (tmp_path / "reports.json").write_text(json.dumps({"facts": {}, "notebooks": [
        {"name": "02_peft_comparison", "status": "ok", "seconds": 1}]}))
    block = record.markdown(str(tmp_path))
    assert "bound −" in block and "97.5 %, one-sided" in block and "Margin: my reason." in block
    assert record.STANDS_ALONE in block
    page = _verdict_table(rows.to_dict("records"))
    assert "bound −" in page and "my reason" in page and "stands alone" in page
