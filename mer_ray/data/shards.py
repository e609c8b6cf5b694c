"""Atomic, resumable Parquet shard output (local paths or any pyarrow filesystem URI).

A job writes one or more tables per shard (e.g. ``clips`` + ``frames``). Each file is written
under a temporary name starting with ``_tmp-`` and then moved into place; the *primary* table
is moved last, so its presence commits the shard. On local disks each file is fsynced before
its move and its folder after it, so a power loss leaves a shard either committed whole or not
at all; other filesystems (s3://, gs://) rely on the store's own durability (an object appears
whole or not at all).

The writer of an output directory (holding its ``out_lock``) starts with ``recover()``: shards
with a file that does not read (damaged) are moved to ``OUT/_quarantine/<table>/``, so their
inputs are redone, and temporaries and non-primary files without a primary twin (from a killed
run) are deleted. Readers never change anything: they skip a damaged file, log it and list it
in ``damaged``. The primary table's ``path`` column says which inputs are already done.
"""
from __future__ import annotations

import errno
import logging
import os
import time
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
QUARANTINE_DIR = "_quarantine"

_UNREADABLE = (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError)
"""What reading a damaged Parquet file raises (truncated: ArrowInvalid, 'magic bytes')."""


class ShardWriteError(OSError):
    """Writing a shard failed (e.g. a full disk); its text is one line naming the table."""

    def __init__(self, code: int | None, text: str):
        super().__init__(code, text)
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __reduce__(self):                  # crosses Ray's process boundary intact
        return (type(self), (self.errno, self.text))


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_error(err: OSError, where: str) -> ShardWriteError:
    reason = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "read-only filesystem", errno.EACCES: "permission denied"}
    if err.errno in reason:
        return ShardWriteError(err.errno, f"{reason[err.errno]} writing {where}")
    detail = " ".join(str(err).split()) or type(err).__name__
    return ShardWriteError(err.errno, f"writing {where} failed: {detail}")


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
        self.local = isinstance(self.fs, pafs.LocalFileSystem)
        self.schemas = schemas
        self.primary = primary
        self.damaged: dict[str, str] = {}
        """Files found unreadable (path -> why) and skipped by this store's reads."""
        self.quarantined: list[str] = []
        """Damaged files this store moved to OUT/_quarantine/ (their new paths)."""
        self._readable: set[tuple[str, int | None, int | None]] = set()

    def dir(self, name: str) -> str:
        return f"{self.root}/{name}"

    def file(self, name: str, shard_id: str) -> str:
        return f"{self.dir(name)}/{PART_PREFIX}{shard_id}.parquet"

    def _parts(self, name: str) -> dict[str, pafs.FileInfo]:
        selector = pafs.FileSelector(self.dir(name), allow_not_found=True)
        return {info.base_name: info for info in self.fs.get_file_info(selector)
                if info.type == pafs.FileType.File}

    def committed_ids(self) -> set[str]:
        """Shard ids whose primary file is in place."""
        return {n[len(PART_PREFIX):-len(".parquet")] for n in self._parts(self.primary)
                if n.startswith(PART_PREFIX) and n.endswith(".parquet")}

    # ------------------------------------------------------------ damaged shards
    def _unreadable(self, info: pafs.FileInfo) -> str | None:
        """Why the Parquet file ``info`` does not read (footer), or None (cached when fine)."""
        key = (info.path, info.size, info.mtime_ns)
        if key in self._readable:
            return None
        try:
            with self.fs.open_input_file(info.path) as fh:
                pq.ParquetFile(fh).metadata
        except _UNREADABLE as err:
            return " ".join(str(err).split()) or type(err).__name__
        self._readable.add(key)
        return None

    def damaged_shards(self) -> dict[str, tuple[str, str]]:
        """Committed shards with a file that does not read: id -> (that file, why)."""
        from concurrent.futures import ThreadPoolExecutor

        committed, found = self.committed_ids(), {}
        for name in [self.primary, *(n for n in self.schemas if n != self.primary)]:
            todo = [(base[len(PART_PREFIX):-len(".parquet")], info)
                    for base, info in sorted(self._parts(name).items())
                    if base.startswith(PART_PREFIX)]
            todo = [(shard, info) for shard, info in todo if shard in committed and shard not in found]
            with ThreadPoolExecutor(8) as pool:        # footers of thousands of shards
                whys = list(pool.map(lambda t: self._unreadable(t[1]), todo, chunksize=64))
            found.update({shard: (info.path, why) for (shard, info), why in zip(todo, whys)
                          if why is not None})
        return found

    def quarantine(self, shard_id: str) -> list[str]:
        """Move every file of one shard to ``OUT/_quarantine/<table>/``; returns where to."""
        moved, stamp = [], time.strftime("%Y%m%d-%H%M%S")
        for name in [n for n in self.schemas if n != self.primary] + [self.primary]:
            src = self.file(name, shard_id)
            if self.fs.get_file_info(src).type != pafs.FileType.File:
                continue
            dest_dir = f"{self.root}/{QUARANTINE_DIR}/{name}"
            self.fs.create_dir(dest_dir, recursive=True)
            dest = f"{dest_dir}/{PART_PREFIX}{shard_id}-{stamp}.parquet"
            self.fs.move(src, dest)
            moved.append(dest)
        self.quarantined += moved
        if self.local and moved:
            _fsync_dir(self.dir(self.primary))
        return moved

    def recover(self) -> int:
        """The writer's start: quarantine damaged shards (their inputs are then not done) and
        delete what a killed run left half-written. Only while this process holds the
        directory's lock (``out_lock``) or no live run does, so it never touches a live run's
        files; otherwise nothing changes and readers skip damaged files. Returns the shards moved aside."""
        from mer_ray.data import out_lock

        if not out_lock.may_clean(self.out):
            log.debug("%s: another run holds its lock; no clean-up", self.out)
            return 0
        damaged = self.damaged_shards()
        for shard_id, (path, why) in damaged.items():
            moved = self.quarantine(shard_id)
            log.warning("damaged shard %s (%s): moved to %s; its inputs will be redone",
                        path, why, moved[-1] if moved else "?")
        self.clean()
        return len(damaged)

    def clean(self) -> int:
        """Delete temporaries and orphans of a killed run; return how many files went. Not
        while another live run holds the directory's lock (0: they may be that run's)."""
        from mer_ray.data import out_lock

        if not out_lock.may_clean(self.out):
            return 0
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
        """``path`` values already committed in shards that read (after ``recover()``)."""
        return set(self.committed_paths().to_pylist())

    def committed_paths(self, writer: bool = True) -> pa.ChunkedArray:
        """The primary table's ``path`` column over the shards that read, as one arrow column
        (a million paths fit in ~100 MB, where a Python set of them takes ~10x that).
        ``writer``: first ``recover()`` and afterwards move aside shards found damaged while
        reading (when this process may clean); False only reads and changes nothing."""
        from mer_ray.data import out_lock

        if writer:
            self.recover()
        table = self.read(self.primary, columns=["path"])
        if writer and self.damaged and out_lock.may_clean(self.out):   # damaged past the footer
            for path in list(self.damaged):
                self._quarantine_file(path)
        return table.column("path")

    def _quarantine_file(self, path: str) -> None:
        base = path.rpartition("/")[2]
        if base.startswith(PART_PREFIX) and self.fs.get_file_info(path).type == pafs.FileType.File:
            moved = self.quarantine(base[len(PART_PREFIX):-len(".parquet")])
            log.warning("damaged shard %s: moved to %s; its inputs will be redone", path,
                        moved[-1] if moved else "?")

    # -------------------------------------------------------------------- write
    def write_shard(self, shard_id: str, tables: dict[str, pa.Table]) -> None:
        """Write every table of one shard, primary last, each as tmp file + move (+ fsync of
        file and folder on local disks). A failed write raises ShardWriteError (one line)."""
        order = [n for n in tables if n != self.primary] + [self.primary]
        for name in order:
            table = tables[name].cast(self.schemas[name])
            final, tmp = self.file(name, shard_id), f"{self.dir(name)}/{TMP_PREFIX}{shard_id}.parquet"
            try:
                self.fs.create_dir(self.dir(name), recursive=True)
                pq.write_table(table, tmp, filesystem=self.fs, compression="zstd")
                if self.local:
                    _fsync_file(tmp)
                self.fs.move(tmp, final)
                if self.local:
                    _fsync_dir(self.dir(name))
            except OSError as err:
                raise _write_error(err, self.dir(name)) from err

    def write_json(self, name: str, payload: dict) -> None:
        """``OUT/<name>`` as JSON, written to a temporary file and moved into place."""
        import json

        data = json.dumps(payload, indent=2, default=str).encode()
        tmp, final = f"{self.root}/{TMP_PREFIX}{name}", f"{self.root}/{name}"
        try:
            self.fs.create_dir(self.root, recursive=True)
            with self.fs.open_output_stream(tmp) as fh:
                fh.write(data)
            if self.local:
                _fsync_file(tmp)
            self.fs.move(tmp, final)
            if self.local:
                _fsync_dir(self.root)
        except OSError as err:
            raise _write_error(err, final) from err

    # --------------------------------------------------------------------- read
    def read_json(self, name: str) -> dict | None:
        """``OUT/<name>`` parsed, or None when it does not exist."""
        import json

        path = f"{self.root}/{name}"
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as fh:
            return json.loads(fh.read().decode())

    def _skip(self, path: str, why: str) -> None:
        if path not in self.damaged:
            log.warning("skipping damaged shard %s (%s)", path, why)
        self.damaged[path] = why

    def read(self, name: str, columns: Iterable[str] | None = None) -> pa.Table:
        """All committed rows of one table (empty table with the schema when none), without
        the shards that have a damaged file (listed in ``damaged``)."""
        schema = self.schemas[name]
        bad = self.damaged_shards()
        for path, why in bad.values():
            self._skip(path, why)
        parts = self._parts(name)
        files = [parts[f"{PART_PREFIX}{i}.parquet"].path for i in sorted(self.committed_ids())
                 if i not in bad and f"{PART_PREFIX}{i}.parquet" in parts]
        cols = list(columns) if columns else None
        empty = schema.empty_table().select(cols) if cols else schema.empty_table()
        if not files:
            return empty
        if cols:
            return pa.concat_tables([empty, *self._read_columns(files, schema, cols)])
        try:
            return pads.dataset(files, schema=schema, format="parquet",
                                filesystem=self.fs).to_table(columns=cols)
        except _UNREADABLE:                   # damaged past the footer: find it, keep the rest
            return pa.concat_tables([empty, *(t for t in (self._read_one(f, schema, cols)
                                                          for f in files) if t is not None)])

    def _read_columns(self, files: list[str], schema: pa.Schema, cols: list[str]) -> list[pa.Table]:
        """A few columns of many shards, file by file on 8 threads, in file order (damaged
        files skipped). A pyarrow dataset over 15,000 shards held ~2 GB for the path column
        alone (each fragment's buffers); this holds the columns and is twice as fast."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            tables = pool.map(lambda f: self._read_file(f, schema, cols), files, chunksize=64)
            return [t for t in tables if t is not None]

    def _read_file(self, path: str, schema: pa.Schema, cols: list[str]) -> pa.Table | None:
        """``cols`` of one shard with ``schema``'s types; a column the file lacks (an older
        shard) reads as nulls; None when the file does not read."""
        try:
            with self.fs.open_input_file(path) as fh:
                parquet = pq.ParquetFile(fh)
                have = [c for c in cols if c in parquet.schema_arrow.names]
                table = parquet.read(columns=have)
        except _UNREADABLE as err:
            self._skip(path, " ".join(str(err).split()) or type(err).__name__)
            return None
        fields = [schema.field(c) for c in cols]
        return pa.Table.from_arrays(
            [table.column(f.name).cast(f.type) if f.name in have else pa.nulls(table.num_rows, f.type)
             for f in fields], schema=pa.schema(fields))

    def _read_one(self, path: str, schema: pa.Schema, cols: list[str] | None) -> pa.Table | None:
        try:
            return pads.dataset([path], schema=schema, format="parquet",
                                filesystem=self.fs).to_table(columns=cols)
        except _UNREADABLE as err:
            self._skip(path, " ".join(str(err).split()) or type(err).__name__)
            return None
