"""Run code in a fresh interpreter: what a new process imports, without this one's modules."""
from __future__ import annotations

import subprocess
import sys


def printed_words(code: str, timeout: float = 300) -> list[str]:
    """The words ``code`` prints in a fresh ``python -c``; fails the test if it exits non-zero."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()
