"""Face-image corpora (AffectNet, FER2013) -> 7-class FRAMES Parquet, with Ray Data.

Input layouts:

- class folders: every image under a folder whose name is a class (``anger``/``angry``,
  ``Fear``, ``surprised``, ...; AffectNet's numeric folders ``0``..``7`` too). The nearest such
  ancestor names the class, so ``train/anger/x.jpg`` and ``anger/sub/x.jpg`` both work.
- a CSV (``path,label[,speaker]``, or AffectNet's ``subDirectory_filePath`` / ``expression``):
  labels as names or AffectNet codes (0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear,
  5 disgust, 6 anger, 7 contempt; 8-10 none/uncertain/non-face); paths relative to the CSV.

Contempt (and anything without a project class) is dropped and counted. Every image is kept
by default (train-visual --class-weight balanced evens the classes in the loss); ``balance``
down-samples every class to the smallest one instead (seeded). Images are already faces: they are
only converted to RGB, resized to 200x200 and encoded as every stored crop is
(media/crop_codec.py). Rows use FRAMES_SCHEMA (video_id = image id, frame_index 0), so
train-visual reads the output like preprocess output.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

from mer_ray.config import EMOTIONS, FACE_SIZE, IngestImagesConfig
from mer_ray.data.schema import FRAMES_DIR, FRAMES_SCHEMA, SUMMARY_FILE

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
AFFECTNET_CODES: dict[int, str | None] = {
    0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear", 5: "disgust", 6: "angry",
    7: None, 8: None, 9: None, 10: None,   # contempt, none, uncertain, non-face
}
_NAMES: dict[str, str | None] = {
    **{e: e for e in EMOTIONS},
    "anger": "angry", "disgusted": "disgust", "fearful": "fear", "afraid": "fear",
    "happiness": "happy", "sadness": "sad", "surprised": "surprise", "contempt": None,
}
DROPPED = "dropped"


def label_of(name: str) -> str | None:
    """Project class of a folder name / CSV label; None = drop (contempt, codes 7-10);
    raises KeyError when the name means nothing."""
    key = name.strip().lower()
    if key.isdigit():
        return AFFECTNET_CODES[int(key)]
    return _NAMES[key]


def image_id(rel_path: str) -> str:
    return hashlib.sha1(rel_path.replace(os.sep, "/").encode()).hexdigest()


def list_folder_images(root: str) -> tuple[list[dict], Counter]:
    """Images under class folders -> rows (path, label, speaker None, video_id); Counter of
    dropped names."""
    rows, dropped = [], Counter()
    base = Path(root)
    for path in sorted(base.rglob("*")):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        rel = path.relative_to(base)
        label, folder = None, None
        for part in reversed(rel.parts[:-1]):
            try:
                label, folder = label_of(part), part
                break
            except KeyError:
                continue
        if label is None:
            dropped[folder.lower() if folder else "no class folder"] += 1
            continue
        rows.append({"path": str(path), "label": label, "speaker": None,
                     "video_id": image_id(str(rel))})
    return rows, dropped


def _pick(header: list[str], names: tuple[str, ...]) -> str | None:
    lower = {h.strip().lower(): h for h in header}
    return next((lower[n] for n in names if n in lower), None)


def list_csv_images(csv_path: str, root: str | None = None) -> tuple[list[dict], Counter]:
    """Rows from a CSV (see module doc); relative paths resolve against ``root`` or the CSV's
    folder."""
    base = Path(root) if root else Path(csv_path).parent
    rows, dropped = [], Counter()
    with open(csv_path, newline="") as fh:
        reader = csv.reader(fh)
        first = next(reader, None)
        if first is None:
            return rows, dropped
        path_col = _pick(first, ("path", "subdirectory_filepath", "image", "file", "filename"))
        if path_col is not None:
            label_col = _pick(first, ("label", "expression", "emotion", "class"))
            speaker_col = _pick(first, ("speaker", "subject", "actor"))
            if label_col is None:
                raise ValueError(f"{csv_path}: no label/expression column in {first}")
            idx = {name: first.index(name) for name in (path_col, label_col) if name}
            sp_idx = first.index(speaker_col) if speaker_col else None
            records = ((r[idx[path_col]], r[idx[label_col]], r[sp_idx] if sp_idx is not None
                        else None) for r in reader if r)
        else:   # no header: path,label[,speaker]
            records = ((r[0], r[1], r[2] if len(r) > 2 else None)
                       for r in [first, *reader] if r)
        for rel, raw_label, speaker in records:
            try:
                label = label_of(raw_label)
            except (KeyError, ValueError):
                dropped[f"unknown label {raw_label!r}"] += 1
                continue
            if label is None:
                dropped[raw_label.strip().lower()] += 1
                continue
            path = Path(rel) if os.path.isabs(rel) else base / rel
            rows.append({"path": str(path), "label": label, "speaker": speaker or None,
                         "video_id": image_id(rel)})
    return rows, dropped


def find_csv(data_dir: str) -> str | None:
    """The CSV to use for layout=auto: DATA itself if it is a .csv, or the only .csv in DATA."""
    if data_dir.lower().endswith(".csv") and os.path.isfile(data_dir):
        return data_dir
    found = sorted(Path(data_dir).glob("*.csv"))
    return str(found[0]) if len(found) == 1 else None


def balance(rows: list[dict], seed: int) -> list[dict]:
    """Down-sample every present class to the smallest class's count (seeded), stable order."""
    by_class: dict[str, list[dict]] = {}
    for row in rows:
        by_class.setdefault(row["label"], []).append(row)
    if not by_class:
        return []
    n = min(len(v) for v in by_class.values())
    rng = np.random.default_rng(seed)
    keep = []
    for label in EMOTIONS:
        items = by_class.get(label, [])
        if items:
            picked = rng.choice(len(items), size=n, replace=False)
            keep.extend(items[i] for i in sorted(picked))
    return keep


def load_face(path: str) -> bytes | None:
    """An image file -> its 200x200 RGB crop, encoded (media/crop_codec.py), or None if it
    cannot be decoded."""
    import cv2

    from mer_ray.media.crop_codec import encode_crop

    data = np.fromfile(path, np.uint8) if os.path.isfile(path) else None
    if data is None or data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        return None
    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if h > FACE_SIZE or w > FACE_SIZE else cv2.INTER_LINEAR
    img = cv2.resize(img, (FACE_SIZE, FACE_SIZE), interpolation=interp)
    return encode_crop(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def faces_batch(batch: dict):
    """Ray Data UDF: listed rows -> FRAMES_SCHEMA rows (unreadable images left out)."""
    from mer_ray.data.schema import to_table
    from mer_ray.runtime import limit_cv2_threads

    limit_cv2_threads()
    out = []
    for path, label, speaker, vid in zip(batch["path"], batch["label"], batch["speaker"],
                                         batch["video_id"]):
        face = load_face(str(path))
        if face is None:
            continue
        label = str(label)
        speaker = None if speaker is None or speaker != speaker else str(speaker)
        out.append({"video_id": str(vid), "path": str(path), "label": label,
                    "label_index": EMOTIONS.index(label), "speaker": speaker, "actor": None,
                    "frame_index": 0, "timestamp_s": 0.0, "face": face,
                    "box": [0, 0, FACE_SIZE, FACE_SIZE]})
    return to_table(out, FRAMES_SCHEMA)


def list_images(cfg: IngestImagesConfig) -> tuple[list[dict], Counter, str]:
    """(rows, dropped counts, layout used)."""
    csv_path = cfg.csv or (find_csv(cfg.data_dir) if cfg.layout in ("auto", "csv") else None)
    if cfg.layout == "csv" and not csv_path:
        raise FileNotFoundError(f"--layout csv: no CSV given or found in {cfg.data_dir}")
    if csv_path:
        root = cfg.data_dir if os.path.isdir(cfg.data_dir) else None
        rows, dropped = list_csv_images(csv_path, root)
        return rows, dropped, "csv"
    if not os.path.isdir(cfg.data_dir):
        raise FileNotFoundError(f"{cfg.data_dir} is not a folder")
    rows, dropped = list_folder_images(cfg.data_dir)
    return rows, dropped, "folders"


def run_ingest_images(cfg: IngestImagesConfig) -> dict:
    """List, balance, load/resize with Ray Data, write OUT/frames/*.parquet and summary.json."""
    import pyarrow.parquet as pq
    import ray

    from mer_ray.runtime import init_ray

    t0 = time.perf_counter()
    frames_dir = Path(cfg.out) / FRAMES_DIR
    if frames_dir.is_dir() and any(frames_dir.glob("*.parquet")):
        raise FileExistsError(f"{frames_dir} already holds Parquet files; use another --out")
    rows, dropped, layout = list_images(cfg)
    listed = Counter(r["label"] for r in rows)
    if not rows:
        raise ValueError(f"{cfg.data_dir}: no images with a project class found")
    chosen = balance(rows, cfg.seed) if cfg.balance else rows
    init_ray(cfg.ray)
    ds = ray.data.from_items(chosen, override_num_blocks=max(1, -(-len(chosen) // 256)))
    ds = ds.map_batches(faces_batch, batch_size=64, batch_format="numpy")
    ds.write_parquet(str(frames_dir.resolve()), min_rows_per_file=cfg.images_per_shard)
    written = Counter()
    for f in frames_dir.glob("*.parquet"):
        written.update(pq.read_table(f, columns=["label"])["label"].to_pylist())
    summary = {
        "data_dir": cfg.data_dir, "out": cfg.out, "layout": layout, "listed": len(rows),
        "listed_per_class": {e: listed.get(e, 0) for e in EMOTIONS},
        "dropped": dict(dropped), "balanced": cfg.balance,
        "chosen_per_class": {e: sum(r["label"] == e for r in chosen) for e in EMOTIONS},
        "written": sum(written.values()), "written_per_class": {e: written.get(e, 0)
                                                                for e in EMOTIONS},
        "unreadable": len(chosen) - sum(written.values()),
        "seconds": round(time.perf_counter() - t0, 2), "config": cfg.to_dict(),
    }
    Path(cfg.out, SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
