"""Claim 3 as a curve (lnft.curve): the reference on the rules' rate grid, non-inferiority read as a fixed
sequence from the largest fraction down, and Fisher vs random at the smallest fraction that passes."""
import numpy as np
import pandas as pd
import pytest

from lnft import curve, stats
from lnft.errors import LnftError
from lnft.subsets import REFERENCE


def test_reference_runs_on_the_same_grid_as_the_rules():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        lr: float
        method: str

    plan = [({"task": "t", "point": "p", "seed": 0, "selection": REFERENCE, "fraction": 100.0, "lr": 1e-2},
             Cfg(1e-2, "layernorm")),
            ({"task": "t", "point": "p", "seed": 0, "selection": "random", "fraction": 1.0, "lr": 3e-2},
             Cfg(3e-2, "layernorm-masked"))]
    out = curve.reference_on_grid(plan, [1e-2, 3e-2, 1e-1])
    ref = [(labels, cfg) for labels, cfg in out if labels["selection"] == REFERENCE]
    assert [labels["lr"] for labels, _ in ref] == [1e-2, 3e-2, 1e-1] == [cfg.lr for _, cfg in ref]
    assert out[-1] == plan[-1]  # the masked runs are left as they were
    with pytest.raises(LnftError, match="learning-rate grid"):
        curve.reference_on_grid(plan, [])


def _vs_all(rows):
    """A rule − all-LayerNorm table with the columns lnft.curve reads."""
    frame = pd.DataFrame(rows, columns=["task", "point", "a", "fraction", "diff", "lo", "hi"])
    return frame.assign(a_score=80 + frame["diff"], b_score=80.0, a_seeds=3, level=0.95, undertrained=False, flags="",
                        summary="")


def test_smallest_noninferior_fraction_is_a_fixed_sequence_from_the_top():
    rows = [("t", "p", "fisher-global", 10.0, -0.2, -0.8, 0.4),   # passes (bound -0.8 > -1)
            ("t", "p", "fisher-global", 2.0, -1.0, -1.6, -0.4),   # fails
            ("t", "p", "fisher-global", 0.5, -0.1, -0.5, 0.3)]    # would pass, but a larger fraction failed first
    table = curve.noninferior(_vs_all(rows), margin=1.0).set_index("fraction")
    assert table.loc[0.5, "noninferior"] and not table.loc[0.5, "in_sequence"]
    assert table.loc[10.0, "in_sequence"] and not table.loc[2.0, "in_sequence"]
    versus = pd.DataFrame([{"task": "t", "point": "p", "fraction": 10.0, "a": "fisher-global", "b": "random",
                            "verdict": stats.BETTER, "summary": "better: +2.0 points", "undertrained": True,
                            "flags": "random @ 10 %: lr at the grid's top edge"}])
    v = curve.verdict(_vs_all(rows), versus, margin=1.0).iloc[0]
    assert v["smallest non-inferior %"] == 10.0 and v["bound"] == pytest.approx(-0.8)
    assert v["beats random"] and v["undertrained"] and "grid" in v["flags"] and "†" in v["summary"]
    assert v["level (one-sided)"] == pytest.approx(0.975)
    # a wider margin lets every fraction through: the smallest becomes 0.5 %, with no Fisher − random row there
    wide = curve.verdict(_vs_all(rows), versus, margin=2.0).iloc[0]
    assert wide["smallest non-inferior %"] == 0.5 and not wide["beats random"] and wide["vs random"] == ""


def test_no_fraction_when_the_largest_fails_and_one_seed_never_passes():
    rows = [("t", "p", "fisher-global", 10.0, -3.0, -4.0, -2.0), ("t", "p", "fisher-global", 1.0, 0.0, -0.1, 0.1)]
    v = curve.verdict(_vs_all(rows), pd.DataFrame(columns=["task", "point", "fraction", "a", "b"]), margin=1.0)
    assert v["smallest non-inferior %"].iloc[0] is None and "no fraction" in v["summary"].iloc[0]
    one_seed = _vs_all([("t", "p", "fisher-global", 10.0, 0.0, -0.1, 0.1)]).assign(a_seeds=1)
    assert not curve.noninferior(one_seed)["noninferior"].any()  # an interval over examples only decides nothing


def test_fixed_sequence_keeps_the_error_of_the_claim():
    """Known truth: every fraction is exactly m worse than all-LayerNorm (the boundary of non-inferiority). The
    claim "non-inferior at some fraction" must be made in at most 2.5 % of experiments (the one-sided level),
    with four correlated fractions; picking the minimum over fractions that pass would exceed it."""
    rng = np.random.default_rng(0)
    trials, made, picked = 2000, 0, 0
    q = 1.959963984540054
    for _ in range(trials):
        shared = rng.normal()
        est = -1.0 + 0.5 * (0.7 * shared + np.sqrt(1 - 0.49) * rng.normal(size=4))  # se 0.5, correlated points
        rows = [("t", "p", "fisher-global", f, e, e - q * 0.5, e + q * 0.5) for f, e in zip((25.0, 10.0, 2.0, 0.5), est)]
        table = curve.noninferior(_vs_all(rows), margin=1.0)
        made += bool(table["in_sequence"].any())
        picked += bool(table["noninferior"].any())
    bound = 0.025 + 3 * np.sqrt(0.025 * 0.975 / trials)
    assert made / trials <= bound < picked / trials


def test_curve_frame_and_figure():
    rows = [("t", "p", rule, f, d, d - 1, d + 1) for rule in ("fisher-global", "random")
            for f, d in ((0.5, -3.0), (2.0, -1.0), (10.0, 0.0))]
    frame = curve.curve_frame(_vs_all(rows))
    assert len(frame) == 6 and (frame["score_lo"] == frame["score"] - 1).all()
    fig = curve.figure(frame, margin=1.0)
    assert len(fig.axes) == 1 and fig.axes[0].get_xscale() == "log"
    with pytest.raises(LnftError, match="curve_frame needs"):
        curve.curve_frame(pd.DataFrame({"task": []}))


def test_profiles_run_why_layernorm_and_the_curve_in_the_reference_report(tmp_path):
    """standard: the why-LayerNorm comparators on two tasks (method_tasks may restrict comparators), and claim 3
    as a curve: two tasks, fractions from 1 % (the paper's "small portion") to 100 %, the paper's Fisher point, three
    rates with one above 3e-2,
    and the all-LayerNorm reference on the same grid (counted by lnft plan, built by masked_runs), its rate chosen
    on the tuning seed like every rule's (issue 37: the other seeds run the chosen rate)."""
    from collections import Counter

    import torch

    from lnft import experiments, profiles

    P = profiles.resolve("02_peft_comparison", "standard")
    groups = Counter(p.group for p in experiments.peft_comparison(P))
    assert {"random-channels", "layernorm-output", "layernorm-gain", "ia3"} <= set(P.comparators)
    for m in P.comparators:
        # every rate on the tuning seeds, the chosen rate on the others (issue 32), on at least two tasks
        tune = len(experiments.tuning_seeds(P))
        per_task = tune * len(experiments.lr_grid(P, m)) + len(P.seeds) - tune
        assert groups[f"why LayerNorm: {m}"] == len(experiments.method_tasks(P, m)) * per_task
        assert len(experiments.method_tasks(P, m)) >= 2
    with pytest.raises(LnftError, match="method_tasks"):
        profiles.resolve("02_peft_comparison", "standard", method_tasks={"layernorm": ["sst2"]})
    P3 = profiles.resolve("03_fisher_subsets", "standard")
    assert len(P3.tasks) >= 2 and min(P3.fractions) <= 1 and 100 in P3.fractions and P3.reference_grid
    assert len([f for f in P3.fractions if f < 100]) >= 2  # a curve: more than one point below 100 %
    assert len(P3.masked_lrs) >= 3 and max(P3.masked_lrs) > 3e-2 and "pretrained" in P3.fisher_points
    refs = [p for p in experiments.fisher_subsets(P3, exact=False) if p.group == "layernorm (100 %)"]
    tune = len(experiments.tuning_seeds(P3))
    assert len(refs) == len(P3.tasks) * (tune * len(P3.masked_lrs) + len(P3.seeds) - tune)
    assert sorted({p.config.lr for p in refs}) == sorted(P3.masked_lrs)
    # masked_runs puts the reference on the grid (smoke: its own rates)
    S = profiles.resolve("03_fisher_subsets", "smoke")
    fisher = {"bert.encoder.layer.0.output.LayerNorm.weight": torch.rand(16),
              "bert.encoder.layer.0.output.LayerNorm.bias": torch.rand(16)}
    plan = experiments.masked_runs(S, {("sst2", "pretrained", 0): fisher}, str(tmp_path))
    ref_rates = sorted(labels["lr"] for labels, cfg in plan if labels["selection"] == REFERENCE)
    assert ref_rates == sorted(S.masked_lrs) and all(cfg.lr == labels["lr"] for labels, cfg in plan)


def test_notebook_3_tunes_every_rule_on_the_first_seed_then_runs_the_chosen_rate(tmp_path):
    """tune_seeds in notebook 3 (issue 37.3): the tuning seed runs every rule at every rate, every other seed
    runs each rule at the rate that rule chose on the tuning seed's validation; planning stands in the grid's
    middle rate until the tuning runs exist, and a rule with no chosen rate is an error, not a silent default."""
    import dataclasses

    import pandas as pd
    import torch

    from lnft import experiments, profiles

    S = profiles.resolve("03_fisher_subsets", "smoke")
    S = dataclasses.replace(S, values={**S.values, "seeds": [0, 1, 2], "tune_seeds": 1,
                                       "masked_lrs": [1e-2, 3e-2, 1e-1]})
    fisher = {"bert.encoder.layer.0.output.LayerNorm.weight": torch.rand(16),
              "bert.encoder.layer.0.output.LayerNorm.bias": torch.rand(16)}
    fishers = {("sst2", "pretrained", s): fisher for s in (0, 1, 2)}
    planned = experiments.masked_runs(S, fishers, str(tmp_path))
    by_seed = pd.DataFrame([labels for labels, _ in planned]).groupby(["seed", "selection"])["lr"].agg(sorted)
    assert all(rates == [1e-2, 3e-2, 1e-1] for rates in by_seed.loc[0])
    assert all(rates == [3e-2] for rates in by_seed.loc[1]) and all(rates == [3e-2] for rates in by_seed.loc[2])
    # the tuning seed's validation chooses: fisher-global best at 1e-1, the others at 1e-2, the reference at 3e-2
    best = {"fisher-global": 1e-1, "fisher-per-module": 1e-2, "random": 1e-2, REFERENCE: 3e-2}
    tuning = pd.DataFrame([{**labels, "score": 0.0, "validation": float(labels["lr"] == best[labels["selection"]])}
                           for labels, _ in planned if labels["seed"] == 0 and labels["selection"] in best])
    chosen = experiments.chosen_subset_rates(S, tuning)
    plan = experiments.masked_runs(S, fishers, str(tmp_path), chosen)
    later = {(labels["seed"], labels["selection"], labels["fraction"]): labels["lr"] for labels, _ in plan if labels["seed"]}
    assert later and all(lr == best[sel] for (_, sel, _), lr in later.items() if sel in best)
    # the other seeds' runs are ignored when choosing (they ran one rate only)
    noisy = pd.concat([tuning, tuning.assign(seed=1, validation=1.0 - tuning["validation"])])
    assert experiments.chosen_subset_rates(S, noisy) == chosen
    with pytest.raises(LnftError, match="no rate chosen"):
        experiments.masked_runs(S, fishers, str(tmp_path), {})
    planned = experiments.fisher_subsets(S, exact=False)
    assert sum(p.group == "random-k (masked)" for p in planned) == \
        len(S.tasks) * len([f for f in S.fractions if f < 100]) * (len(S.masked_lrs) + 2)
    # the reference's runs: seed 0's at every rate are known; an untuned seed's rate is not until seed 0 ran (a
    # ledger check must not ask for the grid's middle rate, which stands in for it)
    refs = [p for p in planned if p.group == "layernorm (100 %)"]
    assert {p.config.seed for p in refs if p.known} == {0} and {p.config.seed for p in refs if not p.known} == {1, 2}
