"""Training data from Parquet shards: driver-side metadata + split plan, Ray Data pipelines.

The driver reads only small metadata columns with pyarrow (to resolve the protocol and count
rows); the heavy columns (faces, feature vectors) are streamed by Ray Data to the workers.
What a row is comes from its source: ``Frames`` (one face crop per row) or ``Clips`` (one
feature vector per clip, optionally with augmented copies and per-speaker z-scoring).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mer_ray.config import NUM_CLASSES
from mer_ray.data.schema import CLIPS_DIR, FACE_NBYTES, FRAMES_DIR
from mer_ray.data.splits import TEST, TRAIN, VAL, SplitPlan, group_keys
from mer_ray.media.audio_recipes import THESIS_COLUMN, recipe_for_column
from mer_ray.media.crop_codec import decode_crops
from mer_ray.media.errors import USABLE_STATUSES
from mer_ray.models.speaker_norm import SpeakerStats, speaker_keys

SPLITS = (TRAIN, VAL, TEST)
FRAME_META = ["video_id", "frame_index", "label_index", "actor", "speaker"]
CLIP_META = ["video_id", "label_index", "actor", "speaker", "status"]


def parquet_files(shards: str, table: str) -> list[str]:
    """Committed Parquet files of ``shards/<table>/`` (names starting '.' or '_' are skipped);
    local paths or pyarrow URIs. FileNotFoundError if there are none."""
    if "://" in shards:
        fs, root = pafs.FileSystem.from_uri(shards)
        prefix = shards.split("://", 1)[0] + "://"
    else:
        fs, root, prefix = pafs.LocalFileSystem(), os.path.abspath(shards), ""
    selector = pafs.FileSelector(f"{root}/{table}", allow_not_found=True)
    files = sorted(info.path for info in fs.get_file_info(selector)
                   if info.type == pafs.FileType.File and info.base_name.endswith(".parquet")
                   and not info.base_name.startswith((".", "_")))
    if not files:
        raise FileNotFoundError(f"no Parquet files in {shards}/{table}/ (expected the output of "
                                f"`mer-ray preprocess` or `mer-ray ingest-images`)")
    return [prefix + f for f in files]


def pafs_open(path: str):
    """Open a local path or URI for reading."""
    if "://" in path:
        fs, inner = pafs.FileSystem.from_uri(path)
        return fs.open_input_file(inner)
    return open(path, "rb")


def _read(files: list[str], columns: list[str]) -> pa.Table:
    tables = []
    for f in files:
        with pafs_open(f) as handle:
            tables.append(pq.read_table(handle, columns=columns))
    return pa.concat_tables(tables) if tables else pa.table({c: [] for c in columns})


def meta_groups(meta: pa.Table) -> np.ndarray:
    return group_keys(meta["actor"].to_pylist(), meta["speaker"].to_pylist(),
                      meta["video_id"].to_pylist())


def usable_mask(table: pa.Table, feature_column: str) -> pa.ChunkedArray:
    """Clips with a usable status and a feature vector in ``feature_column``."""
    return pc.and_(pc.is_in(table["status"], pa.array(sorted(USABLE_STATUSES))),
                   pc.is_valid(table[feature_column]))


# --- Sources: what one training row is ----------------------------------------------------

class _Select:
    """Ray Data UDF base: ``select`` gives {"x", "y", "video_id", ...} numpy arrays of one
    split; ``__call__`` returns x, y, video_id as a table with x as a Ray tensor column, typed
    even when empty (a dict batch with 0 rows would make Ray Data fall back to Python objects
    for x)."""

    def select(self, batch: pa.Table) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __call__(self, batch: pa.Table) -> pa.Table:
        from ray.data.extensions import ArrowTensorArray

        out = self.select(batch)
        return pa.table({"x": ArrowTensorArray.from_numpy(out["x"]),
                         "y": pa.array(out["y"], pa.int32()),
                         "video_id": pa.array(list(out["video_id"]), pa.string())})


@dataclass(frozen=True)
class Frames:
    """Face crops: one row per keyframe face of the frames table, x uint8 (N, 200, 200, 3).
    ``row_bytes``: a decoded row in memory."""

    table = FRAMES_DIR
    map_batch_rows = 256
    row_bytes = FACE_NBYTES
    has_augmented = False

    def metadata(self, files: list[str]) -> pa.Table:
        """Labelled rows' metadata (+ n_aug, always 0)."""
        meta = _read(files, FRAME_META)
        meta = meta.filter(pc.is_valid(meta["label_index"]))
        return meta.append_column("n_aug", pa.array(np.zeros(len(meta), np.int64)))

    def row_keys(self, meta: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(row key video_id#frame, clip key video_id) per row."""
        vids = np.asarray(meta["video_id"].to_pylist(), dtype=object)
        frames = meta["frame_index"].to_pylist()
        return np.array([f"{v}#{f}" for v, f in zip(vids, frames)], dtype=object), vids

    def udf(self, plan: SplitPlan, split: str, augmented: bool = False):
        return FRAME_META + ["face"], SelectFrames(self, plan, split)


@dataclass(frozen=True)
class Clips:
    """Clip feature vectors: one row per usable clip of the clips table, x float32 (N, D).

    ``aug_column``: the column with each clip's augmented copies (None: there are none).
    ``stats``: when set, every vector (and its copies) is z-scored with its speaker's
    statistics as it is read, so workers train on speaker-normalised rows."""

    column: str = THESIS_COLUMN
    aug_column: str | None = None
    stats: SpeakerStats | None = None

    table = CLIPS_DIR
    map_batch_rows = 4096
    row_bytes = 4 * 1024        # a feature vector: small enough to keep in memory

    @property
    def has_augmented(self) -> bool:
        return self.aug_column is not None

    def metadata(self, files: list[str]) -> pa.Table:
        """Usable, labelled rows' metadata + n_aug (augmented copies per row)."""
        has_aug = self.has_augmented and self.aug_column in _schema_names(files[0])
        aug = [self.aug_column] if has_aug else []
        meta = _read(files, CLIP_META + [self.column] + aug)
        meta = meta.filter(pc.and_(pc.is_valid(meta["label_index"]),
                                   usable_mask(meta, self.column)))
        n_aug = np.array([sum(c is not None for c in (copies or []))
                          for copies in meta[self.aug_column].to_pylist()]
                         if has_aug and len(meta) else np.zeros(len(meta)), np.int64)
        return meta.select(CLIP_META).append_column("n_aug", pa.array(n_aug))

    def row_keys(self, meta: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(row key, clip key) per row: both the video_id."""
        vids = np.asarray(meta["video_id"].to_pylist(), dtype=object)
        return vids, vids

    def udf(self, plan: SplitPlan, split: str, augmented: bool = False):
        augmented = augmented and self.has_augmented
        columns = CLIP_META + [self.column] + ([self.aug_column] if augmented else [])
        return columns, SelectClips(self, plan, split, augmented)

    def raw(self) -> Clips:
        """The same rows without speaker normalisation (what a bundle is fed)."""
        return replace(self, stats=None)


def _schema_names(path: str) -> list[str]:
    with pafs_open(path) as handle:
        return pq.read_schema(handle).names


def clips_source(column: str = THESIS_COLUMN, stats: SpeakerStats | None = None) -> Clips:
    """Clips of ``column`` with the augmented copies its recipe stores (if any)."""
    recipe = recipe_for_column(column)
    return Clips(column, recipe.aug_column if recipe else None, stats)


def source_for(kind: str, feature_column: str = THESIS_COLUMN) -> Frames | Clips:
    """The source named by a model kind: "visual" -> Frames, "audio" -> Clips of the column."""
    if kind not in ("visual", "audio"):
        raise ValueError(f"unknown training data kind {kind!r}; expected visual or audio")
    return Frames() if kind == "visual" else clips_source(feature_column)


class SelectFrames(_Select):
    """Ray Data UDF: pyarrow frames batch -> {"x": uint8 faces, "y": int32, "video_id"} of one
    split; the crops are decoded here, on the worker (raw ones from older shards too)."""

    def __init__(self, source: Frames, plan: SplitPlan, split: str):
        self.source, self.plan, self.split = source, plan, split

    def select(self, batch: pa.Table) -> dict[str, np.ndarray]:
        batch = batch.filter(pc.is_valid(batch["label_index"]))
        rows, clips = self.source.row_keys(batch)
        mask = self.plan.assign(meta_groups(batch), rows, clips) == self.split
        x = decode_crops([f for f, m in zip(batch["face"].to_pylist(), mask) if m])
        y = batch["label_index"].to_numpy(zero_copy_only=False)[mask].astype(np.int32)
        vids = np.asarray(batch["video_id"].to_pylist(), dtype=object)[mask]
        return {"x": x, "y": y, "video_id": vids}


class SelectClips(_Select):
    """Ray Data UDF: pyarrow clips batch -> {"x": float32 (N, D), "y": int32, "video_id",
    "speaker", "group"} of one split; with ``augmented`` each row's augmented copies follow it
    (training only). With ``source.stats`` the vectors are speaker-normalised."""

    def __init__(self, source: Clips, plan: SplitPlan, split: str, augmented: bool):
        self.source, self.plan, self.split, self.augmented = source, plan, split, augmented

    def select(self, batch: pa.Table) -> dict[str, np.ndarray]:
        column = self.source.column
        batch = batch.filter(pc.and_(pc.is_valid(batch["label_index"]),
                                     usable_mask(batch, column)))
        rows, clips = self.source.row_keys(batch)
        groups = meta_groups(batch)
        mask = self.plan.assign(groups, rows, clips) == self.split
        feats = batch[column].to_pylist()
        augs = (batch[self.source.aug_column].to_pylist() if self.augmented
                and self.source.aug_column in batch.column_names else [None] * len(feats))
        speakers = speaker_keys(batch["actor"].to_pylist(), batch["speaker"].to_pylist())
        per_row = zip(mask, feats, augs, batch["label_index"].to_pylist(), rows, speakers,
                      groups)
        xs, picked = [], []
        for keep_row, f, a, y, v, s, g in per_row:
            if not keep_row:
                continue
            for vec in [f] + [c for c in (a or []) if c is not None]:
                xs.append(vec)
                picked.append((y, v, s, g))
        dim = len(feats[0]) if feats else 0
        x = np.asarray(xs, np.float32).reshape(len(xs), dim)
        y, vids, spk, grp = (np.asarray(c, dtype=object) for c in zip(*picked)) if picked \
            else (np.zeros(0, object),) * 4
        if self.source.stats is not None and len(x):
            x = self.source.stats.normalize(x, spk)
        return {"x": x, "y": np.asarray(y, np.int32), "video_id": vids, "speaker": spk,
                "group": grp}


# --- Metadata and the split ---------------------------------------------------------------

@dataclass
class TrainData:
    """Row metadata of one training set after the split: what the driver needs to know."""

    source: Frames | Clips      # what a row is and how it is read
    files: list[str]            # Parquet files (frames or clips)
    split: np.ndarray           # split name per usable labelled row
    labels: np.ndarray          # label_index per usable labelled row
    groups: np.ndarray          # group key per usable labelled row
    aug_copies: np.ndarray      # augmented copies per row (zeros without any)

    def count(self, split: str, augmented: bool = False) -> int:
        mask = self.split == split
        extra = int(self.aug_copies[mask].sum()) if augmented else 0
        return int(mask.sum()) + extra

    def labels_of(self, split: str) -> np.ndarray:
        return self.labels[self.split == split]

    def summary(self, augmented: bool = False) -> dict:
        out = {}
        for name in SPLITS:
            mask = self.split == name
            out[name] = {
                "rows": int(mask.sum()),
                "groups": sorted(set(self.groups[mask].tolist())),
                "per_class": np.bincount(self.labels[mask], minlength=NUM_CLASSES).tolist(),
            }
        out[TRAIN]["rows_with_augmented"] = self.count(TRAIN, augmented)
        return out


def _as_source(kind: str | Frames | Clips, feature_column: str) -> Frames | Clips:
    return source_for(kind, feature_column) if isinstance(kind, str) else kind


def load_metadata(shards: str, kind: str | Frames | Clips,
                  feature_column: str = THESIS_COLUMN) -> pa.Table:
    """Usable, labelled rows' metadata (+ n_aug) of a source ("visual" / "audio" name one)."""
    source = _as_source(kind, feature_column)
    return source.metadata(parquet_files(shards, source.table))


def plan_data(shards: str, kind: str | Frames | Clips, plan_fn,
              feature_column: str = THESIS_COLUMN) -> tuple[SplitPlan, TrainData]:
    """Read metadata, resolve the plan with ``plan_fn(groups) -> SplitPlan``, assign splits."""
    source = _as_source(kind, feature_column)
    files = parquet_files(shards, source.table)
    meta = source.metadata(files)
    if len(meta) == 0:
        raise ValueError(f"{shards}: no usable labelled rows in {source.table}/ for training")
    groups = meta_groups(meta)
    plan = plan_fn(groups.tolist())
    rows, clips = source.row_keys(meta)
    split = plan.assign(groups, rows, clips)
    data = TrainData(source, files, split, meta["label_index"].to_numpy().astype(np.int64),
                     groups, meta["n_aug"].to_numpy())
    return plan, data


# --- Reading one split -------------------------------------------------------------------

def iter_split_local(data: TrainData, plan: SplitPlan, split: str, *,
                     augmented: bool = False, batch_rows: int = 256, raw: bool = False):
    """Driver-side streaming of one split with pyarrow alone (no Ray tasks): yields the same
    {"x", "y", "video_id", ...} batches as split_dataset, for evaluation and statistics.
    ``raw``: clips as stored, without speaker normalisation (what a bundle is fed)."""
    source = data.source.raw() if raw and isinstance(data.source, Clips) else data.source
    columns, fn = source.udf(plan, split, augmented)
    for path in data.files:
        with pafs_open(path) as handle:
            for record_batch in pq.ParquetFile(handle).iter_batches(batch_size=batch_rows,
                                                                    columns=columns):
                out = fn.select(pa.Table.from_batches([record_batch]))
                if len(out["y"]):
                    yield out


@dataclass
class LocalSplit:
    """One split read by the process that iterates it (iter_split_local), with the two
    iterators the worker loop uses of a Ray Data shard. Rank 0's validation set: a Ray Data
    pipeline would start its read tasks afresh in every attempt (seconds each, for a split
    that one process reads anyway)."""

    data: TrainData
    plan: SplitPlan
    split: str

    def iter_batches(self, batch_size: int = 256, batch_format: str = "numpy"):
        for batch in iter_split_local(self.data, self.plan, self.split, batch_rows=batch_size):
            yield {"x": batch["x"], "y": batch["y"]}

    def iter_tf_batches(self, batch_size: int, drop_last: bool = False, dtypes=None,
                        local_shuffle_buffer_size=None):
        import tensorflow as tf

        dtypes = dtypes or {}
        for batch in self.iter_batches(batch_size):
            yield {k: tf.constant(batch[k], dtypes.get(k)) for k in ("x", "y")}


def split_dataset(data: TrainData, plan: SplitPlan, split: str, *, augmented: bool = False,
                  drop_ids: bool = True, shuffle_blocks: bool = False):
    """A Ray Dataset of one split: columns x, y (and video_id unless ``drop_ids``)."""
    import ray

    columns, fn = data.source.udf(plan, split, augmented)
    ds = ray.data.read_parquet(data.files, columns=columns)
    if shuffle_blocks:
        ds = ds.randomize_block_order()
    ds = ds.map_batches(fn, batch_format="pyarrow", batch_size=data.source.map_batch_rows)
    if drop_ids:
        ds = ds.drop_columns(["video_id"])
    return ds


# --- Every usable clip (labelled or not), for speaker statistics ---------------------------

@dataclass
class ClipRows:
    """Every usable clip with a feature vector (labelled or not), in file order."""

    x: np.ndarray            # (N, D) float32 raw features
    labels: np.ndarray       # label_index, -1 where unlabeled
    speakers: np.ndarray     # speaker_norm.speaker_key per row
    groups: np.ndarray       # data.splits.group_key per row (protocol grouping)
    video_ids: np.ndarray

    @property
    def labelled(self) -> np.ndarray:
        return self.labels >= 0


def read_clip_rows(shards: str, feature_column: str) -> ClipRows:
    """Read the clips tables' metadata and ``feature_column`` (driver side, pyarrow)."""
    tables = []
    for path in parquet_files(shards, CLIPS_DIR):
        if feature_column not in _schema_names(path):
            raise ValueError(f"{path} has no column '{feature_column}' (re-run `mer-ray "
                             f"preprocess` with this version to store it)")
        with pafs_open(path) as handle:
            tables.append(pq.read_table(handle, columns=CLIP_META + [feature_column]))
    table = pa.concat_tables(tables)
    table = table.filter(usable_mask(table, feature_column))
    if len(table) == 0:
        raise ValueError(f"{shards}: no usable clips with '{feature_column}'")
    feats = table[feature_column].to_pylist()
    dims = {len(f) for f in feats}
    if len(dims) != 1:
        raise ValueError(f"'{feature_column}' vectors have different lengths {sorted(dims)}")
    actor, speaker = table["actor"].to_pylist(), table["speaker"].to_pylist()
    vids = table["video_id"].to_pylist()
    labels = np.array([-1 if v is None else v for v in table["label_index"].to_pylist()], np.int64)
    return ClipRows(np.asarray(feats, np.float32), labels, speaker_keys(actor, speaker),
                    group_keys(actor, speaker, vids), np.asarray(vids, dtype=object))


def speaker_stats(shards: str, feature_column: str) -> SpeakerStats:
    """Per-speaker statistics over every usable clip of the shards (labels are never read)."""
    rows = read_clip_rows(shards, feature_column)
    return SpeakerStats().update(rows.x, rows.speakers)
