"""One writer per output directory: ``OUT/_lock.json``, taken by preprocess and score before
they clean up or write anything, and removed when they end.

Local paths (and ``file://``): the file is created exclusively (``O_CREAT | O_EXCL``), so of
two runs started at once exactly one gets it. It holds the writer's host, pid, start time and a
heartbeat that a thread refreshes every ``HEARTBEAT_S``. A lock is stale, and is taken over
(with a warning), when its holder is on this host and its pid is gone, or when its heartbeat is
older than ``LEASE_S`` (a holder on another machine that died). Other filesystems (``s3://``,
``gs://``) have no exclusive create: there the lock is a best-effort lease (write, then read
back our token), which keeps out a second run started seconds or minutes later but not one
started in the same instant.

Readers (evaluate, tune-fusion, the API's loaders) take no lock.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid

import pyarrow.fs as pafs

from mer_ray.storage import resolve_fs

log = logging.getLogger(__name__)

LOCK_FILE = "_lock.json"
HEARTBEAT_S = 30.0
LEASE_S = 120.0

_HELD: dict[str, "OutLock"] = {}
"""Locks this process holds, by output key (see ``holds``)."""


class OutputBusyError(FileExistsError):
    """Another live run holds the output directory's lock."""


def _key(fs: pafs.FileSystem, root: str) -> str:
    return f"{fs.type_name}:{root.rstrip('/')}"


def holds(out: str) -> bool:
    """True when this process holds the lock of output directory ``out``."""
    fs, root = resolve_fs(out)
    return _key(fs, root) in _HELD


def busy(out: str) -> bool:
    """True when another live run holds the lock of ``out`` (not this process, not stale)."""
    if holds(out):
        return False
    lock = OutLock(out)
    info = lock._read()
    return info is not None and stale_reason(info) is None


def may_clean(out: str) -> bool:
    """Whether this process may delete half-written files in ``out`` or move damaged ones:
    it holds the lock, or no live run does (an unlocked caller such as the Python API)."""
    return holds(out) or not busy(out)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # alive, another user's
        return True
    return True


def stale_reason(info: dict, now: float | None = None) -> str | None:
    """Why the lock described by ``info`` no longer protects a live run (None: it does)."""
    now = time.time() if now is None else now
    if info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1))):
        return f"pid {info.get('pid')} is no longer running"
    age = now - float(info.get("heartbeat", 0))
    if age > LEASE_S:
        return f"its heartbeat is {age:.0f} s old (lease {LEASE_S:.0f} s)"
    return None


class OutLock:
    """The lock of one output directory; a context manager (``with OutLock(out): ...``)."""

    def __init__(self, out: str, heartbeat_s: float = HEARTBEAT_S):
        self.out = out
        self.fs, self.root = resolve_fs(out)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)
        self.path = f"{self.root}/{LOCK_FILE}"
        self.heartbeat_s = heartbeat_s
        self.info = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                     "token": uuid.uuid4().hex}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ public
    def acquire(self) -> "OutLock":
        """Take the lock, or raise OutputBusyError naming the live holder."""
        self.fs.create_dir(self.root, recursive=True)
        for _ in range(3):
            if self._try_create():
                break
            other = self._read()
            if other is None:                          # released in between: try again
                continue
            why = stale_reason(other)
            if why is None:
                raise OutputBusyError(self._busy_message(other))
            log.warning("taking over the lock %s of an earlier run: %s", self.path, why)
            self._remove_if(other)
        else:
            raise OutputBusyError(f"could not take the lock {self.path}; another run keeps "
                                  "taking it")
        _HELD[_key(self.fs, self.root)] = self
        self._thread = threading.Thread(target=self._beat, name="out-lock", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file (if it is still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        _HELD.pop(_key(self.fs, self.root), None)
        current = self._read()
        if current is not None and current.get("token") == self.info["token"]:
            self.fs.delete_file(self.path)

    def __enter__(self) -> "OutLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # ----------------------------------------------------------------- private
    def _payload(self) -> bytes:
        return json.dumps({**self.info, "heartbeat": time.time()}).encode()

    def _try_create(self) -> bool:
        if self.local:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._payload())
                fh.flush()
                os.fsync(fh.fileno())
            return True
        if self._read() is not None:                   # best effort: no exclusive create
            return False
        self._write()
        mine = self._read()
        return mine is not None and mine.get("token") == self.info["token"]

    def _read(self) -> dict | None:
        try:
            with self.fs.open_input_stream(self.path) as fh:
                return json.loads(fh.read().decode() or "{}")
        except FileNotFoundError:
            return None
        except (OSError, ValueError):                  # half-written by a crash: stale
            return {"pid": -1, "heartbeat": 0, "host": "?"}

    def _write(self) -> None:
        """Rewrite the lock file in place (the heartbeat), via a temporary + move."""
        tmp = f"{self.root}/_tmp-{LOCK_FILE}-{self.info['token']}"
        with self.fs.open_output_stream(tmp) as fh:
            fh.write(self._payload())
        self.fs.move(tmp, self.path)

    def _remove_if(self, stale: dict) -> None:
        """Delete the lock file if it still is ``stale`` (not a lock taken meanwhile). Locally
        the file is first renamed aside (atomic), so a lock another run created in between is
        seen and put back rather than deleted."""
        if self.local:
            aside = f"{self.path}.stale-{self.info['token']}"
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                return
            try:
                with open(aside, "rb") as fh:
                    taken = json.loads(fh.read().decode() or "{}")
            except ValueError:                         # half-written by a crash
                taken = {}
            if taken.get("token") != stale.get("token"):
                try:
                    os.link(aside, self.path)          # not ours to remove: put it back
                except FileExistsError:
                    pass
            os.unlink(aside)
            return
        current = self._read()
        if current is not None and current.get("token") == stale.get("token"):
            try:
                self.fs.delete_file(self.path)
            except FileNotFoundError:
                pass

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                current = self._read()
                if current is None or current.get("token") != self.info["token"]:
                    log.warning("the lock %s was taken by another run", self.path)
                    return
                self._write()
            except OSError as err:                     # a heartbeat must never stop the job
                log.debug("lock heartbeat: %s", err)

    def _busy_message(self, other: dict) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(other.get("started", 0))))
        return (f"{self.out} is being written by pid {other.get('pid')} on {other.get('host')} "
                f"since {since} (lock {self.path}); wait for it, or remove the lock if that run "
                "is gone")
