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


@dataclass
class HoldAt:
    """on_epoch_start hook: every worker holds at ``epoch`` (0-based), each leaving a
    ``held-<rank>`` file in ``gate``, until the file ``gate/release`` exists; a test kills a node
    meanwhile, so the failure lands mid-run on any machine."""

    epoch: int
    gate: str

    def __call__(self, epoch: int, rank: int, world: int) -> None:
        import time

        release = Path(self.gate, "release")
        if epoch != self.epoch or release.exists():
            return
        Path(self.gate, f"held-{rank}").write_text(f"held at epoch {epoch}\n")
        while not release.exists():
            time.sleep(0.2)


def main(argv: list[str]) -> int:
    """`python tests/support/train_hooks.py GATE EPOCH train-visual ARGS...`: the CLI command
    with a HoldAt(EPOCH, GATE) hook (for submitted jobs, which cannot pass hooks)."""
    import importlib

    from mer_ray.cli import build_parser
    from mer_ray.train.loop import TrainHooks

    gate, epoch, command = argv[0], int(argv[1]), argv[2]
    Path(gate).mkdir(parents=True, exist_ok=True)
    args = build_parser().parse_args(argv[2:])
    module = importlib.import_module(f"mer_ray.commands.{command.replace('-', '_')}")
    return module.run(args, hooks=TrainHooks(on_epoch_start=HoldAt(epoch, gate)))


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repo (--working-dir .)
    sys.exit(main(sys.argv[1:]))
