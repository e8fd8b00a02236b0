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


def test_label_control_and_verdict():
    true = _minilm_like(0)
    same = {n: v * 1.01 for n, v in true.items()}  # same ranking
    other = _minilm_like(1)
    rows = pd.concat([subsets.label_control(true, same, [1, 10, 100], task="t", point="pretrained", seed=0),
                      subsets.label_control(true, other, [1, 10, 100], task="t", point="finetuned", seed=0)])
    assert len(rows) == 4 and rows.loc[rows["point"] == "pretrained", "jaccard"].eq(1.0).all()
    verdict = subsets.label_free(rows).set_index("point")
    assert verdict.loc["pretrained", "label-free"] and not verdict.loc["finetuned", "label-free"]
    assert verdict.loc["pretrained", "fraction"] == 1.0 and verdict.loc["pretrained", "spearman"] == pytest.approx(1.0)


def test_mask_files_are_content_addressed(tmp_path):
    values = _values()
    a = subsets.store_mask(subsets.top_k_mask(values, 25), str(tmp_path))
    b = subsets.store_mask(subsets.top_k_mask(values, 25), str(tmp_path))
    c = subsets.store_mask(subsets.top_k_mask(values, 50), str(tmp_path))
    assert a == b != c


def test_subset_plan_uses_each_seeds_own_masks(tmp_path):
    values = {("sst2", "pretrained", 0): _values(), ("sst2", "pretrained", 1): {n: -v for n, v in _values().items()},
              ("sst2", "finetuned", 0): _values(), ("sst2", "finetuned", 1): _values()}
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


def _scores(rule_minus_random, seeds=(0, 1, 2)):
    rows = []
    for seed, gap in zip(seeds, rule_minus_random):
        rows += [{"task": "t", "point": "p", "fraction": 1.0, "seed": seed, "selection": "random", "score": 70.0},
                 {"task": "t", "point": "p", "fraction": 1.0, "seed": seed, "selection": "fisher-global",
                  "score": 70.0 + gap}]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("gaps,verdict", [([5.0, 5.2, 4.8], "better"), ([-5.0, -5.2, -4.8], "worse"),
                                          ([0.1, -0.1, 0.0], "equivalent within ±1 point"),
                                          ([5.0, -4.0, 1.0], "inconclusive"), ([5.0], "inconclusive")])
def test_versus_random(gaps, verdict):
    out = subsets.versus_random(_scores(gaps, seeds=range(len(gaps))))
    assert out["verdict"].tolist() == [verdict]
    assert out["difference"].iloc[0] == pytest.approx(sum(gaps) / len(gaps))


def test_smallest_fraction_within():
    rows = [{"task": "t", "point": "p", "selection": "fisher-global", "fraction": f, "seed": s, "score": score}
            for f, score in ((1.0, 60.0), (10.0, 75.5), (100.0, 76.0)) for s in (0, 1)]
    out = subsets.smallest_fraction_within(pd.DataFrame(rows))
    assert out["smallest % within 1 pt"].tolist() == [10.0] and out["all-LN score"].tolist() == [76.0]


def test_stability_pairs_and_honest_masks(tmp_path):
    by_seed = {s: {f: _minilm_like(10 * s + f) for f in range(2)} for s in (0, 1)}
    frame = subsets.stability_frame(by_seed, [1, 10, 100], task="t", point="p")
    counts = frame[frame["fraction"] == 1.0]["pair"].value_counts().to_dict()
    assert counts == {"same data, other head": 2, "other data, same head": 2, "other data, other head": 2}
    assert frame["chance"].round(4).tolist().count(0.005) == 6
    masks = subsets.honest_fold_masks(by_seed, 10)
    assert subsets.jaccard(masks[0], subsets.top_k_mask(by_seed[0][0], 10)) == 1.0
    assert subsets.jaccard(masks[1], subsets.top_k_mask(by_seed[1][1], 10)) == 1.0  # fold 1 from seed 1's head
    plan = subsets.union_intersection_plan({("sst2", "p"): by_seed}, [10], [0, 1], make_config=lambda **kw: RunConfig(**kw),
                                           mask_dir=str(tmp_path))
    assert [(lab["mask"], lab["seed"]) for lab, _ in plan] == [("union", 0), ("union", 1), ("intersection", 0),
                                                               ("intersection", 1)]
    union_size = plan[0][0]["elements"]
    assert union_size == subsets.mask_size(subsets.union(masks)) >= 998


def test_verdict_table():
    control = pd.concat([subsets.label_control(_minilm_like(0), _minilm_like(0), [1], task="t", point="p", seed=0)])
    rows = [{"task": "t", "point": "p", "selection": sel, "fraction": f, "seed": s, "score": score + s}
            for sel, f, score in (("fisher-global", 1.0, 75.5), ("random", 1.0, 70.0), ("fisher-global", 100.0, 76.0))
            for s in (0, 1)]
    scores = pd.DataFrame(rows)
    table = subsets.verdict_table(subsets.label_free(control), subsets.smallest_fraction_within(scores),
                                  subsets.versus_random(scores))
    row = table.iloc[0]
    assert row["ranking"] == "label-free" and row["smallest Fisher top-k % within 1 pt of all-LN"] == 1.0
    assert row["Fisher − random @ 1 %"] == "+5.5 ± 0.0 (better)"
