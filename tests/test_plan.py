"""``lnft plan`` builds the configs the notebooks build: checked against the notebooks' own code (their
config lines executed here) and, for notebook 3's masked runs, against ``subsets.subset_plan`` on
stand-in Fisher values."""
import json
import os
import re

import pytest
import torch

from lnft import plan, profiles, subsets
from lnft.cli import main
from lnft.store import RunStore

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")


def _cells(name):
    with open(os.path.join(NOTEBOOKS, name + ".ipynb"), encoding="utf-8") as fh:
        return ["".join(c["source"]) for c in json.load(fh)["cells"] if c["cell_type"] == "code"]


def _notebook_configs(name, profile, tmp_path):
    """Run the notebook's parameters and setup cells, then its config lines (up to the sweep call)."""
    cells = _cells(name)
    scope = {}
    exec(cells[0] + f"\nprofile = {profile!r}\nruns_dir = {str(tmp_path)!r}", scope)
    exec(cells[1], scope)
    run_cell = next(c for c in cells if "sweep.run_all(configs" in c)
    exec(run_cell[:run_cell.index("results = sweep.run_all")], scope)
    why_cell = next((c for c in cells if "sweep.run_all(why_configs" in c), None)  # notebook 2's "why LayerNorm"
    if why_cell:
        exec(why_cell[:why_cell.index("why_results = sweep.run_all")], scope)
    return scope


@pytest.mark.parametrize("profile", ["smoke", "quick", "standard", "full"])
def test_plan_builds_the_notebooks_configs(profile, tmp_path):
    scope = _notebook_configs("01_change_analysis", profile, tmp_path)
    planned = [p.config for p in plan.notebook_configs("01_change_analysis", profile)]
    check = re.search(r"store\.get_or_run\((P\.run_config\(.*?\)),\s*\n", "\n".join(_cells("01_change_analysis")), re.S)
    assert planned == scope["configs"] + [eval(check.group(1), scope)]
    # notebook 2 builds its runs in lnft.decide.method_configs (through decide.method_verdicts): plan counts the
    # same first look, and the notebook calls exactly that
    from lnft import decide

    P = profiles.resolve("02_peft_comparison", profile)
    assert ([p.config for p in plan.notebook_configs("02_peft_comparison", profile)]
            == decide.method_configs(P, P.methods) + decide.method_configs(P, P.comparators))
    code = "\n".join(_cells("02_peft_comparison"))
    assert "deciding.method_verdicts(P, store, P.methods, reference=\"layernorm\", run=run)" in code
    assert "deciding.method_verdicts(P, store, [\"layernorm\", *P.comparators]" in code
    for m in P.methods:  # every method on its tasks, every rate, every seed of the first look
        grid = P.lr_grid.get(m, P.lr_grid["default"])
        assert sum(c.method == m for c in decide.method_configs(P, P.methods)) == len(
            decide.method_tasks(P, m)) * len(grid) * len(P.seeds)


@pytest.mark.parametrize("profile", ["smoke", "quick", "standard"])
def test_plan_counts_notebook_3s_runs(profile, tmp_path, pretrained_state):
    P = profiles.resolve("03_fisher_subsets", profile)
    ln = {n: v for n, v in pretrained_state.items() if "LayerNorm" in n}
    gen = torch.Generator().manual_seed(0)
    fishers = {(t, p, s): {n: torch.rand(v.shape, generator=gen) for n, v in ln.items()}
               for t in P.tasks for p in P.fisher_points for s in P.seeds}

    def make(**fields):
        return P.run_config(lr=P.lr, **fields)

    runs = [c for _, c in subsets.subset_plan(fishers, P.fractions, make, str(tmp_path / "masks"), lrs=P.masked_lrs,
                                              rules=P.rules)]
    runs += [P.run_config(task=t, method="full", seed=s, lr=P.baseline_lr["full"]) for t in P.tasks for s in P.seeds]
    runs += [c for t in P.tasks for p in P.fisher_points for s in P.seeds
             if (c := subsets.start_config(p, make, t, s, held_out=P.folds * P.fisher_samples)) is not None]
    assert not P.cv_fractions  # (both profiles): union / intersection runs are counted by rule only
    planned = plan.notebook_configs("03_fisher_subsets", profile)
    known = {p.config.run_id() for p in planned if p.known}
    assert len({c.run_id() for c in runs}) == len(known) + sum(not p.known for p in planned)
    assert known <= {c.run_id() for c in runs}
    # the notebook's own lines: the same grid, rules and start runs as counted here
    code = "\n".join(_cells("03_fisher_subsets"))
    import inspect

    assert "subsets.until_decided(\n    P, store, fishers_for, make, mask_dir, run)" in code
    assert ("subset_plan(fishers, P.fractions, make, mask_dir, lrs=P.masked_lrs, rules=P.rules)"
            in inspect.getsource(subsets.until_decided))
    assert "subsets.start_config(point, make, task, seed, held_out=held_out)" in code
    assert "held_out = P.folds * P.fisher_samples" in code


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
