"""An independent cross-check of lnft's `layernorm` method against Hugging Face peft's LayerNorm tuning
(`LNTuningConfig`), the closest well-kept implementation of the same idea.

peft deep-copies every targeted LayerNorm and trains the copy (`...LayerNorm.ln_tuning_layers.default.weight`);
with `task_type="SEQ_CLS"` it also trains a copy of the classifier (`modules_to_save`). Names are mapped
back to the plain model's with `lnft.components.clean_name`, which strips exactly these peft parts.

Two conventions differ by design and are set explicitly here, not papered over:
- peft's targets: the LayerNorm modules' own names (suffixes) found in the module tree by type, per model;
- the head: lnft trains every module outside the encoder (DistilBERT's `pre_classifier`, DeBERTa's
  `pooler` included), peft's SEQ_CLS only `classifier`: those modules are named in `modules_to_save`.
"""
import pytest
import torch
from torch import nn

from lnft import RunConfig, methods
from lnft.components import clean_name
from lnft.models import load_model

from test_families import FAMILIES, TINY, model_dirs  # noqa: F401  (the tiny model of each family)


def _peft_ln(model):
    """peft's LN tuning on ``model``: every LayerNorm (by module type) targeted by its own name, the
    head modules (everything outside the encoder) in modules_to_save."""
    from peft import LNTuningConfig, get_peft_model

    targets = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.LayerNorm)})
    head = [name for name, child in model.named_children()
            if name != model.base_model_prefix and any(True for _ in child.parameters())]
    config = LNTuningConfig(target_modules=targets, modules_to_save=head, task_type="SEQ_CLS")
    return get_peft_model(model, config)


def _trained_elements(model) -> dict[str, int]:
    """plain parameter name -> elements that train (requires_grad), through peft's copies."""
    return {clean_name(n): p.numel() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("family", FAMILIES)
def test_lnft_layernorm_trains_exactly_what_peft_ln_tuning_trains(family, model_dirs):  # noqa: F811
    path = model_dirs[family]
    ours = methods.prepare(load_model(path, 2), RunConfig(model=path, method="layernorm", **TINY).validate())
    theirs = _trained_elements(_peft_ln(load_model(path, 2)))
    assert {n: p.numel() for n, p in ours.trainable.items()} == theirs, family
    assert ours.trainable_params == sum(theirs.values())


def test_embedded_model_counts_match_peft_with_its_own_defaults():
    """On the embedded MiniLM, peft's plain SEQ_CLS LN tuning (targets ["LayerNorm"], no modules_to_save)
    trains 9,984 + 770 elements, lnft's `layernorm` the same ones."""
    from peft import LNTuningConfig, get_peft_model

    peft_model = get_peft_model(load_model("embedded", 2), LNTuningConfig(target_modules=["LayerNorm"],
                                                                          task_type="SEQ_CLS"))
    theirs = _trained_elements(peft_model)
    ours = methods.prepare(load_model("embedded", 2), RunConfig(method="layernorm"))
    assert sum(theirs.values()) == ours.trainable_params == 10_754
    assert set(theirs) == set(ours.trainable)


def test_same_seed_same_dev_score_through_lnfts_loop(tiny, monkeypatch):
    """peft's LN-tuned model trained by lnft's own loop (a method whose `wrap` is peft's LN tuning) against
    lnft's `layernorm`, same seed, same data, same rate: the same dev score and predictions, and the same
    trained LayerNorm values. Equality is exact here: the forward, the dropout draws, the head's
    initialisation (seeded before loading; peft copies it) and the fused AdamW update per element are the
    same; only the parameters' container differs. (The original head that peft keeps beside its copy is
    in the optimizer too, but receives no gradient, so AdamW skips it.)"""
    from lnft.train import finetune

    peft_method = methods.Method("peft-ln-tuning", "peft LNTuningConfig (cross-check)", 1e-3,
                                 lambda info: False, wrap=lambda model, cfg: _peft_ln(model))
    monkeypatch.setitem(methods.METHODS, peft_method.name, peft_method)
    common = dict(task="sst2", seed=7, lr=1e-2, max_train_samples=32, max_eval_samples=32, batch_size=8, epochs=1)
    ours = finetune(tiny(method="layernorm", **common), progress=False)
    theirs = finetune(tiny(method="peft-ln-tuning", **common), progress=False)
    assert ours.result.steps == theirs.result.steps == 4
    assert ours.result.metrics["score"] == theirs.result.metrics["score"]
    assert [h["validation_score"] for h in ours.result.history] == [h["validation_score"] for h in theirs.result.history]
    np_ours, np_theirs = ours.predictions["dev"], theirs.predictions["dev"]
    assert (np_ours.preds == np_theirs.preds).all()
    mapped = {clean_name(n): t for n, t in theirs.trained.items() if ".ln_tuning_layers." in n}
    assert len(mapped) == 26
    pre = dict(load_model("embedded", 2).named_parameters())
    moved = 0
    for name, tensor in mapped.items():
        assert torch.equal(tensor, ours.trained[name]), name
        moved += int((tensor != pre[name].detach()).sum())
    assert moved > 5000  # the LayerNorms did train (in both)
