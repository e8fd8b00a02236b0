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
