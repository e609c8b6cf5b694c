"""The run log kept beside each bundled model."""
from __future__ import annotations

import time
from pathlib import Path


class RunLog:
    """Prints a line and appends it, time-stamped, to a run_log.txt."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.path.write_text("")

    def __call__(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(line, flush=True)
        with self.path.open("a") as fh:
            fh.write(f"{stamp} {line}\n")
