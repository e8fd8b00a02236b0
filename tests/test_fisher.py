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


def test_bf16_fisher_agrees_across_algorithms_and_follows_the_runs_precision(tmp_path):
    """Under bf16 autocast the three algorithms still agree (same bf16 forward; squares summed in float64),
    the result differs from fp32 only by bf16 rounding, and fisher_for_task takes the run's precision."""
    task, model, batch = _batch("mrpc")
    kw = dict(regression=False, num_labels=2, kind="empirical")
    fp32 = fisher.fisher_diagonal(model, [batch], algorithm="loop", **kw).values
    bf16 = {a: fisher.fisher_diagonal(model, [batch], algorithm=a, precision="bf16", **kw).values
            for a in ("loop", "hooks")}
    assert all(v.dtype == torch.float64 for v in bf16["hooks"].values())

    def gap(x, y):  # largest difference relative to the largest value of y
        return max(float((x[n] - y[n]).abs().max()) for n in x) / max(float(v.abs().max()) for v in y.values())

    assert 0 < gap(bf16["loop"], fp32) < 3e-2  # bf16 rounding, not another quantity
    assert gap(bf16["hooks"], bf16["loop"]) < gap(bf16["loop"], fp32)
    from lnft.store import RunStore

    store = RunStore(tmp_path / "runs")
    cfg = RunConfig(task="mrpc", max_train_samples=40, device="cpu")
    got = {p: fisher.fisher_for_task(RunConfig(**{**cfg.to_dict(), "precision": p}), n_samples=6, store=store)[0].values
           for p in ("fp32", "bf16")}
    assert 0 < gap(got["bf16"], got["fp32"]) < 3e-2


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


def test_hooks_is_the_default_and_warns_nothing(tmp_path):
    import inspect
    import warnings

    from lnft.store import RunStore

    for fn in (fisher.fisher_diagonal, fisher.fisher_for_task):
        assert inspect.signature(fn).parameters["algorithm"].default == "hooks"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # vmap's batching-rule warnings would fail here
        fisher.fisher_for_task(RunConfig(task="sst2", max_train_samples=40, device="cpu"), n_samples=8,
                               store=RunStore(tmp_path))


def test_relabelled_changes_every_label():
    binary = [0, 1, 1, 0, 1]
    assert fisher.relabelled(binary, 2, False, seed=0) == [1, 0, 0, 1, 0]
    three = [0, 1, 2] * 20
    other = fisher.relabelled(three, 3, False, seed=0)
    assert all(a != b for a, b in zip(three, other)) and set(other) == {0, 1, 2}
    assert other == fisher.relabelled(three, 3, False, seed=0) != fisher.relabelled(three, 3, False, seed=1)
    targets = [0.5 * i for i in range(20)]
    shuffled = fisher.relabelled(targets, 1, True, seed=0)
    assert sorted(shuffled) == targets and shuffled != targets  # regression: a shuffle of the same targets


def test_relabelled_labels_change_the_fisher_only_through_the_labels(tmp_path):
    from lnft.store import RunStore

    store = RunStore(tmp_path)
    cfg = RunConfig(task="sst2", max_train_samples=40, device="cpu")
    true = fisher.fisher_for_task(cfg, n_samples=16, store=store)[0].values
    flipped = fisher.fisher_for_task(cfg, n_samples=16, relabel=0, store=store)[0].values
    expected = fisher.fisher_for_task(cfg, n_samples=16, kind="expected", store=store)[0].values
    expected_flipped = fisher.fisher_for_task(cfg, n_samples=16, kind="expected", relabel=0)[0].values
    name = "bert.encoder.layer.5.output.LayerNorm.weight"
    assert not torch.equal(true[name], flipped[name])
    assert torch.allclose(expected[name], expected_flipped[name])  # the expected Fisher reads no label


def test_per_example_rows_sum_to_the_fisher_and_are_cached(tmp_path, monkeypatch):
    from lnft.store import RunStore

    task, model, batch = _batch("sst2")
    for kind in ("empirical", "expected"):
        out = fisher.fisher_diagonal(model, [batch], regression=False, num_labels=2, kind=kind, per_example=True)
        names = fisher.flat_names(out.values)
        flat = torch.cat([out.values[n].reshape(-1) for n in names])
        assert out.per_example.shape == (6, flat.numel())
        torch.testing.assert_close(out.per_example.double().mean(0), flat, rtol=1e-4, atol=1e-12)
    store = RunStore(tmp_path)
    cfg = RunConfig(task="sst2", max_train_samples=40, device="cpu")
    first = fisher.fisher_for_task(cfg, n_samples=8, folds=2, per_example=True, store=store)
    monkeypatch.setattr(fisher, "fisher_diagonal", lambda *a, **k: pytest.fail("computed again"))
    again = fisher.fisher_for_task(cfg, n_samples=8, folds=2, per_example=True, store=store)
    assert all(torch.equal(first[f].per_example, again[f].per_example) for f in (0, 1))


def test_held_out_examples_are_outside_what_the_run_fit(tmp_path):
    from lnft.data import load_raw, load_task_data
    from lnft.store import RunStore

    cfg = RunConfig(task="rte", max_train_samples=200, max_eval_samples=50, device="cpu").validate()
    rows = fisher.held_out_indices(cfg)
    raw = load_raw(cfg.data, get_task("rte"))["train"]
    splits = load_task_data(cfg, get_task("rte"))
    seen = {(a, b) for part in ("train", "validation") for a, b in zip(splits[part]["sentence1"], splits[part]["sentence2"])}
    held = raw.select(rows)
    assert len(rows) == len(raw) - len(splits["train"]) - round(cfg.validation_fraction * len(raw))
    assert not seen & set(zip(held["sentence1"], held["sentence2"]))
    store = RunStore(tmp_path)
    small = RunConfig(task="sst2", max_train_samples=40, device="cpu")
    train = fisher.fisher_for_task(small, n_samples=8, store=store)[0]
    held_out = fisher.fisher_for_task(small, n_samples=8, examples="held-out", store=store)[0]
    assert held_out.n_examples == 8
    name = "bert.embeddings.LayerNorm.weight"
    assert not torch.equal(train.values[name], held_out.values[name])
    with pytest.raises(LnftError, match="unknown Fisher examples 'dev'"):
        fisher.fisher_for_task(small, n_samples=8, examples="dev", store=store)
    whole = RunConfig(task="rte", max_train_samples=None, device="cpu")
    with pytest.raises(LnftError, match="no held-out examples"):
        fisher.fisher_for_task(whole, n_samples=8, examples="held-out", store=store)


def test_a_start_run_that_fit_the_whole_file_is_cross_fitted():
    from lnft import subsets

    make = lambda **kw: RunConfig(**{"max_train_samples": None, **kw})  # noqa: E731  (trains on the whole file)
    start = subsets.start_config("finetuned", make, "rte", 0, held_out=64)
    assert start.method == "layernorm" and start.max_train_samples is not None
    assert len(fisher.held_out_indices(start)) == 64  # exactly the rows the Fisher reads are left out
    roomy = lambda **kw: RunConfig(**{"max_train_samples": 100, **kw})  # noqa: E731
    assert subsets.start_config("finetuned", roomy, "rte", 0, held_out=64) == roomy(task="rte", method="layernorm", seed=0)
    half = subsets.start_config("head-warmup", make, "rte", 0, held_out=10_000)  # more than RTE has
    assert half.method == "head" and half.max_train_samples == len(fisher.held_out_indices(half)) + 1  # 1,121 / 1,120


def test_fisher_points_read_the_trained_run(tmp_path, tiny):
    from lnft.store import RunStore

    store = RunStore(tmp_path)
    cfg = tiny(task="sst2", method="layernorm", seed=3)
    pre = fisher.fisher_for_task(cfg, n_samples=8, store=store)[0].values
    tuned = fisher.fisher_for_task(cfg, n_samples=8, at="finetuned", start=cfg, store=store)[0].values
    assert store.get(cfg) is not None  # the all-LayerNorm run was trained into the store and read
    name = "bert.encoder.layer.5.output.LayerNorm.weight"
    assert not torch.equal(pre[name], tuned[name])
    with pytest.raises(LnftError, match="needs a 'head' run of task 'sst2', seed 3"):
        fisher.fisher_for_task(cfg, n_samples=8, at="head-warmup", start=cfg, store=store)
    with pytest.raises(LnftError, match="unknown Fisher point 'warm'; allowed: pretrained, head-warmup, finetuned"):
        fisher.fisher_for_task(cfg, n_samples=8, at="warm", store=store)


def test_vmap_silences_only_the_known_batching_rule_warning():
    import warnings

    task, model, batch = _batch("mrpc", n=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fisher.fisher_diagonal(model, [batch], algorithm="vmap", regression=False, num_labels=2, kind="empirical")
        warnings.warn("a real warning", UserWarning)  # still shown after the call: the filter was local
    assert [str(w.message) for w in caught] == ["a real warning"]
