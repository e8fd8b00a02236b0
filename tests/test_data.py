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


# ------------------------------------------------------------------ issue 31: refused before any work
def _unreadable(monkeypatch, path) -> None:
    """Make ``path`` unreadable: no permissions; where that does not stop this process (root), open() refuses
    it as the operating system would refuse another user."""
    import builtins

    os.chmod(path, 0)
    if os.access(path, os.R_OK):
        real, target = builtins.open, os.path.realpath(path)

        def guarded(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and os.path.realpath(file) == target:
                raise PermissionError(13, "Permission denied", str(file))
            return real(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded)


def _train(argv, tmp_path, capsys, monkeypatch) -> str:
    """``lnft train`` on bad data: exit 2, one line, no model loaded, nothing stored; the line."""
    import lnft.models
    import lnft.train
    from lnft.cli import main

    def work(*a, **k):
        pytest.fail("work started on bad input")

    monkeypatch.setattr(lnft.models, "_load_pretrained", work)
    monkeypatch.setattr(lnft.train, "finetune", work)
    out = tmp_path / "runs"
    code = main(["train", "--method", "head", "--device", "cpu", "--no-progress", "--out", str(out), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("lnft: error: "), err
    assert not out.exists()
    return err


def _glue(tmp_path, glue_dir, header, train_rows, dev_rows) -> str:
    d = tmp_path / "glue" / glue_dir
    d.mkdir(parents=True)
    (d / "train.tsv").write_text(header + "".join(r + "\n" for r in train_rows))
    (d / "dev.tsv").write_text(header + "".join(r + "\n" for r in dev_rows))
    return str(tmp_path / "glue")


def test_an_unreadable_train_tsv_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    rows = [f"{i}\ta b {i}\tc\t{'entailment' if i % 2 else 'not_entailment'}" for i in range(30)]
    data = _glue(tmp_path, "RTE", "index\tsentence1\tsentence2\tlabel\n", rows, rows)
    _unreadable(monkeypatch, os.path.join(data, "RTE", "train.tsv"))
    err = _train(["--task", "rte", "--data-dir", data], tmp_path, capsys, monkeypatch)
    assert "RTE/train.tsv is unreadable (Permission denied)" in err, err


STS = "sentence1\tsentence2\tscore\n"


@pytest.mark.parametrize("case", ["one dev row", "constant dev targets", "constant train targets",
                                  "cola: one class in dev", "mrpc: no paraphrase in dev", "stsb --max-eval-samples 1"])
def test_splits_a_metric_cannot_score_are_refused_with_the_reason(case, tmp_path, capsys, monkeypatch):
    """Pearson/Spearman of one row or constant targets are undefined (they were stored as 0.0, or the run
    "diverged" on a NaN); Matthews on one class and F1 without a positive row are 0 whatever the model does."""
    varied = [f"a b {i}\tc d {i}\t{i % 5}" for i in range(30)]
    if case == "one dev row":
        argv, message = ["--task", "stsb", "--data-dir", _glue(tmp_path, "STS-B", STS, varied, varied[:1])], \
            "dev split of task 'stsb' cannot be scored (1 row(s)): Pearson and Spearman need at least 2 rows"
    elif case == "constant dev targets":
        argv, message = ["--task", "stsb", "--data-dir", _glue(tmp_path, "STS-B", STS, varied,
                                                             [f"a\tb\t3.0" for _ in range(9)])], \
            "dev split of task 'stsb' cannot be scored (9 row(s)): every target is 3, and Pearson and Spearman"
    elif case == "constant train targets":  # so the validation rows held out from it are constant too
        argv, message = ["--task", "stsb", "--data-dir", _glue(tmp_path, "STS-B", STS,
                                                             [f"a {i}\tb\t1.5" for i in range(30)], varied)], \
            "validation split of task 'stsb' cannot be scored (3 row(s)): every target is 1.5"
    elif case == "cola: one class in dev":
        rows = [f"src\t{i % 2}\t\ta sentence {i}" for i in range(30)]
        argv, message = ["--task", "cola", "--data-dir", _glue(tmp_path, "CoLA", "", rows,
                                                             [r for r in rows if "\t1\t" in r])], \
            "dev split of task 'cola' cannot be scored (15 row(s)): every label is '1', and the Matthews correlation"
    elif case == "mrpc: no paraphrase in dev":
        rows = [f"{i % 2}\t{i}\t{i + 1}\ta {i}\tb {i}" for i in range(30)]
        argv, message = ["--task", "mrpc", "--data-dir", _glue(tmp_path, "MRPC", "Quality\t#1 ID\t#2 ID\t#1 String\t"
                                                             "#2 String\n", rows, [r for r in rows if r[0] == "0"])], \
            "dev split of task 'mrpc' cannot be scored (15 row(s)): no row has the positive label '1', and F1 is then 0"
    else:
        argv, message = ["--task", "stsb", "--max-eval-samples", "1"], \
            "validation split of task 'stsb' cannot be scored (1 row(s)): Pearson and Spearman need at least 2 rows"
    err = _train(argv, tmp_path, capsys, monkeypatch)
    assert message in err, err


def test_a_hub_dataset_is_checked_when_its_run_loads_it(monkeypatch):
    """A hub dataset is not downloaded while a config is validated; the run checks its splits when it loads them."""
    from datasets import Dataset, DatasetDict

    from lnft import RunConfig, sources
    from lnft.data import load_task_data

    rows = {"sentence1": [f"a {i}" for i in range(30)], "sentence2": ["b"] * 30, "label": [float(i % 5) for i in range(30)]}
    flat = DatasetDict({"train": Dataset.from_dict(rows), "dev": Dataset.from_dict({**rows, "label": [2.0] * 30})})
    monkeypatch.setattr(sources.HubData, "check", lambda self: None)
    monkeypatch.setattr(sources.HubData, "fingerprint", lambda self: "hub:test")
    monkeypatch.setattr(sources, "_load_hub_cached", lambda name, task, fingerprint: flat)
    cfg = RunConfig(task="stsb", data="nyu-mll/glue", method="head", device="cpu")
    with pytest.raises(LnftError, match=r"dev split of task 'stsb' cannot be scored \(30 row\(s\)\): every target is 2"):
        load_task_data(cfg, get_task("stsb"))
