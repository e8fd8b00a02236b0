import pandas as pd
import pytest
import torch

from lnft import changes
from lnft.components import describe


def _state(layers=2, hidden=4):
    torch.manual_seed(0)
    state = {"bert.embeddings.word_embeddings.weight": torch.randn(10, hidden),
             "bert.embeddings.LayerNorm.weight": torch.ones(hidden), "bert.embeddings.LayerNorm.bias": torch.zeros(hidden),
             "bert.pooler.dense.weight": torch.randn(hidden, hidden), "bert.pooler.dense.bias": torch.zeros(hidden),
             "classifier.weight": torch.randn(2, hidden)}
    for i in range(layers):
        for module in ("attention.self.query", "attention.output.dense", "output.dense"):
            state[f"bert.encoder.layer.{i}.{module}.weight"] = torch.randn(hidden, hidden)
            state[f"bert.encoder.layer.{i}.{module}.bias"] = torch.randn(hidden)
        state[f"bert.encoder.layer.{i}.output.LayerNorm.weight"] = torch.ones(hidden)
        state[f"bert.encoder.layer.{i}.output.LayerNorm.bias"] = torch.zeros(hidden)
    return state


def test_measures_per_kind_and_combined():
    pre = _state()
    ln_w, ln_b = "bert.encoder.layer.1.output.LayerNorm.weight", "bert.encoder.layer.1.output.LayerNorm.bias"
    fine = {ln_w: pre[ln_w] + torch.tensor([0.1, -0.1, 0.3, -0.3]), ln_b: pre[ln_b] + 0.2,
            "classifier.weight": pre["classifier.weight"] + 5}
    frame = changes.change_frame(pre, fine, task="t", seed=0)
    row = lambda kind, measure: frame.query(  # noqa: E731
        "layer == 1 and component == 'output LN' and kind == @kind and measure == @measure")["value"].item()
    assert row("weight", "mean_abs") == pytest.approx(0.2)
    assert row("bias", "mean_abs") == pytest.approx(0.2)
    assert row("all", "mean_abs") == pytest.approx(0.2)
    assert row("weight", "relative_l2") == pytest.approx((0.01 * 2 + 0.09 * 2) ** 0.5 / 2)
    assert row("weight", "relative_abs") == pytest.approx(0.8 / 4)  # Σ|Δ| / Σ|θ_pre|: gains of 1
    # the bias starts at 0: its relative change is huge, the combined one is bounded by the gain's norm
    assert row("all", "relative_l2") == pytest.approx(((0.2 + 0.16) ** 0.5) / 2)
    untouched = frame[~((frame["layer"] == 1) & (frame["component"] == "output LN"))]
    assert (untouched["value"] == 0).all()  # parameters absent from ``fine`` did not change
    assert "head" not in set(frame["component"].astype(str))  # the new head is not compared
    assert set(frame["task"]) == {"t"} and set(frame["measure"]) == set(changes.MEASURES)


def test_verdict_ranks_components():
    pre = _state(layers=3)
    fine = {n: t + (0.5 if "output.LayerNorm" in n else 0.01) for n, t in pre.items()}
    frame = changes.change_frame(pre, fine, task="sst2", seed=0)
    verdict = changes.verdict(frame)
    paper = verdict[verdict["measure"] == "mean_abs (paper)"].iloc[0]
    assert paper["largest change"] == "output LN" and paper["output LN rank"] == 1
    assert len(verdict) == len(changes.MEASURES) and paper["components"] == 7 and paper["layer components"] == 4
    assert paper["output LN rank in layers"] == 1 and paper["largest in layers"] == "output LN"


def test_lora_factors_merge_into_the_base_weight():
    pre = _state()
    name = "bert.encoder.layer.0.attention.self.query"
    a, b = torch.randn(2, 4), torch.randn(4, 2)
    trained = {f"base_model.model.{name}.lora_A.default.weight": a, f"base_model.model.{name}.lora_B.default.weight": b,
               "base_model.model.classifier.weight": pre["classifier.weight"]}
    merged = changes.effective_weights(trained, pre, lora_scaling=2.0)
    assert torch.allclose(merged[f"{name}.weight"], pre[f"{name}.weight"] + 2.0 * b @ a)
    assert "classifier.weight" in merged


def test_names_of_deep_and_other_bert_style_models():
    info = describe("bert.encoder.layer.23.attention.output.LayerNorm.bias")
    assert (info.group, info.layer, info.component, info.kind) == ("layer", 23, "attn-out LN", "bias")
    assert describe("roberta.encoder.layer.11.intermediate.dense.weight", "roberta").component == "intermediate"
    assert describe("roberta.embeddings.LayerNorm.weight", "roberta").component == "emb LN"
    assert describe("classifier.out_proj.weight", "roberta").group == "head"
    lora = describe("base_model.model.bert.encoder.layer.0.attention.self.query.base_layer.weight")
    assert lora.component == "query"


def test_full_run_on_the_embedded_model(tiny, tmp_path):
    from lnft.store import RunStore

    store = RunStore(tmp_path)
    result = store.get_or_run(tiny(task="sst2", method="full", lr=1e-4), progress=False)
    frame = changes.run_changes(result, store)
    assert set(frame["layer"].dropna()) == set(range(6))
    # 12: the embedded model's head reads the mean over tokens, so its never-trained pooler is not in the model
    assert len(set(frame["component"].astype(str))) == 12 and "pooler" not in set(frame["component"].astype(str))
    assert (frame[frame["kind"] == "all"]["value"] > 0).all()
    ln = store.get_or_run(tiny(task="sst2", method="layernorm"), progress=False)
    ln_frame = changes.run_changes(ln, store)
    frozen = ~ln_frame["component"].astype(str).str.endswith("LN")
    assert (ln_frame.loc[frozen, "value"] == 0).all() and (ln_frame.loc[~frozen, "value"] > 0).all()
    assert isinstance(changes.layer_average(frame), pd.DataFrame)
