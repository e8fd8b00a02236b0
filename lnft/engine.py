"""Executors for many runs: ``local`` (in this process, one after another; the default) or ``ray``
(one Ray task per run, on a local Ray instance or a cluster given by address).

Only the driver (this process) touches the run store: a Ray worker trains and returns the RunResult,
the trained tensors and the predictions, and the driver writes them (``RunStore.put``), so no shared
filesystem is needed and a worker killed mid-run leaves nothing behind (Ray retries the task,
``max_retries``). A run that raises (a NaN loss, any exception) is a *failure*: recorded in the store's
``.failed/`` (never served as a result), reported by ``sweep.run_all``, and the other runs still finish.

Choose the engine with ``sweep.run_all(..., engine="ray", address=...)``, a notebook's ``engine`` and
``address`` parameters, ``lnft reports --engine ray --address ...``, or, for notebooks run by hand, the
environment: ``LNFT_ENGINE`` (local | ray), ``LNFT_RAY_ADDRESS``, ``LNFT_RAY_NUM_CPUS``, ``LNFT_RAY_NUM_GPUS``.
"""
from __future__ import annotations

import dataclasses
import math
import os
import socket
import tempfile
import threading
from dataclasses import dataclass

from .errors import LnftError, error_text

ENGINES = ("local", "ray")
ENV = {"name": "LNFT_ENGINE", "address": "LNFT_RAY_ADDRESS", "num_cpus": "LNFT_RAY_NUM_CPUS",
       "num_gpus": "LNFT_RAY_NUM_GPUS"}
CLUSTER_EXTRA = 'pip install "lnft[cluster]"'
_KILL_ONCE = "LNFT_TEST_KILL_WORKER_ONCE"  # fault injection for the tests: a marker file path (see _fault_hook)


@dataclass(frozen=True)
class EngineConfig:
    """How a sweep's runs are executed. Nothing here changes a run's result or its run id (with one
    caveat: torch's CPU kernels may round differently with another number of threads)."""

    name: str = "local"
    address: str | None = None  # ray: None starts a local instance; "auto" joins the local cluster; "host:port", "ray://host:port"
    num_cpus: float = 1  # per run (Ray task); the worker sets torch's threads to match
    num_gpus: float = 0  # per run; a fraction packs runs on one GPU (0.25: four MiniLM runs per GPU)
    max_retries: int = 2  # re-runs of a task whose worker process died (not of a run that raised)
    torch_threads: int | None = None  # None: ray workers use num_cpus (at least 1), local leaves torch as it is
    connect_timeout_s: float = 20.0  # how long to wait for a Ray cluster at ``address`` to answer

    def validate(self) -> "EngineConfig":
        """Check every value before any work; one-line LnftError naming the value and what is allowed."""
        if self.name not in ENGINES:
            raise LnftError(f"unknown engine {self.name!r}; allowed: {', '.join(ENGINES)}")
        if self.address is not None:
            if self.name != "ray":
                raise LnftError(f"address {self.address!r} is only allowed with engine 'ray', not {self.name!r}")
            _split_address(self.address)
        for name in ("num_cpus", "num_gpus", "connect_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise LnftError(f"invalid {name} {value!r}; allowed: a finite number >= 0")
        if self.num_gpus > 1 and self.num_gpus != int(self.num_gpus):
            raise LnftError(f"invalid num_gpus {self.num_gpus!r}; allowed: a fraction <= 1 or a whole number")
        if self.num_cpus == 0 and self.num_gpus == 0 and self.name == "ray":
            raise LnftError("num_cpus and num_gpus are both 0; allowed: a run asks for some CPU or GPU")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise LnftError(f"invalid max_retries {self.max_retries!r}; allowed: an integer >= 0")
        if self.torch_threads is not None and (isinstance(self.torch_threads, bool)
                                               or not isinstance(self.torch_threads, int) or self.torch_threads < 1):
            raise LnftError(f"invalid torch_threads {self.torch_threads!r}; allowed: an integer >= 1 or None")
        return self

    @property
    def threads(self) -> int | None:
        if self.torch_threads is not None or self.name == "local":
            return self.torch_threads
        return max(1, int(self.num_cpus))


def resolve_engine(engine: "str | EngineConfig | None" = None, address: str | None = None, **fields) -> EngineConfig:
    """An EngineConfig from a name or config, an address and fields. Given a name (or None), whatever is
    None comes from the environment (LNFT_ENGINE, LNFT_RAY_ADDRESS, LNFT_RAY_NUM_CPUS, LNFT_RAY_NUM_GPUS),
    else the default; an EngineConfig is taken as it is (the environment never overrides it)."""
    if isinstance(engine, EngineConfig):
        fields = {k: v for k, v in fields.items() if v is not None}
        return dataclasses.replace(engine, **fields, **({"address": address} if address is not None else {})).validate()
    else:
        name = engine if engine is not None else (os.environ.get(ENV["name"]) or "local")
        if not isinstance(name, str):
            raise LnftError(f"unknown engine {name!r}; allowed: {', '.join(ENGINES)}")
        cfg = EngineConfig(name=name.strip().lower() if name.strip().lower() in ENGINES else name)
    if address is None and cfg.address is None and cfg.name == "ray":
        address = os.environ.get(ENV["address"]) or None
    if cfg.name == "ray":
        for key in ("num_cpus", "num_gpus"):
            if fields.get(key) is None and os.environ.get(ENV[key]):
                try:
                    fields[key] = float(os.environ[ENV[key]])
                except ValueError:
                    raise LnftError(f"invalid {ENV[key]}={os.environ[ENV[key]]!r}; allowed: a number >= 0") from None
    fields = {k: v for k, v in fields.items() if v is not None}
    if address is not None:
        fields["address"] = address
    return dataclasses.replace(cfg, **fields).validate()


def _split_address(address: str) -> tuple[str, int] | None:
    """(host, port) of an address, None for "auto"; LnftError for anything else."""
    if address == "auto":
        return None
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in rest:
        raise LnftError(f"invalid Ray address {address!r}; allowed: auto, host:port (the head's GCS, e.g. "
                        "10.0.0.1:6379) or ray://host:port (Ray Client, e.g. ray://10.0.0.1:10001)")
    return host, int(port)


# ---------------------------------------------------------------------------------------------- Ray
def ray_module():
    try:
        import ray
    except ImportError:
        raise LnftError(f"engine 'ray' needs the ray package, which is not installed; allowed: {CLUSTER_EXTRA}, "
                        "or engine 'local'") from None
    return ray


def connect(cfg: EngineConfig):
    """Join (or start) Ray as ``cfg`` says and check that some node can hold one run; returns ``ray``.
    An address where nothing answers fails within ``connect_timeout_s``; a request no node can
    satisfy (num_gpus on a CPU-only cluster) fails before anything is submitted."""
    ray = ray_module()
    _probe(cfg)
    if not ray.is_initialized():  # else: this process joined Ray already (ray.init by the caller); it is used
        try:
            if cfg.address is None:
                # a Ray of this command's own, ended with it: no token file written into ~ (and no warning
                # line in every notebook); a cluster's own auth settings are left alone when joining one
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                _init_within(ray, cfg.connect_timeout_s + 10, address=cfg.address, log_to_driver=False,
                             configure_logging=False)
        except TimeoutError as exc:
            raise LnftError(f"no Ray cluster answers at address {cfg.address!r} ({exc}; something listens there, "
                            "but not a Ray head's GCS); allowed: the address of a running head (ray start --head), "
                            "ray://host:port for Ray Client, 'auto' or none (a local Ray)") from None
        except ConnectionError as exc:
            raise LnftError(f"no Ray cluster answers at address {cfg.address!r} ({str(exc).splitlines()[0][:120]}); "
                            "allowed: the address of a running head (ray start --head) or none (a local Ray)") from None
        except Exception as exc:  # noqa: BLE001 — e.g. a local Ray that does not start on an overloaded machine
            where = f"at address {cfg.address!r}" if cfg.address else "locally"
            raise LnftError(f"Ray could not be started or joined {where} ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); allowed: engine 'local', or retry") from None
    check_resources(cfg, [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)])
    return ray


def _init_within(ray, seconds: float, **kwargs) -> None:
    """``ray.init(**kwargs)``, or TimeoutError after ``seconds``: ray.init waits without end on a port
    where something other than Ray answers (it retries the GCS forever)."""
    box: dict = {}

    def join() -> None:
        try:
            ray.init(**kwargs)
            box["ok"] = True
        except BaseException as exc:  # noqa: BLE001 — handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=join, name="lnft-ray-init", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:.0f} s")
    if "error" in box:
        raise box["error"]


def _probe(cfg: EngineConfig) -> None:
    """Fail within ``connect_timeout_s`` when nothing listens at a host:port address (ray.init would wait)."""
    hostport = _split_address(cfg.address) if cfg.address else None
    if hostport:
        try:
            socket.create_connection(hostport, timeout=cfg.connect_timeout_s).close()
        except OSError as exc:
            raise LnftError(f"no Ray cluster answers at address {cfg.address!r} ({exc.strerror or exc}); allowed: the "
                            "address of a running head (ray start --head), 'auto' or none (a local Ray)") from None


def check_resources(cfg: EngineConfig, nodes: list[dict]) -> None:
    """One run must fit on one node: its num_cpus and num_gpus at most some node's CPU and GPU."""
    for key, resource in (("num_gpus", "GPU"), ("num_cpus", "CPU")):
        want = getattr(cfg, key)
        have = max((n.get(resource, 0) for n in nodes), default=0)
        if want > have:
            raise LnftError(f"{key} {want:g} per run cannot be satisfied: the Ray cluster's largest node has "
                            f"{have:g} {resource}; allowed: {key} <= {have:g}")


def train_remote(config, run_id: str, mask: bytes | None, threads: int | None):
    """The body of one Ray task: train ``config`` and return (RunResult, trained tensors, predictions).
    A mask file travels as bytes (no shared filesystem); the worker checks that its code, data and
    model give the driver's run id, so a node with other code cannot store a mislabelled run."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    doomed = _fault_hook()
    tmp = None
    try:
        if mask is not None:
            fd, tmp = tempfile.mkstemp(suffix=".safetensors", prefix="lnft-mask-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(mask)
            config = dataclasses.replace(config, mask_path=tmp)
        here = config.run_id()
        if here != run_id:
            raise LnftError(f"this worker computes run id {here} for run {run_id}: its lnft code, data or model "
                            "differ from the driver's; allowed: the same lnft and files on every node")
        from .train import finetune

        output = finetune(config, progress=False, run_id=run_id)
        if doomed:
            os._exit(1)  # the worker dies with the trained run in its memory, before the driver has any of it
        return output.result, output.trained, output.predictions
    finally:
        if tmp:
            os.unlink(tmp)


def _fault_hook() -> bool:
    """Tests only: with LNFT_TEST_KILL_WORKER_ONCE=<marker file>, the first task to see no marker creates
    it and its worker process dies after training, before returning (what an OOM kill or a lost node
    does to a task in flight)."""
    marker = os.environ.get(_KILL_ONCE)
    if not marker:
        return False
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


@dataclass
class Failure:
    """A run that raised (or whose worker died more often than max_retries allow)."""

    config: object
    run_id: str
    error: str
    detail: str = ""

    def line(self) -> str:
        c = self.config
        lr = "default" if c.lr is None else f"{c.lr:g}"
        return f"{c.task} {c.method} seed={c.seed} lr={lr} ({self.run_id}): {self.error}"


_error_text = error_text  # (kept under its old name)


def execute(todo: dict, store, cfg: EngineConfig, on_done) -> list[Failure]:
    """Train every (run id -> (config, fingerprints)) in ``todo`` with the engine ``cfg`` and write each
    result into ``store`` as it arrives; ``on_done(config)`` after each run. Returns the failures."""
    if cfg.name == "local":
        return _execute_local(todo, store, cfg, on_done)
    return _execute_ray(todo, store, cfg, on_done)


def _execute_local(todo, store, cfg, on_done) -> list[Failure]:
    import torch

    failures, before = [], torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        for run_id, (config, _) in todo.items():
            try:
                store.get_or_run(config, progress=False)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 — one run's failure must not end the sweep
                failures.append(_failed(store, config, run_id, exc))
            on_done(config)
    finally:
        torch.set_num_threads(before)
    return failures


def check_devices(devices: set[str], cfg: EngineConfig) -> None:
    """The device each run trains on is resolved on the driver (the run id records it); Ray must give
    those runs a GPU share, and not reserve GPUs for runs that train on the CPU."""
    if "cuda" in devices and not cfg.num_gpus:
        raise LnftError("runs on device 'cuda' need a GPU share per Ray task; allowed: --num-gpus > 0 (e.g. 0.25), "
                        "or device 'cpu'")
    if cfg.num_gpus and devices == {"cpu"}:
        raise LnftError(f"num_gpus {cfg.num_gpus:g} reserves GPUs for runs on device 'cpu'; allowed: num_gpus 0, or "
                        "a driver that resolves device 'cuda' (the run id records the device)")


def _execute_ray(todo, store, cfg, on_done) -> list[Failure]:
    from .models import resolve_device, resolve_precision

    ray = connect(cfg)
    check_devices({resolve_device(config.device).type for config, _ in todo.values()}, cfg)
    task = ray.remote(train_remote).options(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus,
                                            max_retries=cfg.max_retries, retry_exceptions=False)
    pending = {}
    for run_id, (config, _) in todo.items():
        mask = None
        if config.mask_path:
            with open(config.mask_path, "rb") as fh:
                mask = fh.read()
        # the device and precision the run id was computed with (resolved here, on the driver), not the
        # worker's own choice (a worker on another CPU could resolve precision "auto" otherwise)
        shipped = dataclasses.replace(config, device=resolve_device(config.device).type,
                                      precision=resolve_precision(config.precision, config.device))
        pending[task.remote(shipped, run_id, mask, cfg.threads)] = run_id
    failures = []
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                run_id = pending.pop(ref)
                config, prints = todo[run_id]
                try:
                    result, trained, predictions = ray.get(ref)
                    result.config = config.validate()  # the driver's config (its mask path, not the worker's copy)
                    result.fingerprints = prints
                    store.put(result, trained, predictions)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:  # noqa: BLE001 — a task error, a dead worker after its retries
                    failures.append(_failed(store, config, run_id, exc))
                on_done(config)
    finally:
        for ref in pending:  # interrupted: nothing more is trained for this driver
            ray.cancel(ref, force=True)
    return failures


def _failed(store, config, run_id: str, exc: BaseException) -> Failure:
    error, detail = _error_text(exc)
    failure = Failure(config, run_id, error, detail)
    store.record_failure(run_id, config, error, detail)
    return failure

