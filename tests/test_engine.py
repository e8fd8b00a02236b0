"""The Ray engine against a real local Ray instance (started once for this module): the same metrics
as the local engine, a worker killed mid-run is retried with nothing partial stored, a failing run is
recorded and the rest finishes. Ray must be installed (make test installs the "cluster" extra): a
missing Ray fails these tests, it does not skip them."""
import dataclasses
import os

import numpy as np
import pytest
import torch

from lnft import engine, sweep
from lnft.errors import LnftError, RunsFailed
from lnft.store import RunStore

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")
ONE_THREAD = engine.EngineConfig(name="ray", num_cpus=1)  # one thread per worker, as the local side below


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    import ray  # not importorskip: a missing extra is a failure

    marker_dir = tmp_path_factory.mktemp("ray-markers")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # no token written under ~
    os.environ[engine._KILL_ONCE] = str(marker_dir / "killed")  # read by workers (they inherit this env)
    open(marker_dir / "killed", "w").close()  # armed only by the kill test (it removes the marker)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _temp_dir=str(tmp_path_factory.mktemp("ray")))
    yield marker_dir / "killed"
    ray.shutdown()
    for name in (engine._KILL_ONCE, "RAY_AUTH_MODE"):
        os.environ.pop(name, None)


def _tensors_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ray_gives_exactly_the_local_metrics(ray_local, tiny, tmp_path):
    configs = [tiny(task="sst2", method="head", seed=0), tiny(task="stsb", method="layernorm", seed=1)]
    local_store, ray_store = RunStore(tmp_path / "local"), RunStore(tmp_path / "ray")
    local = sweep.run_all(configs, local_store, engine=engine.EngineConfig(torch_threads=1), progress=False)
    remote = sweep.run_all(configs, ray_store, engine=ONE_THREAD, progress=False)
    assert [r.run_id for r in local] == [r.run_id for r in remote]
    for a, b in zip(local, remote):
        assert a.metrics == b.metrics and a.validation_metrics == b.validation_metrics
        assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
        assert _tensors_equal(local_store.tensors(a), ray_store.tensors(b))
        for split, p in a.predictions().items():
            assert np.array_equal(p.preds, b.predictions()[split].preds)
        assert b.config == a.config and b.fingerprints == a.fingerprints
    assert [e.status for e in ray_store.entries(deep=True)] == ["ok", "ok"]
    # runs already in the store are never submitted: a third config trains alone, the others are read back
    more = configs + [tiny(task="sst2", method="head", seed=2)]
    again = sweep.run_all(more, ray_store, engine=ONE_THREAD, progress=False)
    assert [r.created for r in again[:2]] == [r.created for r in remote] and len(ray_store.results()) == 3


def test_a_killed_worker_is_retried_and_nothing_partial_is_stored(ray_local, tiny, tmp_path):
    store = RunStore(tmp_path)
    os.remove(ray_local)  # arm: the first task to start creates the marker; its worker dies before returning
    cfg = tiny(task="sst2", method="layernorm", seed=3, max_train_samples=48)
    results = sweep.run_all([cfg], store, engine=dataclasses.replace(ONE_THREAD, max_retries=2), progress=False)
    assert os.path.exists(ray_local), "the fault hook did not run"
    assert [e.status for e in store.entries(deep=True)] == ["ok"] and results[0].run_id == cfg.run_id()
    assert not [n for n in os.listdir(store.root) if n.startswith((".tmp", ".trash"))] and store.failures() == []
    # without retries the same kill is a recorded failure, and nothing is stored
    os.remove(ray_local)
    other = RunStore(tmp_path / "no-retry")
    with pytest.raises(RunsFailed, match="1 of 1 runs failed"):
        sweep.run_all([cfg], other, engine=dataclasses.replace(ONE_THREAD, max_retries=0), progress=False)
    assert other.entries() == [] and [f["run_id"] for f in other.failures()] == [cfg.run_id()]


def test_a_failing_run_is_recorded_and_the_rest_finishes(ray_local, tiny, tmp_path):
    store = RunStore(tmp_path)
    good, diverging = tiny(task="sst2", method="head", seed=4), tiny(task="sst2", method="head", seed=4, lr=1e30)
    with pytest.raises(RunsFailed) as info:
        sweep.run_all([diverging, good], store, engine=ONE_THREAD, progress=False)
    assert "1 of 2 runs failed" in str(info.value) and "training loss is" in str(info.value)
    assert [f.run_id for f in info.value.failures] == [diverging.run_id()]
    assert [r.run_id for r in store.results()] == [good.run_id()]
    (record,) = store.failures()
    assert record["run_id"] == diverging.run_id() and "RunFailed: training loss is" in record["error"]
    kept = sweep.run_all([diverging, good], store, engine="local", progress=False, allow_failures=True)
    assert [r.run_id for r in kept] == [good.run_id()] and len(kept.failures) == 1
    assert list(sweep.failures_frame(kept.failures)["method"]) == ["head"]


def test_a_resource_request_no_node_can_satisfy(ray_local, tiny, tmp_path):
    store = RunStore(tmp_path / "runs")
    for fields, message in ((dict(num_gpus=0.25), "num_gpus 0.25 per run cannot be satisfied"),
                            (dict(num_cpus=64), "num_cpus 64 per run cannot be satisfied")):
        with pytest.raises(LnftError, match=message):
            sweep.run_all([tiny(seed=5)], store, engine=dataclasses.replace(ONE_THREAD, **fields), progress=False)
    assert not os.path.exists(store.root) or os.listdir(store.root) == []


def test_reports_refuse_a_gpu_request_on_a_cpu_only_cluster(ray_local, tmp_path, capsys):
    from lnft.cli import main

    notebooks = os.path.join(os.path.dirname(__file__), "..", "notebooks")
    code = main(["reports", "--profile", "smoke", "--notebooks-dir", notebooks, "--engine", "ray", "--num-gpus",
                 "0.25", "--out", str(tmp_path / "reports"), "--runs", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "num_gpus 0.25 per run cannot be satisfied" in err[0]
    assert "allowed: num_gpus <= 0" in err[0] and not (tmp_path / "reports").exists()
    assert not (tmp_path / "runs").exists()


def test_engine_from_the_environment(monkeypatch):
    monkeypatch.setenv("LNFT_ENGINE", "ray")
    monkeypatch.setenv("LNFT_RAY_ADDRESS", "10.0.0.1:6379")
    monkeypatch.setenv("LNFT_RAY_NUM_GPUS", "0.25")
    cfg = engine.resolve_engine()
    assert (cfg.name, cfg.address, cfg.num_gpus, cfg.threads) == ("ray", "10.0.0.1:6379", 0.25, 1)
    assert engine.resolve_engine("local").name == "local" and engine.resolve_engine("local").address is None
    monkeypatch.delenv("LNFT_ENGINE")
    assert engine.resolve_engine().name == "local"


@pytest.mark.parametrize("kwargs, message", [
    (dict(engine="spark"), "unknown engine 'spark'; allowed: local, ray"),
    (dict(engine="local", address="auto"), "only allowed with engine 'ray'"),
    (dict(engine="ray", address="localhost"), "invalid Ray address 'localhost'"),
    (dict(engine="ray", num_gpus=-1), "invalid num_gpus -1"),
    (dict(engine="ray", num_gpus=1.5), "invalid num_gpus 1.5"),
    (dict(engine="ray", max_retries=-1), "invalid max_retries -1"),
])
def test_bad_engine_settings(kwargs, message):
    with pytest.raises(LnftError, match=message.replace("(", r"\(")):
        engine.resolve_engine(**kwargs)


def test_no_cluster_at_the_address_fails_fast(tmp_path):
    import socket
    import time

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(LnftError, match=f"no Ray cluster answers at address '127.0.0.1:{port}'"):
        engine.connect(engine.resolve_engine("ray", f"127.0.0.1:{port}", connect_timeout_s=5))
    assert time.perf_counter() - started < 30


def test_ray_missing_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(LnftError, match='pip install "lnft\\[cluster\\]"'):
        engine.ray_module()


@pytest.mark.parametrize("devices, fields, message", [
    ({"cuda"}, dict(num_gpus=0), "runs on device 'cuda' need a GPU share"),
    ({"cpu"}, dict(num_gpus=0.25), "num_gpus 0.25 reserves GPUs for runs on device 'cpu'"),
])
def test_ray_gpu_share_must_match_the_run_device(devices, fields, message):
    """The device is resolved on the driver: a CUDA run with no GPU share would train on a GPU Ray did not
    give it; a GPU share for CPU runs would idle the GPUs."""
    from lnft.engine import check_devices

    with pytest.raises(LnftError, match=message):
        check_devices(devices, dataclasses.replace(ONE_THREAD, **fields))
    check_devices({"cpu"}, ONE_THREAD)
    check_devices({"cuda"}, dataclasses.replace(ONE_THREAD, num_gpus=0.25))


def test_an_address_where_something_else_answers_fails_within_30_s(tmp_path):
    """A port that is open but is no Ray head: ray.init alone would retry for ever."""
    import subprocess
    import sys
    import time

    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(server.stdout.readline().split(" port ")[1].split()[0])
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "lnft", "reports", "--profile", "smoke", "--engine", "ray",
                               "--address", f"127.0.0.1:{port}", "--out", str(tmp_path / "reports"),
                               "--runs", str(tmp_path / "runs"), "--notebooks-dir", NOTEBOOKS],
                              capture_output=True, text=True, timeout=90)
        seconds = time.monotonic() - started
    finally:
        server.kill()
    err = [line for line in done.stderr.splitlines() if line.startswith("lnft:")]
    assert done.returncode == 2 and len(err) == 1, done.stderr[-2000:]
    # it gives up (30 s of connecting) instead of retrying for ever; the bound leaves room for the CLI's start-up
    # and its checks on a slow or busy machine (45 s was measured here): not a speed goal
    assert f"no Ray cluster answers at address '127.0.0.1:{port}'" in err[0] and seconds < 85
    assert not (tmp_path / "reports").exists()


def test_an_explicit_engine_config_is_not_overridden_by_the_environment(monkeypatch):
    monkeypatch.setenv("LNFT_RAY_NUM_CPUS", "4")
    monkeypatch.setenv("LNFT_RAY_NUM_GPUS", "0.5")
    monkeypatch.setenv("LNFT_RAY_ADDRESS", "10.0.0.9:6379")
    cfg = engine.resolve_engine(ONE_THREAD)
    assert (cfg.num_cpus, cfg.num_gpus, cfg.address, cfg.threads) == (1, 0, None, 1)
    by_name = engine.resolve_engine("ray")  # a name: the environment fills what is not given
    assert (by_name.num_cpus, by_name.num_gpus, by_name.address) == (4.0, 0.5, "10.0.0.9:6379")
