"""List the inputs of a job: a folder (any nesting), a glob, a single file, or a CSV manifest;
local paths or pyarrow URIs (s3://, gs://, file://; no globs), which stay URIs in ``path``.

Local paths are made absolute without following symlinks (``local_path``): each row keeps
the name the user gave. Labels come from RAVDESS file names (corpus ``ravdess``), from the
manifest's ``label`` column (corpus ``manifest``), or are absent (corpus ``folder``). Nothing
here opens a media file.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePath, PurePosixPath

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


def video_id_for(rel_path: str) -> str:
    """Stable id of an input: sha1 of its path relative to the input root (posix form)."""
    return hashlib.sha1(rel_path.replace(os.sep, "/").encode()).hexdigest()[:16]


def list_inputs(source: str, corpus: str = "auto") -> list[InputItem]:
    """All inputs of ``source``, sorted by path; raises FileNotFoundError / ValueError clearly.
    ``source`` may be a local path or a pyarrow URI (s3://, gs://, file://; no globs)."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; expected one of {', '.join(CORPORA)}")
    if is_uri(source):
        return _from_uri(source, corpus)
    if source.lower().endswith(".csv") or corpus == "manifest":
        return _from_manifest(Path(source))
    if any(ch in source for ch in "*?["):
        root = Path(glob.escape(source).split("*")[0]).parent if "*" in source else Path(source).parent
        paths = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
        return [_from_name(p, root, corpus) for p in paths]
    src = Path(source)
    if src.is_file():
        return [_from_name(src, src.parent, corpus)]
    if not src.is_dir():
        raise FileNotFoundError(f"input not found: {source} (expected a folder, a glob, a file or a .csv manifest)")
    return [_from_name(p, src, corpus) for p in _walk_media(src)]


def _walk_media(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in filenames
                  if not f.startswith(".") and Path(f).suffix.lower() in MEDIA_EXTENSIONS]
    return sorted(found)


def _from_uri(source: str, corpus: str) -> list[InputItem]:
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
        return [_item(source, name_of(source), corpus)]
    if info.type != pafs.FileType.Directory:
        raise FileNotFoundError(f"input not found: {source} (expected a folder, a file or a "
                                ".csv manifest)")
    rels = []
    for f in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        rel = PurePosixPath(f.path).relative_to(PurePosixPath(root)).as_posix()
        if (f.type == pafs.FileType.File and PurePosixPath(rel).suffix.lower() in MEDIA_EXTENSIONS
                and not any(part.startswith(".") for part in rel.split("/"))):
            rels.append(rel)
    return sorted((_item(join(source, rel), rel, corpus) for rel in rels), key=lambda it: it.path)


def _modality_from_extension(path: PurePath) -> str:
    return "audio-only" if path.suffix.lower() in AUDIO_EXTENSIONS else "unknown"


def local_path(path: str | os.PathLike) -> str:
    """A local input path as the job records it: absolute, normalised, links not followed.

    The row keeps the name the user gave (``archive/a.mp4``, even when it is a symlink to
    ``sample/a.mp4``), so results join on the user's own paths and two links to one file stay
    two inputs; the file is opened through the link."""
    return os.path.abspath(os.fspath(path))


def _from_name(path: Path, root: Path, corpus: str) -> InputItem:
    return _item(local_path(path), os.path.relpath(path, root), corpus)


def _item(path: str, rel: str, corpus: str) -> InputItem:
    """The item of a folder/glob/single-file input from its name; ``rel``: path below the root."""
    name_path = PurePosixPath(name_of(path))
    item = InputItem(path=path, video_id=video_id_for(rel), corpus="folder",
                     modality=_modality_from_extension(name_path))
    name = parse_ravdess_name(name_path) if corpus in ("auto", "ravdess") else None
    if name is None:
        if corpus == "ravdess":
            item.corpus = "ravdess"
            item.drop_reason = f"not a RAVDESS file name: {name_path.name}"
        return item
    item.corpus = "ravdess"
    item.actor = name.actor
    item.speaker = f"{name.actor:02d}"
    item.modality = name.modality_name
    item.vocal_channel = "speech" if name.vocal_channel == 1 else "song"
    item.intensity, item.statement, item.repetition = name.intensity, name.statement, name.repetition
    if name.emotion is None:
        item.drop_reason = "calm (RAVDESS emotion 02) has no project class"
    else:
        item.label, item.label_index = name.emotion, EMOTION_INDEX[name.emotion]
    return item


def _from_manifest(manifest: Path) -> list[InputItem]:
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest not found: {manifest}")
    with manifest.open(newline="") as fh:
        return _manifest_items(fh, str(manifest), str(manifest.parent))


def _from_manifest_uri(manifest: str) -> list[InputItem]:
    import io

    try:
        data = read_bytes(manifest)
    except FileNotFoundError:
        raise FileNotFoundError(f"manifest not found: {manifest}") from None
    return _manifest_items(io.StringIO(data.decode("utf-8-sig"), newline=""), manifest,
                           parent(manifest))


def _manifest_items(fh, name: str, base: str) -> list[InputItem]:
    reader = csv.DictReader(fh)
    if not reader.fieldnames or "path" not in reader.fieldnames:
        raise ValueError(f"{name}: a manifest needs a header with a 'path' column "
                         f"(and optionally 'label', 'speaker'); got {reader.fieldnames}")
    items = [_manifest_item(row, base) for row in reader]
    return sorted(items, key=lambda it: it.path)


def _manifest_path(raw: str, base: str) -> str:
    """A manifest entry as a path: URIs and absolute paths as given, relative ones below the
    manifest's folder (a URI folder for a remote manifest)."""
    if is_uri(raw):
        return raw
    if os.path.isabs(raw):
        return local_path(raw)
    if is_uri(base):
        return join(base, PurePosixPath(raw.replace(os.sep, "/")).as_posix())
    return local_path(Path(base) / raw)


def _manifest_item(row: dict, base: str) -> InputItem:
    raw = row["path"].strip()
    path = _manifest_path(raw, base)
    item = InputItem(path=path, video_id=video_id_for(raw), corpus="manifest",
                     modality=_modality_from_extension(PurePosixPath(name_of(path))),
                     speaker=(row.get("speaker") or "").strip() or None)
    label = (row.get("label") or "").strip()
    if label:
        try:
            item.label = normalize_label(label)
        except ValueError as err:
            item.drop_reason = str(err)
        if item.label is None and item.drop_reason is None:
            item.drop_reason = f"label {label!r} has no project class"
        if item.label is not None:
            item.label_index = EMOTION_INDEX[item.label]
    return item
