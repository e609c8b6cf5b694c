"""A `ray job submit` entry script for stop/resume tests: a preprocess or score job that holds.

    python tests/support/held_job.py preprocess|score GATE_DIR PASSES ARGS...

Runs what ``jobs/preprocess.py ARGS`` / ``jobs/score.py ARGS`` run, with one change: the
extraction stage both jobs share (``mer_ray.data.extraction.ExtractActor``) lets its first
PASSES calls through and holds every later call (it sleeps) until the job is stopped. With one
input per call (preprocess ``--videos-per-shard 1``; score extracts one input per call) the job
commits exactly PASSES shards and then makes no more progress, however fast or slow the
machine: a ``ray job stop`` always lands with work left, never after the job has ended.

GATE_DIR must be a folder the driver and every actor can reach (a local head). A call let
through takes one of PASSES ``slot-K`` files (created exclusively, so no two calls take the same
one, whichever actor they run on) and marks its inputs with a ``pass-*`` file: when Ray retries
that call (its actor died), the retry passes again instead of holding with the slot used up.
Each held call leaves a ``held-*`` file, which tells the test the job is holding.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repo, for --working-dir .

HOLD_LIMIT_S = 900.0           # a held job that nobody stops fails instead of hanging forever

JOBS = ("preprocess", "score")                     # mer-ray commands with an extraction stage
EXTRACTION = ("mer_ray.data.extraction", "ExtractActor")   # the Ray Data class of that stage


def take_pass(gate_dir: str, passes: int, paths: list[str]) -> bool:
    """True for the calls on the first ``passes`` sets of inputs, across all processes, and
    for any later call on one of those sets."""
    key = hashlib.sha1("\n".join(sorted(paths)).encode()).hexdigest()
    marker = Path(gate_dir, f"pass-{key}")
    if marker.exists():
        return True
    for k in range(passes):
        try:
            fd = os.open(os.path.join(gate_dir, f"slot-{k}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue
        os.close(fd)
        marker.touch()
        return True
    return False


def hold(gate_dir: str) -> None:
    """Say so in ``gate_dir``, then sleep until the process is killed (or HOLD_LIMIT_S)."""
    Path(gate_dir, f"held-{os.getpid()}-{time.monotonic_ns()}").touch()
    deadline = time.monotonic() + HOLD_LIMIT_S
    while time.monotonic() < deadline:
        time.sleep(0.5)
    raise RuntimeError(f"held for {HOLD_LIMIT_S:.0f} s and never stopped")


def gated(base: type, gate_dir: str, passes: int) -> type:
    """``base`` whose calls pass the gate first. A class made here (in the entry script) is
    pickled by value, so the actors Ray Data starts run this code, not ``base``'s alone."""

    class Gated(base):
        def __call__(self, batch):
            if not take_pass(gate_dir, passes, batch.column("path").to_pylist()):
                hold(gate_dir)
            return super().__call__(batch)

    Gated.__name__ = Gated.__qualname__ = f"Held{base.__name__}"
    return Gated


def install(gate_dir: str, passes: int) -> type:
    """Replace the extraction class by its gated subclass in its module and in every loaded
    mer_ray module that imported it by name; returns the gated class."""
    import importlib

    module_name, name = EXTRACTION
    base = getattr(importlib.import_module(module_name), name)
    held = gated(base, gate_dir, passes)
    for mod_name, module in list(sys.modules.items()):
        if mod_name.split(".")[0] == "mer_ray" and getattr(module, name, None) is base:
            setattr(module, name, held)
    return held


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in JOBS:
        sys.exit(f"usage: held_job.py {'|'.join(JOBS)} GATE_DIR PASSES ARGS...")
    job, gate_dir, passes, args = argv[0], argv[1], int(argv[2]), argv[3:]
    Path(gate_dir).mkdir(parents=True, exist_ok=True)
    from mer_ray.cli import main as cli

    install(gate_dir, passes)
    return cli([job, *args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
