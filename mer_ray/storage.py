"""Local paths and pyarrow filesystem URIs (``s3://``, ``gs://``, ``file://``, ...) side by side.

Inputs, outputs and model directories may be either. Media code only ever sees local files:
``local_copy`` downloads one remote object to the worker's temp dir for the time it is read,
``fetch_dir`` keeps a node-local cached copy of a model directory, ``upload_dir`` publishes a
finished local directory. ``file://`` URIs take the same code path as ``s3://`` (a real copy).
Credentials come from pyarrow's usual environment (``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath

import pyarrow.fs as pafs

CHUNK = 8 << 20
CACHE_ENV = "MER_RAY_CACHE"
TMP_PREFIX = "_tmp-"


class TooLargeError(OSError):
    """A remote object is over the size limit (raised before anything is downloaded)."""

    def __init__(self, uri: str, size: int, limit: int):
        super().__init__(f"{uri} is {size / 2**20:.1f} MiB, over the {limit / 2**20:g} MiB limit")
        self.uri, self.size, self.limit = uri, size, limit


def is_uri(path: str | os.PathLike) -> bool:
    """True for ``scheme://...`` (file:// included), False for a plain local path."""
    return "://" in str(path)


def resolve_fs(path: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or any URI pyarrow handles."""
    path = str(path)
    if is_uri(path):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), os.path.abspath(path)


def _split_query(uri: str) -> tuple[str, str]:
    base, sep, query = uri.partition("?")
    return base, sep + query


def join(base: str, *parts: str) -> str:
    """``base/part/...`` for a local path or a URI (a URI's ``?query`` stays at the end)."""
    if not is_uri(base):
        return os.path.join(base, *parts)
    root, query = _split_query(base)
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)]) + query


def parent(path: str) -> str:
    """The directory holding ``path`` (a local path or URI)."""
    if not is_uri(path):
        return os.path.dirname(os.path.abspath(path))
    root, query = _split_query(path)
    head, _, _ = root.rstrip("/").rpartition("/")
    return head + query


def name_of(path: str) -> str:
    """Last component of a local path or URI (no query)."""
    return PurePosixPath(_split_query(str(path))[0]).name if is_uri(path) else os.path.basename(path)


def file_info(path: str) -> pafs.FileInfo:
    fs, inner = resolve_fs(path)
    return fs.get_file_info(inner)


def read_bytes(path: str) -> bytes:
    """Whole content of a (small) local file or remote object."""
    fs, inner = resolve_fs(path)
    with fs.open_input_stream(inner) as fh:
        return fh.read()


def _copy_stream(src, dest, uri: str, max_bytes: int | None) -> None:
    written = 0
    while chunk := src.read(CHUNK):
        written += len(chunk)
        if max_bytes is not None and written > max_bytes:   # the listing said less
            raise TooLargeError(uri, written, max_bytes)
        dest.write(chunk)


@contextmanager
def local_copy(path: str, max_bytes: int | None = None,
               tmp_dir: str | None = None) -> Iterator[str]:
    """A local file with the content of ``path``, for the duration of the ``with`` block.

    Local paths pass through unchanged (no copy, no check). A URI is checked first
    (FileNotFoundError if missing, IsADirectoryError if not a file, TooLargeError if over
    ``max_bytes``), then copied into ``tmp_dir`` (default: this machine's temp dir) under a
    name keeping its extension, and deleted on exit."""
    if not is_uri(path):
        yield path
        return
    fs, inner = resolve_fs(path)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no such object: {path}")
    if info.type != pafs.FileType.File:
        raise IsADirectoryError(f"not a file: {path}")
    if max_bytes is not None and info.size is not None and info.size > max_bytes:
        raise TooLargeError(path, info.size, max_bytes)
    fd, local = tempfile.mkstemp(prefix="mer-ray-", suffix=PurePosixPath(inner).suffix,
                                 dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as dest, fs.open_input_stream(inner) as src:
            _copy_stream(src, dest, path, max_bytes)
        yield local
    finally:
        try:
            os.unlink(local)
        except FileNotFoundError:
            pass


def cache_root(kind: str = "bundles") -> str:
    """``$MER_RAY_CACHE/<kind>`` (default ``~/.cache/mer_ray/<kind>``), one per node."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mer_ray")
    return os.path.join(root, kind)


def _listing(uri: str, want: Callable[[pafs.FileInfo], bool] | None) -> list[pafs.FileInfo]:
    fs, inner = resolve_fs(uri)
    infos = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    files = [i for i in infos if i.type == pafs.FileType.File and (want is None or want(i))]
    if not files:
        raise FileNotFoundError(f"no files to fetch in {uri}")
    return sorted(files, key=lambda i: i.base_name)


def _cache_key(uri: str, files: list[pafs.FileInfo]) -> str:
    """Changes when the URI or any fetched file's size or modification time changes."""
    text = "\n".join([uri] + [f"{i.base_name}\t{i.size}\t{i.mtime_ns}" for i in files])
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def _complete(local: str, files: list[pafs.FileInfo]) -> bool:
    return all(os.path.isfile(p := os.path.join(local, i.base_name))
               and os.path.getsize(p) == i.size for i in files)


def fetch_dir(uri: str, cache: str | None = None,
              want: Callable[[pafs.FileInfo], bool] | None = None) -> str:
    """Local copy of the top-level files of directory ``uri`` (those ``want(info)`` accepts),
    in ``cache`` (default ``cache_root()``); returns its path. A local path is returned as is.

    The copy is keyed by the URI and the files' sizes and modification times, written to a
    temporary directory and renamed into place: a complete earlier copy is reused, a partial
    one never is (concurrent fetches on one node each download; the first rename wins)."""
    if not is_uri(uri):
        return uri
    files = _listing(uri, want)
    cache = cache or cache_root()
    final = os.path.join(cache, _cache_key(uri, files))
    if _complete(final, files):
        return final
    os.makedirs(cache, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=cache)
    try:
        fs, _ = resolve_fs(uri)
        for info in files:
            with fs.open_input_stream(info.path) as src, \
                    open(os.path.join(tmp, info.base_name), "wb") as dest:
                _copy_stream(src, dest, join(uri, info.base_name), None)
        if os.path.isdir(final) and not _complete(final, files):
            shutil.rmtree(final, ignore_errors=True)      # damaged copy: replace it
        try:
            os.rename(tmp, final)
        except OSError:
            if not _complete(final, files):              # lost a race to a complete copy?
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def upload_dir(local: str, uri: str, last: str | None = None) -> None:
    """Copy every file under ``local`` to ``uri`` (same relative paths). ``last`` (a top-level
    file name, e.g. bundle.json) is removed from ``uri`` first and uploaded after everything
    else, so its presence means the upload finished."""
    fs, root = resolve_fs(uri)
    fs.create_dir(root, recursive=True)
    if last and fs.get_file_info(f"{root}/{last}").type == pafs.FileType.File:
        fs.delete_file(f"{root}/{last}")
    names = []
    for dirpath, _, filenames in os.walk(local):
        names += [os.path.relpath(os.path.join(dirpath, f), local) for f in filenames]
    names.sort(key=lambda n: (n == last, n))
    for rel in names:
        dest = f"{root}/{PurePosixPath(*rel.split(os.sep))}"
        fs.create_dir(dest.rpartition("/")[0], recursive=True)
        with open(os.path.join(local, rel), "rb") as src, fs.open_output_stream(dest) as out:
            _copy_stream(src, out, uri, None)


def delete_dir(uri: str) -> None:
    """Remove directory ``uri`` and everything under it (nothing if it is not there)."""
    fs, root = resolve_fs(uri)
    if fs.get_file_info(root).type == pafs.FileType.Directory:
        fs.delete_dir(root)
