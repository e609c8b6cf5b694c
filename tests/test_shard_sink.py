"""The one shard sink of the preprocess and score jobs, called directly (no Ray started)."""
from __future__ import annotations

import functools

import pyarrow as pa
import pytest

from mer_ray.data.shards import ShardStore, shard_id_for

SCHEMA = pa.schema([("path", pa.string()), ("status", pa.string())])


def _store(out: str) -> ShardStore:
    return ShardStore(out, {"rows": SCHEMA}, primary="rows")


def _split(table: pa.Table) -> dict[str, pa.Table]:
    return {"rows": table}


def _block(paths: list[str]) -> pa.Table:
    return pa.table({"path": paths, "status": ["ok"] * len(paths)}, schema=SCHEMA)


@pytest.fixture()
def sink_for(tmp_path):
    from mer_ray.data.shard_sink import ShardSink

    return lambda per_shard: ShardSink(functools.partial(_store, str(tmp_path)), _split, SCHEMA,
                                       rows_per_shard=per_shard)


def test_each_block_is_one_shard_without_rows_per_shard(sink_for, tmp_path):
    blocks = [_block(["a", "b", "c"]), _block([]), _block(["d"])]
    result = sink_for(None).write(blocks, None)
    assert result == {"rows": 4, "shards": 2, "status": {"ok": 4}}
    assert _store(str(tmp_path)).committed_ids() == {shard_id_for(["a", "b", "c"]), shard_id_for(["d"])}
    assert sink_for(None).min_rows_per_write is None


def test_rows_of_a_task_are_cut_into_shards(sink_for, tmp_path):
    sink = sink_for(2)
    result = sink.write([_block(["a", "b", "c"]), _block(["d", "e"]).to_pandas()], None)
    assert result["rows"] == 5 and result["shards"] == 3 and sink.min_rows_per_write == 2
    store = _store(str(tmp_path))
    assert store.committed_ids() == {shard_id_for(p) for p in (["a", "b"], ["c", "d"], ["e"])}
    again = sink.write([_block(["a", "b", "c", "d", "e"])], None)    # a retried task: same files
    assert again["shards"] == 3 and len(store.committed_ids()) == 3
    assert sorted(store.read("rows").column("path").to_pylist()) == ["a", "b", "c", "d", "e"]
