"""Checks on a job's shard output folder (OUT/<table>/part-*.parquet) across two runs."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq


def shard_files(out: str | Path) -> dict[str, tuple[int, bytes]]:
    """Every committed shard file of every table under ``out``: "<table>/part-<id>.parquet" ->
    (mtime in ns, contents)."""
    root = Path(out)
    return {f.relative_to(root).as_posix(): (f.stat().st_mtime_ns, f.read_bytes())
            for f in sorted(root.glob("*/part-*.parquet"))}


def assert_only_added_inputs_written(before: dict[str, tuple[int, bytes]], out: str | Path,
                                     primary: str, added: set[str]) -> None:
    """After a re-run over an archive that gained the inputs ``added``: every shard file of
    ``before`` is still there, untouched (same mtime, same bytes); the new shards of the
    ``primary`` table hold exactly one row per added input, and the new shards of the other
    tables rows of added inputs only."""
    after = shard_files(out)
    changed = [rel for rel, stamp in before.items() if after.get(rel) != stamp]
    assert not changed, f"earlier shard files rewritten or removed: {changed}"
    new = [rel for rel in after if rel not in before]
    rows = {rel: _paths(Path(out) / rel) for rel in new}
    primary_paths = [p for rel in new if rel.startswith(f"{primary}/") for p in rows[rel]]
    assert Counter(primary_paths) == Counter(added), (
        f"new {primary} rows are not one per added input: {sorted(primary_paths)}")
    for rel in new:
        assert set(rows[rel]) <= added, f"{rel} holds rows of earlier inputs"


def _paths(parquet: Path) -> list[str]:
    return pq.read_table(parquet, columns=["path"]).column("path").to_pylist()
