"""numba's JIT cache: one folder per version set, filled by one process at a time."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mer_ray.runtime import NUMBA_WARM_MARKER, numba_cache_dir, warm_numba_cache, worker_env

WARMER = """
import sys, time
from pathlib import Path
from mer_ray.runtime import warm_numba_cache

log = Path(sys.argv[1])

def compile_all():
    with log.open("a") as fh:
        fh.write("start\\n")
    time.sleep(0.4)              # long enough for the other process to arrive meanwhile
    with log.open("a") as fh:
        fh.write("end\\n")

warm_numba_cache(compile_all)
"""


def test_cache_folder_is_per_version(monkeypatch, tmp_path):
    import numba

    monkeypatch.setenv("MER_RAY_CACHE", str(tmp_path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    folder = numba_cache_dir()
    assert folder.parent == tmp_path / "numba"
    assert f"numba{numba.__version__}" in folder.name
    assert f"py{sys.version_info[0]}.{sys.version_info[1]}" in folder.name
    assert worker_env()["NUMBA_CACHE_DIR"] == str(folder)


def test_two_processes_warm_the_cache_once(tmp_path):
    """Two workers starting together: one compiles while the other waits on the lock, then
    finds the cache complete and compiles nothing."""
    cache, log = tmp_path / "numba", tmp_path / "log.txt"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", WARMER, str(log)], env=env) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert log.read_text() == "start\nend\n"
    assert (cache / NUMBA_WARM_MARKER).is_file()


def test_a_warm_cache_is_not_compiled_again(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    calls: list[int] = []
    warm_numba_cache(lambda: calls.append(1))
    warm_numba_cache(lambda: calls.append(2))
    assert calls == [1] and (Path(tmp_path) / NUMBA_WARM_MARKER).is_file()
