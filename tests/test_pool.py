"""The held-out evaluation pool (lnft/pool.py): fixed per task, never drawable for training or validation whatever
the data seed, whole sentences only on SST-2, pairs grouped by sentence, each leakage rule catching a planted
overlap, scored once at the selected checkpoint, and the statistics on dev ∪ pool."""
import os

import numpy as np
import pytest

from lnft import LnftError, RunConfig
from lnft import pool as P
from lnft.data import load_raw, load_task_data
from lnft.tasks import get_task

HERE = os.path.join(os.path.dirname(__file__), "data", "own_task")

# a tiny treebank: two parent sentences with their phrases, one phrase shared by both, one repeated sentence
SENTENCES = ["the film is a charming journey .", "a charming journey it is not .", "bring tissues ."]
PHRASES = ["the film", "a charming journey", "charming", "is a charming journey", "it is not", "tissues",
           "bring tissues"]


def _take(col, idx):
    return None if col is None else [col[i] for i in idx]


def test_nested_rows_pool_holds_whole_sentences_and_excludes_their_phrases():
    texts = SENTENCES + PHRASES + ["The  Film"]  # case and spacing do not hide a phrase
    units = P.nested_units(texts)
    assert sorted(texts[u[0]] for u in units) == sorted(SENTENCES)  # phrases are never units
    for size in range(1, 4):
        pool = P.build(texts, None, size)
        pooled = [texts[i] for i in pool.rows]
        assert len(pooled) == size and set(pooled) <= set(SENTENCES)
        drawable = [P.normalise(texts[i]) for i in pool.drawable]
        for sentence in pooled:  # no drawable row inside a pool sentence, nor the sentence in a drawable row
            assert not any(f" {d} " in f" {P.normalise(sentence)} " for d in drawable)
            assert not any(f" {P.normalise(sentence)} " in f" {d} " for d in drawable)
        assert sorted([*pool.rows, *pool.drawable, *pool.excluded]) == list(range(len(texts)))
        assert P.leaks(pooled, None, _take(texts, pool.drawable), None) == []
    # the shared phrase leaves training as soon as either parent is in the pool
    pool = P.build(texts, None, 1)
    if "charming" in P.normalise(texts[pool.rows[0]]):
        assert texts.index("charming") in pool.excluded


def test_nested_rule_catches_planted_overlaps():
    pool = ["the film is a charming journey ."]
    assert P.leaks(pool, None, ["bring tissues ."], None) == []
    inside = P.leaks(pool, None, ["bring tissues .", "A  charming journey"], None)  # a phrase of a pool sentence
    assert len(inside) == 1 and "lies inside a pool sentence" in inside[0]
    around = P.leaks(pool, None, ["i said the film is a charming journey . twice"], None)  # a sentence inside a row
    assert len(around) == 1 and "contains a pool sentence" in around[0]


def test_sentence_groups_keep_pairs_that_share_a_sentence_together():
    first = ["a cat sat .", "a dog ran .", "A cat sat.", "birds fly .", "fish swim .", "a dog ran ."]
    second = ["the cat sat .", "the dog ran .", "kittens sit .", "birds can fly .", "the cat sat .", "the dog ran ."]
    # components: {0, 4} via "the cat sat ."; {1, 5} (a repeated pair); {2}; {3}
    units = sorted(sorted(u) for u in P.pair_units(first, second))
    assert units == [[0, 4], [1, 5], [2], [3]]
    for size in range(1, 5):
        pool = P.build(first, second, size)
        assert len(pool.rows) <= size
        pooled = {P.normalise(s) for i in pool.rows for s in (first[i], second[i])}
        drawn = {P.normalise(s) for i in pool.drawable for s in (first[i], second[i])}
        assert not pooled & drawn
        assert P.leaks(_take(first, pool.rows), _take(second, pool.rows), _take(first, pool.drawable),
                       _take(second, pool.drawable)) == []
    repeated = P.build(first, second, 10)  # everything: the repeated pair is scored once, its copy excluded
    assert len(repeated.rows) == 5 and len(repeated.excluded) == 1 and len(repeated.drawable) == 0


def test_pair_rule_catches_a_planted_shared_sentence():
    problems = P.leaks(["a cat sat ."], ["the cat sat ."], ["fish swim .", "dogs bark ."],
                       ["fish can swim .", "The cat  sat ."])
    assert len(problems) == 1 and "shares the sentence" in problems[0]


def test_the_pool_is_fixed_and_a_smaller_pool_is_a_prefix_of_a_larger():
    task = get_task("mrpc")
    raw = load_raw("embedded", task)
    small, large = P.task_pool(raw, task, 200), P.task_pool(raw, task, 400)
    assert len(small.rows) == 200 and len(large.rows) == 400
    assert set(small.rows) <= set(large.rows) and list(large.rows[:len(small.rows)]) == list(small.rows)
    assert np.array_equal(P.build(raw["train"]["sentence1"][:], raw["train"]["sentence2"][:], 200).rows, small.rows)


@pytest.mark.parametrize("task_name,size", [("mrpc", 300), ("stsb", 400), ("rte", 200), ("cola", 500)])
def test_no_data_seed_draws_a_pool_row_or_a_pool_sentence(task_name, size):
    task = get_task(task_name)
    pool_texts = None
    for data_seed in (0, 1, 7):
        cfg = RunConfig(task=task_name, pool_size=size, data_seed=data_seed, max_train_samples=None)
        splits = load_task_data(cfg, task)
        pooled = splits["pool"]
        texts = list(zip(pooled["sentence1"][:], pooled["sentence2"][:]))
        assert len(texts) == size and (pool_texts is None or texts == pool_texts)  # the same for every data seed
        pool_texts = texts
        for split in ("train", "validation"):
            first, second = splits[split]["sentence1"][:], splits[split]["sentence2"][:]
            assert P.leaks(pooled["sentence1"][:], pooled["sentence2"][:] if task.is_pair else None, first,
                           second if task.is_pair else None) == [], (split, data_seed)
    raw = load_raw("embedded", task)
    assert len(splits["train"]) + len(splits["validation"]) == len(P.task_pool(raw, task, size).drawable)


def test_sst2_pool_is_whole_sentences_sharing_no_phrase_with_training():
    task = get_task("sst2")
    raw = load_raw("embedded", task)
    cfg = RunConfig(task="sst2", pool_size=300, max_train_samples=2000)
    splits = load_task_data(cfg, task)
    pooled = splits["pool"]["sentence1"][:]
    lengths = [len(t.split()) for t in pooled]
    dev = [len(t.split()) for t in raw["dev"]["sentence1"][:]]
    file = [len(t.split()) for t in raw["train"]["sentence1"][:]]
    assert np.median(file) < 10 and abs(np.median(lengths) - np.median(dev)) <= 3  # sentences, like dev's
    whole = {P.normalise(raw["train"]["sentence1"][u[0]]) for u in P.nested_units(raw["train"]["sentence1"][:])}
    assert {P.normalise(t) for t in pooled} <= whole
    drawable = P.task_pool(raw, task, 300).drawable
    assert P.leaks(pooled, None, _take(raw["train"]["sentence1"][:], drawable), None) == []
    for split in ("train", "validation"):
        assert P.leaks(pooled, None, splits[split]["sentence1"][:], None) == []


def test_pool_size_is_checked_before_any_work():
    with pytest.raises(LnftError, match="invalid pool_size -1; allowed: an integer >= 0"):
        RunConfig(task="mrpc", pool_size=-1).validate()
    with pytest.raises(LnftError, match="pool_size 9000 for task 'mrpc'.*allowed: at most"):
        RunConfig(task="mrpc", pool_size=9000).validate()
    with pytest.raises(LnftError, match="leaves .* drawable rows .* fewer than max_train_samples 3000"):
        RunConfig(task="mrpc", pool_size=1000, max_train_samples=3000).validate()


def test_the_pools_rule_enters_the_run_id():
    plain, prints = RunConfig(task="mrpc").identity()
    pooled, pooled_prints = RunConfig(task="mrpc", pool_size=100).identity()
    assert "pool" not in prints and pooled_prints["pool"] == P.RULE and plain != pooled
    assert RunConfig(task="mrpc", pool_size=200).run_id() != pooled


def test_a_run_scores_the_pool_once_at_the_selected_checkpoint(tiny, tmp_path):
    from lnft.result import recompute_metrics
    from lnft.store import RunStore

    store = RunStore(str(tmp_path / "runs"))
    cfg = tiny(task="mrpc", method="head", pool_size=40, epochs=2, eval_every=2)
    result = store.get_or_run(cfg, progress=False)
    predictions = result.predictions()
    assert set(predictions) == {"validation", "dev", "pool"} and len(predictions["pool"]) == 40
    assert "pool_score" not in str(result.history)  # selection never saw the pool
    assert result.pool_metrics["score"] == pytest.approx(get_task("mrpc").score(
        get_task("mrpc").compute_metrics(predictions["pool"].labels, predictions["pool"].preds)))
    assert recompute_metrics(result, predictions) == {}
    from lnft import sweep

    frame = sweep.results_frame([result])  # tidy: the pool is one more split beside dev and validation
    assert set(frame["split"]) == {"dev", "validation", "pool"}
    assert frame.query("split == 'pool' and metric == 'score'")["value"].item() == result.pool_metrics["score"]
    tampered = {**result.pool_metrics, "score": result.pool_metrics["score"] + 1}
    result.pool_metrics = tampered
    assert "pool score" in recompute_metrics(result, predictions)


def test_task_spec_and_data_dir_tasks_take_a_pool(tmp_path):
    import shutil

    spec = os.path.join(HERE, "reviews.yaml")
    cfg = RunConfig(task_spec=spec, pool_size=30, device="cpu").validate()
    splits = load_task_data(cfg, get_task(cfg.task))
    assert len(splits["pool"]) == 30
    assert P.leaks(splits["pool"]["sentence1"][:], None, splits["train"]["sentence1"][:], None) == []
    pairs = RunConfig(task_spec=os.path.join(HERE, "pairs.json"), pool_size=10, device="cpu").validate()
    split = load_task_data(pairs, get_task(pairs.task))
    assert P.leaks(split["pool"]["sentence1"][:], split["pool"]["sentence2"][:], split["train"]["sentence1"][:],
                   split["train"]["sentence2"][:]) == []
    from lnft.sources import embedded_dir

    shutil.copytree(os.path.join(embedded_dir(), "RTE"), tmp_path / "RTE")  # a local GLUE directory
    local = RunConfig(task="rte", data=str(tmp_path), pool_size=100).validate()
    assert len(load_task_data(local, get_task("rte"))["pool"]) == 100


def test_verdicts_rest_on_dev_and_pool_as_one_set_of_examples(tiny, tmp_path):
    """lnft.evidence: the verdict on dev ∪ pool (one set: the dev and pool predictions concatenated), the dev-only
    estimate beside it, and the counts every recorded cell prints."""
    from lnft import evidence, record, stats
    from lnft.store import RunStore

    store = RunStore(str(tmp_path / "runs"))
    runs = [store.get_or_run(tiny(task="mrpc", method=m, seed=s, pool_size=48, max_eval_samples=24), progress=False)
            for m in ("head", "layernorm") for s in (0, 1)]
    dev_only = stats.method_verdicts(runs, reference="layernorm", store=store, replicates=200)
    table = evidence.on_union(stats.method_verdicts, runs, reference="layernorm", store=store, replicates=200)
    row, plain = table.iloc[0], dev_only.iloc[0]
    assert (row["examples"], row["dev_examples"], row["pool_examples"]) == (24 + 48, 24, 48)
    assert row["dev_diff"] == plain["diff"] and row["dev_lo"] == plain["lo"] and row["dev_hi"] == plain["hi"]
    task = get_task("mrpc")
    union = {}
    for r in runs:  # by hand: one task score per run on the 72 examples, dev first
        p = r.predictions()
        union[r.run_id] = task.score(task.compute_metrics(np.r_[p["dev"].labels, p["pool"].labels],
                                                          np.r_[p["dev"].preds, p["pool"].preds]))
    by_method = {m: np.mean([union[r.run_id] for r in runs if r.config.method == m]) for m in ("layernorm", "head")}
    assert row["diff"] == pytest.approx(by_method["layernorm"] - by_method["head"], abs=1e-9)
    widths = evidence.interval_widths(table)
    assert widths["dev_width"].iloc[0] == pytest.approx(plain["hi"] - plain["lo"])
    recorded = record.rows(table, "layernorm − head").iloc[0].to_dict()
    assert "72 examples: 24 dev + 48 pool; dev alone" in record.seeds_text(recorded)
    bare = [store.get_or_run(tiny(task="mrpc", method=m, seed=s, max_eval_samples=24), progress=False)
            for m in ("head", "layernorm") for s in (0, 1)]
    plain_table = evidence.on_union(stats.method_verdicts, bare, reference="layernorm", store=store, replicates=200)
    assert plain_table.iloc[0]["pool_examples"] == 0 and plain_table.iloc[0]["dev_examples"] == 24
    assert "24 dev examples" in record.seeds_text(record.rows(plain_table, "x").iloc[0].to_dict())
    with pytest.raises(LnftError, match="cannot pair runs"):  # a pooled run never pairs with a dev-only one
        evidence.on_union(stats.method_verdicts, [*runs[:2], *bare[2:]], reference="layernorm", store=store,
                          replicates=200)


def test_profiles_set_the_pool_per_task_and_the_reference_pools_fit():
    """standard pools each task (its sizes leave the 2,000 training rows: validate checks every run); full and
    paper keep the paper's protocol (dev only); an override reaches every run."""
    from lnft import experiments, profiles

    P = profiles.resolve("02_peft_comparison", "standard")
    assert [P.run_config(task=t).pool_size for t in ("sst2", "mrpc", "stsb", "rte")] == [4000, 1400, 3400, 0]
    experiments.validate(P)
    for name in ("full", "paper"):
        assert profiles.PROFILES[name]["common"]["pool_size"] == 0
    assert profiles.resolve("01_change_analysis", "smoke", pool_size=16).run_config(task="stsb").pool_size == 16
    with pytest.raises(LnftError, match="invalid pool_size -2; allowed: an integer >= 0, or"):
        profiles.resolve("01_change_analysis", "smoke", pool_size=-2)
    with pytest.raises(LnftError, match=r"pool_size names unknown task\(s\) \['nosuch'\]"):
        profiles.resolve("01_change_analysis", "smoke", pool_size={"nosuch": 10, "default": 0})
    aliased = profiles.resolve("01_change_analysis", "smoke", pool_size={"sts-b": 10, "default": 0})
    assert aliased.run_config(task="stsb").pool_size == 10  # an alias names its task
    spec = os.path.join(HERE, "reviews.yaml")
    assert profiles.resolve("01_change_analysis", "smoke", task_spec=spec,
                            pool_size={"reviews": 30}).run_config(task="reviews").pool_size == 30


def test_notebook_2_verdicts_rest_on_dev_and_pool(tmp_path):
    """experiments.decide_methods (what notebook 2 calls) judges pooled runs on dev ∪ pool."""
    from lnft import experiments, profiles, stats
    from lnft.store import RunStore

    store = RunStore(str(tmp_path / "runs"))
    P = profiles.resolve("02_peft_comparison", "smoke", tasks=["stsb"], methods=["layernorm", "head"], comparators=[],
                         lr_grid={"default": [1e-2]}, decide=False, max_seeds=None, pool_size=24, device="cpu")
    results, decided, _ = experiments.decide_methods(
        P, store, P.methods, run=lambda configs: [store.get_or_run(c, progress=False) for c in configs],
        log=lambda *a: None)
    assert {r.config.pool_size for r in results} == {24}
    row = decided.iloc[0]
    assert (row["dev_examples"], row["pool_examples"], row["examples"]) == (32, 24, 56)
    assert np.isfinite(row["dev_lo"]) and row["dev_verdict"] in stats.VERDICTS


def test_the_fishers_held_out_rows_lie_outside_the_pool():
    """Notebook 3's Fisher reads train-file rows the run did not fit: never pool rows (lnft.fisher, lnft.subsets)."""
    from lnft import fisher, subsets

    task = get_task("rte")
    pool = P.task_pool(load_raw("embedded", task), task, 300)
    cfg = RunConfig(task="rte", max_train_samples=200, pool_size=300).validate()
    rows = fisher.held_out_indices(cfg)
    assert set(rows) <= set(pool.drawable) and not set(rows) & set(pool.rows)
    assert len(rows) == len(pool.drawable) - 200 - round(0.1 * len(pool.drawable))
    make = lambda **kw: RunConfig(**{"max_train_samples": None, "pool_size": 300, **kw})  # noqa: E731
    start = subsets.start_config("finetuned", make, "rte", 0, held_out=64)  # cross-fitted inside the rows left
    held = fisher.held_out_indices(start)
    assert len(held) == 64 and set(held) <= set(pool.drawable)


def test_a_pool_whose_metric_is_undefined_is_refused_before_any_work():
    """Issue 31 defect 6 on the pool split: a one-row STS-B pool would store Pearson 0.0 as if scored."""
    from lnft.config import RunConfig

    with pytest.raises(LnftError, match="cannot be scored"):
        RunConfig(task="stsb", method="head", pool_size=1, max_train_samples=64).validate()
