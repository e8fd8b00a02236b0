"""Early stopping, evaluation interval, per-method budgets and the undertrained flags."""
import dataclasses

import pandas as pd
import pytest
import torch

import lnft.train
from lnft import aggregate, profiles, sweep
from lnft.cli import main
from lnft.errors import LnftError
from lnft.train import finetune


def scripted_validation(monkeypatch, scores):
    """Replace the validation evaluation by a scripted sequence of scores (one per evaluation)."""
    calls = iter(scores)

    def fake(*args, **kwargs):
        score = next(calls)
        return {"accuracy": score / 100, "score": float(score)}

    monkeypatch.setattr(lnft.train, "evaluate_validation", fake)


def test_run_stops_after_patience_evaluations_without_improvement_and_keeps_the_best(tiny, monkeypatch):
    # 24 examples, batch 8: 3 steps per epoch, 4 epochs = a budget of 12 steps, one evaluation per step
    scripted_validation(monkeypatch, [50, 60, 55, 60, 58, 90, 90, 90, 90, 90, 90, 90])
    r = finetune(tiny(task="sst2", method="head", epochs=4, eval_every=1, patience=3, lr=1e-2), progress=False).result
    assert [h["step"] for h in r.history] == [1, 2, 3, 4, 5]  # 55, 60 (not better), 58: three without improvement
    assert r.steps == 5 and r.max_steps == 12 and r.stopped_early and not r.still_improving
    assert r.best_step == 2 and r.best_epoch == 1 and r.validation_metrics["score"] == 60
    assert [h["epoch"] for h in r.history][:3] == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_the_best_checkpoint_is_kept_not_the_last_step(tiny, monkeypatch):
    cfg = tiny(task="sst2", method="head", epochs=2, eval_every=1, lr=5e-2)  # 6 steps, an evaluation after each
    scripted_validation(monkeypatch, [10, 80, 20, 30, 40, 50])
    whole = finetune(cfg, progress=False)
    assert [h["step"] for h in whole.result.history] == [1, 2, 3, 4, 5, 6] and whole.result.best_step == 2
    assert not whole.result.stopped_early  # patience 0: the whole budget
    scripted_validation(monkeypatch, [10, 80, 20])
    stopped = finetune(dataclasses.replace(cfg, patience=1), progress=False)  # same steps, stops after step 3
    assert stopped.result.steps == 3 and stopped.result.best_step == 2 and stopped.result.stopped_early
    scripted_validation(monkeypatch, [10, 20, 30, 40, 50, 80])
    last = finetune(cfg, progress=False)  # the same training, but the last evaluation is the best
    for name, tensor in whole.trained.items():
        assert torch.equal(tensor, stopped.trained[name]), name  # both kept step 2, bit for bit
        assert torch.equal(whole.model.state_dict()[name], tensor)  # and the model holds it
    assert any(not torch.equal(whole.trained[n], last.trained[n]) for n in whole.trained)


def test_eval_every_sets_the_evaluation_steps_and_the_last_step_is_always_evaluated(tiny):
    r = finetune(tiny(task="sst2", method="head", epochs=2, eval_every=4), progress=False).result
    assert [h["step"] for h in r.history] == [4, 6] and r.steps == r.max_steps == 6
    default = finetune(tiny(task="sst2", method="head", epochs=2), progress=False).result
    assert [h["step"] for h in default.history] == [3, 6] and [h["epoch"] for h in default.history] == [1, 2]


def test_a_run_cut_off_while_improving_is_flagged_everywhere(tiny, monkeypatch, tmp_path, capsys):
    scripted_validation(monkeypatch, [50, 60, 70])  # still rising at the last evaluation
    r = finetune(tiny(task="sst2", method="layernorm", epochs=1, eval_every=1, patience=2), progress=False).result
    assert r.best_step == r.steps == 3 and r.still_improving and not r.stopped_early
    assert r.summary()["still_improving"] is True
    scripted_validation(monkeypatch, [50, 70, 60])  # converged: its best evaluation is not the last
    ok = finetune(tiny(task="sst2", method="full", epochs=1, eval_every=1, lr=1e-5), progress=False).result
    assert not ok.still_improving

    frame = sweep.results_frame([r, ok])
    # as if each arm had been tuned inside a 3-rate grid (a one-rate arm is a † of its own: test_lr_at_the_edge...)
    summary = aggregate.summarize(frame, aggregate.select_lr(frame).assign(lr_rates=3))
    flagged = summary.set_index("method")
    assert flagged.loc["layernorm", "undertrained"] and not flagged.loc["full", "undertrained"]
    assert aggregate.summarize(frame, aggregate.select_lr(frame))["undertrained"].all()  # one rate each: both †
    assert "still improving" in flagged.loc["layernorm", "flags"]
    table = aggregate.glue_table(summary)
    assert table.loc["layernorm", "sst2"].endswith("†") and not table.loc["full", "sst2"].endswith("†")
    assert "still improving" in table.loc["layernorm", "flags"] and table.loc["full", "steps/run"] == "3"
    table = pd.DataFrame({"task": ["sst2", "average"], "a": ["layernorm", "layernorm"], "b": ["full", "full"]})
    flagged = aggregate.flag_verdicts(table, summary)  # on a verdict table of lnft.stats, as notebook 2 flags it
    assert flagged["undertrained"].all() and flagged["flags"].str.contains("layernorm.*still improving").all()
    assert flagged["flags"].iloc[0].startswith("layernorm: still improving")
    assert flagged["flags"].iloc[1].startswith("layernorm (sst2): still improving")  # the average row names the task
    assert not aggregate.flag_verdicts(table.assign(a="full"), summary)["undertrained"].any()
    line = aggregate.caveat(flagged["undertrained"].iloc[0], flagged["flags"].iloc[0])
    assert line == f" [† possibly undertrained: {flagged['flags'].iloc[0]}]"
    assert aggregate.caveat(False, "one lr tried") == "" and aggregate.caveat(False, "") == ""
    assert aggregate.caveat(False, "one lr tried", unflagged=True) == " [one lr tried]"
    assert aggregate.join_texts(["a", "", "b", "a"]) == "a; b"


def test_early_stopping_invariants_hold_for_trained_runs_and_name_what_breaks(tiny, monkeypatch):
    scripted_validation(monkeypatch, [50, 60, 55, 60, 58, 90, 90, 90, 90, 90, 90, 90])
    stopped = finetune(tiny(task="sst2", method="head", epochs=4, eval_every=1, patience=3, lr=1e-2), progress=False).result
    scripted_validation(monkeypatch, [50, 60, 70])
    rising = finetune(tiny(task="sst2", method="head", epochs=1, eval_every=1, lr=1e-2), progress=False).result
    assert stopped.stopped_early and rising.still_improving
    assert aggregate.early_stopping_problems([stopped, rising]) == []
    broken = {
        "over its budget": dataclasses.replace(rising, max_steps=2),
        "not at its last step": dataclasses.replace(rising, steps=2, max_steps=3),
        "was not evaluated": dataclasses.replace(rising, best_step=7),
        "is not the best on validation": dataclasses.replace(rising, best_step=2),
        "without patience 0": dataclasses.replace(stopped, config=dataclasses.replace(stopped.config, patience=0)),
        "without patience 4": dataclasses.replace(stopped, config=dataclasses.replace(stopped.config, patience=4)),
        "no evaluation": dataclasses.replace(rising, history=[]),
    }
    for words, result in broken.items():
        problems = aggregate.early_stopping_problems([stopped, result])
        assert len(problems) >= 1 and all(p.startswith(result.run_id) for p in problems), (words, problems)
        assert any(words in p for p in problems), (words, problems)


def test_a_run_that_annealed_to_the_end_is_noted_not_flagged(tiny, monkeypatch):
    scripted_validation(monkeypatch, [50, 70, 70.25])  # best = last, by a hair: flat while the rate decayed to 0
    flat = finetune(tiny(task="sst2", method="layernorm", epochs=1, eval_every=1, patience=2), progress=False).result
    scripted_validation(monkeypatch, [50, 60, 70])
    rising = finetune(tiny(task="sst2", method="full", epochs=1, eval_every=1, lr=1e-5), progress=False).result
    assert flat.still_improving and rising.still_improving  # both: best evaluation = last evaluation
    assert aggregate.last_gain(flat) == pytest.approx(0.25) and aggregate.last_gain(rising) == pytest.approx(10)
    assert aggregate.end_state(flat.still_improving, aggregate.last_gain(flat)) == "annealed"
    assert aggregate.end_state(rising.still_improving, aggregate.last_gain(rising)) == "improving"
    assert aggregate.end_state(True, float("inf")) == "improving" and aggregate.end_state(False, 9.0) == ""
    frame = sweep.results_frame([flat, rising])
    summary = aggregate.summarize(frame, aggregate.select_lr(frame).assign(lr_rates=3)).set_index("method")
    assert not summary.loc["layernorm", "undertrained"] and summary.loc["layernorm", "annealed"] == 1
    assert "annealed to the end" in summary.loc["layernorm", "flags"] and "still improving" not in summary.loc["layernorm", "flags"]
    assert summary.loc["full", "undertrained"] and "still improving" in summary.loc["full", "flags"]


def test_lr_at_the_edge_of_its_grid_is_flagged():
    rows = []
    for lr, val in ((1e-3, 60), (3e-3, 70), (1e-2, 80)):  # best at the top of the grid for layernorm
        for method in ("layernorm", "full"):
            v = val if method == "layernorm" else {1e-3: 60, 3e-3: 90, 1e-2: 70}[lr]  # full: inside the grid
            base = dict(task="sst2", method=method, seed=0, lr=lr, trainable_params=1, trainable_percent=1.0,
                        steps=10, train_seconds=1.0, still_improving=False)
            rows += [{**base, "split": "validation", "metric": "score", "value": v},
                     {**base, "split": "dev", "metric": "score", "value": v}]
    frame = pd.DataFrame(rows)
    chosen = aggregate.select_lr(frame).set_index("method")
    assert chosen.loc["layernorm", "lr_at_edge"] and not chosen.loc["full", "lr_at_edge"]
    assert chosen.loc["layernorm", "lr_rates"] == 3
    summary = aggregate.summarize(frame, aggregate.select_lr(frame)).set_index("method")
    assert summary.loc["layernorm", "undertrained"] and "edge of its grid" in summary.loc["layernorm", "flags"]
    assert not summary.loc["full", "undertrained"] and summary.loc["full", "flags"] == ""
    one = aggregate.summarize(frame[frame["lr"] == 1e-2], aggregate.select_lr(frame[frame["lr"] == 1e-2]))
    # an arm given one rate only was never tuned: a † like a rate at the edge (issue 32)
    assert (one["flags"] == "one lr tried (untuned)").all() and one["undertrained"].all()
    table = aggregate.glue_table(one)
    assert table["sst2"].str.endswith("†").all()


def test_patience_and_eval_every_enter_the_run_id(tiny):
    base = tiny(task="sst2", method="head")
    ids = {base.run_id(), dataclasses.replace(base, patience=3).run_id(),
           dataclasses.replace(base, eval_every=5).run_id(), dataclasses.replace(base, epochs=4).run_id()}
    assert len(ids) == 4


@pytest.mark.parametrize("field,value", [("patience", -1), ("patience", 1.5), ("patience", True),
                                         ("eval_every", 0), ("eval_every", -2), ("eval_every", "5")])
def test_bad_patience_or_eval_every_is_one_line_error(tiny, field, value):
    with pytest.raises(LnftError, match=f"invalid {field} {value!r}") as err:
        tiny(**{field: value}).validate()
    assert "\n" not in str(err.value) and "allowed" in str(err.value)


def test_cli_flags_and_bad_values(tmp_path, capsys):
    assert main(["train", "--task", "sst2", "--method", "head", "--patience", "-1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "invalid patience -1" in err and not any(tmp_path.iterdir())
    assert main(["train", "--task", "sst2", "--method", "head", "--eval-every", "0", "--out", str(tmp_path)]) == 2
    assert "invalid eval_every 0" in capsys.readouterr().err
    args = ["train", "--task", "sst2", "--method", "head", "--max-train-samples", "24", "--max-eval-samples", "16",
            "--batch-size", "8", "--epochs", "3", "--patience", "1", "--eval-every", "2", "--lr", "1e-12",
            "--device", "cpu", "--no-progress", "--out", str(tmp_path), "--json"]
    assert main(args) == 0
    import json

    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # a rate of 1e-12 changes nothing: the second evaluation is no better, and patience 1 stops the run there
    assert s["steps"] == 4 and s["max_steps"] == 9 and s["best_step"] == 2 and s["stopped_early"]


def test_profiles_give_each_method_its_budget():
    p = profiles.resolve("02_peft_comparison", "quick")
    full, ln = p.run_config(task="sst2", method="full"), p.run_config(task="sst2", method="layernorm")
    assert full.epochs == profiles.method_epochs(p.epochs, "full") == ln.epochs  # one maximum budget (issue 32)
    per = profiles.resolve("02_peft_comparison", "quick", epochs={"full": 3, "default": 5})
    assert per.run_config(method="full").epochs == 3 < per.run_config(method="layernorm").epochs  # still possible
    assert full.patience == ln.patience == p.patience and full.eval_every == p.eval_every
    assert p.run_config(task="sst2", method="layernorm", epochs=1).epochs == 1  # an explicit field wins
    nb1 = profiles.resolve("01_change_analysis", "quick")
    assert nb1.run_config(task="sst2", method="full", seed=0, lr=1e-4) == \
        p.run_config(task="sst2", method="full", seed=0, lr=1e-4)  # notebooks 1 and 2 share full runs
    assert set(p.budgets()["method"]) == set(p.methods)
    assert profiles.resolve("02_peft_comparison", "quick", epochs=3).run_config(method="lora").epochs == 3
    with pytest.raises(LnftError, match=r"invalid epochs \{'ful': 3, 'default': 2\}; allowed: an integer >= 1, or \{method"):
        profiles.resolve("02_peft_comparison", "quick", epochs={"ful": 3, "default": 2})
    with pytest.raises(LnftError, match="no budget for method 'lora'"):
        profiles.resolve("02_peft_comparison", "quick", epochs={"full": 3}).run_config(method="lora")
