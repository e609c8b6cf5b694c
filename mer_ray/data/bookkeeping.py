"""What a job does before its first input, in columns: list the inputs, find those already in
a committed shard, and cut the rest into the input dataset. Shared by preprocess and score,
and by their ``--dry-run``, which stops after it.

At a million inputs a Python object per input (InputItem, a dict per row, a set of every done
path) costs seconds and GBs; here the listing is one pyarrow table (``list_inputs_table``),
the resume check an anti-join in C++ (``pyarrow.compute.is_in``), and the dataset is built from
slices of the table (``ray.data.from_arrow``), not from Python dicts.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mer_ray.config import RayConfig
from mer_ray.data.shards import ShardStore
from mer_ray.data.sources import ITEM_COLUMNS, list_inputs_table
from mer_ray.labels import speaker_id


@dataclass(frozen=True)
class Stock:
    """A listing against an output directory: what is there and what is left."""

    listed: pa.Table               # every input (INPUT_SCHEMA), sorted by path
    todo: pa.Table                 # the listed inputs without a committed row, same order
    committed: int                 # distinct paths with a committed row (listed or not)
    without_input: int             # of those, paths this listing no longer has

    @property
    def done(self) -> int:
        """Listed inputs that already have a committed row."""
        return self.listed.num_rows - self.todo.num_rows

    @property
    def dropped(self) -> int:
        """Inputs left to do that have no project class (their rows say why; not processed)."""
        return self.todo.num_rows - int(pc.sum(pc.is_null(self.todo.column("drop_reason"))).as_py() or 0)


def not_done(listed: pa.Table, committed: pa.Array | pa.ChunkedArray) -> pa.Table:
    """The rows of ``listed`` whose path is not in ``committed``, in listing order."""
    if len(committed) == 0:
        return listed
    seen = pc.is_in(listed.column("path"), value_set=_array(committed))
    return listed.filter(pc.invert(seen))


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def paths_not_listed(committed: pa.Array | pa.ChunkedArray,
                     listed: pa.Array | pa.ChunkedArray | set[str]) -> int:
    """Distinct paths of ``committed`` that are not in ``listed`` (rows whose input is gone)."""
    if isinstance(listed, set):
        listed = pa.array(sorted(listed), pa.string())
    distinct = pc.unique(_array(committed))
    return len(distinct) - int(pc.sum(pc.is_in(distinct, value_set=_array(listed))).as_py() or 0)


def take_stock(listed: pa.Table, store: ShardStore, writer: bool = True) -> Stock:
    """``listed`` against the committed shards of ``store``. ``writer``: the run holding the
    output's lock (recovers damaged shards first, as ``ShardStore.committed_paths``); False
    for a dry run, which only reads."""
    committed = pc.unique(_array(store.committed_paths(writer=writer)))
    without = paths_not_listed(committed, listed.column("path"))
    return Stock(listed, not_done(listed, committed), len(committed), without)


def list_and_check(source: str, corpus: str, store: ShardStore, writer: bool = True) -> Stock:
    """``list_inputs_table(source, corpus)`` against ``store`` (see ``take_stock``)."""
    return take_stock(list_inputs_table(source, corpus), store, writer=writer)


def input_rows(table: pa.Table) -> pa.Table:
    """The input-row columns a job's dataset carries (``InputItem.to_row``: no drop_reason)."""
    return table.select(ITEM_COLUMNS)


def even_slices(table: pa.Table, n_blocks: int) -> list[pa.Table]:
    """``table`` cut into ``n_blocks`` consecutive slices, the first ones a row longer where
    they do not divide evenly (as ``ray.data.from_items(..., override_num_blocks=n_blocks)``
    cuts a list)."""
    n_blocks = max(1, min(n_blocks, table.num_rows or 1))
    size, extra = divmod(table.num_rows, n_blocks)
    starts = np.cumsum([0] + [size + (i < extra) for i in range(n_blocks - 1)])
    return [table.slice(int(start), size + (i < extra)) for i, start in enumerate(starts)]


MAX_INPUT_BLOCKS = 4_000
"""Input blocks of a job at most: building the dataset costs ~2.5 ms per block (its metadata),
so a million inputs are 250 per block (~10 s), and 4,000 blocks still spread evenly over
hundreds of extraction actors."""


def block_count(n_inputs: int) -> int:
    """Blocks a job cuts ``n_inputs`` input rows into: one per two inputs, at most
    MAX_INPUT_BLOCKS (a block is the unit an extraction actor takes, so small blocks spread
    a small archive over the whole actor pool)."""
    per_block = max(2, math.ceil(n_inputs / MAX_INPUT_BLOCKS))
    return max(1, math.ceil(n_inputs / per_block))


def input_dataset(table: pa.Table, n_blocks: int, columns: list[str] | None = ITEM_COLUMNS):
    """A Ray dataset of ``table``'s rows (``columns`` of them; None: all) in ``n_blocks``
    blocks, listing order kept (the columnar stand-in for ``from_items`` of one dict per
    row). ``from_blocks`` keeps the blocks as cut and computes their metadata here;
    ``from_arrow`` would start a task per block for it (about 4x slower at thousands of
    blocks)."""
    import ray

    if columns is not None:
        table = table.select(columns)
    return ray.data.from_blocks(even_slices(table, n_blocks))


def speakers(table: pa.Table) -> list[str | None]:
    """Speaker id (``labels.speaker_id``; None where unknown) of each input with a project
    class, for choosing the default voice model (``score.plan.resolve_models``)."""
    kept = table.filter(pc.is_null(table.column("drop_reason")))
    pairs = pa.Table.from_arrays([kept.column("actor"), kept.column("speaker")], ["a", "s"])
    groups = pairs.group_by(["a", "s"]).aggregate([([], "count_all")]).to_pylist()
    out: list[str | None] = []
    for g in groups:                      # order is irrelevant: only counts per speaker matter
        out += [speaker_id(g["a"], g["s"])] * g["count_all"]
    return out


def planned_cpus(ray_cfg: RayConfig) -> tuple[float, str | None]:
    """CPUs a run would plan its actors for, without starting or joining Ray: embedded Ray's
    ``--num-cpus`` or this machine's cores. With a cluster address the real plan follows the
    cluster's CPUs, which only joining it would tell: this machine's are used, and said."""
    address = ray_cfg.address or os.environ.get("RAY_ADDRESS")
    cpus = float(ray_cfg.num_cpus or os.cpu_count() or 1)
    if address:
        return float(os.cpu_count() or 1), (f"planned for this machine's {os.cpu_count()} CPUs; "
                                            f"on the cluster at {address} the plan follows its CPUs")
    return cpus, None


def stock_counts(stock: Stock) -> dict:
    """The counts of a dry run's report."""
    return {"inputs": stock.listed.num_rows, "done": stock.done, "to_do": stock.todo.num_rows,
            "dropped": stock.dropped, "rows_without_input": stock.without_input}


def format_dry_run(report: dict, verb: str) -> str:
    """One line: '1,000,000 inputs: 990,000 done, 10,000 to <verb>; plan: ...; nothing was run'."""
    dropped = (f" ({report['dropped']:,} of them without a project class, recorded as dropped)"
               if report.get("dropped") else "")
    orphans = (f"; {report['rows_without_input']:,} committed rows have no input in this listing"
               if report.get("rows_without_input") else "")
    note = f" ({report['plan_note']})" if report.get("plan_note") else ""
    return (f"{report['inputs']:,} inputs: {report['done']:,} done, {report['to_do']:,} to "
            f"{verb}{dropped}{orphans}; plan: {report['plan']}{note}; nothing was run (--dry-run)")
