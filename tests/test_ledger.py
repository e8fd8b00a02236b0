"""The results ledger: every run's compact record, served by run id with no weights; failed runs apart."""
import gzip
import json
import os

import numpy as np
import pytest
import torch

from lnft.errors import LnftError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two tiny runs (full, layernorm) trained once into a store with a ledger."""
    from lnft import RunConfig
    from lnft.store import RunStore

    root = tmp_path_factory.mktemp("ledger-runs")
    store = RunStore(root / "runs", ledger=root / "ledger")
    tiny = dict(max_train_samples=24, max_eval_samples=16, epochs=1, batch_size=8, device="cpu")
    configs = {m: RunConfig(**{**tiny, "task": "sst2", "method": m, "lr": 1e-4}) for m in ("full", "layernorm")}
    results = {m: store.get_or_run(c, progress=False) for m, c in configs.items()}
    return root, store, configs, results


def test_a_trained_run_is_recorded_and_served_without_weights(trained, monkeypatch):
    from lnft import changes
    from lnft.store import RunStore
    from lnft.store.ledger import Ledger

    root, store, configs, results = trained
    ledger = Ledger(root / "ledger")
    assert sorted(ledger.run_ids()) == sorted(r.run_id for r in results.values())
    with gzip.open(ledger.path(results["full"].run_id), "rt") as fh:
        record = json.load(fh)
    assert record["predictions"]["dev"]["preds"]["stored"] == "|i1"  # class ids as int8
    assert {"commit", "dirty", "python", "platform"} <= set(record["environment"])
    assert record["result"]["history"] and record["result"]["fingerprints"] and record["result"]["trainable_params"]
    assert os.path.getsize(ledger.path(results["full"].run_id)) < 40_000  # no weights: a few kilobytes

    assert "trained" not in results["layernorm"].derived  # tensors only where a Fisher pass reads them
    small = os.path.getsize(ledger.path(results["layernorm"].run_id))
    store.trained_tensors(results["layernorm"])  # read as a Fisher start run: kept in its ledger record
    assert os.path.getsize(ledger.path(results["layernorm"].run_id)) > small + 20_000
    store.trained_tensors(results["full"])
    assert os.path.getsize(ledger.path(results["full"].run_id)) < 40_000  # never a full run's tensors

    # no run store at all: served from the ledger, trains nothing, and the analyses need no weights
    empty = RunStore(root / "empty", ledger=ledger)
    monkeypatch.setattr("lnft.train.finetune", lambda *a, **k: pytest.fail("trained a run the ledger holds"))
    served = {m: empty.get_or_run(c, progress=False) for m, c in configs.items()}
    for m, r in served.items():
        assert r.run_dir is None and r.metrics == results[m].metrics and r.history == results[m].history
        for split, p in results[m].predictions().items():
            assert np.array_equal(r.predictions()[split].preds, p.preds) and r.predictions()[split].digest == p.digest
    full_store, full_ledger = changes.run_changes(results["full"], store), changes.run_changes(served["full"])
    assert full_store.equals(full_ledger) and (full_ledger[full_ledger["kind"] == "all"]["value"] > 0).all()
    assert (changes.run_changes(results["full"], None).equals(full_store))  # the store's record holds them too
    for name, tensor in store.tensors(results["layernorm"]).items():  # a Fisher start run: its tensors, exact
        assert torch.equal(empty.trained_tensors(served["layernorm"])[name], tensor)
    with pytest.raises(LnftError, match="keeps no weights"):
        empty.trained_tensors(served["full"])


def test_data_derived_by_other_code_is_not_used(trained, monkeypatch):
    from lnft import changes
    from lnft.store import RunStore

    root, store, configs, results = trained
    served = RunStore(root / "nothing", ledger=root / "ledger").get_or_run(configs["full"], progress=False)
    before = changes.run_changes(results["full"], store)
    monkeypatch.setattr("lnft.derived.source_digest", lambda: "other code")
    with pytest.raises(LnftError, match="no change sums derived by this code"):
        changes.run_changes(served)  # a ledger run: no weights to fall back on
    assert changes.run_changes(results["full"], store).equals(before)  # a stored run: from its weights


def test_derived_change_sums_equal_the_weights_analysis(trained):
    """The sums recorded at train time give exactly the frame computed from the stored weights."""
    from lnft import changes

    _, store, _, results = trained
    result = results["layernorm"]
    from_weights = changes.frame_from_sums(changes.run_sums(result.config, store.tensors(result)))
    assert changes.frame_from_sums(result.derived["changes"]).equals(from_weights)


def test_a_broken_or_failed_record_is_never_served(trained, tmp_path, capsys):
    import shutil

    from lnft.store import RunStore
    from lnft.store.ledger import Ledger

    root, _, configs, results = trained
    ledger = Ledger(tmp_path / "ledger")
    shutil.copytree(root / "ledger", ledger.root, dirs_exist_ok=True)
    run_id = results["full"].run_id
    with gzip.open(ledger.path(run_id), "rt") as fh:
        record = json.load(fh)
    record["result"]["metrics"]["score"] += 1.0  # metrics its predictions do not give
    with gzip.open(ledger.path(run_id), "wt") as fh:
        json.dump(record, fh)
    assert ledger.load(run_id) is None and "metrics differ from its predictions" in capsys.readouterr().err
    with open(ledger.path(results["layernorm"].run_id), "wb") as fh:
        fh.write(b"\x1f\x8b garbage")
    assert ledger.load(results["layernorm"].run_id) is None and "unreadable" in capsys.readouterr().err
    os.rename(ledger.path(results["layernorm"].run_id), os.path.join(ledger.root, "failed-x.json.gz"))
    ledger.record_failure("abc", configs["full"], "RunFailed: diverged")
    assert ledger.load("abc") is None and ledger.failures()[0]["error"] == "RunFailed: diverged"
    monkeypatch_env = {"LNFT_LEDGER_ONLY": "1"}
    old = {k: os.environ.get(k) for k in monkeypatch_env}
    os.environ.update(monkeypatch_env)
    try:
        with pytest.raises(LnftError, match="forbids training"):
            RunStore(tmp_path / "runs", ledger=ledger).get_or_run(configs["full"], progress=False)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert not (tmp_path / "runs").exists()


def test_a_failing_run_is_recorded_apart_in_the_ledger(tiny, tmp_path, monkeypatch):
    from lnft.store import RunStore
    from lnft.store.ledger import Ledger

    def boom(*a, **k):
        raise RuntimeError("exploded")

    monkeypatch.setattr("lnft.train.finetune", boom)
    store = RunStore(tmp_path / "runs", ledger=tmp_path / "ledger")
    with pytest.raises(RuntimeError):
        store.get_or_run(tiny(task="sst2", method="head"), progress=False)
    ledger = Ledger(tmp_path / "ledger")
    assert ledger.run_ids() == [] and "exploded" in ledger.failures()[0]["error"]


def test_a_run_served_from_the_weight_store_is_recorded_in_a_new_ledger(trained, tmp_path):
    from lnft.store import RunStore
    from lnft.store.ledger import Ledger

    root, _, configs, results = trained
    store = RunStore(root / "runs", ledger=tmp_path / "new")
    assert store.get_or_run(configs["layernorm"], progress=False).run_dir  # served from its directory
    assert Ledger(tmp_path / "new").run_ids() == [results["layernorm"].run_id]


def test_encode_keeps_values_exactly_in_the_smallest_dtype():
    from lnft.store.ledger import decode, encode

    for array, stored in ((np.array([0, 1, 1, 0], dtype=np.int64), "|i1"), (np.array([0, 300]), "<i2"),
                          (np.array([0.5, 1.25], dtype=np.float32), "<f2"),
                          (np.array([3.8, 4.2]), "<f8"), (np.array([0.1, 2.7], dtype=np.float32), "<f4")):
        value = encode(array)
        assert value["stored"] == stored and decode(value).dtype == array.dtype
        assert np.array_equal(decode(value), array)


def test_reproduce_retrains_a_sample_and_compares(trained, capsys):
    from lnft.cli import main

    root, _, _, results = trained
    assert main(["runs", "reproduce", "--ledger", str(root / "ledger"), "--sample", "1", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "identical" in out and any(r.run_id in out for r in results.values())
    assert main(["runs", "reproduce", "--ledger", str(root / "ledger"), "--sample", "0"]) == 2
    assert "invalid --sample 0" in capsys.readouterr().err


def test_reproduce_says_which_runs_cannot_be_reproduced_here(trained, tmp_path):
    import shutil

    from lnft import ledger_check
    from lnft.store.ledger import Ledger

    root, _, _, results = trained
    ledger = Ledger(tmp_path / "ledger")
    shutil.copytree(root / "ledger", ledger.root)
    for run_id in ledger.run_ids():  # a record made by other code: this checkout gives another id
        with gzip.open(ledger.path(run_id), "rt") as fh:
            record = json.load(fh)
        record["result"]["config"]["lr"] = 0.5
        record["result"]["fingerprints"]["code"] = "0" * 16  # other code: its own id is not re-hashed here
        record["run_id"] = run_id
        with gzip.open(ledger.path(run_id), "wt") as fh:
            json.dump(record, fh)
    table = ledger_check.reproduce(ledger, 5)
    assert len(table) == 2 and table["outcome"].str.startswith("not reproducible here").all()


def test_plan_says_what_the_ledger_lacks(trained, tmp_path, capsys):
    from lnft.cli import main

    root, _, _, _ = trained
    assert main(["plan", "--profile", "smoke", "--notebooks", "02_peft_comparison", "--runs", str(tmp_path / "none"),
                 "--ledger", str(root / "ledger")]) == 0
    out = capsys.readouterr().out
    assert "in ledger" in out and f"ledger {root / 'ledger'}: 0 of " in out and "missing: 02 sst2" in out


def test_verdicts_and_blocks_are_compared_with_a_tolerance(tmp_path):
    import pandas as pd

    from lnft import ledger_check, record

    def folder(name, shift=0.0, word="inconclusive"):
        out = tmp_path / name
        out.mkdir()
        low = 0.1 if word == "better" else -8.3  # a recorded word must agree with its own interval (lnft.record)
        table = pd.DataFrame({"task": ["sst2", "average"], "diff": [0.2 + shift, 0.1], "lo": [low, -9.5],
                              "hi": [8.9, 9.8], "verdict": [word, "inconclusive"]})
        record.save("02_peft_comparison", [record.rows(table, "layernorm − full")], out=str(out))
        (out / "reports.json").write_text(json.dumps({"facts": {}, "notebooks": [
            {"name": "02_peft_comparison", "status": "ok", "seconds": 1.0, "commit": "x"}]}))
        return str(out)

    a, same, near, far, other = (folder("a"), folder("b"), folder("c", 1e-12), folder("d", 0.01),
                                 folder("e", word="better"))
    assert ledger_check.compare_verdicts(a, same) == [] and ledger_check.compare_verdicts(a, near) == []
    assert any("estimate 0.2 committed, 0.21" in p for p in ledger_check.compare_verdicts(a, far))
    assert any("verdict 'inconclusive' committed, 'better'" in p for p in ledger_check.compare_verdicts(a, other))
    block = record.markdown(a)
    assert ledger_check.compare_blocks(block, same) == [] and ledger_check.compare_blocks(block, other)


def test_runs_record_copies_a_store_into_a_ledger(trained, tmp_path, capsys):
    from lnft.cli import main
    from lnft.store.ledger import Ledger

    root, _, _, results = trained
    assert main(["runs", "record", "--runs", str(root / "runs"), "--ledger", str(tmp_path / "l")]) == 0
    assert "2 run(s) recorded" in capsys.readouterr().out
    assert Ledger(tmp_path / "l").run_ids() == sorted(r.run_id for r in results.values())
    assert main(["runs", "record", "--runs", str(root / "runs"), "--ledger", str(tmp_path / "l")]) == 0
    assert "0 run(s) recorded" in capsys.readouterr().out  # what it holds already is kept


def test_a_ledger_record_whose_config_was_edited_is_never_served(trained, tmp_path, capsys):
    """Issue 31 defect 2 on the ledger path: a record's config must hash to its own run id."""
    import shutil

    from lnft.store import RunStore
    from lnft.store.ledger import Ledger

    root, _, configs, results = trained
    ledger = Ledger(tmp_path / "ledger")
    shutil.copytree(root / "ledger", ledger.root, dirs_exist_ok=True)
    run_id = results["full"].run_id
    assert ledger.load(run_id) is not None
    with gzip.open(ledger.path(run_id), "rt") as fh:
        record = json.load(fh)
    record["result"]["config"]["lr"] = 0.003
    record["result"]["config"]["seed"] = 7
    with gzip.open(ledger.path(run_id), "wt") as fh:
        json.dump(record, fh)
    assert ledger.load(run_id) is None and "edited after it was recorded" in capsys.readouterr().err
    assert RunStore(tmp_path / "empty", ledger=ledger).get(configs["full"]) is None
