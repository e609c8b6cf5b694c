"""The Ray Data sink of the preprocess and score jobs: blocks -> committed, atomic shards.

A shard's files are written through ShardStore (temporary name + move, primary table last),
and its id comes from the input paths it holds, so a retried write task rewrites the same
shard instead of committing its rows twice.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa
from ray.data import Datasink

from mer_ray.data.shards import ShardStore, shard_id_for

SplitFn = Callable[[pa.Table], dict[str, pa.Table]]
"""Rows of one shard -> the shard's tables by name (the store's primary table among them)."""


class ShardSink(Datasink):
    """Writes blocks as committed shards. ``rows_per_shard`` None: each block is one shard (the
    preprocess job sizes its blocks); a number: the rows of one write task are cut into shards
    of that many rows, and Ray Data hands each task at least that many."""

    def __init__(self, open_store: Callable[[], ShardStore], split: SplitFn, schema: pa.Schema,
                 rows_per_shard: int | None = None):
        self.open_store = open_store    # called on the worker (filesystems are opened there)
        self.split = split
        self.schema = schema
        self.rows_per_shard = rows_per_shard

    def write(self, blocks: Iterable, ctx) -> dict:
        tables = [t for t in (self._arrow(b) for b in blocks) if t.num_rows]
        if self.rows_per_shard and tables:
            rows = pa.concat_tables(tables)
            tables = [rows.slice(start, self.rows_per_shard)
                      for start in range(0, rows.num_rows, self.rows_per_shard)]
        store, status, written = self.open_store(), Counter(), 0
        for table in tables:
            parts = self.split(table)
            primary = parts[store.primary]
            store.write_shard(shard_id_for(primary.column("path").to_pylist()), parts)
            status.update(primary.column("status").to_pylist())
            written += primary.num_rows
        return {"rows": written, "shards": len(tables), "status": dict(status)}

    def _arrow(self, block) -> pa.Table:
        table = block if isinstance(block, pa.Table) else pa.Table.from_pandas(block)
        return table if table.schema == self.schema else table.cast(self.schema)

    @property
    def min_rows_per_write(self) -> int | None:
        return self.rows_per_shard


WRITE_TASKS = 2
"""Write tasks at once. They ask for no CPU (an extraction actor holds every CPU, and a write
that waited for one would wait until extraction ended), so nothing else bounds them: once the
extraction actors finish, Ray started a worker process (~0.2 GiB) per waiting write and fusion
task, 15 at once in a 5,000-video run. Two keep the shards flowing at far more videos/s
than any stage before them."""


def write_shards(ds, sink: ShardSink) -> None:
    """Run ``ds`` into ``sink``: 0-CPU write tasks, WRITE_TASKS at once."""
    ds.write_datasink(sink, ray_remote_args={"num_cpus": 0}, concurrency=WRITE_TASKS)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Around a job's ``write_datasink``, unless -v: Ray Data's console handlers drop the
    traceback it logs when a task fails (ray-data.log keeps it), so a failed job ends with
    the CLI's one line (e.g. ``no space left on device writing OUT/scores``), not a page of
    Ray frames before it."""
    import logging

    from mer_ray import console

    if console.level() >= console.VERBOSE:
        yield
        return
    handlers = [h for h in logging.getLogger("ray.data").handlers
                if type(h).__name__ != "SessionFileHandler" and not hasattr(h, "baseFilename")]
    before = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for h, lvl in zip(handlers, before):
            h.setLevel(lvl)
