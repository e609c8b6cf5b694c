"""Training data from Parquet shards: driver-side metadata + split plan, Ray Data pipelines.

The driver reads only small metadata columns with pyarrow (to resolve the protocol and count
rows); the heavy columns (faces, feature vectors) are streamed by Ray Data to the workers.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mer_ray.config import FACE_SIZE, NUM_CLASSES
from mer_ray.data.schema import CLIPS_DIR, FACE_NBYTES, FRAMES_DIR
from mer_ray.data.splits import TEST, TRAIN, VAL, SplitPlan, group_keys
from mer_ray.media.errors import USABLE_STATUSES

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


def _read(files: list[str], columns: list[str]) -> pa.Table:
    tables = []
    for f in files:
        with pafs_open(f) as handle:
            tables.append(pq.read_table(handle, columns=columns))
    return pa.concat_tables(tables) if tables else pa.table({c: [] for c in columns})


@dataclass
class TrainData:
    """Row metadata of one training set after the split: what the driver needs to know."""

    kind: str                   # visual | audio
    files: list[str]            # Parquet files (frames for visual, clips for audio)
    split: np.ndarray           # split name per usable labelled row
    labels: np.ndarray          # label_index per usable labelled row
    groups: np.ndarray          # group key per usable labelled row
    aug_copies: np.ndarray      # augmented copies per row (audio; zeros for visual)

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


def load_metadata(shards: str, kind: str, feature_column: str = "audio_features") -> pa.Table:
    """Usable, labelled rows' metadata (+ n_aug for audio) from the shards' Parquet files."""
    if kind == "visual":
        files = parquet_files(shards, FRAMES_DIR)
        meta = _read(files, FRAME_META)
        meta = meta.filter(pc.is_valid(meta["label_index"]))
        return meta.append_column("n_aug", pa.array(np.zeros(len(meta), np.int64)))
    files = parquet_files(shards, CLIPS_DIR)
    has_aug = "audio_aug_features" in pq.read_schema(_open_first(files)).names
    meta = _read(files, CLIP_META + [feature_column] + (["audio_aug_features"] if has_aug else []))
    keep = pc.and_(pc.is_valid(meta["label_index"]),
                   pc.and_(pc.is_in(meta["status"], pa.array(sorted(USABLE_STATUSES))),
                           pc.is_valid(meta[feature_column])))
    meta = meta.filter(keep)
    n_aug = np.array([sum(c is not None for c in (copies or []))
                      for copies in meta["audio_aug_features"].to_pylist()]
                     if has_aug and len(meta) else np.zeros(len(meta)), np.int64)
    meta = meta.select(CLIP_META)
    return meta.append_column("n_aug", pa.array(n_aug.astype(np.int64)))


def _open_first(files: list[str]):
    return pafs_open(files[0])


def row_keys(meta: pa.Table, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(row key, clip key) per row: video_id#frame for frames, video_id for clips."""
    vids = np.asarray(meta["video_id"].to_pylist(), dtype=object)
    if kind == "visual":
        frames = meta["frame_index"].to_pylist()
        rows = np.array([f"{v}#{f}" for v, f in zip(vids, frames)], dtype=object)
        return rows, vids
    return vids, vids


def meta_groups(meta: pa.Table) -> np.ndarray:
    return group_keys(meta["actor"].to_pylist(), meta["speaker"].to_pylist(),
                      meta["video_id"].to_pylist())


def plan_data(shards: str, kind: str, plan_fn, feature_column: str = "audio_features"
              ) -> tuple[SplitPlan, TrainData]:
    """Read metadata, resolve the plan with ``plan_fn(groups) -> SplitPlan``, assign splits."""
    meta = load_metadata(shards, kind, feature_column)
    if len(meta) == 0:
        raise ValueError(f"{shards}: no usable labelled rows for {kind} training")
    groups = meta_groups(meta)
    plan = plan_fn(groups.tolist())
    rows, clips = row_keys(meta, kind)
    split = plan.assign(groups, rows, clips)
    files = parquet_files(shards, FRAMES_DIR if kind == "visual" else CLIPS_DIR)
    data = TrainData(kind, files, split, meta["label_index"].to_numpy().astype(np.int64),
                     groups, meta["n_aug"].to_numpy())
    return plan, data


# --- Ray Data pipelines (run on Ray workers) -------------------------------------------------

class _Select:
    """Ray Data UDF base: ``select`` gives {"x", "y", "video_id"} numpy arrays of one split;
    ``__call__`` returns them as a table with x as a Ray tensor column, typed even when empty
    (a dict batch with 0 rows would make Ray Data fall back to Python objects for x)."""

    def select(self, batch: pa.Table) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __call__(self, batch: pa.Table) -> pa.Table:
        from ray.data.extensions import ArrowTensorArray

        out = self.select(batch)
        return pa.table({"x": ArrowTensorArray.from_numpy(out["x"]),
                         "y": pa.array(out["y"], pa.int32()),
                         "video_id": pa.array(list(out["video_id"]), pa.string())})


class SelectFrames(_Select):
    """Ray Data UDF: pyarrow frames batch -> {"x": uint8 faces, "y": int32, "video_id"} of one
    split."""

    def __init__(self, plan: SplitPlan, split: str):
        self.plan, self.split = plan, split

    def select(self, batch: pa.Table) -> dict[str, np.ndarray]:
        batch = batch.filter(pc.is_valid(batch["label_index"]))
        rows, clips = row_keys(batch, "visual")
        mask = self.plan.assign(meta_groups(batch), rows, clips) == self.split
        faces = [f for f, m in zip(batch["face"].to_pylist(), mask) if m]
        if any(len(f) != FACE_NBYTES for f in faces):
            raise ValueError(f"a face is not {FACE_NBYTES} bytes of {FACE_SIZE}x{FACE_SIZE} RGB")
        x = (np.frombuffer(b"".join(faces), np.uint8).reshape(-1, FACE_SIZE, FACE_SIZE, 3)
             if faces else np.zeros((0, FACE_SIZE, FACE_SIZE, 3), np.uint8))
        y = batch["label_index"].to_numpy(zero_copy_only=False)[mask].astype(np.int32)
        vids = np.asarray(batch["video_id"].to_pylist(), dtype=object)[mask]
        return {"x": x, "y": y, "video_id": vids}


class SelectClips(_Select):
    """Ray Data UDF: pyarrow clips batch -> {"x": float32 (N, D), "y": int32, "video_id"} of one
    split; with ``augmented`` each row's augmented copies follow it (training only)."""

    def __init__(self, plan: SplitPlan, split: str, feature_column: str, augmented: bool):
        self.plan, self.split = plan, split
        self.feature_column, self.augmented = feature_column, augmented

    def select(self, batch: pa.Table) -> dict[str, np.ndarray]:
        keep = pc.and_(pc.is_valid(batch["label_index"]),
                       pc.and_(pc.is_in(batch["status"], pa.array(sorted(USABLE_STATUSES))),
                               pc.is_valid(batch[self.feature_column])))
        batch = batch.filter(keep)
        rows, clips = row_keys(batch, "audio")
        mask = self.plan.assign(meta_groups(batch), rows, clips) == self.split
        feats = batch[self.feature_column].to_pylist()
        augs = (batch["audio_aug_features"].to_pylist() if self.augmented
                and "audio_aug_features" in batch.column_names else [None] * len(feats))
        labels = batch["label_index"].to_pylist()
        vids = batch["video_id"].to_pylist()
        xs, ys, ids = [], [], []
        for keep_row, f, a, y, v in zip(mask, feats, augs, labels, vids):
            if not keep_row:
                continue
            for vec in [f] + [c for c in (a or []) if c is not None]:
                xs.append(vec)
                ys.append(y)
                ids.append(v)
        dim = len(feats[0]) if feats else 0
        x = np.asarray(xs, np.float32).reshape(len(xs), dim)
        return {"x": x, "y": np.asarray(ys, np.int32), "video_id": np.asarray(ids, dtype=object)}


def split_udf(data: TrainData, plan: SplitPlan, split: str, feature_column: str,
              augmented: bool):
    """The per-batch selection function of one split (SelectFrames / SelectClips)."""
    if data.kind == "visual":
        return FRAME_META + ["face"], SelectFrames(plan, split)
    columns = CLIP_META + [feature_column] + (["audio_aug_features"] if augmented else [])
    return columns, SelectClips(plan, split, feature_column, augmented)


def iter_split_local(data: TrainData, plan: SplitPlan, split: str, *,
                     feature_column: str = "audio_features", augmented: bool = False,
                     batch_rows: int = 256):
    """Driver-side streaming of one split with pyarrow alone (no Ray tasks): yields the same
    {"x", "y", "video_id"} batches as split_dataset, for evaluation and feature statistics."""
    columns, fn = split_udf(data, plan, split, feature_column, augmented)
    for path in data.files:
        with pafs_open(path) as handle:
            for record_batch in pq.ParquetFile(handle).iter_batches(batch_size=batch_rows,
                                                                    columns=columns):
                out = fn.select(pa.Table.from_batches([record_batch]))
                if len(out["y"]):
                    yield out


def pafs_open(path: str):
    """Open a local path or URI for reading."""
    if "://" in path:
        fs, inner = pafs.FileSystem.from_uri(path)
        return fs.open_input_file(inner)
    return open(path, "rb")


def split_dataset(data: TrainData, plan: SplitPlan, split: str, *,
                  feature_column: str = "audio_features", augmented: bool = False,
                  drop_ids: bool = True, shuffle_blocks: bool = False):
    """A Ray Dataset of one split: columns x, y (and video_id unless ``drop_ids``)."""
    import ray

    columns, fn = split_udf(data, plan, split, feature_column, augmented)
    ds = ray.data.read_parquet(data.files, columns=columns)
    if shuffle_blocks:
        ds = ds.randomize_block_order()
    ds = ds.map_batches(fn, batch_format="pyarrow", batch_size=256 if data.kind == "visual"
                        else 4096)
    if drop_ids:
        ds = ds.drop_columns(["video_id"])
    return ds
