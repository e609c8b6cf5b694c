"""One writer per output directory (data/out_lock.py): a second writer is refused with one
line naming the holder; a crashed holder's lock is taken over; only the holder cleans up."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from mer_ray.data.out_lock import LEASE_S, LOCK_FILE, OutLock, OutputBusyError, holds


def _write_lock(out, **info) -> None:
    out.mkdir(parents=True, exist_ok=True)
    now = time.time()
    (out / LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": 1,
                                             "started": now, "heartbeat": now, "token": "t",
                                             **info}))


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


@pytest.fixture()
def holder(tmp_path):
    """Another live process holding the lock of tmp_path/out until the test ends."""
    out = tmp_path / "out"
    code = ("import sys, time; from mer_ray.data.out_lock import OutLock; "
            f"OutLock({str(out)!r}).acquire(); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield out, proc.pid
    proc.kill()
    proc.wait()


def test_a_second_writer_is_refused_naming_the_holder(holder):
    out, pid = holder
    with pytest.raises(OutputBusyError) as info:
        OutLock(str(out)).acquire()
    text = str(info.value)
    assert f"is being written by pid {pid} on {socket.gethostname()} since " in text
    assert f"(lock {out / LOCK_FILE})" in text and "\n" not in text
    assert not holds(str(out))


def test_lock_is_held_while_inside_and_removed_after(tmp_path):
    out = str(tmp_path / "out")
    with OutLock(out):
        assert holds(out) and (tmp_path / "out" / LOCK_FILE).is_file()
        with pytest.raises(OutputBusyError):        # the same process, a second time
            OutLock(out).acquire()
    assert not holds(out) and not (tmp_path / "out" / LOCK_FILE).exists()


def test_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path, caplog):
    _write_lock(tmp_path / "out", pid=_dead_pid())
    with OutLock(str(tmp_path / "out")) as lock:
        mine = json.loads((tmp_path / "out" / LOCK_FILE).read_text())
        assert mine["token"] == lock.info["token"]
    assert "is no longer running" in caplog.text


def test_lock_of_another_host_waits_for_its_lease(tmp_path):
    _write_lock(tmp_path / "out", host="elsewhere")
    with pytest.raises(OutputBusyError):
        OutLock(str(tmp_path / "out")).acquire()
    _write_lock(tmp_path / "out", host="elsewhere", heartbeat=time.time() - LEASE_S - 5)
    with OutLock(str(tmp_path / "out")):
        assert holds(str(tmp_path / "out"))


def test_a_damaged_lock_file_is_stale(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / LOCK_FILE).write_text('{"host": "x", "pi')
    with OutLock(str(tmp_path / "out")):
        pass


def test_release_leaves_a_lock_that_is_not_ours(tmp_path):
    lock = OutLock(str(tmp_path / "out")).acquire()
    _write_lock(tmp_path / "out", token="someone-else")      # taken over meanwhile
    lock.release()
    assert json.loads((tmp_path / "out" / LOCK_FILE).read_text())["token"] == "someone-else"


def test_heartbeat_rewrites_the_lock_while_ours(tmp_path):
    lock = OutLock(str(tmp_path / "out"), heartbeat_s=3600).acquire()
    path = tmp_path / "out" / LOCK_FILE
    before = json.loads(path.read_text())["heartbeat"]
    time.sleep(0.01)
    lock._write()
    assert json.loads(path.read_text())["heartbeat"] > before
    lock.release()


@pytest.mark.parametrize("command", ["score", "preprocess"])
def test_cli_refuses_a_busy_output_in_one_line(holder, tmp_path, capsys, command):
    from mer_ray.cli import main

    out, pid = holder
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.wav").write_bytes(b"RIFF")
    extra = ["--visual", "none", "--audio", "default"] if command == "score" else []
    assert main([command, str(clips), "--out", str(out), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mer-ray {command}: error: {out} is being "
                                               f"written by pid {pid}")
    assert not (out / "scores").exists() and not (out / "clips").exists()
