"""The run log kept beside each bundled model."""
from __future__ import annotations

import time
from pathlib import Path


class RunLog:
    """Prints a line and appends it, time-stamped, to a run_log.txt (emptied first unless
    ``append``: a new training starts a new log, a later step adds to it)."""

    def __init__(self, path: Path, append: bool = False):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        if not append or not path.exists():
            self.path.write_text("")

    def __call__(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(line, flush=True)
        with self.path.open("a") as fh:
            fh.write(f"{stamp} {line}\n")
