"""A quiet console, for the tests that run a command the way a newcomer would: no console
variables set beforehand, and none of the library lines (Ray Data bars, TF start-up, worker
logs) in what it prints."""
from __future__ import annotations

import os

KEYS = ["MER_RAY_CONSOLE", "MER_RAY_PROGRESS", "TF_CPP_MIN_LOG_LEVEL",
        "RAY_DATA_DISABLE_PROGRESS_BARS", "GRPC_VERBOSITY"]
"""The environment variables mer_ray.console reads or sets."""

NOISE = ["%|", "Running Dataset", "logging_progress", "streaming_executor", "(pid=",
         "cuda", "cuInit", "oneDNN", "absl", "Token authentication", "Progress bars",
         "UserWarning", "warnings.warn"]
"""Fragments of library lines a quiet console never shows."""


def newcomer_env() -> dict[str, str]:
    """This process's environment without the console variables (which tests that call the
    CLI in-process leave set)."""
    return {k: v for k, v in os.environ.items() if k not in KEYS}


def assert_quiet(text: str, max_lines: int = 15) -> None:
    """``text`` (a command's stdout + stderr) has no library line and stays short."""
    noisy = [line for line in text.splitlines() for bad in NOISE if bad in line]
    assert not noisy, text
    assert len(text.splitlines()) < max_lines, text
