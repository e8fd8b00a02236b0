"""``lnft plan`` counts the runs the notebooks train: both take them from ``lnft.experiments`` (the
notebooks' config cells call its functions: checked on their code here), and, for notebook 3's masked
runs, the rule × rate count matches ``experiments.masked_runs`` on stand-in Fisher values."""
import ast
import dataclasses
import json
import os

import pytest
import torch

from lnft import experiments, plan, profiles
from lnft.cli import main
from lnft.store import RunStore

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")


def _code(name):
    with open(os.path.join(NOTEBOOKS, name + ".ipynb"), encoding="utf-8") as fh:
        return "\n".join("".join(c["source"]) for c in json.load(fh)["cells"] if c["cell_type"] == "code")


def _calls(code):
    """Dotted names of every call in the code (``experiments.change_analysis``, ``sweep.run_all``...)."""
    names = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            parts, f = [], node.func
            while isinstance(f, ast.Attribute):
                parts.append(f.attr)
                f = f.value
            if isinstance(f, ast.Name):
                names.append(".".join([f.id, *reversed(parts)]))
    return names


# P.run_config calls left in a notebook: notebook 2's trainable-parameter check prepares a model from one
# (it trains nothing); every config a notebook trains comes from lnft.experiments
OWN_CONFIGS = {"01_change_analysis": 0, "02_peft_comparison": 1, "03_fisher_subsets": 0}


@pytest.mark.parametrize("name", experiments.NOTEBOOKS)
def test_the_notebooks_build_no_run_config_of_their_own(name):
    code = _code(name)
    calls = _calls(code)
    assert calls.count("P.run_config") == OWN_CONFIGS[name] and "RunConfig" not in calls
    if OWN_CONFIGS[name]:
        assert "method_registry.prepare(load_model(P.model, get_task(task).num_labels),\n" \
               "                                       P.run_config(task=task, method=method))" in code
    assert calls.count("experiments.validate") == 1  # in the setup cell, before any work


@pytest.mark.parametrize("profile", ["smoke", "quick", "standard", "full"])
def test_notebook_1_trains_the_planned_runs(profile):
    P = profiles.resolve("01_change_analysis", profile)
    planned = plan.notebook_configs("01_change_analysis", profile)
    assert [p.config for p in planned] == [p.config for p in experiments.change_analysis(P)]
    full = [p.config for p in planned if p.group == experiments.FULL]
    assert [(c.task, c.seed, c.method, c.lr) for c in full] == [(t, s, "full", P.lr) for t in P.tasks for s in P.seeds]
    check = [p.config for p in planned if p.group == experiments.FROZEN_CHECK]
    assert [(c.task, c.seed, c.method, c.lr) for c in check] == [(P.tasks[0], P.seeds[0], "layernorm", P.layernorm_lr)]
    assert all(c.epochs == profiles.method_epochs(P.epochs, c.method) and c.model == P.model for c in full + check)
    code = _code("01_change_analysis")
    assert "planned = experiments.change_analysis(P)" in code
    assert "configs = [p.config for p in planned if p.group == experiments.FULL]\nresults = sweep.run_all(configs" in code
    assert "store.get_or_run(next(p.config for p in planned if p.group == experiments.FROZEN_CHECK)" in code


@pytest.mark.parametrize("profile", ["smoke", "quick", "standard", "full"])
def test_notebook_2_trains_the_planned_runs(profile):
    P = profiles.resolve("02_peft_comparison", profile)
    planned = plan.notebook_configs("02_peft_comparison", profile)
    assert ([p.config for p in planned]
            == experiments.method_configs(P, P.methods) + experiments.method_configs(P, P.comparators))
    tuning = experiments.tuning_seeds(P)
    for m in P.methods:  # every method on its tasks: every rate on the tuning seeds, one rate on every other seed
        grid = P.lr_grid.get(m, P.lr_grid["default"])
        runs = len(grid) * len(tuning) + len(P.seeds) - len(tuning)
        assert sum(p.config.method == m for p in planned) == len(experiments.method_tasks(P, m)) * runs
        assert all(p.known == (p.config.seed in tuning) for p in planned if p.config.method == m)
    # the notebook trains through experiments.decide_methods, which builds its runs with method_configs
    import inspect

    code = _code("02_peft_comparison")
    assert "experiments.decide_methods(P, store, P.methods, reference=\"layernorm\", run=run)" in code
    assert "experiments.decide_methods(P, store, [\"layernorm\", *P.comparators]" in code
    assert "run_tuned(P, [reference, *others], run, seeds_by_arm)" in inspect.getsource(experiments.decide_methods)
    assert "method_configs(P, methods, seeds_by_arm, chosen_rates(P, first))" in inspect.getsource(experiments.run_tuned)


@pytest.mark.parametrize("profile", ["smoke", "quick", "standard"])
def test_plan_counts_notebook_3s_runs(profile, tmp_path, pretrained_state):
    P = profiles.resolve("03_fisher_subsets", profile)
    ln = {n: v for n, v in pretrained_state.items() if "LayerNorm" in n}
    gen = torch.Generator().manual_seed(0)
    fishers = {(t, p, s): {n: torch.rand(v.shape, generator=gen) for n, v in ln.items()}
               for t in P.tasks for p in P.fisher_points for s in P.seeds}
    runs = [c for _, c in experiments.masked_runs(P, fishers, str(tmp_path / "masks"))]
    runs += experiments.baselines(P)
    runs += [c for t in P.tasks for p in P.fisher_points for s in P.seeds
             if (c := experiments.fisher_start(P, p, t, s)) is not None]
    assert not P.cv_fractions  # (both profiles): union / intersection runs are counted by rule only
    planned = plan.notebook_configs("03_fisher_subsets", profile)
    known = {p.config.run_id() for p in planned if p.known}
    assert len({c.run_id() for c in runs}) == len(known) + sum(not p.known for p in planned)
    assert known <= {c.run_id() for c in runs}
    # the notebook's own lines: the same functions build its runs
    import inspect

    code = _code("03_fisher_subsets")
    assert "experiments.decide_subsets(\n    P, store, fishers_for, mask_dir, run)" in code
    assert "masked_runs(P, fishers, mask_dir, chosen)" in inspect.getsource(experiments.decide_subsets)
    assert "experiments.fold_fishers(P, store, task, point, seed" in code
    assert "start=fisher_start(P, point, task, seed)" in inspect.getsource(experiments.fold_fishers)
    assert "run(experiments.baselines(P)" in code and "experiments.cv_runs(P, by_seed, mask_dir)" in code
    assert "make = experiments.make_config(P)" in code


@pytest.mark.parametrize("profile", ["smoke", "quick"])
def test_validate_checks_every_kind_of_run_and_names_the_bad_value(profile, monkeypatch):
    from lnft.errors import LnftError

    for name in experiments.NOTEBOOKS:
        P = profiles.resolve(name, profile)
        kinds = {(p.config.task, p.config.method) for p in experiments.runs(P)}
        checked = []
        real = experiments.RunConfig.validate
        monkeypatch.setattr(experiments.RunConfig, "validate", lambda self: checked.append(self) or real(self))
        assert experiments.validate(P) == len(checked) > 0
        monkeypatch.undo()
        assert {(c.task, c.method) for c in checked} == kinds  # every task × method the notebook trains
    P = profiles.resolve("02_peft_comparison", profile)
    with pytest.raises(LnftError, match="invalid layernorm_lr -1.0"):  # a Params built by hand: the schema too
        experiments.validate(profiles.Params("01_change_analysis", profile,
                                             {**profiles.resolve("01_change_analysis", profile).values,
                                              "layernorm_lr": -1.0}))
    with pytest.raises(LnftError, match="methods must include 'layernorm'"):  # and the notebook's rules
        experiments.validate(profiles.Params(P.notebook, profile, {**P.values, "methods": ["full", "head"],
                                                                     "method_tasks": {}}))


def test_rates_are_keyed_by_precision(tiny):
    from types import SimpleNamespace

    def result(precision, seconds):  # the steps' seconds; evaluations and the pool come on top (counted apart)
        return SimpleNamespace(steps=10, train_seconds=seconds, total_seconds=seconds + 100.0, device="cpu",
                               config=tiny(task="sst2", method="head", precision=precision))

    rates = plan.rates_from_store([result("fp32", 32.0), result("bf16", 8.0), result("fp32", 48.0)])
    model = tiny().model
    assert rates == {(model, "cpu", "fp32", "head"): 40.0 / (10 * tiny().batch_size),
                     (model, "cpu", "bf16", "head"): 8.0 / (10 * tiny().batch_size)}
    assert plan.rate_key(tiny(method="head", precision="fp32", device="cpu")) == (model, "cpu", "fp32", "head")


def test_plan_command_counts_the_store(tiny, tmp_path, capsys):
    store = RunStore(tmp_path)
    first = plan.notebook_configs("02_peft_comparison", "smoke")[0].config
    store.get_or_run(first, progress=False)
    assert main(["plan", "--profile", "smoke", "--notebooks", "02_peft_comparison", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    frame = plan.plan_frame("smoke", ["02_peft_comparison"], store)
    assert frame["in store"].sum() == 1 and frame["to train"].sum() == frame["new"].sum() - 1
    assert f"{frame['new'].sum()} distinct runs, 1 in the store" in out
    row = frame[frame["group"] == first.method].iloc[0]  # measured: this method has a rate, so hours are known
    assert row["to train"] == 0 or row["hours"] > 0
    assert frame[frame["group"] == "lora"]["hours"].isna().all()  # no record of lora here: unknown, not guessed


def test_plan_counts_the_evaluation_passes(tiny):
    """Each run to train scores its validation split at every evaluation and its dev splits once: on top of
    the steps, at the scoring rate (a measured full SST-2 run here: 57 s of steps, 24 s of validation passes)."""
    planned = plan.notebook_configs("02_peft_comparison", "standard")
    rates = {plan.rate_key(planned[0].config, m): 0.01 for m in {p.config.method for p in planned}}
    factors = {plan.rate_key(planned[0].config)[:3] + (t,): 1.0 for t in ("mrpc", "stsb", "cola")}
    frame = plan.plan_frame("standard", ["02_peft_comparison"], rates=rates, factors=factors)
    cfg = next(p.config for p in planned if p.config.task == "sst2")
    sizes = plan.split_sizes(cfg)
    assert sizes["validation"] == 1500 and sizes["dev"] == 872  # SST-2: 10 % of the train file capped; its dev
    row = frame[(frame["task"] == "sst2") & (frame["group"] == "head")].iloc[0]
    scored = cfg.epochs * sizes["validation"] + sizes["dev"]
    assert row["eval hours"] == pytest.approx(0.01 * plan.SCORING_SHARE * scored * row["new"] / 3600)
    assert row["hours"] == pytest.approx(row["eval hours"] + row["pool hours"] + 0.01 * row["examples x epochs"] / 3600,
                                         rel=0.05)  # steps: whole batches
    assert plan.evaluations(dataclasses.replace(cfg, eval_every=16), 104) == 7


def test_a_tasks_rate_is_its_methods_rate_times_its_measured_factor(tiny):
    """Sentence pairs cost more per step than single sentences (measured here: a full MRPC step 3.7x an SST-2
    step): a task's runs scale their method's rate by the task's factor from stored runs of both tasks, or stay
    unknown; the store's own rate for a method and task wins."""
    from types import SimpleNamespace

    def result(task, method, seconds):
        return SimpleNamespace(steps=10, train_seconds=seconds, total_seconds=seconds + 50.0, device="cpu",
                               config=tiny(task=task, method=method, precision="fp32"))

    stored = [result("sst2", "full", 32.0), result("stsb", "full", 96.0), result("sst2", "head", 16.0)]
    model = tiny().model
    assert plan.task_factors_from_store(stored) == {(model, "cpu", "fp32", "stsb"): pytest.approx(3.0)}
    rates, exact = plan.rates_from_store(stored), plan._step_rates(stored)
    factors = plan.task_factors_from_store(stored)
    head = tiny(task="stsb", method="head", precision="fp32", device="cpu")
    assert plan._rate(head, rates, exact, factors) == pytest.approx(3.0 * 16.0 / (10 * tiny().batch_size))
    full = tiny(task="stsb", method="full", precision="fp32", device="cpu")
    assert plan._rate(full, rates, exact, factors) == pytest.approx(96.0 / (10 * tiny().batch_size))  # its own
    assert plan._rate(tiny(task="mrpc", method="head", precision="fp32", device="cpu"), rates, exact, factors) is None


def test_plan_counts_the_held_out_pools_scoring(tiny):
    """standard pools every task (lnft.pool): each run to train scores its task's pool once, counted at the
    stated share of a training example-step until pooled runs in the store measure it."""
    planned = plan.notebook_configs("02_peft_comparison", "standard")
    methods = {p.config.method for p in planned}
    rates = {plan.rate_key(planned[0].config, m): 0.01 for m in methods}
    factors = {plan.rate_key(planned[0].config)[:3] + (t,): 2.0 for t in ("mrpc", "stsb", "cola")}
    frame = plan.plan_frame("standard", ["02_peft_comparison"], rates=rates, factors=factors)
    sizes = {"sst2": 4000, "mrpc": 1400, "stsb": 3400, "cola": 4000}  # lnft/profiles.py, standard
    for _, row in frame.iterrows():
        assert row["pool examples"] == sizes[row["task"]] * row["new"]  # every new run scores its pool once
        rate = 0.01 * (1.0 if row["task"] == "sst2" else 2.0)  # the task factor scales the method's rate
        assert row["pool hours"] == pytest.approx(rate * plan.SCORING_SHARE * sizes[row["task"]] * row["new"] / 3600)
    quick = plan.plan_frame("quick", ["02_peft_comparison"], rates=rates)
    assert quick["pool examples"].sum() == 0 and quick["pool hours"].sum() == 0


def test_the_paper_profile_plans_offline_on_the_embedded_copy_of_glue(monkeypatch):
    """Issue 37.5: `lnft plan --profile paper` prints its GPU hours where the hub cannot be reached: the hub's
    GLUE is counted on the embedded copy of the same files, a hub model's runs are never counted as stored, and
    the plan says so. Simulated offline (the tests must not depend on the network either way)."""
    from lnft import sources
    from lnft.config import RunConfig
    from lnft.constants import EMBEDDED, HUB_GLUE
    from lnft.errors import LnftError

    real_source, real_run_id = sources.data_source, RunConfig.run_id

    class Offline:
        def check(self):
            raise LnftError(f"hub dataset {HUB_GLUE!r} cannot be loaded: offline (simulated)")

    monkeypatch.setattr(sources, "data_source", lambda data, task: Offline() if data == HUB_GLUE else real_source(data, task))

    def run_id(self):
        if self.model != EMBEDDED:
            raise LnftError(f"hub model {self.model!r} cannot be loaded: offline (simulated) and not cached")
        return real_run_id(self)

    monkeypatch.setattr(RunConfig, "run_id", run_id)
    monkeypatch.setattr(plan, "OFFLINE_SIZES", [])
    frame = plan.plan_frame("paper", ["02_peft_comparison"])
    assert set(frame["task"]) == {"cola", "sst2", "mrpc", "stsb", "rte"}
    assert (frame["GPU hours"] > 0).all() and (frame["in store"] == 0).all() and frame["examples x epochs"].sum() > 0
    assert plan.OFFLINE_SIZES == [HUB_GLUE]  # its run ids would be the copy's: none is looked up
    monkeypatch.setattr(plan, "offline_stand_in", lambda profile: None)  # the data reachable, the model not
    reachable = lambda data, task: real_source(EMBEDDED if data == HUB_GLUE else data, task)  # noqa: E731
    monkeypatch.setattr(sources, "data_source", reachable)
    monkeypatch.setattr("lnft.data.data_source", reachable)
    frame = plan.plan_frame("paper", ["02_peft_comparison"])
    assert (frame["in store"] == 0).all() and plan.OFFLINE_SIZES == ["bert-large-cased"]
    # SST-2's full train file (67,349 rows less the 10 % validation split) is what each paper SST-2 run trains on
    sst2 = frame[(frame["task"] == "sst2") & (frame["group"] == "full")].iloc[0]
    assert sst2["examples x epochs"] == sst2["to train"] * 10 * (67349 - round(0.1 * 67349))
