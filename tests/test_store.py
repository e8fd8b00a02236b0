import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lnft import LnftError
from lnft.store import RunStore


def test_run_id_is_stable_and_sensitive(tiny):
    a, b = tiny(task="rte"), tiny(task="rte")
    assert a.run_id() == b.run_id() and a.run_id().startswith("rte-layernorm-")
    assert tiny(task="rte", seed=1).run_id() != a.run_id()
    assert tiny(task="rte", lr=1e-3).run_id() == a.run_id()  # the method's default rate, made explicit
    assert tiny(task="RTE", device="auto").run_id() == a.run_id()  # resolved names and device


def test_get_or_run_stores_then_reuses_without_training(tiny, tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs")
    cfg = tiny(task="rte", method="head")
    assert store.get(cfg) is None
    first = store.get_or_run(cfg, progress=False)
    assert os.path.isfile(os.path.join(first.run_dir, "record.json"))
    size = os.path.getsize(os.path.join(first.run_dir, "trained.safetensors"))
    assert size < 10_000  # only the trainable part: a 770-element head
    import lnft.train

    monkeypatch.setattr(lnft.train, "finetune", lambda *a, **k: pytest.fail("trained again"))
    again = store.get_or_run(cfg, progress=False)
    assert again.metrics == first.metrics and again.run_id == first.run_id
    assert [r.run_id for r in store.results()] == [first.run_id]
    tensors = store.tensors(again)
    assert set(tensors) == {"classifier.weight", "classifier.bias"}
    record = json.load(open(os.path.join(first.run_dir, "record.json")))
    assert record["config"]["task"] == "rte" and "torch" in record["versions"]


def test_failed_write_leaves_nothing(tiny, tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs")
    import safetensors.torch

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError):
        store.get_or_run(tiny(task="rte", method="head"), progress=False)
    assert os.listdir(store.root) == []


KILLED_RUN = textwrap.dedent("""
    import os, sys, time
    os.environ["LNFT_PROGRESS"] = "0"
    from lnft import RunConfig
    from lnft.store import RunStore
    real_rename = os.rename
    def stall(src, dst):
        print("writing", flush=True)
        time.sleep(600)
    os.rename = stall
    RunStore(sys.argv[1]).get_or_run(RunConfig(task="rte", method="head", max_train_samples=16,
                                               max_eval_samples=8, epochs=1, batch_size=8, device="cpu"))
""")


def test_kill_9_mid_write_leaves_no_complete_record_and_rerun_recovers(tmp_path):
    root = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"  # files are written, the rename is pending
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    leftovers = os.listdir(root)
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-")
    store = RunStore(root)
    from lnft import RunConfig

    cfg = RunConfig(task="rte", method="head", max_train_samples=16, max_eval_samples=8, epochs=1, batch_size=8,
                    device="cpu")
    assert store.get(cfg) is None and store.results() == []
    result = store.get_or_run(cfg, progress=False)
    assert os.listdir(root) == [result.run_id]  # the dead run's temp dir was cleared


def test_unwritable_runs_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LnftError, match="is not writable"):
        RunStore(blocker / "runs").check_writable()
    RunStore(tmp_path / "new" / "deeper").check_writable()
    assert not (tmp_path / "new").exists()  # checking creates nothing
