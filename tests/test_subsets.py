import zlib

import numpy as np
import pandas as pd
import pytest
import torch

from lnft import LnftError, RunConfig, subsets


def _values():
    return {"a.LayerNorm.weight": torch.tensor([5.0, 1.0, 3.0, 0.0]),
            "a.LayerNorm.bias": torch.tensor([4.0, 2.0, 0.5, 0.1]),
            "b.LayerNorm.weight": torch.tensor([0.01, 0.02, 0.03, 0.04]),
            "b.LayerNorm.bias": torch.tensor([0.0, 0.0, 0.0, 0.05])}


def _minilm_like(seed=0):
    """13 LayerNorm modules of 384 gains + 384 biases (9,984 elements), heavy-tailed random Fisher."""
    g = torch.Generator().manual_seed(seed)
    names = ["bert.embeddings.LayerNorm"] + [f"bert.encoder.layer.{i}.{part}.LayerNorm" for i in range(6)
                                              for part in ("attention.output", "output")]
    return {f"{m}.{k}": torch.rand(384, generator=g) ** 8 * (j + 1) for j, m in enumerate(names)
            for k in ("weight", "bias")}


def test_masks():
    values = _values()
    top = subsets.top_k_mask(values, 25)  # 4 of 16
    assert subsets.mask_size(top) == 4
    assert top["a.LayerNorm.weight"].tolist() == [True, False, True, False]
    assert top["a.LayerNorm.bias"].tolist() == [True, True, False, False]
    per_module = subsets.per_module_top_k_mask(values, 25)  # 2 of 8 in each module
    assert subsets.mask_size({k: v for k, v in per_module.items() if k.startswith("b.")}) == 2
    assert per_module["b.LayerNorm.bias"].tolist() == [False, False, False, True]
    r1, r2 = subsets.random_mask(values, 25, seed=1), subsets.random_mask(values, 25, seed=1)
    assert subsets.mask_size(r1) == 4 and all(torch.equal(r1[n], r2[n]) for n in r1)
    assert subsets.jaccard(top, top) == 1.0
    assert subsets.mask_size(subsets.union([top, per_module])) >= subsets.mask_size(top)
    assert subsets.mask_size(subsets.intersection([top, per_module])) <= subsets.mask_size(top)
    assert subsets.expected_random_jaccard(100) == 1.0
    with pytest.raises(LnftError, match="invalid fraction 0"):
        subsets.top_k_mask(values, 0)


@pytest.mark.parametrize("fraction", [0.5, 1, 2, 5, 10, 20, 50])
def test_every_rule_selects_exactly_the_same_number(fraction):
    values = _minilm_like()
    sizes = {rule: subsets.mask_size(mask) for rule, mask in subsets.masks_at(values, fraction, seed=0).items()}
    assert set(sizes.values()) == {round(fraction / 100 * 9_984)}, sizes


def test_largest_remainder():
    assert subsets.largest_remainder(100, {f"m{i:02d}": 768 for i in range(13)}) == \
        {f"m{i:02d}": 8 if i < 9 else 7 for i in range(13)}  # 100 / 13 = 7.69: nine get one more
    parts = subsets.largest_remainder(10, {"a": 1, "b": 2, "c": 7})  # exact 1, 2, 7
    assert parts == {"a": 1, "b": 2, "c": 7}
    assert sum(subsets.largest_remainder(7, {"a": 3, "b": 3, "c": 3}).values()) == 7


def _rows(like, n=64, noise=0.1, seed=0):
    """Per-example Fisher rows whose mean ranks the elements as ``like`` does, up to per-example noise."""
    names = sorted(like)
    base = torch.cat([like[k].reshape(-1).double() for k in names])
    g = torch.Generator().manual_seed(seed)
    return (base * (1 + noise * torch.randn(n, base.numel(), generator=g, dtype=torch.float64)).abs()).float()


def _dependence(true, relabelled, point="p", fractions=(1, 10, 100), seeds=(0, 1)):
    rows = _rows(true)
    fisher = subsets._unflat(sorted(true), rows.double().mean(0), true)
    control = pd.concat([subsets.label_control(fisher, relabelled, fractions, task="t", point=point, seed=s)
                         for s in seeds])
    null = pd.concat([subsets.resampling_null([rows[:32], rows[32:]], fisher, fractions, replicates=40, seed=s,
                                              task="t", point=point) for s in seeds])
    return subsets.label_dependence(control, null)


def test_label_control_is_judged_against_the_resampling_null():
    true = _minilm_like(0)
    same = subsets._unflat(sorted(true), _rows(true).double().mean(0) * 1.01, true)  # same ranking
    free = _dependence(true, same, point="pretrained")
    assert free["jaccard"].eq(1.0).all() and not free["label-dependent"].any()
    assert (free["null_lo"] <= free["null_mean"]).all() and (free["null_mean"] <= free["null_hi"]).all()
    assert (free["null_hi"] < 1.0).all() and (free["null_lo"] > free["chance"]).all()  # resampling moves the top-k a bit
    moved = _dependence(true, _minilm_like(1), point="finetuned")
    assert moved["label-dependent"].all() and (moved["jaccard"] < moved["null_lo"]).all()
    assert set(moved["ranking"]) == {"label-dependent"}
    # a label Jaccard *below 0.9* yet inside a noisy null is not label-dependent: the null decides, not a threshold
    noisy = subsets._unflat(sorted(true), _rows(true, noise=3.0, seed=7).double().mean(0), true)
    rows = _rows(true, noise=3.0)
    fisher = subsets._unflat(sorted(true), rows.double().mean(0), true)
    control = subsets.label_control(fisher, noisy, [1], task="t", point="p", seed=0)
    null = subsets.resampling_null(rows, fisher, [1], replicates=40, task="t", point="p")
    table = subsets.label_dependence(control, null).iloc[0]
    assert table["jaccard"] < 0.9 and not table["label-dependent"], table.to_dict()
    verdict = subsets.label_free(pd.concat([free, moved])).set_index("point")
    assert verdict.loc["pretrained", "label-free"] and not verdict.loc["finetuned", "label-free"]
    assert verdict.loc["pretrained", "fraction"] == 1.0 and verdict.loc["pretrained", "spearman"] == pytest.approx(1.0)
    with pytest.raises(LnftError, match="per-example rows have"):
        subsets.resampling_null(rows[:, :10], fisher, [1])


def test_jaccard_table_puts_labels_folds_and_heads_side_by_side():
    dependence = _dependence(_minilm_like(0), _minilm_like(1))
    folds = {seed: {fold: _minilm_like(10 * seed + fold) for fold in (0, 1)} for seed in (0, 1)}
    stability = subsets.stability_frame(folds, [1, 10], task="t", point="p")
    table = subsets.jaccard_table(dependence, stability)
    assert len(table) == 2 and table["fraction"].tolist() == [1.0, 10.0]
    for column in ("labels (true vs relabelled)", "resampling null", "folds (other data, same head)",
                   "head seeds (same data, other head)", "chance", "ranking"):
        assert table[column].notna().all(), column


def test_mask_files_are_content_addressed(tmp_path):
    values = _values()
    a = subsets.store_mask(subsets.top_k_mask(values, 25), str(tmp_path))
    b = subsets.store_mask(subsets.top_k_mask(values, 25), str(tmp_path))
    c = subsets.store_mask(subsets.top_k_mask(values, 50), str(tmp_path))
    assert a == b != c


def test_subset_plan_uses_each_seeds_own_masks(tmp_path):
    # the embedded model's own LayerNorm names and shapes: a mask's run id checks them against the model
    values = {("sst2", "pretrained", 0): _minilm_like(), ("sst2", "pretrained", 1): {n: -v for n, v in _minilm_like().items()},
              ("sst2", "finetuned", 0): _minilm_like(), ("sst2", "finetuned", 1): _minilm_like()}
    plan = subsets.subset_plan(values, [25, 100], mask_dir=str(tmp_path), make_config=lambda **kw: RunConfig(**kw))
    assert len(plan) == 4 * (3 + 1)
    path = {(lab["point"], lab["seed"], lab["selection"]): cfg.mask_path for lab, cfg in plan}
    assert path["pretrained", 0, "fisher-global"] != path["pretrained", 1, "fisher-global"]  # the seed's own Fisher
    assert path["pretrained", 0, "random"] != path["pretrained", 1, "random"]  # drawn per seed
    assert path["pretrained", 0, "random"] == path["finetuned", 0, "random"]  # one run shared by the points
    ids = {(lab["point"], lab["seed"], lab["selection"]): cfg.run_id() for lab, cfg in plan}
    assert ids["pretrained", 0, "fisher-global"] != ids["pretrained", 1, "fisher-global"]
    assert subsets.check_equal_sizes(plan) == 4
    frame = pd.DataFrame([{**lab, "score": 1.0} for lab, _ in plan])
    curve = subsets.with_reference_points(frame)
    assert set(curve["selection"]) == set(subsets.SELECTIONS)
    assert len(curve[curve["fraction"] == 100.0]) == 3 * 4


def test_start_config():
    make = lambda **kw: RunConfig(**kw)  # noqa: E731
    assert subsets.start_config("pretrained", make, "sst2", 0) is None
    assert subsets.start_config("head-warmup", make, "sst2", 1).method == "head"
    assert subsets.start_config("finetuned", make, "sst2", 1) == RunConfig(task="sst2", method="layernorm", seed=1)
    with pytest.raises(LnftError, match="unknown Fisher point"):
        subsets.start_config("trained", make, "sst2", 0)


def _predictions(correct: dict[str, float], n=400, seeds=(0, 1)):
    """Fake runs of one task × point: per arm and seed, predictions with the given share correct."""
    from lnft.result import Predictions

    labels = np.random.default_rng(0).integers(0, 2, n)
    rows, preds = [], {}
    for (selection, fraction), share in correct.items():
        for seed in seeds:
            right = np.random.default_rng(zlib.crc32(f"{selection}{fraction}{seed}".encode())).random(n) < share
            run_id = f"{selection}-{fraction}-{seed}"
            preds[run_id] = {"dev": Predictions(np.where(right, labels, 1 - labels), labels, "same examples")}
            rows.append({"task": "sst2", "point": "p", "selection": selection, "fraction": fraction, "seed": seed,
                         "run_id": run_id})
    return pd.DataFrame(rows), preds


def _label_free():
    true = _minilm_like(0)
    rows = _rows(true)
    fisher = subsets._unflat(sorted(true), rows.double().mean(0), true)
    control = subsets.label_control(fisher, fisher, [1], task="sst2", point="p", seed=0)
    null = subsets.resampling_null(rows, fisher, [1], replicates=20, task="sst2", point="p")
    return subsets.label_free(subsets.label_dependence(control, null))


def test_verdicts_come_from_the_paired_bootstrap():
    scores, preds = _predictions({("fisher-global", 1.0): 0.60, ("random", 1.0): 0.60, ("fisher-global", 10.0): 0.95,
                                  ("random", 10.0): 0.70, (subsets.REFERENCE, 100.0): 0.95},
                                 seeds=(0, 1, 2))  # three seeds: two would rarely exclude 0 (Welch df of 1-2)
    for name in ("fisher-global-10.0-0", "fisher-global-10.0-1", "fisher-global-10.0-2",
                 f"{subsets.REFERENCE}-100.0-1", f"{subsets.REFERENCE}-100.0-2"):
        preds[name] = preds[f"{subsets.REFERENCE}-100.0-0"]  # Fisher top-k at 10 % predicts as all-LayerNorm
    versus = subsets.fisher_vs_random(scores, predictions=preds).set_index("fraction")
    assert versus.loc[10.0, "verdict"] == "better" and versus.loc[10.0, "lo"] > 15
    assert versus.loc[1.0, "verdict"] in ("inconclusive", "equivalent within ±1 point")
    vs_all = subsets.versus_all_layernorm(scores, predictions=preds)
    assert set(vs_all["a"]) == {"fisher-global", "random"} and len(vs_all) == 4
    within = subsets.fraction_within(vs_all)
    assert within["smallest % within 1 pt of all-LN"].tolist() == [10.0]
    assert within["summary"].iloc[0].startswith("equivalent within ±1 point: +0.0")
    table = subsets.verdict_table(_label_free(), within, versus.reset_index())
    row = table.iloc[0]
    assert row["ranking"] == "label-free within resampling noise" and row["Fisher − random @ 10 %"].startswith("better: +")
    assert row["smallest % within 1 pt of all-LN"] == 10.0


def test_verdicts_flag_runs_still_improving_at_the_end():
    scores, preds = _predictions({("fisher-global", 1.0): 0.60, ("random", 1.0): 0.60, ("fisher-global", 10.0): 0.95,
                                  ("random", 10.0): 0.70, (subsets.REFERENCE, 100.0): 0.95})
    scores["still_improving"] = (scores["selection"] == "fisher-global") & (scores["fraction"] == 10.0) \
        & (scores["seed"] == 1)
    versus = subsets.fisher_vs_random(scores, predictions=preds).set_index("fraction")
    assert versus.loc[10.0, "undertrained"] and not versus.loc[1.0, "undertrained"]
    assert versus.loc[10.0, "flags"] == ("fisher-global @ 10 %: still improving at the end of its budget (last gain > "
                                         "0.5 points or a single evaluation) in 1 of 2 runs")
    vs_all = subsets.versus_all_layernorm(scores, predictions=preds)
    marked = vs_all.set_index(["a", "fraction"])["undertrained"]
    assert marked.to_dict() == {("fisher-global", 1.0): False, ("fisher-global", 10.0): True,
                                ("random", 1.0): False, ("random", 10.0): False}
    within = subsets.fraction_within(vs_all)
    assert within["undertrained"].tolist() == [True]
    table = subsets.verdict_table(_label_free(), within, versus.reset_index())
    row = table.iloc[0]
    assert row["undertrained"] and row["Fisher − random @ 10 %"].endswith(" †")
    assert not row["Fisher − random @ 1 %"].endswith("†") and "fisher-global @ 10 %: still improving" in row["flags"]
    printed = subsets.lines(versus.reset_index())
    assert "† possibly undertrained" in printed[1] and "†" not in printed[0]
    assert "† possibly undertrained" in subsets.verdict_lines(table)[0]
    # the all-LayerNorm runs enter every comparison with all-LayerNorm, at every fraction
    scores["still_improving"] = scores["selection"] == subsets.REFERENCE
    vs_all = subsets.versus_all_layernorm(scores, predictions=preds)
    assert vs_all["undertrained"].all() and vs_all["flags"].str.startswith("all LayerNorm: still improving").all()
    assert (vs_all["flags"].str.count("all LayerNorm") == 1).all()
    assert not subsets.fisher_vs_random(scores, predictions=preds)["undertrained"].any()
    # no still_improving column: nothing flagged
    assert not subsets.fisher_vs_random(scores.drop(columns="still_improving"), predictions=preds)["undertrained"].any()


def test_flags_tell_still_improving_from_annealed_and_say_each_thing_once():
    scores, preds = _predictions({("fisher-global", 1.0): 0.60, ("random", 1.0): 0.60, (subsets.REFERENCE, 100.0): 0.9})
    ends = {("fisher-global", 0): (True, 2.0), ("fisher-global", 1): (True, 0.25), ("random", 0): (True, 0.0)}
    scores["still_improving"] = [ends.get((s, d), (False, -1.0))[0] for s, d in zip(scores["selection"], scores["seed"])]
    scores["last_gain"] = [ends.get((s, d), (False, -1.0))[1] for s, d in zip(scores["selection"], scores["seed"])]
    versus = subsets.fisher_vs_random(scores, predictions=preds).iloc[0]
    assert versus["undertrained"] and versus["flags"].startswith("fisher-global @ 1 %: still improving") \
        and "in 1 of 2 runs" in versus["flags"] and "random" not in versus["flags"]  # annealing is no † reason
    assert versus["notes"].count("annealed to the end") == 2 and "random @ 1 %: annealed" in versus["notes"]
    only_annealed = scores.assign(last_gain=scores["last_gain"].clip(upper=0.1))
    quiet = subsets.fisher_vs_random(only_annealed, predictions=preds).iloc[0]
    assert not quiet["undertrained"] and quiet["flags"] == "" and "annealed" in quiet["notes"]
    vs_all = subsets.versus_all_layernorm(scores, predictions=preds)
    within = subsets.fraction_within(vs_all)
    table = subsets.verdict_table(_label_free(), within, subsets.fisher_vs_random(scores, predictions=preds))
    for text in (table["flags"].iloc[0], table["notes"].iloc[0], subsets.verdict_lines(table)[0]):
        parts = text.split("; ")
        assert len(parts) == len(set(parts)), text  # no text twice in one flag


def test_each_rule_chooses_its_own_rate_on_validation(tmp_path):
    values = {("sst2", "pretrained", s): _values() for s in (0, 1)}
    make = lambda **kw: RunConfig(**{"lr": 1e-2, **kw})  # noqa: E731
    plan = subsets.subset_plan(values, [25, 100], make, str(tmp_path), lrs=[1e-2, 3e-2], rules=["fisher-global", "random"])
    assert len(plan) == 2 * (2 * 2 + 1) and {lab["lr"] for lab, _ in plan} == {1e-2, 3e-2}
    assert all(cfg.lr == lab["lr"] for lab, cfg in plan)
    assert {lab["selection"] for lab, _ in plan} == {"fisher-global", "random", subsets.REFERENCE}
    # validation: Fisher best at 1e-2, random best at 3e-2; dev scores make the choice visible
    val = {("fisher-global", 1e-2): 80, ("fisher-global", 3e-2): 70, ("random", 1e-2): 60, ("random", 3e-2): 75,
           (subsets.REFERENCE, 1e-2): 85}
    scores = pd.DataFrame([{**lab, "validation": val[lab["selection"], lab["lr"]] + lab["seed"],
                            "score": val[lab["selection"], lab["lr"]], "run_id": f"run-{i}"} for i, (lab, _) in enumerate(plan)])
    chosen = subsets.choose_rates(scores).set_index("selection")
    assert chosen.loc["fisher-global", "lr"] == 1e-2 and chosen.loc["random", "lr"] == 3e-2
    assert chosen.loc["random", "lr_at_edge"] and chosen.loc["random", "lr_rates"] == 2
    assert chosen.loc[subsets.REFERENCE, "lr_rates"] == 1
    picked = subsets.at_chosen_rates(scores, subsets.choose_rates(scores))
    assert len(picked) == 2 * 3 and picked.groupby("selection")["lr"].nunique().eq(1).all()
    with pytest.raises(LnftError, match="allowed: one rate per rule"):
        subsets.fisher_vs_random(scores)
    flagged = subsets.flag_runs(pd.DataFrame({"task": ["sst2"], "point": "pretrained", "a": "fisher-global",
                                              "b": "random", "fraction": 25.0}), picked).iloc[0]
    assert flagged["a_lr"] == "0.01" and flagged["b_lr"] == "0.03" and flagged["undertrained"]
    assert "random @ 25 %: lr 0.03 at the edge of its grid (2 rates)" in flagged["flags"]
    with pytest.raises(LnftError, match="invalid learning-rate grid"):
        subsets.subset_plan(values, [25], make, str(tmp_path), lrs=[])
    with pytest.raises(LnftError, match="unknown selection rule"):
        subsets.subset_plan(values, [25], make, str(tmp_path), rules=["fisher"])


def test_flag_runs_average_row_sees_every_task():
    scores = pd.DataFrame({"task": ["rte", "sst2", "rte", "sst2"], "point": "p",
                           "selection": ["fisher-global", "fisher-global", "random", "random"],
                           "fraction": 1.0, "still_improving": [False, False, False, True]})
    table = pd.DataFrame({"task": ["rte", "sst2", "average"], "point": "p", "a": "fisher-global", "b": "random",
                          "fraction": 1.0})
    flagged = subsets.flag_runs(table, scores)
    assert flagged["undertrained"].tolist() == [False, True, True]


def test_fraction_within_says_when_no_interval_can_fit_the_margin():
    def vs_all(width):
        return pd.DataFrame({"task": "sst2", "point": "p", "a": "fisher-global", "b": subsets.REFERENCE,
                             "fraction": [1.0, 10.0], "b_score": 90.0, "lo": [-5.0, -width / 2],
                             "hi": [1.0, width / 2], "verdict": "inconclusive", "summary": "inconclusive",
                             "examples": 400})
    wide = subsets.fraction_within(vs_all(2.6)).iloc[0]
    assert pd.isna(wide["smallest % within 1 pt of all-LN"]) and wide["narrowest CI (points)"] == pytest.approx(2.6)
    assert "no interval fits inside ±1 point" in wide["resolution"] and "400 examples" in wide["resolution"]
    assert subsets.fraction_within(vs_all(1.5)).iloc[0]["resolution"] == ""
    row = {"task": "sst2", "point": "p", "ranking": "label-free", "smallest % within 1 pt of all-LN": None}
    line = subsets.verdict_lines(pd.DataFrame([{**row, "resolution": wide["resolution"]}]))[0]
    assert "cannot be shown at this evaluation size" in line
    assert subsets.verdict_lines(pd.DataFrame([{**row, "resolution": ""}]))[0].endswith("at no fraction tried below 100 %")


@pytest.mark.parametrize("profile", ["smoke", "quick"])
def test_notebook_3_reads_notebook_2s_runs(profile):
    """The finetuned (and head-warmup) Fisher points and the reference lines are notebook 2's runs of the
    same profile: read back from the store, not trained again."""
    from lnft import experiments, profiles

    nb2 = profiles.resolve("02_peft_comparison", profile)
    nb3 = profiles.resolve("03_fisher_subsets", profile)
    shared = {c.run_id() for c in experiments.method_configs(nb2, nb2.methods)}
    for task in nb3.tasks:
        for seed in nb3.seeds:
            for point in ("head-warmup", "finetuned"):
                start = experiments.fisher_start(nb3, point, task, seed)  # as notebook 3 builds them
                assert start.run_id() in shared, (point, task, seed)  # rows outside it remain: no cross-fit run
    assert experiments.baselines(nb3) and {c.run_id() for c in experiments.baselines(nb3)} <= shared
