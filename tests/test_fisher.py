import pytest
import torch

from lnft import LnftError, RunConfig, fisher
from lnft.data import Collator, load_task_data, tokenize
from lnft.models import load_model, load_tokenizer
from lnft.tasks import get_task


def _batch(task_name, n=6):
    task = get_task(task_name)
    cfg = RunConfig(task=task_name, max_train_samples=40).validate()
    tok = load_tokenizer("embedded")
    train = tokenize(load_task_data(cfg, task), tok, task, 64)["train"]
    rows = [train[i] for i in range(n)]
    batch = Collator(tok, task.is_regression)(rows)
    assert len(set(batch["attention_mask"].sum(-1).tolist())) > 1, "the batch must contain padding"
    torch.manual_seed(0)
    return task, load_model("embedded", task.num_labels), batch


@pytest.mark.parametrize("task_name,kind", [("mrpc", "empirical"), ("mrpc", "expected"), ("stsb", "empirical"),
                                            ("stsb", "expected")])
def test_hooks_vmap_and_loop_agree_with_padding(task_name, kind):
    task, model, batch = _batch(task_name)
    kw = dict(regression=task.is_regression, num_labels=task.num_labels, kind=kind)
    ref = fisher.fisher_diagonal(model, [batch], algorithm="loop", **kw).values
    assert len(ref) == 26 and sum(v.numel() for v in ref.values()) == 9_984
    scale = max(float(v.abs().max()) for v in ref.values())
    assert scale > 0
    for algorithm in ("hooks", "vmap"):
        got = fisher.fisher_diagonal(model, [batch], algorithm=algorithm, chunk_size=3, **kw).values
        for name in ref:
            torch.testing.assert_close(got[name], ref[name], atol=1e-6 * scale, rtol=1e-4)


def test_the_attention_mask_has_effect():
    task, model, batch = _batch("mrpc")
    kw = dict(regression=False, num_labels=2, kind="empirical")
    ref = fisher.fisher_diagonal(model, [batch], algorithm="loop", **kw).values
    unmasked = dict(batch, attention_mask=torch.ones_like(batch["attention_mask"]))
    wrong = fisher.fisher_diagonal(model, [unmasked], algorithm="vmap", **kw).values
    gap = max(float((wrong[n] - ref[n]).abs().max()) for n in ref)
    assert gap > 1e-3 * max(float(v.abs().max()) for v in ref.values())


def test_bad_kind_and_algorithm():
    with pytest.raises(LnftError, match="unknown Fisher kind 'true'"):
        fisher.fisher_diagonal(None, [], regression=False, num_labels=2, kind="true")
    with pytest.raises(LnftError, match="unknown Fisher algorithm 'jvp'"):
        fisher.fisher_diagonal(None, [], regression=False, num_labels=2, algorithm="jvp")


def _values():
    return {"a.LayerNorm.weight": torch.tensor([5.0, 1.0, 3.0, 0.0]),
            "a.LayerNorm.bias": torch.tensor([4.0, 2.0, 0.5, 0.1]),
            "b.LayerNorm.weight": torch.tensor([0.01, 0.02, 0.03, 0.04]),
            "b.LayerNorm.bias": torch.tensor([0.0, 0.0, 0.0, 0.05])}


def test_masks():
    values = _values()
    top = fisher.top_k_mask(values, 25)  # 4 of 16
    assert fisher.mask_size(top) == 4
    assert top["a.LayerNorm.weight"].tolist() == [True, False, True, False]
    assert top["a.LayerNorm.bias"].tolist() == [True, True, False, False]
    per_module = fisher.per_module_top_k_mask(values, 25)  # 2 of 8 in each module
    assert fisher.mask_size({k: v for k, v in per_module.items() if k.startswith("b.")}) == 2
    assert per_module["b.LayerNorm.bias"].tolist() == [False, False, False, True]
    r1, r2 = fisher.random_mask(values, 25, seed=1), fisher.random_mask(values, 25, seed=1)
    assert fisher.mask_size(r1) == 4 and all(torch.equal(r1[n], r2[n]) for n in r1)
    assert fisher.jaccard(top, top) == 1.0
    assert fisher.mask_size(fisher.union([top, per_module])) >= fisher.mask_size(top)
    assert fisher.mask_size(fisher.intersection([top, per_module])) <= fisher.mask_size(top)
    assert fisher.expected_random_jaccard(100) == 1.0
    with pytest.raises(LnftError, match="invalid fraction 0"):
        fisher.top_k_mask(values, 0)


def test_mask_files_are_content_addressed(tmp_path):
    values = _values()
    a = fisher.store_mask(fisher.top_k_mask(values, 25), str(tmp_path))
    b = fisher.store_mask(fisher.top_k_mask(values, 25), str(tmp_path))
    c = fisher.store_mask(fisher.top_k_mask(values, 50), str(tmp_path))
    assert a == b != c


def test_mass_frame():
    frame = fisher.mass_frame({"bert.encoder.layer.0.output.LayerNorm.weight": torch.tensor([1.0, 3.0]),
                               "bert.embeddings.LayerNorm.bias": torch.tensor([4.0])}, task="t")
    assert frame["fisher_mass"].tolist() == [4.0, 4.0] and frame["share"].sum() == pytest.approx(1.0)
    assert set(frame["component"]) == {"output LN", "emb LN"}


def test_fisher_for_task_folds_and_cache(tmp_path, monkeypatch):
    from lnft.store import RunStore

    store = RunStore(tmp_path)
    cfg = RunConfig(task="sst2", max_train_samples=40, device="cpu")
    first = fisher.fisher_for_task(cfg, n_samples=8, folds=2, store=store)
    assert [r.n_examples for r in first.values()] == [8, 8]
    assert not torch.equal(first[0].values["bert.embeddings.LayerNorm.weight"],
                           first[1].values["bert.embeddings.LayerNorm.weight"])
    monkeypatch.setattr(fisher, "fisher_diagonal", lambda *a, **k: pytest.fail("computed again"))
    again = fisher.fisher_for_task(cfg, n_samples=8, folds=2, store=store)
    assert all(torch.equal(again[0].values[n], first[0].values[n]) for n in first[0].values)
    merged = fisher.mean_fisher(first)
    name = "bert.embeddings.LayerNorm.weight"
    assert torch.allclose(merged[name], (first[0].values[name] + first[1].values[name]) / 2)


def test_subset_plan_and_reference_points(tmp_path):
    import pandas as pd

    values = {"sst2": _values()}
    plan = fisher.subset_plan(values, [25, 100], [0, 1], mask_dir=str(tmp_path),
                              make_config=lambda **kw: RunConfig(**kw))
    labels = [(lab["selection"], cfg.seed) for lab, cfg in plan]
    assert len(plan) == 2 * 3 + 2 and labels.count(("all LayerNorm", 0)) == 1
    random_paths = {cfg.seed: cfg.mask_path for lab, cfg in plan if lab["selection"] == "random"}
    assert random_paths[0] != random_paths[1]  # a new random mask per seed
    subsets = pd.DataFrame([{**lab, "task": "sst2", "seed": cfg.seed, "score": 1.0} for lab, cfg in plan])
    curve = fisher.with_reference_points(subsets)
    assert set(curve["selection"]) == set(fisher.SELECTIONS)
    assert len(curve[curve["fraction"] == 100.0]) == 3 * 2
