"""Issue 32, a fair fight for claim 2: the head reads the checkpoint's own pooling, every arm's head trains at one
rate, the training draw follows the seed, floors and costs stand beside the scores, every arm tunes its rate."""
import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from lnft import RunConfig, costs, experiments, floors, methods, pooling, profiles
from lnft.errors import LnftError
from lnft.models import auto_pooling, load_model, load_tokenizer

SMALL = dict(max_train_samples=24, max_eval_samples=16, epochs=1, batch_size=8, device="cpu")


# ------------------------------------------------------------------ 1. pooling
def test_the_embedded_checkpoint_is_read_by_its_own_mean_pooling():
    from lnft.sources import embedded_model_path

    directory = embedded_model_path()
    assert pooling.sentence_transformers_pooling(directory) == "mean"  # its 1_Pooling config
    assert pooling.pooler_untrained(directory, "bert")  # and its pooler bias is all zeros
    assert auto_pooling("embedded") == "mean" and RunConfig().validate().pooling == "mean"
    assert RunConfig(pooling="pooler").validate().pooling == "pooler"
    ids = {p: RunConfig(pooling=p).run_id() for p in ("auto", "mean", "pooler")}
    assert ids["auto"] == ids["mean"] != ids["pooler"]  # the choice enters the run id
    with pytest.raises(LnftError, match="invalid pooling 'cls'; allowed: auto, pooler, mean"):
        RunConfig(pooling="cls").validate()


def _bert_dir(tmp_path, *, bias: float | None, st_mode: str | None = None):
    """A tiny BERT saved with its pooler bias set to ``bias`` (None: no pooler in the checkpoint) and, with
    ``st_mode``, a sentence-transformers pooling config beside it."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoModelForSequenceClassification

    torch.manual_seed(0)
    config = AutoConfig.for_model("bert", vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=20)
    model = AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    if bias is None:
        weights = {k: v for k, v in weights.items() if "pooler" not in k}
    else:
        weights["bert.pooler.dense.bias"] = torch.full_like(weights["bert.pooler.dense.bias"], bias)
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    if st_mode:
        (tmp_path / "1_Pooling").mkdir()
        (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({f"pooling_mode_{st_mode}": True}))
    return str(tmp_path)


@pytest.mark.parametrize("bias, st_mode, model_type, expected", [
    (0.1, None, "bert", "pooler"),  # a pre-trained pooler (BERT's NSP): BERT's path, the paper's
    (0.0, None, "bert", "mean"),  # an untrained pooler: zero bias
    (None, None, "bert", "mean"),  # no pooler in the checkpoint
    (0.1, "mean_tokens", "bert", "mean"),  # a sentence-transformers checkpoint trained for mean pooling
    (0.1, "cls_token", "bert", "pooler"),  # one trained for [CLS]: the model class's head
    (0.0, None, "roberta", "pooler"),  # a family whose head never reads the encoder's pooler
])
def test_pooling_rule(tmp_path, bias, st_mode, model_type, expected):
    assert pooling.detect(_bert_dir(tmp_path, bias=bias, st_mode=st_mode), model_type) == expected


def test_mean_pooling_ignores_padding_and_leaves_no_pooler():
    model = load_model("embedded", 2, "mean").eval()
    names = [n for n, _ in model.named_parameters()]
    assert not any("pooler" in n for n in names) and {"classifier.weight", "classifier.bias"} <= set(names)
    assert sum(p.numel() for p in model.parameters()) == 22_713_986 - 384 * 384 - 384  # the pooler left out
    tok = load_tokenizer("embedded")
    short = tok(["a fine film"], return_tensors="pt")
    padded = tok(["a fine film"], padding="max_length", max_length=20, return_tensors="pt")
    with torch.no_grad():
        a, b = model(**short).logits, model(**padded).logits
    assert torch.allclose(a, b, atol=1e-5)  # masked mean: padding does not move it
    hidden = torch.randn(2, 5, 3)
    keep = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])
    additive = (1.0 - keep[:, None, None, :].float()) * torch.finfo(torch.float32).min  # lnft.fisher's form
    expected = torch.stack([hidden[0, :2].mean(0), hidden[1].mean(0)])
    assert torch.allclose(pooling.mean_pool(hidden, keep), expected, atol=1e-6)
    assert torch.allclose(pooling.mean_pool(hidden, additive), expected, atol=1e-6)


@pytest.mark.parametrize("method", ["full", "layernorm", "bitfit", "lora", "ia3", "head"])
def test_every_method_trains_through_the_mean_pooled_head(method):
    cfg = RunConfig(method=method, pooling="mean").validate()
    torch.manual_seed(0)
    prepared = methods.prepare(load_model("embedded", 2, "mean"), cfg)
    assert not any("pooler" in n for n in prepared.trainable)
    tok = load_tokenizer("embedded")
    batch = tok(["a fine film", "dull"], padding=True, return_tensors="pt")
    before = {n: p.detach().clone() for n, p in prepared.trainable.items()}
    optimizer = torch.optim.AdamW(methods.param_groups(prepared, cfg))
    loss = prepared.model(**batch, labels=torch.tensor([1, 0])).loss
    loss.backward()
    optimizer.step()
    moved = {n for n, p in prepared.trainable.items() if not torch.equal(p, before[n])}
    assert any(n.endswith("classifier.weight") for n in moved)
    assert method == "head" or any("classifier" not in n for n in moved)  # the body trains too


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert", "albert", "deberta-v2", "electra", "mpnet"])
def test_mean_pooled_head_works_for_every_family(tmp_path, family):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    kw = (dict(n_layers=1, dim=16, n_heads=2, hidden_dim=20) if family == "distilbert" else
          dict(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=20))
    if family in ("albert", "electra"):
        kw["embedding_size"] = 8
    torch.manual_seed(0)
    hf = AutoModelForSequenceClassification.from_config(AutoConfig.for_model(family, vocab_size=64, pad_token_id=0,
                                                                             num_labels=1, **kw))
    model = pooling.mean_pooled(hf, 1)
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    mask = (ids != 0).long()
    out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids), labels=torch.tensor([0.5, 1.0]))
    out.loss.backward()
    assert out.logits.shape == (2, 1) and model.classifier.weight.grad is not None
    assert not any("pooler" in n for n, _ in model.named_parameters())
    from lnft.components import describe_model

    infos = describe_model(model)
    assert {n for n, i in infos.items() if i.group == "head"} == {"classifier.weight", "classifier.bias"}


def test_methods_table_counts_follow_the_pooling():
    """lnft methods (cmd_methods) prepares RunConfig(method=...) on load_model's default: the resolved pooling."""
    counts = {p: methods.prepare(load_model("embedded", 2, p), RunConfig(method="bitfit", pooling=p)).trainable_params
              for p in ("mean", "pooler")}
    assert counts["pooler"] - counts["mean"] == 384  # the pooler's bias trains in BitFit only on BERT's path
    assert methods.prepare(load_model("embedded", 2), RunConfig(method="bitfit")).trainable_params == counts["mean"]


# ------------------------------------------------------------------ 3. the head's own rate
def test_head_rate_is_a_second_group_shared_by_every_arm():
    for method in ("full", "layernorm", "lora"):
        cfg = RunConfig(method=method, lr=1e-4, head_lr=1e-2).validate()
        prepared = methods.prepare(load_model("embedded", 2), cfg)
        groups = methods.param_groups(prepared, cfg)
        head = [g for g in groups if g["name"].startswith("head")]
        body = [g for g in groups if g["name"].startswith("body")]
        assert head and body and all(g["lr"] == 1e-2 for g in head) and all(g["lr"] == 1e-4 for g in body)
        assert sum(p.numel() for g in groups for p in g["params"]) == prepared.trainable_params
    head = RunConfig(method="head", lr=3e-3, head_lr=1e-2).validate()
    assert head.head_lr == 3e-3  # no body: the arm's lr is its head's rate
    assert RunConfig(lr=1e-3).validate().head_lr == 1e-3  # unset: the run's lr (the old behaviour)
    assert RunConfig(head_lr=1e-2).run_id() != RunConfig(head_lr=3e-3).run_id()
    with pytest.raises(LnftError, match="invalid head_lr"):
        RunConfig(head_lr=-1.0).validate()


def test_finetune_steps_the_head_at_its_own_rate(monkeypatch):
    from lnft import train

    seen = {}
    real = torch.optim.AdamW

    def spy(groups, **kw):
        seen["groups"] = [(g.get("name"), g["lr"]) for g in groups]
        return real(groups, **kw)

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    train.finetune(RunConfig(task="sst2", method="layernorm", lr=1e-3, head_lr=1e-2, **SMALL), progress=False)
    assert ("head", 1e-2) in seen["groups"] and ("body (no decay)", 1e-3) in seen["groups"]


# ------------------------------------------------------------------ 4. the training draw follows the seed
def test_data_seed_follows_the_seed_and_the_run_id_spells_both():
    from lnft.data import load_task_data
    from lnft.tasks import get_task

    a, b = RunConfig(seed=3, **SMALL).validate(), RunConfig(seed=4, **SMALL).validate()
    assert (a.data_seed, b.data_seed) == (3, 4)
    assert "-s3-d3-" in a.run_id() and "-s4-d4-" in b.run_id()
    fixed = RunConfig(seed=4, data_seed=3, **SMALL)
    assert "-s4-d3-" in fixed.run_id() and fixed.validate().data_seed == 3
    task = get_task("sst2")
    da, db = load_task_data(a, task), load_task_data(b, task)
    assert da["train"]["sentence1"][:] != db["train"]["sentence1"][:]  # another training draw per seed
    assert da["dev"]["sentence1"][:] == db["dev"]["sentence1"][:]  # the same dev examples: comparisons pair


# ------------------------------------------------------------------ 2. floors
def test_floors_majority_and_linear_probe(tmp_path, monkeypatch):
    from lnft.store import RunStore

    store = RunStore(tmp_path / "runs")
    cfg = RunConfig(task="sst2", method="head", seed=0, max_train_samples=48, max_eval_samples=32, device="cpu")
    found = floors.floors([cfg, dataclasses.replace(cfg, method="full")], store)  # one data draw: one pair
    assert [f.kind for f in found] == ["majority", "linear probe"]
    majority, probe = found
    dev = majority.predictions["dev"]
    assert len(set(dev.preds.tolist())) == 1 and majority.metrics["accuracy"] == pytest.approx(
        float(np.mean(dev.labels == dev.preds[0])))
    assert probe.regularisation in floors.PROBE_C and 0 <= probe.metrics["score"] <= 100
    from lnft.data import load_task_data
    from lnft.result import examples_digest
    from lnft.tasks import get_task

    assert probe.predictions["dev"].digest == examples_digest(load_task_data(cfg.validate(), get_task("sst2"))["dev"])
    frame = floors.floors_frame(found)
    assert set(frame["method"]) == set(floors.KINDS) and set(frame["split"]) == {"dev", "validation"}
    assert os.listdir(tmp_path / "runs" / floors.FLOORS_DIR)
    import lnft.models

    monkeypatch.setattr(lnft.models, "load_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = floors.floors_for(cfg, store)  # read from the cache: the model is never loaded
    assert again[1].metrics == probe.metrics


def test_regression_floor_is_the_training_mean(tmp_path):
    cfg = RunConfig(task="stsb", method="head", seed=0, max_train_samples=40, max_eval_samples=24, device="cpu")
    majority, probe = floors.floors_for(cfg)
    assert majority.metrics["pearson"] == 0.0 and probe.regularisation in floors.PROBE_ALPHA
    summary = floors.floors_summary([majority, probe])
    assert list(summary["floor"]) == ["majority", "linear probe"]


# ------------------------------------------------------------------ 3. every arm tuned the same way
def _params(**values):
    P = profiles.resolve("02_peft_comparison", "quick")
    return dataclasses.replace(P, values={**P.values, **values})


def test_rates_tuned_on_the_first_seed_then_every_seed_runs_the_chosen_rate():
    P = _params(tasks=["sst2"], methods=["layernorm", "head"], seeds=[0, 1, 2], tune_seeds=1)
    planned = experiments.method_configs(P, ["layernorm"])
    assert sorted((c.seed, c.lr) for c in planned) == [(0, 3e-3), (0, 1e-2), (0, 3e-2), (1, 1e-2), (2, 1e-2)]
    chosen = experiments.method_configs(P, ["layernorm"], chosen={("sst2", "layernorm"): 3e-2})
    assert sorted((c.seed, c.lr) for c in chosen if c.seed) == [(1, 3e-2), (2, 3e-2)]
    every = experiments.method_configs(_params(tasks=["sst2"], seeds=[0, 1], tune_seeds=None), ["layernorm"])
    assert len(every) == 6

    calls = []

    class R:  # a trained run, as much of it as choose_rates reads
        def __init__(self, c):
            self.config = c

    def run(configs):
        calls.append(configs)
        return [R(c) for c in configs]

    import lnft.sweep

    def frame(results):
        score = {3e-3: 70.0, 1e-2: 80.0, 3e-2: 75.0}
        return pd.DataFrame([{"task": r.config.task, "method": r.config.method, "seed": r.config.seed,
                              "lr": r.config.lr, "split": "validation", "metric": "score",
                              "value": score[r.config.lr]} for r in results])

    original = lnft.sweep.results_frame
    lnft.sweep.results_frame = frame
    try:
        out = experiments.run_tuned(P, ["layernorm"], run)
    finally:
        lnft.sweep.results_frame = original
    assert [len(c) for c in calls] == [3, 5]  # first the grid on seed 0, then every seed
    assert sorted((r.config.seed, r.config.lr) for r in out if r.config.seed) == [(1, 1e-2), (2, 1e-2)]


def test_profiles_use_the_protocol():
    for name in ("quick", "standard", "full"):
        P = profiles.resolve("02_peft_comparison", name)
        assert isinstance(P.epochs, int)  # the same maximum budget for every arm
        assert all(len(experiments.lr_grid(P, m)) >= 3 for m in P.methods + P.comparators), name
        assert P.head_lr == profiles.HEAD_LR and P.pooling == "auto" and P.tune_seeds == 1
        cfg = P.run_config(task="sst2", method="full", seed=1, lr=1e-4).validate()
        assert cfg.head_lr == profiles.HEAD_LR and cfg.pooling == "mean" and cfg.data_seed == 1
    with pytest.raises(LnftError, match="tune_seeds must not exceed"):
        profiles.resolve("02_peft_comparison", "quick", tune_seeds=3)


def test_one_rate_and_edge_rates_are_daggered():
    from lnft import aggregate

    row = {"still_improving": 0, "lr_at_edge": False, "lr_rates": 1, "lr": 1e-2, "seeds": 2}
    assert aggregate.undertrained(row) and "one lr tried" in aggregate.flags(row)
    assert not aggregate.undertrained({**row, "lr_rates": 3})
    assert aggregate.undertrained({**row, "lr_rates": 3, "lr_at_edge": True})


# ------------------------------------------------------------------ 5. costs
def test_costs_frame():
    def result(method, params, seconds, steps, memory, task="sst2"):
        cfg = RunConfig(task=task, method=method, lr=1e-3)
        return type("R", (), dict(config=cfg, trainable_params=params, total_params=1000, train_seconds=seconds,
                                   steps=steps, peak_memory_mb=memory, device="cpu"))()

    runs = [result("full", 1000, 10.0, 10, 200.0), result("layernorm", 10, 8.0, 10, 150.0),
            result("layernorm-masked", 5, 8.0, 10, 150.0)]
    frame = costs.costs_frame(runs).set_index("method")
    assert frame.loc["full", "stored_bytes"] == 4000 and frame.loc["layernorm", "stored_bytes"] == 40
    assert frame.loc["layernorm-masked", "stored_bytes"] == 40  # values and their indices
    assert frame.loc["layernorm", "step_ratio"] == pytest.approx(0.8)
    assert frame.loc["layernorm", "storage_ratio"] == pytest.approx(0.01)
    table = costs.costs_table(costs.costs_frame(runs), ["full", "layernorm"])
    assert list(table.index) == ["full", "layernorm"] and table.loc["layernorm", "step vs full"] == "0.80×"


def test_head_only_pairs_with_the_linear_probe_on_the_same_draws(tmp_path):
    from lnft import aggregate, sweep
    from lnft.store import RunStore

    store = RunStore(tmp_path / "runs")
    configs = [RunConfig(task="sst2", method="head", seed=s, lr=1e-2, **SMALL) for s in (0, 1)]
    results = sweep.run_all(configs, store, progress=False)
    found = floors.floors(configs, store)
    assert {f.seed for f in found} == {0, 1} and len({f.run_id for f in found}) == 4  # a floor per draw
    chosen = aggregate.select_lr(sweep.results_frame(results))
    row = floors.head_versus_probe(results, chosen, found, store).iloc[0]
    assert (row["a"], row["b"], row["a_seeds"], row["b_seeds"]) == ("head", "linear probe", 2, 2)
    assert np.isfinite(row["diff"]) and row["lo"] <= row["diff"] <= row["hi"]
    probe = np.mean([f.metrics["score"] for f in found if f.kind == "linear probe"])
    head = np.mean([r.metrics["score"] for r in results])
    assert row["diff"] == pytest.approx(head - probe, abs=1e-6)


def test_lnft_methods_names_the_pooling(capsys):
    from lnft.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("pooling 'mean' (auto)") and "22,566,146" in out  # no pooler: mean path
    assert main(["methods", "--pooling", "pooler"]) == 0
    assert "22,713,986" in capsys.readouterr().out
    assert main(["methods", "--pooling", "cls"]) == 2
    assert "invalid pooling 'cls'; allowed: auto, pooler, mean" in capsys.readouterr().err


def test_lnft_train_takes_the_protocol_options(tmp_path, capsys):
    from lnft.cli import main

    args = ["train", "--task", "sst2", "--method", "head", "--max-train-samples", "16", "--max-eval-samples", "8",
            "--epochs", "1", "--batch-size", "8", "--seed", "2", "--data-seed", "5", "--pooling", "pooler",
            "--head-lr", "0.01", "--device", "cpu", "--no-progress", "--out", str(tmp_path), "--json"]
    assert main(args) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "-s2-d5-" in s["run_id"] and s["trainable_params"] == 770
    record = json.load(open(os.path.join(s["run_dir"], "record.json")))
    assert record["config"]["pooling"] == "pooler" and record["config"]["data_seed"] == 5


def test_an_unvalidated_config_draws_the_same_data_as_its_validated_self():
    from lnft.data import load_task_data
    from lnft.tasks import get_task

    cfg = RunConfig(seed=7, **SMALL)
    raw, done = load_task_data(cfg, get_task("sst2")), load_task_data(cfg.validate(), get_task("sst2"))
    assert raw["train"]["sentence1"][:] == done["train"]["sentence1"][:]
