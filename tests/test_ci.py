""".ci/run: every non-zero code of its steps fails the CI run, pytest's "no tests collected" (5)
included. Its `python3` is replaced by a stub on PATH that records calls and exits as told."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

STUB = """#!/bin/sh
echo "$*" >> "$STUB_CALLS"
case "$2" in
    pip) exit "$STUB_PIP_RC" ;;
    pytest) exit "$STUB_PYTEST_RC" ;;
esac
exit 99
"""


def run_ci(tmp_path: Path, pip_rc: int, pytest_rc: int) -> tuple[int, list[str]]:
    """.ci/run in a copy of its folder, with the stub python3 first on PATH."""
    tree = tmp_path / "repo"
    (tree / ".ci").mkdir(parents=True)
    shutil.copy2(REPO / ".ci" / "run", tree / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(STUB)
    (bin_dir / "python3").chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_CALLS": str(calls),
           "STUB_PIP_RC": str(pip_rc), "STUB_PYTEST_RC": str(pytest_rc)}
    rc = subprocess.run(["bash", str(tree / ".ci" / "run")], env=env, timeout=60).returncode
    return rc, calls.read_text().splitlines() if calls.exists() else []


@pytest.mark.parametrize("pytest_rc", [0, 1, 5])
def test_ci_exits_with_the_pytest_code(tmp_path, pytest_rc):
    rc, calls = run_ci(tmp_path, pip_rc=0, pytest_rc=pytest_rc)
    assert rc == pytest_rc
    assert [c.split()[:2] for c in calls] == [["-m", "pip"], ["-m", "pytest"]]
    assert calls[1] == "-m pytest", "CI runs the whole suite, no selection"


def test_ci_stops_when_the_install_fails(tmp_path):
    rc, calls = run_ci(tmp_path, pip_rc=1, pytest_rc=0)
    assert rc == 1 and len(calls) == 1


def test_pytest_exits_5_when_it_collects_nothing(tmp_path):
    """The premise: an empty selection is exit code 5, not 0."""
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-m", "no_such_marker", str(tmp_path)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 5, result.stdout[-2000:]
