"""Progress of a running score job, from what is committed: one console line,
``scored 120/500 (24%), 3.1 videos/s, ETA 2 min`` (console.ShardProgress: redrawn in place on
a terminal, printed at each 10 % otherwise; nothing with -q or $MER_RAY_PROGRESS=0).

Counting committed rows means the figure is exactly what a resume would keep; it moves a shard
(``--videos-per-shard`` rows) at a time.
"""
from __future__ import annotations

from mer_ray.console import ShardProgress


class ProgressLogger(ShardProgress):
    """Use as a context manager around the score job; ``done`` is the committed row count."""

    def __init__(self, store, table: str, total: int, already: int, every_s: float = 2.0):
        super().__init__(store, table, total, already, every_s=every_s, verb="scored")
