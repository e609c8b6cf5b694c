import errno
import os

import pyarrow as pa
import pytest

from mer_ray.data.out_lock import OutLock
from mer_ray.data.shards import ShardStore, ShardWriteError

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


def _killed_run(tmp_path):
    """A store with shard a committed, and what a killed run leaves: a side table moved into
    place whose primary never was, and a half-written temporary."""
    s = store(tmp_path)
    s.write_shard("a", tables(["x"]))
    side_dir = tmp_path / "out" / "side"
    (side_dir / "part-dead.parquet").write_bytes((side_dir / "part-a.parquet").read_bytes())
    (tmp_path / "out" / "main" / "_tmp-dead.parquet").write_bytes(b"partial")
    return s, side_dir / "part-dead.parquet", tmp_path / "out" / "main" / "_tmp-dead.parquet"


def test_orphans_and_temporaries_are_cleaned_by_the_lock_holder(tmp_path):
    s, orphan, tmp = _killed_run(tmp_path)
    assert s.read("side").num_rows == 2          # readers never see the orphan
    with OutLock(s.out):
        assert s.done_paths() == {"x"}
        assert s.clean() == 0                     # done_paths() already cleaned
    assert not orphan.exists() and not tmp.exists()


def test_nothing_is_deleted_while_another_run_holds_the_lock(tmp_path):
    """Temporaries may belong to the live run that holds the lock: it alone cleans."""
    s, orphan, tmp = _killed_run(tmp_path)
    _another_run_holds_the_lock(tmp_path / "out")
    assert s.done_paths() == {"x"}
    assert s.clean() == 0
    assert orphan.exists() and tmp.exists()
    (tmp_path / "out" / "_lock.json").unlink()           # that run ended
    assert s.clean() == 2


def test_damaged_shard_is_left_in_place_while_another_run_holds_the_lock(tmp_path):
    s, bad = _two_shards_one_damaged(tmp_path)
    _another_run_holds_the_lock(tmp_path / "out")
    assert s.done_paths() == {"x", "y"} and bad.exists()


def _truncate(path, keep=20):
    path.write_bytes(path.read_bytes()[:keep])


def _two_shards_one_damaged(tmp_path, table: str = "main"):
    """A store with committed shards a (x, y) and b (z), b's ``table`` file truncated;
    returns (store, that file)."""
    s = store(tmp_path)
    s.write_shard("a", tables(["x", "y"]))
    s.write_shard("b", tables(["z"]))
    bad = tmp_path / "out" / table / "part-b.parquet"
    _truncate(bad)
    return s, bad


def _another_run_holds_the_lock(out) -> None:
    """A live lock of another run (this host, a live pid, a fresh heartbeat) on ``out``."""
    import json
    import socket
    import time

    (out / "_lock.json").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
         "heartbeat": time.time(), "token": "another-run"}))


def test_damaged_shard_is_skipped_by_readers_and_left_in_place(tmp_path):
    s, bad = _two_shards_one_damaged(tmp_path)
    assert s.read("main").column("path").to_pylist() == ["x", "y"]
    assert s.read("side").num_rows == 4          # the damaged shard's twin is left out too
    assert list(s.damaged) == [str(bad)] and "magic" in s.damaged[str(bad)].lower()
    assert bad.exists() and not (tmp_path / "out" / "_quarantine").exists()


@pytest.mark.parametrize("table", ["main", "side"])
def test_lock_holder_moves_a_damaged_shard_aside_and_redoes_it(tmp_path, table):
    s, _ = _two_shards_one_damaged(tmp_path, table)
    with OutLock(s.out):
        assert s.done_paths() == {"x", "y"}
    moved = sorted(p.relative_to(tmp_path / "out").parts[:2]
                   for p in (tmp_path / "out" / "_quarantine").rglob("*.parquet"))
    assert moved == [("_quarantine", "main"), ("_quarantine", "side")]
    assert s.committed_ids() == {"a"}
    s.write_shard("b", tables(["z"]))            # the next run redoes its inputs
    assert sorted(s.read("main").column("path").to_pylist()) == ["x", "y", "z"]


def test_damage_past_the_footer_is_found_when_reading(tmp_path, monkeypatch):
    """A file whose footer reads but whose data does not is skipped, the rest still read."""
    s = store(tmp_path)
    s.write_shard("a", tables(["x"]))
    s.write_shard("b", tables(["z"]))
    bad = tmp_path / "out" / "main" / "part-b.parquet"
    data = bytearray(bad.read_bytes())
    data[4:40] = b"\xff" * 36                       # page header / data, not the footer
    bad.write_bytes(bytes(data))
    assert s.read("main").column("path").to_pylist() == ["x"]
    assert list(s.damaged) == [str(bad)]


def test_commit_fsyncs_each_file_and_its_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")),
                                                 real(fd)))
    s = store(tmp_path)
    s.write_shard("a", tables(["x"]))
    root = tmp_path / "out"
    assert synced == [str(root / "side" / "_tmp-a.parquet"), str(root / "side"),
                      str(root / "main" / "_tmp-a.parquet"), str(root / "main")]


def test_full_disk_is_one_line_naming_the_table(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space "
                                    "left on device")

    monkeypatch.setattr(pq, "write_table", full)
    s = store(tmp_path)
    with pytest.raises(ShardWriteError) as info:
        s.write_shard("a", tables(["x"]))
    assert str(info.value) == f"no space left on device writing {tmp_path / 'out' / 'side'}"
    assert info.value.errno == errno.ENOSPC


def test_empty_store_reads_empty_tables(tmp_path):
    s = store(tmp_path)
    assert s.done_paths() == set()
    assert s.read("side").schema == SIDE


def test_file_uri(tmp_path):
    s = ShardStore(f"file://{tmp_path}/uri", {"main": MAIN, "side": SIDE}, primary="main")
    s.write_shard("a", tables(["q"]))
    assert s.done_paths() == {"q"}


def test_committed_paths_as_a_reader_changes_nothing(tmp_path):
    """committed_paths(writer=False) (a dry run) reads the path column as arrow and leaves a
    damaged shard, an orphan and a temporary where they are; writer=True cleans them up."""
    s, orphan, tmp = _killed_run(tmp_path)
    s.write_shard("b", tables(["y", "z"]))
    s.write_shard("c", tables(["w"]))
    bad = tmp_path / "out" / "main" / "part-c.parquet"
    _truncate(bad)
    paths = s.committed_paths(writer=False)
    assert isinstance(paths, pa.ChunkedArray) and sorted(paths.to_pylist()) == ["x", "y", "z"]
    assert bad.exists() and orphan.exists() and tmp.exists()
    assert not (tmp_path / "out" / "_quarantine").exists()
    with OutLock(str(tmp_path / "out")):
        assert sorted(store(tmp_path).committed_paths().to_pylist()) == ["x", "y", "z"]
    assert not bad.exists() and not orphan.exists() and not tmp.exists()
