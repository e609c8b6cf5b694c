"""Atomic, resumable Parquet shard output (local paths or any pyarrow filesystem URI).

A job writes one or more tables per shard (e.g. ``clips`` + ``frames``). Each file is written
under a temporary name starting with ``_tmp-`` and then moved into place; the *primary* table
is moved last, so its presence commits the shard. On start, temporaries and non-primary files
without a primary twin (from a killed run) are deleted, and the primary table's ``path`` column
says which inputs are already done.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mer_ray.storage import resolve_fs

log = logging.getLogger(__name__)

TMP_PREFIX = "_tmp-"
PART_PREFIX = "part-"


def new_shard_id() -> str:
    return uuid.uuid4().hex[:16]


def shard_id_for(paths: Iterable[str]) -> str:
    """A shard id from the input paths it holds: a retried write task rewrites the same shard
    (same rows, same file name) instead of committing its rows a second time."""
    import hashlib

    return hashlib.sha1("\n".join(sorted(paths)).encode()).hexdigest()[:16]


class ShardStore:
    """Shards of several tables under ``out/<name>/part-<id>.parquet``."""

    def __init__(self, out: str, schemas: dict[str, pa.Schema], primary: str):
        if primary not in schemas:
            raise ValueError(f"primary table {primary!r} not in {list(schemas)}")
        self.out = out
        self.fs, self.root = resolve_fs(out)
        self.schemas = schemas
        self.primary = primary

    def dir(self, name: str) -> str:
        return f"{self.root}/{name}"

    def _parts(self, name: str) -> dict[str, pafs.FileInfo]:
        selector = pafs.FileSelector(self.dir(name), allow_not_found=True)
        return {info.base_name: info for info in self.fs.get_file_info(selector)
                if info.type == pafs.FileType.File}

    def committed_ids(self) -> set[str]:
        """Shard ids whose primary file is in place."""
        return {n[len(PART_PREFIX):-len(".parquet")] for n in self._parts(self.primary)
                if n.startswith(PART_PREFIX) and n.endswith(".parquet")}

    def clean(self) -> int:
        """Delete temporaries and orphans of a killed run; return how many files went."""
        committed, removed = self.committed_ids(), 0
        for name in self.schemas:
            for base, info in self._parts(name).items():
                orphan = (base.startswith(PART_PREFIX) and name != self.primary
                          and base[len(PART_PREFIX):-len(".parquet")] not in committed)
                if base.startswith(TMP_PREFIX) or orphan:
                    self.fs.delete_file(info.path)
                    removed += 1
        if removed:
            log.info("removed %d half-written file(s) left by an earlier run", removed)
        return removed

    def done_paths(self) -> set[str]:
        """``path`` values already committed (after cleaning up a killed run)."""
        self.clean()
        table = self.read(self.primary, columns=["path"])
        return set(table.column("path").to_pylist())

    def write_shard(self, shard_id: str, tables: dict[str, pa.Table]) -> None:
        """Write every table of one shard, primary last, each as tmp file + move."""
        order = [n for n in tables if n != self.primary] + [self.primary]
        for name in order:
            table = tables[name].cast(self.schemas[name])
            self.fs.create_dir(self.dir(name), recursive=True)
            final = f"{self.dir(name)}/{PART_PREFIX}{shard_id}.parquet"
            tmp = f"{self.dir(name)}/{TMP_PREFIX}{shard_id}.parquet"
            pq.write_table(table, tmp, filesystem=self.fs, compression="zstd")
            self.fs.move(tmp, final)

    def write_json(self, name: str, payload: dict) -> None:
        """``OUT/<name>`` as JSON, written to a temporary file and moved into place."""
        import json

        data = json.dumps(payload, indent=2, default=str).encode()
        self.fs.create_dir(self.root, recursive=True)
        tmp, final = f"{self.root}/{TMP_PREFIX}{name}", f"{self.root}/{name}"
        with self.fs.open_output_stream(tmp) as fh:
            fh.write(data)
        self.fs.move(tmp, final)

    def read_json(self, name: str) -> dict | None:
        """``OUT/<name>`` parsed, or None when it does not exist."""
        import json

        path = f"{self.root}/{name}"
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as fh:
            return json.loads(fh.read().decode())

    def read(self, name: str, columns: Iterable[str] | None = None) -> pa.Table:
        """All committed rows of one table (empty table with the schema when none)."""
        schema = self.schemas[name]
        ids = self.committed_ids()
        files = [f"{self.dir(name)}/{PART_PREFIX}{i}.parquet" for i in sorted(ids)]
        files = [f for f in files if self.fs.get_file_info(f).type == pafs.FileType.File]
        cols = list(columns) if columns else None
        if not files:
            empty = schema.empty_table()
            return empty.select(cols) if cols else empty
        dataset = pads.dataset(files, schema=schema, format="parquet", filesystem=self.fs)
        return dataset.to_table(columns=cols)
