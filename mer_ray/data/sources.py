"""List the inputs of a job: a folder (any nesting), a glob, a single file, or a CSV manifest;
local paths or pyarrow URIs (s3://, gs://, file://; no globs), which stay URIs in ``path``.

Local paths are made absolute without following symlinks (``local_path``): each row keeps
the name the user gave. Labels come from RAVDESS file names (corpus ``ravdess``), from the
manifest's ``label`` column (corpus ``manifest``), or are absent (corpus ``folder``). Nothing
here opens a media file.

``list_inputs_table`` gives the listing as one pyarrow table (``INPUT_SCHEMA``, columns), which
is what the jobs use: a million inputs fit in a few hundred MB and filter in C++.
``list_inputs`` gives the same rows as ``InputItem`` objects, for small listings.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa

from mer_ray.config import EMOTION_INDEX
from mer_ray.labels import normalize_label, parse_ravdess_name
from mer_ray.storage import is_uri, join, name_of, parent, read_bytes, resolve_fs

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".flv", ".wmv"})
AUDIO_EXTENSIONS = frozenset({".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".opus"})
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS
CORPORA = ("auto", "ravdess", "manifest", "folder")


@dataclass
class InputItem:
    """One input file and what its name or manifest says about it."""

    path: str
    video_id: str
    corpus: str
    label: str | None = None
    label_index: int | None = None
    speaker: str | None = None
    actor: int | None = None
    modality: str = "unknown"
    vocal_channel: str | None = None
    intensity: int | None = None
    statement: int | None = None
    repetition: int | None = None
    drop_reason: str | None = None   # set when the file has no project class (e.g. RAVDESS calm)

    def to_row(self) -> dict:
        """The input row a job's dataset carries (everything but ``drop_reason``)."""
        row = asdict(self)
        row.pop("drop_reason")
        return row


ITEM_COLUMNS: list[str] = [f.name for f in fields(InputItem) if f.name != "drop_reason"]
"""The columns of an input row (``InputItem.to_row``), as the clips table stores them."""

_INT_FIELDS = {"label_index", "actor", "intensity", "statement", "repetition"}
INPUT_SCHEMA = pa.schema([(f.name, pa.int64() if f.name in _INT_FIELDS else pa.string())
                          for f in fields(InputItem)])
"""One column per InputItem field (``drop_reason`` last): the table ``list_inputs_table`` gives."""


def video_id_for(rel_path: str) -> str:
    """Stable id of an input: sha1 of its path relative to the input root (posix form)."""
    return hashlib.sha1(rel_path.replace(os.sep, "/").encode()).hexdigest()[:16]


def list_inputs(source: str, corpus: str = "auto") -> list[InputItem]:
    """All inputs of ``source``, sorted by path; raises FileNotFoundError / ValueError clearly.
    ``source`` may be a local path or a pyarrow URI (s3://, gs://, file://; no globs)."""
    return items_of(list_inputs_table(source, corpus))


def items_of(table: pa.Table) -> list[InputItem]:
    """The rows of an ``INPUT_SCHEMA`` table as InputItem objects."""
    return [InputItem(**row) for row in table.to_pylist()]


def table_of(items: list[InputItem]) -> pa.Table:
    """InputItem objects as an ``INPUT_SCHEMA`` table (the inverse of ``items_of``)."""
    return pa.Table.from_pylist([asdict(it) for it in items], schema=INPUT_SCHEMA)


def list_inputs_table(source: str, corpus: str = "auto") -> pa.Table:
    """``list_inputs`` as one ``INPUT_SCHEMA`` table: the same rows in the same order."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; expected one of {', '.join(CORPORA)}")
    if is_uri(source):
        return _from_uri(source, corpus)
    if source.lower().endswith(".csv") or corpus == "manifest":
        return _from_manifest(Path(source))
    if any(ch in source for ch in "*?["):
        root = Path(glob.escape(source).split("*")[0]).parent if "*" in source else Path(source).parent
        paths = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
        return _name_table([str(p) for p in paths], str(root), corpus)
    src = Path(source)
    if src.is_file():
        return _name_table([str(src)], str(src.parent), corpus)
    if not src.is_dir():
        raise FileNotFoundError(f"input not found: {source} (expected a folder, a glob, a file or a .csv manifest)")
    return _name_table(_walk_media(src), str(src), corpus)


def _rows_table(rows: list[tuple]) -> pa.Table:
    """``INPUT_SCHEMA`` table from row tuples (one per input, fields in schema order)."""
    columns = list(zip(*rows)) if rows else [()] * len(INPUT_SCHEMA)
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, INPUT_SCHEMA)],
                                schema=INPUT_SCHEMA)


def _name_table(paths: list[str], root: str, corpus: str) -> pa.Table:
    """Folder / glob / single-file inputs (``paths`` in listing order) below ``root``."""
    return _rows_table([_name_row(local_path(p), os.path.relpath(p, root), corpus) for p in paths])


def _walk_media(root: Path) -> list[str]:
    """Media files below ``root`` (hidden ones skipped), in path-component order (as Path sorts)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [os.path.join(dirpath, f) for f in filenames
                  if not f.startswith(".") and _suffix(f).lower() in MEDIA_EXTENSIONS]
    return sorted(found, key=lambda p: p.split(os.sep))


def _suffix(name: str) -> str:
    """``PurePath(name).suffix`` for a bare file name, without building a path object."""
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def _from_uri(source: str, corpus: str) -> pa.Table:
    """A URI folder (recursive), single file or CSV manifest; paths stay URIs."""
    import pyarrow.fs as pafs

    base = source.partition("?")[0]
    if any(ch in base.partition("://")[2] for ch in "*?["):
        raise ValueError(f"globs are not supported on URIs ({source}): give the folder URI "
                         "or a CSV manifest")
    if base.lower().endswith(".csv") or corpus == "manifest":
        return _from_manifest_uri(source)
    fs, root = resolve_fs(source)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        return _rows_table([_name_row(source, name_of(source), corpus)])
    if info.type != pafs.FileType.Directory:
        raise FileNotFoundError(f"input not found: {source} (expected a folder, a file or a "
                                ".csv manifest)")
    rels = []
    for f in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        rel = PurePosixPath(f.path).relative_to(PurePosixPath(root)).as_posix()
        if (f.type == pafs.FileType.File and PurePosixPath(rel).suffix.lower() in MEDIA_EXTENSIONS
                and not any(part.startswith(".") for part in rel.split("/"))):
            rels.append(rel)
    rows = [_name_row(join(source, rel), rel, corpus) for rel in rels]
    return _rows_table(sorted(rows, key=lambda row: row[0]))


def _modality(path: str) -> str:
    """What a file's extension says it holds: ``audio-only`` or ``unknown``."""
    return "audio-only" if _suffix(name_of(path)).lower() in AUDIO_EXTENSIONS else "unknown"


def local_path(path: str | os.PathLike) -> str:
    """A local input path as the job records it: absolute, normalised, links not followed.

    The row keeps the name the user gave (``archive/a.mp4``, even when it is a symlink to
    ``sample/a.mp4``), so results join on the user's own paths and two links to one file stay
    two inputs; the file is opened through the link."""
    return os.path.abspath(os.fspath(path))


def _name_row(path: str, rel: str, corpus: str) -> tuple:
    """The INPUT_SCHEMA row of a folder/glob/single-file input from its name; ``rel``: path
    below the root."""
    name, video_id, modality = name_of(path), video_id_for(rel), _modality(path)
    parsed = parse_ravdess_name(name) if corpus in ("auto", "ravdess") else None
    if parsed is None:
        if corpus == "ravdess":
            return (path, video_id, "ravdess", None, None, None, None, modality, None, None,
                    None, None, f"not a RAVDESS file name: {name}")
        return (path, video_id, "folder", None, None, None, None, modality, None, None, None,
                None, None)
    emotion = parsed.emotion
    return (path, video_id, "ravdess", emotion, None if emotion is None else EMOTION_INDEX[emotion],
            f"{parsed.actor:02d}", parsed.actor, parsed.modality_name,
            "speech" if parsed.vocal_channel == 1 else "song", parsed.intensity,
            parsed.statement, parsed.repetition,
            "calm (RAVDESS emotion 02) has no project class" if emotion is None else None)


# ----------------------------------------------------------------------------- manifests
_BOM = b"\xef\xbb\xbf"


def _from_manifest(manifest: Path) -> pa.Table:
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest not found: {manifest}")
    with manifest.open(newline="") as fh:
        fieldnames = _manifest_header(fh, str(manifest))
        table = _manifest_columns(str(manifest), fieldnames, str(manifest.parent))
        if table is not None:
            return table
        fh.seek(0)
        return _manifest_rows(fh, str(manifest), str(manifest.parent))


def _from_manifest_uri(manifest: str) -> pa.Table:
    import io

    try:
        data = read_bytes(manifest)
    except FileNotFoundError:
        raise FileNotFoundError(f"manifest not found: {manifest}") from None
    text = io.StringIO(data.decode("utf-8-sig"), newline="")
    fieldnames = _manifest_header(text, manifest)
    body = data[len(_BOM):] if data.startswith(_BOM) else data
    table = _manifest_columns(pa.BufferReader(body), fieldnames, parent(manifest))
    if table is not None:
        return table
    text.seek(0)
    return _manifest_rows(text, manifest, parent(manifest))


def _manifest_header(fh, name: str) -> list[str]:
    """The manifest's column names (as csv.DictReader reads them); ValueError without 'path'."""
    fieldnames = csv.DictReader(fh).fieldnames
    if not fieldnames or "path" not in fieldnames:
        raise ValueError(f"{name}: a manifest needs a header with a 'path' column "
                         f"(and optionally 'label', 'speaker'); got {fieldnames}")
    return fieldnames


def _manifest_columns(source, fieldnames: list[str], base: str) -> pa.Table | None:
    """The manifest read by pyarrow's CSV reader into columns, or None where that reader
    cannot take the file as csv.DictReader would (ragged rows, repeated column names)."""
    import pyarrow.csv as pacsv

    wanted = [c for c in ("path", "label", "speaker") if c in fieldnames]
    if len(set(fieldnames)) != len(fieldnames):
        return None
    try:
        raw = pacsv.read_csv(source, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                             convert_options=pacsv.ConvertOptions(
                                 column_types={c: pa.string() for c in wanted},
                                 include_columns=wanted, strings_can_be_null=False,
                                 quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowKeyError):
        return None
    return _manifest_table(raw, base)


def _manifest_table(raw: pa.Table, base: str) -> pa.Table:
    """INPUT_SCHEMA columns from the manifest's path / label / speaker string columns."""
    import pyarrow.compute as pc

    n = raw.num_rows
    entries = [p.strip() for p in raw.column("path").to_pylist()]
    paths = [_manifest_path(e, base) for e in entries]
    labels = _per_value(raw, "label", _label_fields, 3)
    speaker = _per_value(raw, "speaker", lambda v: ((v or "").strip() or None,), 1)[0]
    nulls = {f.name: pa.nulls(n, f.type) for f in INPUT_SCHEMA}
    table = pa.Table.from_arrays([nulls[f.name] for f in INPUT_SCHEMA], schema=INPUT_SCHEMA)
    for name, values in (("path", pa.array(paths, pa.string())),
                         ("video_id", pa.array([video_id_for(e) for e in entries], pa.string())),
                         ("corpus", pa.repeat(pa.scalar("manifest"), n)),
                         ("modality", pa.array([_modality(p) for p in paths], pa.string())),
                         ("label", labels[0]), ("label_index", labels[1]),
                         ("drop_reason", labels[2]), ("speaker", speaker)):
        i = INPUT_SCHEMA.get_field_index(name)
        table = table.set_column(i, INPUT_SCHEMA.field(i), values.cast(INPUT_SCHEMA.field(i).type))
    return table.take(pc.sort_indices(table, [("path", "ascending")]))


def _per_value(raw: pa.Table, column: str, fn, width: int) -> list:
    """``fn`` applied once per distinct value of a string column (few: labels, speakers),
    spread back to every row: ``width`` arrays. A missing column reads as all None."""
    import pyarrow.compute as pc

    if column not in raw.column_names:
        values, indices = [None], pa.array(np.zeros(raw.num_rows, np.int32))
    else:
        distinct = pc.unique(raw.column(column))
        values, indices = distinct.to_pylist(), pc.index_in(raw.column(column), value_set=distinct)
    results = [fn(v) for v in values]
    return [pa.array([r[k] for r in results]).take(indices) for k in range(width)]


def _label_fields(value: str | None) -> tuple[str | None, int | None, str | None]:
    """(label, label_index, drop_reason) of a manifest's label cell."""
    label = (value or "").strip()
    if not label:
        return None, None, None
    try:
        name = normalize_label(label)
    except ValueError as err:
        return None, None, str(err)
    if name is None:
        return None, None, f"label {label!r} has no project class"
    return name, EMOTION_INDEX[name], None


def _manifest_rows(fh, name: str, base: str) -> pa.Table:
    """The manifest read row by row with csv.DictReader (files pyarrow's reader refuses)."""
    reader = csv.DictReader(fh)
    rows = [_manifest_row(row, base) for row in reader]
    return _rows_table(sorted(rows, key=lambda row: row[0]))


def _manifest_path(raw: str, base: str) -> str:
    """A manifest entry as a path: URIs and absolute paths as given, relative ones below the
    manifest's folder (a URI folder for a remote manifest)."""
    if is_uri(raw):
        return raw
    if os.path.isabs(raw):
        return local_path(raw)
    if is_uri(base):
        return join(base, PurePosixPath(raw.replace(os.sep, "/")).as_posix())
    return local_path(os.path.join(base, raw))


def _manifest_row(row: dict, base: str) -> tuple:
    """The INPUT_SCHEMA row of one csv.DictReader row."""
    raw = row["path"].strip()
    path = _manifest_path(raw, base)
    label, label_index, drop_reason = _label_fields(row.get("label"))
    return (path, video_id_for(raw), "manifest", label, label_index,
            (row.get("speaker") or "").strip() or None, None, _modality(path), None, None,
            None, None, drop_reason)
