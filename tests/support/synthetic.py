"""A tiny, separable synthetic shard set in the preprocess output layout (tests, benchmarks/train.py).

Faces are coloured noise whose colour depends on the class; audio vectors are class-dependent
Gaussian blobs on very different feature scales (so standardisation matters); each clip has
augmented copies near its original. Nothing here claims anything about real emotion data.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from mer_ray.config import EMOTIONS, FACE_SIZE, N_THESIS_FEATURES
from mer_ray.data.schema import CLIPS_DIR, CLIPS_SCHEMA, FRAMES_DIR, FRAMES_SCHEMA, to_table

DEFAULT_ACTORS = (2, 3, 10, 8, 1, 4)    # covers all five ACTOR_FOLDS
CLASS_COLOURS = np.array([[200, 40, 40], [60, 160, 60], [120, 60, 160], [230, 200, 40],
                          [128, 128, 128], [40, 60, 200], [240, 130, 200]], np.float32)


def class_faces(label: int, n: int, rng: np.random.Generator, noise: float = 40.0) -> np.ndarray:
    """(n, 200, 200, 3) uint8 noisy images around the class colour."""
    img = CLASS_COLOURS[label] + rng.normal(0, noise, (n, FACE_SIZE, FACE_SIZE, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_synthetic_shards(out: str | Path, actors=DEFAULT_ACTORS, clips_per_class: int = 2,
                           frames_per_clip: int = 2, aug_copies: int = 2, seed: int = 0,
                           shards: int = 2, dim: int = N_THESIS_FEATURES,
                           separation: float = 3.0) -> Path:
    """Write OUT/clips/part-*.parquet and OUT/frames/part-*.parquet; return OUT."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    centres = rng.normal(0, separation, (len(EMOTIONS), dim))
    scales = 10.0 ** rng.uniform(-2, 3, dim)           # wildly different feature scales
    clips, frames = [], []
    for actor in actors:
        for label, emotion in enumerate(EMOTIONS):
            for k in range(clips_per_class):
                vid = hashlib.sha1(f"{actor}-{label}-{k}".encode()).hexdigest()
                feats = (centres[label] + rng.normal(0, 1, dim)) * scales
                augs = [(feats / scales + rng.normal(0, 0.3, dim)) * scales
                        for _ in range(aug_copies)]
                path = f"/synthetic/Actor_{actor:02d}/{vid[:8]}.mp4"
                clips.append({
                    "path": path, "video_id": vid, "corpus": "ravdess", "label": emotion,
                    "label_index": label, "speaker": str(actor), "actor": actor,
                    "modality": "audio-video", "vocal_channel": "speech", "status": "ok",
                    "has_audio": True, "keyframes": frames_per_clip,
                    "faces_found": frames_per_clip, "audio_features": feats.astype(np.float32),
                    "audio_aug_features": [a.astype(np.float32) for a in augs],
                })
                for f, face in enumerate(class_faces(label, frames_per_clip, rng)):
                    frames.append({
                        "video_id": vid, "path": path, "label": emotion, "label_index": label,
                        "speaker": str(actor), "actor": actor, "frame_index": 10 * f,
                        "timestamp_s": f / 3.0, "face": face.tobytes(), "box": [0, 0, 200, 200],
                    })
    _write(out / CLIPS_DIR, clips, CLIPS_SCHEMA, shards)
    _write(out / FRAMES_DIR, frames, FRAMES_SCHEMA, shards)
    return out


def _write(folder: Path, rows: list[dict], schema, shards: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(rows)), shards)):
        table = to_table([rows[j] for j in part], schema)
        pq.write_table(table, folder / f"part-{i:04d}.parquet")
