"""Every bad input: one line on stderr naming the bad value, exit 2, nothing in the run store."""
import json
import os
import subprocess
import sys

import pytest

from lnft.cli import main

TINY = ["--max-train-samples", "16", "--max-eval-samples", "8", "--epochs", "1", "--batch-size", "8",
        "--no-progress", "--device", "cpu"]


@pytest.fixture
def malformed_dir(tmp_path):
    d = tmp_path / "glue" / "RTE"
    d.mkdir(parents=True)
    (d / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta b\tc\tentailment\n1\tx\n")
    (d / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta b\tc\tentailment\n")
    return str(tmp_path / "glue")


def _bad_inputs(tmp_path, malformed_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    (tmp_path / "empty").mkdir()
    return {
        "unknown task": (["--task", "glu", "--method", "layernorm"], "unknown task 'glu'; allowed: cola"),
        "unknown method": (["--task", "rte", "--method", "adapters"], "unknown method 'adapters'; allowed: full"),
        "epochs 0": (["--task", "rte", "--method", "full", "--epochs", "0"], "invalid epochs 0; allowed: an integer >= 1"),
        "lr -1": (["--task", "rte", "--method", "full", "--lr", "-1"], "invalid lr -1.0; allowed: a number > 0"),
        "missing data dir": (["--task", "rte", "--method", "full", "--data-dir", str(tmp_path / "nope")],
                             "does not exist"),
        "data dir without task": (["--task", "rte", "--method", "full", "--data-dir", str(tmp_path / "empty")],
                                  "lacks RTE/train.tsv, RTE/dev.tsv"),
        "malformed tsv": (["--task", "rte", "--method", "head", "--data-dir", malformed_dir],
                          "RTE/train.tsv: line 3 has too few fields"),
        "missing model path": (["--task", "rte", "--method", "full", "--model", str(tmp_path / "model")],
                               "model path"),
        "cuda without cuda": (["--task", "rte", "--method", "full", "--device", "cuda"], "device 'cuda'"),
        "max train 0": (["--task", "rte", "--method", "full", "--max-train-samples", "0"],
                        "invalid max_train_samples 0; allowed: an integer >= 1"),
        "hub model offline": (["--task", "rte", "--method", "full", "--model", "bert-large-cased"],
                              "hub model 'bert-large-cased' cannot be loaded: offline"),
        "hub data offline": (["--task", "rte", "--method", "full", "--data", "nyu-mll/glue"],
                             "hub dataset 'nyu-mll/glue' cannot be loaded: offline"),
        "unwritable out": (["--task", "rte", "--method", "full", "--out", str(blocker / "runs")],
                           "is not writable"),
    }


def _defaults_not_in(argv):
    out, i = [], 0
    while i < len(TINY):
        flag = TINY[i]
        takes_value = i + 1 < len(TINY) and not TINY[i + 1].startswith("--")
        if flag not in argv:
            out += TINY[i:i + 1 + takes_value]
        i += 1 + takes_value
    return out


CASES = ["unknown task", "unknown method", "epochs 0", "lr -1", "missing data dir", "data dir without task",
         "malformed tsv", "missing model path", "cuda without cuda", "max train 0", "hub model offline",
         "hub data offline", "unwritable out"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case, tmp_path, malformed_dir, capsys):
    argv, message = _bad_inputs(tmp_path, malformed_dir)[case]
    if case == "cuda without cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    out = tmp_path / "runs"
    if "--out" not in argv:
        argv = argv + ["--out", str(out)]
    code = main(["train", *argv, *_defaults_not_in(argv)])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("lnft: error: ") and message in lines[0], captured.err
    assert not out.exists() or os.listdir(out) == []


def test_train_json_in_a_subprocess(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "lnft", "train", "--task", "rte", "--method", "layernorm", "--out",
           str(tmp_path / "runs"), "--json", *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("task", "method", "model", "seed", "metrics", "trainable_params", "total_params",
                "train_seconds", "peak_memory_mb", "run_id"):
        assert key in record
    assert record["trainable_params"] == 10_754 and record["total_params"] == 22_713_986
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert "(cached)" in again.stdout and json.loads(again.stdout.splitlines()[-1])["metrics"] == record["metrics"]


def test_help_entry_points():
    for cmd in (["lnft", "--help"], [sys.executable, "-m", "lnft", "--help"]):
        if cmd[0] == "lnft":
            cmd[0] = os.path.join(os.path.dirname(sys.executable), "lnft")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "train" in proc.stdout
