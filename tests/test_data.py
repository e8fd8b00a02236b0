import gzip
import os
import shutil

import numpy as np
import pytest
import torch

from lnft import LnftError
from lnft.data import Collator, length_grouped_batches, load_raw, make_splits
from lnft.sources import data_source, embedded_dir, read_glue_tsv
from lnft.constants import EMBEDDED_TASKS
from lnft.tasks import get_task

OFFICIAL_ROWS = {"cola": (8551, 1043), "sst2": (67349, 872), "mrpc": (3668, 408), "stsb": (5749, 1500),
                 "rte": (2490, 277)}


@pytest.mark.parametrize("name", EMBEDDED_TASKS)
def test_embedded_data_has_official_row_counts(name):
    raw = load_raw("embedded", get_task(name))
    assert (len(raw["train"]), len(raw["dev"])) == OFFICIAL_ROWS[name]
    assert raw["train"].column_names == ["sentence1", "sentence2", "label"]


def test_mrpc_bom_header_is_read():
    raw = load_raw("embedded", get_task("mrpc"))
    assert set(raw["train"]["label"]) == {0, 1}
    assert all(s2 for s2 in raw["train"]["sentence2"][:50])


def test_cola_has_no_header_and_dev_no_final_newline():
    raw = load_raw("embedded", get_task("cola"))
    assert raw["train"][0]["sentence1"].startswith("Our friends won't buy this analysis")
    assert raw["dev"][len(raw["dev"]) - 1]["sentence1"]  # the last row (no final newline) is read
    assert raw["train"]["sentence2"][0] == ""


def test_stsb_unbalanced_quotes_are_kept_verbatim():
    raw = load_raw("embedded", get_task("stsb"))
    texts = raw["train"]["sentence1"][:] + raw["train"]["sentence2"][:]
    assert any(t.count('"') % 2 == 1 for t in texts)  # quoting disabled: odd quotes survive
    labels = np.asarray(raw["dev"]["label"])
    assert labels.min() >= 0 and labels.max() <= 5 and labels.dtype.kind == "f"


def test_rte_string_labels_become_ids():
    raw = load_raw("embedded", get_task("rte"))
    assert set(raw["dev"]["label"]) == {0, 1}


def _write(tmp_path, task_dir, name, text):
    d = tmp_path / task_dir
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(text)
    return str(d / name)


def test_malformed_row_names_file_and_line(tmp_path):
    path = _write(tmp_path, "RTE", "train.tsv",
                  "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tx\tentailment\n")
    with pytest.raises(LnftError, match=r"malformed TSV .*RTE/train.tsv.*line 3"):
        read_glue_tsv(path, get_task("rte"))


def test_short_row_and_bad_label_name_the_line(tmp_path):
    short = _write(tmp_path, "RTE", "a.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\n")
    with pytest.raises(LnftError, match=r"a.tsv: line 3 has too few fields \(2, expected 4\)"):
        read_glue_tsv(short, get_task("rte"))
    bad = _write(tmp_path, "RTE", "b.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n")
    with pytest.raises(LnftError, match=r"b.tsv: line 2 has label 'maybe'; allowed: entailment, not_entailment"):
        read_glue_tsv(bad, get_task("rte"))


def test_local_glue_dir_is_a_source(tmp_path):
    for name in ("train.tsv", "dev.tsv"):
        with gzip.open(os.path.join(embedded_dir(), "RTE", name + ".gz"), "rb") as src:
            (tmp_path / "RTE").mkdir(exist_ok=True)
            (tmp_path / "RTE" / name).write_bytes(src.read())
    assert data_source(str(tmp_path), get_task("rte")).kind == "local"
    raw = load_raw(str(tmp_path), get_task("rte"))
    assert len(raw["train"]) == 2490 and len(raw["dev"]) == 277


def test_local_dir_errors(tmp_path):
    with pytest.raises(LnftError, match=r"data dir '/nonexistent/glue' does not exist"):
        load_raw("/nonexistent/glue", get_task("rte"))
    (tmp_path / "RTE").mkdir()
    with pytest.raises(LnftError, match=r"lacks RTE/train.tsv, RTE/dev.tsv for task 'rte'"):
        load_raw(str(tmp_path), get_task("rte"))


def test_non_embedded_task_needs_another_source():
    with pytest.raises(LnftError, match=r"task 'qqp' is not in the embedded data"):
        load_raw("embedded", get_task("qqp"))


def test_hub_dataset_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(LnftError, match=r"hub dataset 'nyu-mll/glue' cannot be loaded: offline.*--data-dir"):
        load_raw("nyu-mll/glue", get_task("rte"))


def test_every_source_needs_two_train_rows(monkeypatch):
    """The hub loads through its own path; it is held to the same rule as files (one row leaves none to train)."""
    from datasets import Dataset, DatasetDict

    from lnft import sources

    one = DatasetDict({"train": Dataset.from_dict({"sentence": ["a"], "label": [1]}),
                       "validation": Dataset.from_dict({"sentence": ["b"], "label": [0]})})
    monkeypatch.setattr(sources.HubData, "check", lambda self: None)
    monkeypatch.setattr(sources.HubData, "fingerprint", lambda self: "hub:test")
    monkeypatch.setattr(sources, "_load_hub_cached", lambda name, task, fingerprint: one)
    with pytest.raises(LnftError, match=r"train file of task 'sst2' in 'nyu-mll/glue' has 1 row\(s\); allowed: at least 2"):
        load_raw("nyu-mll/glue", get_task("sst2"))


def test_splits_are_deterministic_disjoint_and_independent_of_sizes():
    task = get_task("rte")
    raw = load_raw("embedded", task)
    kw = dict(data_seed=0, validation_fraction=0.1, max_eval_samples=None)
    a = make_splits(raw, task, max_train_samples=100, **kw)
    b = make_splits(raw, task, max_train_samples=100, **kw)
    big = make_splits(raw, task, max_train_samples=None, **kw)
    assert a["train"]["sentence1"][:] == b["train"]["sentence1"][:] and len(a["train"]) == 100
    assert len(big["validation"]) == 249 and len(big["train"]) == 2490 - 249
    train_rows = set(zip(big["train"]["sentence1"], big["train"]["sentence2"]))
    val_rows = set(zip(big["validation"]["sentence1"], big["validation"]["sentence2"]))
    assert not train_rows & val_rows
    assert set(zip(a["train"]["sentence1"], a["train"]["sentence2"])) <= train_rows
    small_eval = make_splits(raw, task, data_seed=0, validation_fraction=0.1, max_eval_samples=20,
                             max_train_samples=100)
    assert small_eval["train"]["sentence1"][:] == a["train"]["sentence1"][:]
    assert len(small_eval["validation"]) == 20 and len(small_eval["dev"]) == 20
    other = make_splits(raw, task, data_seed=1, validation_fraction=0.1, max_eval_samples=None,
                        max_train_samples=100)
    assert other["train"]["sentence1"][:] != a["train"]["sentence1"][:]


def test_length_grouped_batches_cover_every_example_once():
    lengths = np.random.default_rng(0).integers(5, 100, size=523)
    batches = length_grouped_batches(lengths, 16, torch.Generator().manual_seed(0), mega=4)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(523))
    # inside a mega-batch examples are sorted, so a batch's length spread is small on average
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 0.5 * (lengths.max() - lengths.min())
    again = length_grouped_batches(lengths, 16, torch.Generator().manual_seed(0), mega=4)
    assert again == batches
    eval_batches = length_grouped_batches(lengths, 100, None)
    assert [len(b) for b in eval_batches] == [100] * 5 + [23]


def test_collator_pads_per_batch():
    class Tok:
        pad_token_id = 0

    rows = [{"input_ids": [101, 5, 102], "attention_mask": [1, 1, 1], "label": 1},
            {"input_ids": [101, 102], "attention_mask": [1, 1], "label": 0}]
    batch = Collator(Tok(), regression=False)(rows)
    assert batch["input_ids"].tolist() == [[101, 5, 102], [101, 102, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].dtype == torch.long
