"""Who is writing in the run store, and is that process still alive?

Policy (one training per config): a process about to train config X creates ``runs/.lock-X``
exclusively, holding its host, pid, process start time and a random token; others asking for X wait
until the lock is gone and then read the record the holder wrote. A lock is stale, and is taken
over, when its holder is dead: on this host its pid is gone or now belongs to another process (the
start time differs); on another host (whose pids mean nothing here, e.g. a shared filesystem) when
its heartbeat, the lock file's mtime that the holder touches every ``HEARTBEAT_S``, is older than
``STALE_AFTER_S``. Temp and aside directories carry their owner in their name
(``.tmp-<id>-<host key>-<pid>-<random>``) and are removed by any later write once their owner is dead.
If two processes ever train the same config anyway, the store keeps one complete record (store.put).
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid

HOST = socket.gethostname()
HOST_KEY = hashlib.sha256(HOST.encode()).hexdigest()[:8]  # a dash-free stand-in for the host in names
HEARTBEAT_S = 30
STALE_AFTER_S = 600  # another host's lock without a heartbeat for this long is dead
LEFTOVER_AFTER_S = 3600  # another host's temp dir untouched for this long is dead


def start_time(pid: int) -> str | None:
    """The process start time (Linux /proc, in clock ticks since boot): tells a recycled pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int, started: str | None = None) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    now = start_time(pid)
    return started is None or now is None or now == started


def owned_name(prefix: str, run_id: str) -> str:
    """A temp/aside directory name that says which process on which host made it."""
    return f"{prefix}-{run_id}-{HOST_KEY}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def owner_dead(name: str, path: str) -> bool:
    """Is the process that made ``owned_name(...)`` gone? Unparseable names count as dead after a while."""
    try:
        _, host_key, pid, _ = name.rsplit("-", 3)
        pid = int(pid)
    except ValueError:
        host_key, pid = None, 0
    if host_key == HOST_KEY:
        return not pid_alive(pid)
    try:
        return time.time() - os.lstat(path).st_mtime > LEFTOVER_AFTER_S
    except FileNotFoundError:
        return False


class RunLock:
    """An exclusive lock file for one run id; see the module docstring for the policy."""

    def __init__(self, path: str):
        self.path = path
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def holder(self) -> tuple[dict, float] | None:
        """(the lock's content, its mtime), or None when there is no lock."""
        try:
            with open(self.path) as fh:
                text = fh.read()
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            return None
        try:
            info = json.loads(text)
            if not isinstance(info, dict):
                raise ValueError
        except ValueError:  # half-written by a process killed at once: dead once it is old enough
            info = {"host": "?", "token": None}
        return info, mtime

    @staticmethod
    def alive(info: dict, mtime: float) -> bool:
        if info.get("host") == HOST:
            return pid_alive(info.get("pid"), info.get("start"))
        return time.time() - mtime < STALE_AFTER_S

    def try_acquire(self) -> bool:
        """Take the lock if it is free or its holder is dead; False while a live holder has it."""
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                held = self.holder()
                if held is None:
                    continue  # released meanwhile
                if self.alive(*held):
                    return False
                self._take_over(held[0])
                continue
            info = {"host": HOST, "pid": os.getpid(), "start": start_time(os.getpid()), "token": self.token,
                    "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            with os.fdopen(fd, "w") as fh:
                json.dump(info, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self._beat = threading.Thread(target=self._heartbeat, daemon=True)
            self._beat.start()
            return True
        return False

    def _take_over(self, stale: dict) -> None:
        """Remove a dead holder's lock, without removing a live one that replaced it meanwhile."""
        aside = f"{self.path}.takeover-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            with open(aside) as fh:
                moved = json.loads(fh.read() or "{}")
        except (OSError, ValueError):
            moved = {"token": None}
        if isinstance(moved, dict) and moved.get("token") != stale.get("token"):
            try:  # a live holder took it over first: put its lock back (never over a newer one)
                os.link(aside, self.path)
            except OSError:
                pass
        os.unlink(aside)

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            held = self.holder()
            if held is None or held[0].get("token") != self.token:
                return
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self) -> None:
        self._stop.set()
        held = self.holder()
        if held is not None and held[0].get("token") == self.token:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
