"""Face thumbnails per predicted class, cut at render time from the scored videos.

The timeline keeps each keyframe's face box and the visual model's label, not the pixels, so
the crop is taken again from the source video with OpenCV (the frame at ``frame_index``).
Bounded: the most confident faces per class, one per video first, a few per class. A source
that is gone, remote, or unreadable is skipped and counted in a note.
"""
from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

PER_CLASS = 4          # thumbnails per predicted class
THUMB_PX = 72          # side of a thumbnail, pixels
CANDIDATES = 2         # faces tried per thumbnail wanted (sources may be unreadable)


@dataclass(frozen=True)
class Thumb:
    """One face crop as a data: URI, with where it came from."""

    uri: str
    path: str
    timestamp_s: float
    confidence: float


def pick_faces(timeline: pd.DataFrame, classes: Sequence[str],
               per_class: int = PER_CLASS) -> dict[str, pd.DataFrame]:
    """class -> candidate keyframes (best first: distinct videos, then confidence)."""
    faces = timeline[timeline["box"].notna() & timeline["emotion"].notna()]
    out = {}
    for name in classes:
        rows = faces[faces["emotion"] == name].sort_values(["confidence", "path"],
                                                           ascending=[False, True])
        first = ~rows["path"].duplicated()
        out[name] = pd.concat([rows[first], rows[~first]]).head(per_class * CANDIDATES)
    return out


def _local(path: str) -> str | None:
    if path.startswith("file://"):
        path = path[len("file://"):]
    return path if "://" not in path and os.path.isfile(path) else None


def _crop(frame, box: Sequence[int], size: int):
    import cv2

    h, w = frame.shape[:2]
    x, y, bw, bh = (int(v) for v in box)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
    if x1 <= x0 or y1 <= y0:
        return None
    return cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def read_crops(path: str, wanted: list[tuple[int, Sequence[int]]], size: int = THUMB_PX) -> dict:
    """(frame_index, box) -> JPEG data URI for the crops of one video that could be read."""
    import cv2

    local = _local(path)
    if local is None:
        return {}
    cap = cv2.VideoCapture(local)
    out = {}
    try:
        for index, box in sorted(wanted, key=lambda w: w[0]):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = cap.read()
            face = _crop(frame, box, size) if ok else None
            if face is None:
                continue
            ok, jpeg = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if ok:
                out[(int(index), tuple(box))] = ("data:image/jpeg;base64,"
                                                 + base64.b64encode(jpeg.tobytes()).decode())
    finally:
        cap.release()
    return out


def face_thumbnails(timeline: pd.DataFrame, classes: Sequence[str],
                    per_class: int = PER_CLASS) -> tuple[dict[str, list[Thumb]], int]:
    """class -> up to ``per_class`` thumbnails, and how many of the videos picked from gave
    no crop (moved, remote or unreadable)."""
    picks = pick_faces(timeline, classes, per_class)
    wanted: dict[str, list] = {}
    for rows in picks.values():
        for r in rows.itertuples():
            wanted.setdefault(r.path, []).append((int(r.frame_index), tuple(int(v) for v in r.box)))
    crops = {path: read_crops(path, list(set(w))) for path, w in wanted.items()}
    out = {}
    for name, rows in picks.items():
        thumbs = []
        for r in rows.itertuples():
            uri = crops[r.path].get((int(r.frame_index), tuple(int(v) for v in r.box)))
            if uri is not None and len(thumbs) < per_class:
                thumbs.append(Thumb(uri, r.path, float(r.timestamp_s), float(r.confidence)))
        out[name] = thumbs
    return out, sum(1 for c in crops.values() if not c)
