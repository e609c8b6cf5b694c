"""Training hooks the tests hand to runner.train: a worker crash on demand.

Ray pickles hooks to the workers, which cannot import this test-only module, so it is
registered to be pickled by value."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import ray.cloudpickle


class InjectedFailure(RuntimeError):
    """The crash CrashOnce raises."""


@dataclass
class CrashOnce:
    """on_epoch_start hook: the last worker raises once at ``epoch`` (0-based); ``marker`` is
    the file recording that it did, so the restarted workers carry on."""

    epoch: int
    marker: str

    def __call__(self, epoch: int, rank: int, world: int) -> None:
        if epoch != self.epoch or rank != world - 1 or Path(self.marker).exists():
            return
        Path(self.marker).write_text(f"failed at epoch {epoch}\n")
        raise InjectedFailure(f"injected worker failure at epoch {epoch} (rank {rank})")


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
