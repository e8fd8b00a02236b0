import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["LNFT_PROGRESS"] = "0"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import dataclasses  # noqa: E402

import pytest  # noqa: E402

from lnft import RunConfig  # noqa: E402

# Tiny but real: the embedded pre-trained model on a few dozen real GLUE examples.
TINY = dict(max_train_samples=24, max_eval_samples=16, epochs=1, batch_size=8, device="cpu")


@pytest.fixture
def tiny():
    def make(**overrides) -> RunConfig:
        return RunConfig(**{**TINY, **overrides})

    return make


@pytest.fixture(scope="session")
def pretrained_state():
    """The embedded model's pre-trained parameters (2-label head), for bit-identity checks."""
    from lnft.models import load_model

    model = load_model("embedded", 2)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def replace(cfg, **kw):
    return dataclasses.replace(cfg, **kw)


@pytest.fixture(scope="session")
def smoke_reports(tmp_path_factory):
    """Every notebook executed once on the smoke profile by ``lnft reports`` into a temporary folder
    (runs from $LNFT_RUNS, shared with the nbval notebooks): the folder ``<out>/smoke``."""
    from lnft.cli import main

    out = tmp_path_factory.mktemp("reports")
    notebooks = os.path.join(os.path.dirname(__file__), "..", "notebooks")
    runs = os.environ.get("LNFT_RUNS") or str(tmp_path_factory.mktemp("runs"))
    assert main(["reports", "--profile", "smoke", "--out", str(out), "--notebooks-dir", notebooks,
                 "--runs", runs, "--ledger", str(out / "ledger")]) == 0  # its runs recorded: tests/test_ledger_check.py
    return out / "smoke"
