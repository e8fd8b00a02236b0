"""Trainable-parameter counts on the embedded MiniLM-L6 (6 layers, hidden 384, FFN 1536, 2 labels),
checked against values computed by hand from the architecture."""
import pytest
import torch

from lnft import LnftError, RunConfig
from lnft import methods
from lnft.models import load_model

H, FFN, LAYERS, VOCAB, POS, TYPES = 384, 1536, 6, 30522, 512, 2
HEAD = H * 2 + 2  # classifier weight + bias for 2 labels = 770
LN = 13 * 2 * H  # 13 LayerNorms, gain + bias each = 9,984
LAYER_BIASES = 3 * H + H + H + FFN + H + H  # q,k,v, attn-out dense, attn LN, intermediate, output dense, output LN
ALL_BIASES = LAYERS * LAYER_BIASES + H + H  # + embeddings LN bias + pooler bias
LAYER_WEIGHTS = 4 * H * H + H + H * FFN + FFN * H + H  # 4 attention matrices, 2 LN gains, FFN matrices
TOTAL = (VOCAB + POS + TYPES) * H + 2 * H + LAYERS * (LAYER_WEIGHTS + LAYER_BIASES) + H * H + H + HEAD
# the embedded checkpoint's pooler was never trained, so its head reads the mean over tokens (lnft.pooling) and
# the pooler is removed: every count below is on that model (BERT's pooler path: test_head_and_pooler_rules)
POOLER = H * H + H
MEAN_TOTAL = TOTAL - POOLER

EXPECTED = {
    "full": MEAN_TOTAL,
    "layernorm": LN + HEAD,
    "layernorm-output": LAYERS * 2 * H + HEAD,
    "layernorm-attention": LAYERS * 2 * H + HEAD,
    "bitfit": ALL_BIASES - H + HEAD,  # no pooler bias
    "lora": LAYERS * 2 * (8 * H + H * 8) + HEAD,  # r=8 on query and value
    "head": HEAD,
    "layernorm-gain": 13 * H + HEAD,
    "layernorm-bias": 13 * H + HEAD,
    "random-channels": LN + HEAD,  # as many elements as LayerNorm's, wherever they are drawn
    # IA3 (peft's BERT default): key and value scaled on their output (H each); "output.dense" matches the
    # attention output dense (input H) and the FFN output dense (input FFN), both scaled on their input
    "ia3": LAYERS * (H + H + H + FFN) + HEAD,
}


def test_hand_computed_totals_match_the_notes():
    assert TOTAL == 22_713_986 and LN == 9_984 and HEAD == 770


@pytest.mark.parametrize("name", list(EXPECTED))
def test_trainable_counts(name):
    prepared = methods.prepare(load_model("embedded", 2), RunConfig(method=name))
    assert prepared.trainable_params == EXPECTED[name]
    assert prepared.total_params == MEAN_TOTAL
    elements = sum(int(prepared.masks[n].sum()) if n in prepared.masks else p.numel()
                   for n, p in prepared.trainable.items())
    assert elements == EXPECTED[name]
    assert bool(prepared.masks) == (name == "random-channels")  # whole tensors train, but for the drawn elements


def test_head_and_pooler_rules():
    prepared = methods.prepare(load_model("embedded", 2), RunConfig(method="layernorm"))
    names = set(prepared.trainable)
    assert {"classifier.weight", "classifier.bias"} <= names
    assert not any("pooler" in n for n in names)  # pooler follows the method's rule: no LN, frozen
    bitfit = methods.prepare(load_model("embedded", 2, "pooler"), RunConfig(method="bitfit", pooling="pooler"))
    assert "bert.pooler.dense.bias" in bitfit.trainable and "bert.pooler.dense.weight" not in bitfit.trainable
    assert bitfit.trainable_params == ALL_BIASES + HEAD and bitfit.total_params == TOTAL  # BERT's path: all of it
    full = methods.prepare(load_model("embedded", 2, "pooler"), RunConfig(method="full", pooling="pooler"))
    assert full.trainable_params == TOTAL


def test_no_weight_decay_on_layernorm_or_biases():
    prepared = methods.prepare(load_model("embedded", 2), RunConfig(method="full"))
    decayed = set(prepared.trainable) - prepared.no_decay
    assert all(not n.endswith(".bias") and "LayerNorm" not in n for n in decayed)
    assert "bert.encoder.layer.0.output.LayerNorm.weight" in prepared.no_decay
    assert "bert.encoder.layer.0.attention.self.query.weight" in decayed


def test_masked_counts_and_unknown_names(tmp_path):
    model = load_model("embedded", 2)
    ln = "bert.encoder.layer.2.output.LayerNorm.weight"
    mask = torch.zeros(H, dtype=torch.bool)
    mask[:10] = True
    path = methods.save_masks({ln: mask, "bert.embeddings.LayerNorm.bias": torch.zeros(H, dtype=torch.bool)},
                              str(tmp_path / "m.safetensors"))
    prepared = methods.prepare(model, RunConfig(method="layernorm-masked", mask_path=path))
    assert prepared.trainable_params == 10 + HEAD
    assert set(prepared.trainable) == {ln, "classifier.weight", "classifier.bias"}
    bad = methods.save_masks({"bert.pooler.dense.bias": mask}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(LnftError, match="not a LayerNorm parameter"):
        methods.prepare(load_model("embedded", 2), RunConfig(method="layernorm-masked", mask_path=bad))


def test_unknown_method_lists_the_allowed():
    with pytest.raises(LnftError, match=r"unknown method 'prefix'; allowed: full, layernorm,"):
        methods.get_method("prefix")


def test_a_new_method_is_one_registry_entry(monkeypatch):
    extra = methods.Method("query-bias", "query biases only", 1e-3,
                           lambda i: i.component == "query" and i.kind == "bias")
    monkeypatch.setitem(methods.METHODS, extra.name, extra)
    prepared = methods.prepare(load_model("embedded", 2), RunConfig(method="query-bias"))
    assert prepared.trainable_params == LAYERS * H + HEAD



def _masked_model(tmp_path):
    ln = "bert.encoder.layer.1.output.LayerNorm.bias"
    mask = torch.zeros(H, dtype=torch.bool)
    mask[::7] = True
    path = methods.save_masks({ln: mask}, str(tmp_path / "m.safetensors"))
    return ln, mask, methods.prepare(load_model("embedded", 2), RunConfig(method="layernorm-masked", mask_path=path))


def test_masking_hooks_follow_the_gradients_device(tmp_path):
    """On a GPU, train.finetune moves the model to CUDA *after* prepare registered the hooks (cpu<->cuda
    moves keep the Parameter objects and their hooks): the gradient then arrives on another device than
    the mask was made on. On a CPU-only machine the meta device stands in for CUDA: the hooks that
    prepare registered must accept a gradient on it (today's code multiplied by a CPU mask and failed)."""
    ln, mask, prepared = _masked_model(tmp_path)
    hooks = list(prepared.trainable[ln]._backward_hooks.values())
    assert len(hooks) == 1
    out = hooks[0](torch.ones(H, device="meta"))
    assert out.device.type == "meta" and out.shape == (H,)
    out = hooks[0](torch.ones(H, dtype=torch.float64))
    assert out.dtype == torch.float64 and torch.equal(out, mask.double())


def test_masks_hold_after_moving_the_model(tmp_path):
    """prepare, then convert the model (float64 here): a real backward still zeroes the masked-out grads."""
    ln, mask, prepared = _masked_model(tmp_path)
    model = prepared.model.to(torch.float64)
    param = dict(model.named_parameters())[ln]
    assert param is prepared.trainable[ln]
    model(input_ids=torch.tensor([[101, 2023, 2003, 102]]), labels=torch.tensor([1])).loss.backward()
    assert param.grad.dtype == torch.float64
    assert torch.all(param.grad[~mask] == 0) and torch.any(param.grad[mask] != 0)


def test_the_mask_enters_the_run_id_by_content(tmp_path):
    ln = "bert.encoder.layer.0.output.LayerNorm.weight"
    a, b = torch.zeros(H, dtype=torch.bool), torch.zeros(H, dtype=torch.bool)
    a[:5], b[5:10] = True, True
    path_a = methods.save_masks({ln: a}, str(tmp_path / "a.safetensors"))
    copy_a = methods.save_masks({ln: a}, str(tmp_path / "copy-of-a.safetensors"))
    path_b = methods.save_masks({ln: b}, str(tmp_path / "b.safetensors"))
    ids = {p: RunConfig(method="layernorm-masked", mask_path=p, device="cpu").run_id()
           for p in (path_a, copy_a, path_b)}
    assert ids[path_a] == ids[copy_a] != ids[path_b]  # same content, other name: one run
    run_id, prints = RunConfig(method="layernorm-masked", mask_path=path_a, device="cpu").identity()
    assert set(prints) == {"schema", "code", "data", "model"}  # the mask's one home in the id: mask_digest
    cfg = RunConfig(method="layernorm-masked", mask_path=path_a).validate()
    assert cfg.mask_digest and cfg.mask_digest != RunConfig(method="layernorm-masked", mask_path=path_b).validate().mask_digest
    methods.save_masks({ln: b}, path_a)  # the file changed under a config that names its old content
    with pytest.raises(LnftError, match="has digest"):
        cfg.validate()


# ---------------------------------------------------------------- why LayerNorm: ablations and comparators
def test_gain_and_bias_ablations_split_layernorm():
    gain = methods.prepare(load_model("embedded", 2), RunConfig(method="layernorm-gain"))
    bias = methods.prepare(load_model("embedded", 2), RunConfig(method="layernorm-bias"))
    ln = methods.prepare(load_model("embedded", 2), RunConfig(method="layernorm"))
    heads = {"classifier.weight", "classifier.bias"}
    assert all(n.endswith(".weight") for n in set(gain.trainable) - heads)
    assert all(n.endswith(".bias") for n in set(bias.trainable) - heads)
    assert set(gain.trainable) | set(bias.trainable) == set(ln.trainable)


def _selection(seed: int) -> dict[str, torch.Tensor]:
    return methods.prepare(load_model("embedded", 2), RunConfig(method="random-channels", seed=seed)).masks


def test_random_channels_are_reproducible_per_seed_and_differ_across_seeds():
    a, again, b = _selection(0), _selection(0), _selection(1)
    assert a.keys() == again.keys() and all(torch.equal(a[n], again[n]) for n in a)
    assert sum(int(m.sum()) for m in a.values()) == sum(int(m.sum()) for m in b.values()) == LN
    shared = sum(int((a[n] & b[n]).sum()) for n in a.keys() & b.keys())
    assert shared < LN // 2  # two draws of 9,984 from 31,106 elements share about a third
    # drawn from biases and LayerNorm gains alike, all over the encoder, never the head
    assert any(n.endswith("LayerNorm.weight") for n in a) and any("intermediate.dense.bias" in n for n in a)
    assert not any(n.startswith("classifier") for n in a)
    pool = {n for n, _ in load_model("embedded", 2).named_parameters()
            if not n.startswith("classifier") and (n.endswith(".bias") or "LayerNorm" in n)}
    assert set(a) <= pool and sum(load_model("embedded", 2).get_parameter(n).numel() for n in pool) == ALL_BIASES - H + 13 * H


def test_random_channels_leave_every_other_element_bit_identical(tiny, pretrained_state):
    from lnft.train import finetune

    cfg = tiny(method="random-channels", lr=5e-2, seed=3, max_train_samples=16, max_eval_samples=8)
    out = finetune(cfg, progress=False)
    masks = _selection(3)
    after = dict(out.model.named_parameters())
    moved = 0
    for name, before in pretrained_state.items():
        if name.startswith("classifier"):
            continue
        now = after[name].detach()
        mask = masks.get(name, torch.zeros_like(before, dtype=torch.bool))
        assert torch.equal(now[~mask], before[~mask]), name
        moved += int((now[mask] != before[mask]).sum())
    assert moved > LN // 2  # most selected elements did move
    assert out.result.trainable_params == LN + HEAD


def test_ia3_targets_resolve_into_the_run_id():
    cfg = RunConfig(method="ia3", device="cpu").validate()
    assert cfg.ia3_targets == ("key", "value", "output.dense") and cfg.ia3_feedforward == ("output.dense",)
    other = RunConfig(method="ia3", device="cpu", ia3_targets=("key", "value"))
    assert other.validate().ia3_feedforward == () and other.run_id() != cfg.run_id()
    with pytest.raises(LnftError, match="matches no Linear"):
        RunConfig(method="ia3", ia3_targets=("nope",)).validate()
    with pytest.raises(LnftError, match="only allowed with method 'ia3'"):
        RunConfig(method="layernorm", ia3_targets=("key",)).validate()
    prepared = methods.prepare(load_model("embedded", 2), cfg)
    vectors = [n for n in prepared.trainable if ".ia3_l." in n]
    assert len(vectors) == LAYERS * 4 and set(vectors) <= prepared.no_decay  # gains: never decayed
    assert {"base_model.model.classifier.weight", "base_model.model.classifier.bias"} <= set(prepared.trainable)


def test_lnft_methods_prints_the_exact_counts(capsys):
    from lnft.cli import main

    assert main(["methods"]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[1:-1]}  # last: pooling
    for name, count in EXPECTED.items():
        assert rows[name] == f"{count:,}", name
    assert rows["layernorm-masked"] == "(mask)" and set(rows) == set(methods.METHODS)
