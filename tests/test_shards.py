import pyarrow as pa

from mer_ray.data.shards import ShardStore

MAIN = pa.schema([("path", pa.string()), ("n", pa.int32())])
SIDE = pa.schema([("path", pa.string()), ("k", pa.int32())])


def store(tmp_path):
    return ShardStore(str(tmp_path / "out"), {"main": MAIN, "side": SIDE}, primary="main")


def tables(paths, n_side=2):
    main = pa.table({"path": paths, "n": list(range(len(paths)))}, schema=MAIN)
    side = pa.table({"path": [p for p in paths for _ in range(n_side)],
                     "k": list(range(len(paths) * n_side))}, schema=SIDE)
    return {"main": main, "side": side}


def test_write_and_read_back(tmp_path):
    s = store(tmp_path)
    s.write_shard("a", tables(["x", "y"]))
    s.write_shard("b", tables(["z"]))
    assert s.done_paths() == {"x", "y", "z"}
    assert s.read("side").num_rows == 6
    assert sorted(p.name for p in (tmp_path / "out" / "main").iterdir()) == ["part-a.parquet",
                                                                              "part-b.parquet"]


def test_orphans_and_temporaries_are_cleaned(tmp_path):
    s = store(tmp_path)
    s.write_shard("a", tables(["x"]))
    side_dir = tmp_path / "out" / "side"
    # a killed run: side table moved into place, primary never committed; and a half-written tmp
    (side_dir / "part-dead.parquet").write_bytes((side_dir / "part-a.parquet").read_bytes())
    (tmp_path / "out" / "main" / "_tmp-dead.parquet").write_bytes(b"partial")
    assert s.read("side").num_rows == 2          # readers never see the orphan
    assert s.done_paths() == {"x"}
    assert s.clean() == 0                         # done_paths() already cleaned
    assert not (side_dir / "part-dead.parquet").exists()
    assert not (tmp_path / "out" / "main" / "_tmp-dead.parquet").exists()


def test_empty_store_reads_empty_tables(tmp_path):
    s = store(tmp_path)
    assert s.done_paths() == set()
    assert s.read("side").schema == SIDE


def test_file_uri(tmp_path):
    s = ShardStore(f"file://{tmp_path}/uri", {"main": MAIN, "side": SIDE}, primary="main")
    s.write_shard("a", tables(["q"]))
    assert s.done_paths() == {"q"}
