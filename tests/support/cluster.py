"""A private Ray head on this machine and `ray job submit` helpers (test support).

``start_head`` runs ``ray start --head`` on free ports with its own ``--temp-dir`` and token
authentication (Ray 2.60: ``RAY_AUTH_MODE=token`` + a token file named by
``RAY_AUTH_TOKEN_PATH``), in a new process session. ``LocalHead.stop`` ends exactly the
processes of that session (and their descendants), never another Ray on the machine: no
global ``ray stop``.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class JobError(RuntimeError):
    """A job ended in the wrong state or timed out; the message carries its log tail."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_token(path: str | os.PathLike) -> str:
    """Write a new random token (as `ray get-auth-token --generate` makes) to ``path``, mode 0600."""
    token = secrets.token_hex(32)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return token


def auth_env(token_path: str | os.PathLike, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: os.environ) with token auth pointed at ``token_path`` and no
    inherited RAY_ADDRESS / RAY_AUTH_TOKEN that could point elsewhere."""
    env = dict(os.environ if base is None else base)
    for key in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN"):
        env.pop(key, None)
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_path),
               RAY_USAGE_STATS_ENABLED="0")
    return env


def auth_headers(token: str) -> dict[str, str]:
    """HTTP headers the dashboard / job server accepts for ``token``."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class LocalHead:
    """A running head started by ``start_head``."""

    temp_dir: Path
    token_path: Path
    gcs_port: int
    dashboard_port: int
    session_id: int                      # the process session of every head process
    owns_temp_dir: bool = False
    start_log: str = ""
    watchdog_pid: int | None = None
    stopped: bool = field(default=False, init=False)

    @property
    def address(self) -> str:
        """The job server address for `ray job submit --address` / JobSubmissionClient."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def token(self) -> str:
        return self.token_path.read_text().strip()

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for `ray job ...` commands against this head (auth + RAY_ADDRESS)."""
        env = auth_env(self.token_path, base)
        env["RAY_ADDRESS"] = self.address
        return env

    def client(self):
        """A JobSubmissionClient with this head's token (no process-wide auth settings)."""
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(self.address, headers=auth_headers(self.token))

    def processes(self) -> list:
        """Every live process of this head (its session, descendants, its temp dir users)."""
        return session_processes(self.session_id, f"{self.temp_dir}/")

    def stop(self, grace_s: float = 5.0) -> int:
        """End every process of this head (and its watchdog); returns how many were
        signalled. Idempotent."""
        procs = {p.pid: p for p in self.processes()}
        if self.watchdog_pid is not None:
            procs.update((p.pid, p) for p in _process(self.watchdog_pid))
        count = kill_processes(list(procs.values()), grace_s)
        self.stopped = True
        if self.owns_temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        return count

    def __enter__(self) -> "LocalHead":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_head(num_cpus: int = 2, temp_dir: str | os.PathLike | None = None,
               object_store_mb: int = 512, timeout_s: float = 120.0,
               extra_args: Sequence[str] = (), attempts: int = 2,
               extra_env: dict[str, str] | None = None) -> LocalHead:
    """`ray start --head` on free ports with token auth, then wait for the job server.

    ``temp_dir`` must be short (Ray puts unix sockets under it); default: a new
    ``/tmp/mrh-*`` folder, removed again by ``stop``. A watchdog process stops the head if
    this process dies without calling ``stop``. If `ray start` exits non-zero (e.g. a port
    taken between choosing and binding it) it is retried on new ports, up to ``attempts``
    times. Raises RuntimeError with the start log if the head does not come up; nothing is
    left running then. ``extra_env``: more environment for the head's processes (e.g. Ray
    system settings as ``RAY_<name>`` variables).
    """
    for attempt in range(1, attempts + 1):
        try:
            return _start_head_once(num_cpus, temp_dir, object_store_mb, timeout_s, extra_args,
                                    extra_env or {})
        except _StartExited:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


class _StartExited(RuntimeError):
    """`ray start --head` exited non-zero (worth one more try on new ports)."""


def _start_head_once(num_cpus: int, temp_dir: str | os.PathLike | None, object_store_mb: int,
                     timeout_s: float, extra_args: Sequence[str],
                     extra_env: dict[str, str]) -> LocalHead:
    owns = temp_dir is None
    root = Path(tempfile.mkdtemp(prefix="mrh-", dir="/tmp") if owns else temp_dir)
    root.mkdir(parents=True, exist_ok=True)
    token_path = root / "auth_token"
    write_token(token_path)
    ports = {"gcs": free_port(), "dashboard": free_port(), "client": free_port(),
             "agent": free_port()}
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head",
           f"--port={ports['gcs']}", f"--dashboard-port={ports['dashboard']}",
           "--dashboard-host=127.0.0.1", "--include-dashboard=true",
           f"--ray-client-server-port={ports['client']}",
           f"--dashboard-agent-listen-port={ports['agent']}",
           f"--num-cpus={num_cpus}",
           f"--object-store-memory={object_store_mb * 1024 * 1024}",
           f"--temp-dir={root / 'ray'}", "--disable-usage-stats", *extra_args]
    log_path = root / "ray-start.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**auth_env(token_path), **extra_env}, start_new_session=True)
    head = LocalHead(root, token_path, ports["gcs"], ports["dashboard"], session_id=proc.pid,
                     owns_temp_dir=owns)
    head.watchdog_pid = _spawn_watchdog(head)
    try:
        code = proc.wait(timeout=timeout_s)
        head.start_log = log_path.read_text(errors="replace")
        if code != 0:
            raise _StartExited(f"`ray start --head` exited {code}:\n{head.start_log[-4000:]}")
        _wait_for_job_server(head, deadline=time.monotonic() + timeout_s)
    except BaseException:
        proc.kill()
        head.start_log = log_path.read_text(errors="replace")
        head.stop()
        raise
    return head


def watchdog_argv(parent_pid: int, session_id: int, temp_dir: str | os.PathLike,
                  owns_temp_dir: bool) -> list[str]:
    """The watchdog's command line: this file run as a script (it needs only the standard
    library and psutil, so it works from any directory of a fresh clone)."""
    return [sys.executable, str(Path(__file__).resolve()), "watch", str(parent_pid),
            str(session_id), str(temp_dir), "1" if owns_temp_dir else "0"]


def _spawn_watchdog(head: LocalHead) -> int:
    """A detached watchdog process that stops ``head`` once this process is gone (a crashed
    or killed test run must not leave a Ray head behind)."""
    argv = watchdog_argv(os.getpid(), head.session_id, head.temp_dir, head.owns_temp_dir)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")
    return proc.pid


def _watch(parent_pid: int, session_id: int, temp_dir: str, owns_temp_dir: bool,
           poll_s: float = 1.0) -> int:
    """Body of the watchdog: wait for ``parent_pid`` to end, then stop the head's session."""
    import psutil

    while True:
        try:
            parent = psutil.Process(parent_pid)
            if parent.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(poll_s)
    kill_processes(session_processes(session_id, temp_dir))
    if owns_temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return 0


def _wait_for_job_server(head: LocalHead, deadline: float) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{head.address}/api/version", headers=auth_headers(head.token))
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.5)
    raise RuntimeError(f"job server at {head.address} not ready ({last}); start log:\n"
                       f"{head.start_log[-4000:]}")


def session_processes(session_id: int, marker: str | None = None) -> list:
    """Live psutil processes of ``session_id``, their descendants, and (if given) any process
    whose command line contains ``marker`` (the head's temp dir). Zombies are left out."""
    import psutil

    found: dict[int, Any] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid == os.getpid():
                continue
            in_session = os.getsid(proc.pid) == session_id
            named = bool(marker) and marker in " ".join(proc.info["cmdline"] or ())
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
        if in_session or named:
            found[proc.pid] = proc
    for proc in list(found.values()):
        try:
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
        except psutil.Error:
            continue
    found.pop(os.getpid(), None)
    return _alive(list(found.values()))


def _process(pid: int) -> list:
    import psutil

    try:
        return [psutil.Process(pid)]
    except psutil.NoSuchProcess:
        return []


def kill_processes(procs: list, grace_s: float = 5.0) -> int:
    """SIGTERM ``procs``, wait up to ``grace_s``, SIGKILL what is left; returns len(procs).
    Zombies count as ended (their parent reaps them)."""
    count = len(procs)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, grace_s)):
        procs = _alive(procs)
        for proc in procs:
            try:
                proc.send_signal(sig)
            except Exception:       # psutil.Error: it ended meanwhile
                pass
        deadline = time.monotonic() + wait_s
        while _alive(procs) and time.monotonic() < deadline:
            time.sleep(0.1)
    return count


def _alive(procs: list) -> list:
    import psutil

    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.Error:
            continue
    return alive


# ------------------------------------------------------------------------- worker nodes
@dataclass
class LocalNode:
    """A worker raylet joined to a LocalHead by ``start_worker_node`` (its own process session)."""

    session_id: int
    node_id: str = ""

    def processes(self) -> list:
        """Live processes of this node (raylet, its workers, its agents)."""
        return session_processes(self.session_id)

    def kill(self) -> int:
        """SIGKILL every process of this node at once: the node dies as a machine would."""
        procs = self.processes()
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)
            except Exception:       # psutil.Error: it ended meanwhile
                pass
        return len(procs)


def start_worker_node(head: LocalHead, num_cpus: int = 1, object_store_mb: int = 256,
                      timeout_s: float = 120.0) -> LocalNode:
    """`ray start --address HEAD` in a new process session; waits until the head sees the node
    (its node id is then known). ``head.stop`` ends it too (same temp dir)."""
    import ray

    before = _node_ids(head)
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start",
           f"--address=127.0.0.1:{head.gcs_port}", f"--num-cpus={num_cpus}",
           f"--object-store-memory={object_store_mb * 1024 * 1024}", "--disable-usage-stats"]
    log_path = head.temp_dir / f"ray-start-worker-{len(before)}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=auth_env(head.token_path),
                                start_new_session=True)
    node = LocalNode(session_id=proc.pid)
    if proc.wait(timeout=timeout_s) != 0:
        node.kill()
        raise RuntimeError(f"`ray start --address` failed:\n{log_path.read_text(errors='replace')[-4000:]}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        new = _node_ids(head) - before
        if new:
            node.node_id = new.pop()
            return node
        time.sleep(0.5)
    node.kill()
    raise RuntimeError("worker node did not register with the head")


def _node_ids(head: LocalHead) -> set[str]:
    """Ids of the head's alive nodes (from the job server's state API)."""
    import json
    import urllib.request

    request = urllib.request.Request(f"{head.address}/nodes?view=summary",
                                     headers=auth_headers(head.token))
    with urllib.request.urlopen(request, timeout=10) as resp:
        data = json.loads(resp.read())
    nodes = data.get("data", {}).get("summary", [])
    return {n["raylet"]["nodeId"] for n in nodes if n.get("raylet", {}).get("state") == "ALIVE"}


# ------------------------------------------------------------------------- ray job CLI
def submit_command(entrypoint: Sequence[str], address: str, working_dir: str | None = ".",
                   submission_id: str | None = None, wait: bool = False,
                   runtime_env: str | None = None) -> list[str]:
    """The `ray job submit` command line (what the README shows); ``working_dir`` None: no
    upload, the nodes import the installed package."""
    cmd = ["ray", "job", "submit", "--address", address]
    if working_dir is not None:
        cmd += ["--working-dir", working_dir]
    if runtime_env:
        cmd += ["--runtime-env", runtime_env]
    if submission_id:
        cmd += ["--submission-id", submission_id]
    if not wait:
        cmd.append("--no-wait")
    return [*cmd, "--", *entrypoint]


def stop_command(job_id: str, address: str) -> list[str]:
    """The `ray job stop` command line (what docs/cluster.md shows); returns once sent."""
    return ["ray", "job", "stop", "--address", address, "--no-wait", job_id]


def ray_cli(args: Sequence[str], env: dict[str, str], cwd: str | os.PathLike | None = None,
            timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    """Run a `ray ...` command (with this interpreter's Ray) and return its result; raises
    JobError with the output when it fails."""
    argv = list(args)
    if argv and argv[0] == "ray":
        argv = [sys.executable, "-m", "ray.scripts.scripts", *argv[1:]]
    try:
        result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                                timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        raise JobError(f"`{' '.join(args)}` timed out after {timeout_s} s:\n"
                       f"{_text(err.stdout)}{_text(err.stderr)}") from None
    if result.returncode != 0:
        raise JobError(f"`{' '.join(args)}` exited {result.returncode}:\n"
                       f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def job_status(client, job_id: str) -> str:
    """The job's status as a plain string (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""
    status = client.get_job_status(job_id)
    return str(getattr(status, "value", status))


def job_logs(client, job_id: str, tail: int = 6000) -> str:
    """The last ``tail`` characters of a job's driver log ('' if unavailable)."""
    try:
        return client.get_job_logs(job_id)[-tail:]
    except Exception as err:  # the job server may be gone; the caller still wants a message
        return f"<logs unavailable: {err}>"


def wait_for_job(client, job_id: str, timeout_s: float = 300.0, expect: str = "SUCCEEDED",
                 poll_s: float = 1.0) -> str:
    """Poll until the job is terminal; return its status, or raise JobError (with the log
    tail) if it ended otherwise than ``expect`` or ran past ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    status = job_status(client, job_id)
    while status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(poll_s)
        status = job_status(client, job_id)
    if status != expect:
        reason = ("still " + status + f" after {timeout_s:.0f} s") if status not in TERMINAL else status
        info = client.get_job_info(job_id)
        raise JobError(f"job {job_id} {reason} (expected {expect}); message: "
                       f"{getattr(info, 'message', '')}\n--- job log tail ---\n{job_logs(client, job_id)}")
    return status


def wait_until(predicate, timeout_s: float, what: str, poll_s: float = 0.5,
               on_timeout=None) -> None:
    """Poll ``predicate()`` until true; JobError naming ``what`` (plus ``on_timeout()``'s text)
    after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll_s)
    extra = on_timeout() if on_timeout else ""
    raise JobError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{extra}")


if __name__ == "__main__":
    # python tests/support/cluster.py watch PARENT_PID SESSION_ID TEMP_DIR OWNS_TEMP_DIR
    if len(sys.argv) == 6 and sys.argv[1] == "watch":
        sys.exit(_watch(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"))
    sys.exit("usage: python tests/support/cluster.py watch PARENT_PID SESSION_ID TEMP_DIR 0|1")
