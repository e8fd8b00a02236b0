import pytest
import torch

from lnft import methods
from lnft.train import finetune


def test_layernorm_run_changes_only_layernorm_and_head(tiny, pretrained_state):
    out = finetune(tiny(task="rte", method="layernorm", epochs=2), progress=False)
    r = out.result
    assert r.trainable_params == 10_754 and len(r.history) == 2 and r.best_epoch in (1, 2)
    assert set(r.metrics) == {"accuracy", "score"} and 0 <= r.metrics["accuracy"] <= 1
    assert set(out.trained) == {n for n in pretrained_state if "LayerNorm" in n} | {"classifier.weight",
                                                                                   "classifier.bias"}
    changed = [n for n, t in out.trained.items() if "LayerNorm" in n and not torch.equal(t, pretrained_state[n])]
    assert changed, "LayerNorm parameters did not move"


def test_frozen_parameters_are_bit_identical_after_training(tiny, pretrained_state):
    out = finetune(tiny(task="sst2", method="layernorm-output", epochs=2, weight_decay=0.1), progress=False)
    live = {n: p.detach() for n, p in out.model.named_parameters()}
    assert set(live) == set(pretrained_state)
    trained = {n for n in live if ".output.LayerNorm." in n and "attention" not in n} | {"classifier.weight",
                                                                                        "classifier.bias"}
    assert set(out.trained) == trained
    for name, tensor in live.items():
        if name in trained:
            assert torch.equal(tensor, out.trained[name])
        else:
            assert torch.equal(tensor, pretrained_state[name]), name


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_masked_training_keeps_masked_out_elements_bit_identical(tiny, pretrained_state, tmp_path, precision):
    ln_w, ln_b = "bert.encoder.layer.5.output.LayerNorm.weight", "bert.embeddings.LayerNorm.bias"
    mask_w = torch.zeros(384, dtype=torch.bool)
    mask_w[::7] = True
    mask_b = torch.zeros(384, dtype=torch.bool)
    mask_b[:5] = True
    path = methods.save_masks({ln_w: mask_w, ln_b: mask_b}, str(tmp_path / "mask.safetensors"))
    cfg = tiny(task="sst2", method="layernorm-masked", mask_path=path, epochs=2, lr=1e-2, weight_decay=0.1,
               precision=precision)
    out = finetune(cfg, progress=False)
    assert out.result.config.precision == precision
    assert out.result.trainable_params == int(mask_w.sum() + mask_b.sum()) + 770
    for name, mask in ((ln_w, mask_w), (ln_b, mask_b)):
        before, after = pretrained_state[name], out.trained[name]
        assert torch.equal(after[~mask], before[~mask])  # bit-identical, weight decay included
        assert not torch.equal(after[mask], before[mask])  # the selected elements did train
    assert set(out.trained) == {ln_w, ln_b, "classifier.weight", "classifier.bias"}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_same_config_twice_gives_identical_metrics_and_weights(tiny, precision):
    cfg = tiny(task="mrpc", method="bitfit", precision=precision)
    a, b = finetune(cfg, progress=False), finetune(cfg, progress=False)
    assert a.result.metrics == b.result.metrics and a.result.history[0]["train_loss"] == \
        b.result.history[0]["train_loss"]
    assert all(torch.equal(a.trained[n], b.trained[n]) for n in a.trained)
    c = finetune(tiny(task="mrpc", method="bitfit", seed=7, precision=precision), progress=False)
    assert any(not torch.equal(a.trained[n], c.trained[n]) for n in a.trained)
    other = finetune(tiny(task="mrpc", method="bitfit", precision={"fp32": "bf16", "bf16": "fp32"}[precision]),
                     progress=False)  # the precision is applied: the other one computes another loss
    assert other.result.history[0]["train_loss"] != a.result.history[0]["train_loss"]


def test_regression_lora_and_full_runs(tiny):
    stsb = finetune(tiny(task="stsb", method="lora"), progress=False).result
    assert set(stsb.metrics) == {"pearson", "spearman", "score"} and stsb.trainable_params == 73_728 + 385  # 1-output regression head
    assert any("lora_A" in n for n in finetune(tiny(task="stsb", method="lora"), progress=False).trained)
    full = finetune(tiny(task="cola", method="full"), progress=False)
    # the embedded model's head reads the mean over tokens: its untrained pooler (147,840 elements) is removed
    assert full.result.trainable_params == 22_713_986 - 384 * 384 - 384 and len(full.trained) == 103
    assert "matthews" in full.result.metrics


def test_select_on_dev_picks_best_dev_epoch(tiny):
    r = finetune(tiny(task="rte", method="head", epochs=3, select_on="dev", lr=5e-3), progress=False).result
    best = max(r.history, key=lambda h: h["dev_score"])
    assert r.metrics["score"] == best["dev_score"] and r.best_epoch == best["epoch"]
