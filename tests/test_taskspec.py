"""Your own task from a spec file (lnft/taskspec.py): checked up front, content in the run id, trained
through the same path as GLUE."""
import json
import os
import shutil

import pytest

from lnft import LnftError, RunConfig
from lnft.cli import main

HERE = os.path.join(os.path.dirname(__file__), "data", "own_task")
REVIEWS = os.path.join(HERE, "reviews.yaml")
PAIRS = os.path.join(HERE, "pairs.json")


def _copy(tmp_path, spec=REVIEWS) -> str:
    """The example task copied to tmp_path (spec and data), so a test may edit it; the copied spec's path."""
    for name in os.listdir(HERE):
        shutil.copy(os.path.join(HERE, name), tmp_path / name)
    return str(tmp_path / os.path.basename(spec))


def _write_spec(tmp_path, **changes) -> str:
    import yaml

    with open(REVIEWS) as fh:
        spec = yaml.safe_load(fh)
    spec.update(changes)
    spec = {k: v for k, v in spec.items() if v is not None}
    _copy(tmp_path)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_the_examples_load_with_their_labels_and_metrics():
    from lnft.data import load_raw
    from lnft.tasks import get_task

    cfg = RunConfig(task_spec=REVIEWS, method="layernorm", device="cpu").validate()
    assert cfg.task == "reviews" and cfg.data == "task-spec" and os.path.isabs(cfg.task_spec)
    task = get_task("reviews")
    assert task.labels == ("negative", "positive") and task.metrics == ("accuracy", "f1") and task.num_labels == 2
    raw = load_raw(cfg.data, task)
    assert len(raw["train"]) == 240 and len(raw["dev"]) == 120
    assert set(raw["train"]["label"]) == {0, 1} and raw["train"]["sentence2"][0] == ""
    pairs = RunConfig(task_spec=PAIRS, method="layernorm", device="cpu").validate()
    task = get_task(pairs.task)
    assert task.is_regression and task.is_pair and task.metric_names() == ["pearson", "spearman"]
    raw = load_raw(pairs.data, task)
    assert len(raw["train"]) == 80 and raw["dev"]["sentence2"][0] and 0 <= min(raw["dev"]["label"])


def test_the_datas_content_enters_the_run_id(tmp_path):
    base = RunConfig(task_spec=REVIEWS, method="layernorm", device="cpu").run_id()
    moved = tmp_path / "moved"
    moved.mkdir()
    same = RunConfig(task_spec=_copy(moved), method="layernorm", device="cpu").run_id()
    assert same == base  # another folder, the same content: the same run
    edited = tmp_path / "edited"
    edited.mkdir()
    spec = _copy(edited)
    text = (edited / "reviews_train.csv").read_text().splitlines()
    name, label = text[1].rsplit(",", 1)
    text[1] = name + "," + ("positive" if label == "negative" else "negative")  # one label flipped
    (edited / "reviews_train.csv").write_text("\n".join(text) + "\n")
    assert RunConfig(task_spec=spec, method="layernorm", device="cpu").run_id() != base
    metrics = _write_spec(tmp_path, metrics=["accuracy"])  # the spec's meaning counts too
    assert RunConfig(task_spec=metrics, method="layernorm", device="cpu").run_id() != base


def _bad(tmp_path, what: str) -> str:
    """A spec path that is wrong in one way."""
    spec = _copy(tmp_path)
    train = tmp_path / "reviews_train.csv"
    if what == "missing column":
        return _write_spec(tmp_path, label="stars")
    if what == "label outside the set":
        train.write_text(train.read_text().replace(",negative\n", ",neutral\n", 1))
    elif what == "empty file":
        train.write_text("")
    elif what == "header only":
        train.write_text("review,sentiment\n")
    elif what == "non-numeric target":
        (tmp_path / "pairs_train.jsonl").write_text('{"first": "a", "second": "b", "similarity": "high"}\n' * 3)
        return str(tmp_path / "pairs.json")
    elif what == "non-finite target":
        (tmp_path / "pairs_dev.jsonl").write_text('{"first": "a", "second": "b", "similarity": Infinity}\n')
        return str(tmp_path / "pairs.json")
    elif what == "unknown metric":
        return _write_spec(tmp_path, metrics=["bleu"])
    elif what == "regression metric on classes":
        return _write_spec(tmp_path, metrics=["pearson"])
    elif what == "GLUE name":
        return _write_spec(tmp_path, name="sst-2")
    elif what == "unknown format":
        return _write_spec(tmp_path, train="reviews_train.xlsx")
    elif what == "missing file":
        return _write_spec(tmp_path, dev="nowhere.csv")
    elif what == "unknown key":
        return _write_spec(tmp_path, lables=["a", "b"])
    elif what == "no labels":
        return _write_spec(tmp_path, labels=None)
    elif what == "hub while offline":
        return _write_spec(tmp_path, train=None, dev=None, hub="stanfordnlp/imdb", splits={"train": "train", "dev": "test"})
    elif what == "not a mapping":
        (tmp_path / "list.yaml").write_text("- a\n- b\n")
        return str(tmp_path / "list.yaml")
    # -- issue 31
    elif what == "repeated column":  # pandas would read the second as 'sentiment.1' and train on the first
        lines = train.read_text().splitlines()
        flipped = [line.rsplit(",", 1)[0] + ",positive" for line in lines[1:]]
        train.write_text("review,sentiment,sentiment\n" + "".join(f"{a},{b.rsplit(',', 1)[1]}\n"
                                                                   for a, b in zip(flipped, lines[1:])))
    elif what == "repeated key in JSON Lines":  # json.loads would keep the last value without a word
        (tmp_path / "pairs_dev.jsonl").write_text('{"first": "a", "second": "b", "similarity": 1, "similarity": 2}\n')
        return str(tmp_path / "pairs.json")
    elif what == "one dev row, regression":
        dev = tmp_path / "pairs_dev.jsonl"
        dev.write_text(dev.read_text().splitlines(True)[0])
        return str(tmp_path / "pairs.json")
    elif what == "constant regression targets":
        for split in ("train", "dev"):
            path = tmp_path / f"pairs_{split}.jsonl"
            rows = [{**json.loads(line), "similarity": 2.5} for line in path.read_text().splitlines()]
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(tmp_path / "pairs.json")
    elif what == "constant dev targets":
        path = tmp_path / "pairs_dev.jsonl"
        rows = [{**json.loads(line), "similarity": 2.5} for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(tmp_path / "pairs.json")
    elif what in ("one-class dev, f1", "one-class dev, matthews"):
        if what.endswith("matthews"):
            spec = _write_spec(tmp_path, metrics=["accuracy", "matthews"])  # (copies the data afresh)
        dev = tmp_path / "reviews_dev.csv"
        lines = dev.read_text().splitlines(True)
        dev.write_text(lines[0] + "".join(line for line in lines[1:] if line.rstrip().endswith(",negative")))
    elif what == "alias bomb":  # 0.6 kB that PyYAML expands into a 6 MB label (and error line)
        inner = ["&a [x, x, x, x, x, x, x, x, x, x]"] + [
            f"&{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(5)]
        text = open(REVIEWS).read().replace("labels: [negative, positive]", f"labels: [negative, [{', '.join(inner)}]]")
        (tmp_path / "bomb.yaml").write_text(text)
        return str(tmp_path / "bomb.yaml")
    return spec


BAD = {
    "missing column": "missing column(s) ['stars']",
    "label outside the set": "has label 'neutral' in column 'sentiment'; allowed: negative, positive",
    "empty file": "the file is empty",
    "header only": "no data rows",
    "non-numeric target": "line 1 has regression target 'high' in column 'similarity'; allowed: a finite number",
    "non-finite target": "has regression target inf",
    "unknown metric": "metric(s) ['bleu']; allowed: accuracy, f1, matthews",
    "regression metric on classes": "pearson: not for classification",
    "GLUE name": "is GLUE's 'sst2'",
    "unknown format": "unknown format; allowed: .csv, .tsv, .jsonl",
    "missing file": "dev file 'nowhere.csv' does not exist",
    "unknown key": "unknown key(s) ['lables']",
    "no labels": "labels is None; allowed: a list of at least two",
    "not a mapping": "not a mapping",
    "hub while offline": "hub dataset 'stanfordnlp/imdb' of task spec 'reviews' cannot be loaded",
    # -- issue 31
    "repeated column": "reviews_train.csv: the header names column 'sentiment' 2 times; allowed: each column once",
    "repeated key in JSON Lines": "pairs_dev.jsonl: line 1: key 'similarity' appears 2 times",
    "one dev row, regression": "dev split of task 'pairs' cannot be scored (1 row(s)): Pearson and Spearman need at "
                               "least 2 rows",
    "constant regression targets": "validation split of task 'pairs' cannot be scored (8 row(s)): every target is "
                                   "2.5, and Pearson and Spearman are undefined",
    "constant dev targets": "dev split of task 'pairs' cannot be scored (40 row(s)): every target is 2.5",
    "one-class dev, f1": "dev split of task 'reviews' cannot be scored (",
    "one-class dev, matthews": "every label is 'negative', and the Matthews correlation is then 0",
    "alias bomb": "uses a YAML alias (alias *a at line 8); allowed: plain values, without anchors",
}


@pytest.mark.parametrize("what", list(BAD))
def test_bad_specs_fail_in_one_line_with_exit_2_and_write_nothing(what, tmp_path, capsys):
    spec = _bad(tmp_path, what)
    out = tmp_path / "runs"
    code = main(["train", "--task-spec", spec, "--method", "layernorm", "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("lnft: error: "), err
    assert BAD[what] in err, err[:300]
    assert len(err) < 400, f"{len(err):,} characters"  # one short line, whatever the input holds
    assert not out.exists()


def test_train_needs_a_task_or_a_spec_and_not_both(capsys):
    assert main(["train", "--method", "layernorm"]) == 2
    assert main(["train", "--task", "sst2", "--task-spec", REVIEWS, "--method", "layernorm"]) == 2
    assert main(["train", "--task-spec", REVIEWS, "--data", "nyu-mll/glue", "--method", "layernorm"]) == 2
    assert "one of them" in capsys.readouterr().err


def test_a_spec_task_needs_its_spec_in_the_config():
    RunConfig(task_spec=REVIEWS).validate()  # registered in this process now
    with pytest.raises(LnftError, match="comes from a task spec"):
        RunConfig(task="reviews").validate()
    with pytest.raises(LnftError, match="differs from the task spec's name"):
        RunConfig(task="rte", task_spec=REVIEWS).validate()


def test_lnft_train_on_the_example(tmp_path, capsys):
    argv = ["train", "--task-spec", REVIEWS, "--method", "layernorm", "--max-train-samples", "16",
            "--max-eval-samples", "16", "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--no-progress",
            "--json", "--out", str(tmp_path / "runs")]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["task"] == "reviews" and set(record["metrics"]) == {"accuracy", "f1", "score"}
    assert record["run_id"].startswith("reviews-layernorm-")
    assert main(argv) == 0 and "(cached)" in capsys.readouterr().out  # the same content: read back


def test_lnft_reports_checks_the_spec_before_any_notebook(tmp_path, capsys):
    notebooks = os.path.join(os.path.dirname(__file__), "..", "notebooks")
    spec = _bad(tmp_path, "label outside the set")
    out, runs = tmp_path / "reports", tmp_path / "runs"
    code = main(["reports", "--profile", "smoke", "--task-spec", spec, "--out", str(out), "--runs", str(runs),
                 "--notebooks-dir", notebooks])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "has label 'neutral'" in err, err
    assert not out.exists() and not runs.exists()
    code = main(["reports", "--profile", "smoke", "--task-spec", REVIEWS, "--tasks", "sst2", "--out", str(out),
                 "--runs", str(runs), "--notebooks-dir", notebooks])
    assert code == 2 and "cannot be combined with a task spec" in capsys.readouterr().err


def test_the_notebooks_take_the_spec(tmp_path):
    """Every notebook's parameters resolve to the spec's task (what ``lnft reports --task-spec`` passes)."""
    from lnft import plan, profiles

    for name in plan.NOTEBOOKS:
        P = profiles.resolve(name, "smoke", task_spec=REVIEWS)
        assert P.tasks == ["reviews"]
        cfg = P.run_config(task="reviews", method="layernorm").validate()
        assert cfg.task_spec == os.path.abspath(REVIEWS) and cfg.data == "task-spec"
        assert {p.config.task for p in plan.notebook_configs(name, "smoke")} <= {"sst2", "stsb"}  # profile unchanged


def test_tsv_and_json_lines_with_numeric_labels(tmp_path):
    """The same rows as TSV (labels 0/1) and as JSON Lines (labels as JSON numbers) give the same task data."""
    import pandas as pd

    from lnft.data import load_raw
    from lnft.tasks import get_task

    frames = {s: pd.read_csv(os.path.join(HERE, f"reviews_{s}.csv")) for s in ("train", "dev")}
    for split, frame in frames.items():
        frame = frame.assign(sentiment=(frame["sentiment"] == "positive").astype(int))
        frame.to_csv(tmp_path / f"{split}.tsv", sep="\t", index=False)
        frame.to_json(tmp_path / f"{split}.jsonl", orient="records", lines=True)
    loaded = {}
    for kind in ("tsv", "jsonl"):
        spec = tmp_path / f"{kind}.yaml"
        spec.write_text(f"name: r-{kind}\ntrain: train.{kind}\ndev: dev.{kind}\ntext: review\nlabel: sentiment\n"
                        "labels: [0, 1]\n")
        cfg = RunConfig(task_spec=str(spec), method="head", device="cpu").validate()
        raw = load_raw(cfg.data, get_task(cfg.task))
        loaded[kind] = (raw["train"]["sentence1"][:], raw["train"]["label"][:], raw["dev"]["label"][:])
        assert get_task(cfg.task).metrics == ("accuracy",)  # the default for classification
    assert loaded["tsv"] == loaded["jsonl"]
    assert loaded["tsv"][1] == [int(v == "positive") for v in frames["train"]["sentiment"]]


def test_one_class_dev_with_f1_names_the_missing_positive_label(tmp_path, capsys):
    """F1 of the positive class is 0 for any model when no dev row is positive: refused (accuracy alone is fine)."""
    spec = _bad(tmp_path, "one-class dev, f1")
    with pytest.raises(LnftError, match="no row has the positive label 'positive', and F1 is then 0"):
        RunConfig(task_spec=spec, method="head", device="cpu").validate()
    dev = (tmp_path / "reviews_dev.csv").read_text()
    accuracy = _write_spec(tmp_path, metrics=["accuracy"])
    (tmp_path / "reviews_dev.csv").write_text(dev)
    RunConfig(task_spec=accuracy, method="head", device="cpu").validate()  # accuracy is defined on one class


def test_yes_and_no_are_label_values_not_booleans(tmp_path):
    """YAML 1.1 (PyYAML's default) reads no/yes/on/off as booleans; a spec reads them as the words they are."""
    from lnft.data import load_raw
    from lnft.tasks import get_task

    _copy(tmp_path)
    for split in ("train", "dev"):
        path = tmp_path / f"reviews_{split}.csv"
        path.write_text(path.read_text().replace(",negative\n", ",no\n").replace(",positive\n", ",yes\n"))
    spec = tmp_path / "yn.yaml"
    spec.write_text(open(REVIEWS).read().replace("name: reviews", "name: yes-no")
                    .replace("[negative, positive]", "[no, yes]") + "regression: false\n")
    cfg = RunConfig(task_spec=str(spec), method="head", device="cpu").validate()
    task = get_task(cfg.task)
    assert task.labels == ("no", "yes")
    raw = load_raw(cfg.data, task)
    text = (tmp_path / "reviews_train.csv").read_text().splitlines()[1:]
    assert raw["train"]["label"][:] == [int(line.endswith(",yes")) for line in text]
    spec.write_text(spec.read_text().replace("regression: false", "regression: yes"))  # not a boolean either
    with pytest.raises(LnftError, match="regression is 'yes'; allowed: true or false"):
        RunConfig(task_spec=str(spec), method="head", device="cpu").validate()


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


@pytest.mark.parametrize("which", ["spec", "data"])
def test_an_unreadable_spec_or_data_file_is_one_line_naming_it(which, tmp_path, capsys, monkeypatch):
    spec = _copy(tmp_path)
    path = spec if which == "spec" else str(tmp_path / "reviews_dev.csv")
    _unreadable(monkeypatch, path)
    out = tmp_path / "runs"
    code = main(["train", "--task-spec", spec, "--method", "head", "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("lnft: error: "), err
    assert os.path.basename(path) in err and "is unreadable (Permission denied)" in err, err
    assert not out.exists()
