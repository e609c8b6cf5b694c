"""Face tracks across the keyframes of one video: which detection is which person.

Greedy IoU linking, frame to frame: each live track's box is moved on by its velocity (a
smoothed per-keyframe displacement, so two faces that walk past each other keep their ids),
and every (live track, detection) pair with a box overlap of at least ``iou_min`` is a
candidate; the highest IoU is linked first (ties: lower track id, then lower detection
index), each track and detection at most once. A track stays live for up to ``max_gap``
keyframes without a match (a missed detection, a head turned away); after that it is over,
and a face that comes back later gets a new id. Unlinked detections start new tracks,
numbered 0, 1, ... in order of first appearance (within one keyframe, in the order the
detections are listed), so the same detections always give the same ids.

:func:`relink` runs the same linking over a flat face list (one box and keyframe position per
face), as a chunked long video's merge does over all its chunks' faces: the video's ids are
then the ones a single pass over the whole file gives.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mer_ray.media.faces import Box

DUPLICATE_IOU = 0.7
"""A detection overlapping one already linked in the same keyframe this much is the same face
found twice: it gets no track (None)."""

VELOCITY_SMOOTHING = 0.5
"""Weight of the newest displacement in a track's velocity (the rest is the old velocity)."""


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes; 0 when either is empty."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - w * h
    return 0.0 if union <= 0 else w * h / float(union)


@dataclass
class _Track:
    box: Box
    last_seen: int                          # keyframe position
    velocity: tuple[float, float] = (0.0, 0.0)   # pixels per keyframe (x, y)

    def predicted(self, k: int) -> Box:
        """Where the box should be at keyframe ``k``."""
        steps = k - self.last_seen
        x, y, w, h = self.box
        return (round(x + self.velocity[0] * steps), round(y + self.velocity[1] * steps), w, h)

    def moved(self, box: Box, k: int) -> _Track:
        """The track after it was seen at ``box`` in keyframe ``k``."""
        steps = k - self.last_seen
        a = VELOCITY_SMOOTHING
        vx = a * (box[0] - self.box[0]) / steps + (1 - a) * self.velocity[0]
        vy = a * (box[1] - self.box[1]) / steps + (1 - a) * self.velocity[1]
        return _Track(tuple(box), k, (vx, vy))


def _validate(detections: Sequence[Sequence[Box]], timestamps: Sequence[float],
              iou_min: float, max_gap: int) -> None:
    if len(timestamps) != len(detections):
        raise ValueError(f"need one timestamp per keyframe: {len(timestamps)} timestamps for "
                         f"{len(detections)} keyframes")
    if any(b < a for a, b in zip(timestamps, timestamps[1:])):
        raise ValueError("keyframe timestamps must not decrease")
    if not 0.0 < iou_min <= 1.0:
        raise ValueError(f"iou_min must be in (0, 1], got {iou_min}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0 keyframes, got {max_gap}")


def _match(live: dict[int, _Track], boxes: Sequence[Box], k: int,
           iou_min: float) -> dict[int, int]:
    """Greedy highest-IoU-first matching at keyframe ``k``: detection index -> track id."""
    pairs = sorted(((iou(t.predicted(k), box), tid, j) for tid, t in live.items()
                    for j, box in enumerate(boxes)), key=lambda p: (-p[0], p[1], p[2]))
    taken_tracks: set[int] = set()
    out: dict[int, int] = {}
    for overlap, tid, j in pairs:
        if overlap < iou_min:
            break
        if tid not in taken_tracks and j not in out:
            taken_tracks.add(tid)
            out[j] = tid
    return out


def link_tracks(detections: Sequence[Sequence[Box]], timestamps: Sequence[float],
                iou_min: float = 0.3, max_gap: int = 2) -> list[list[int | None]]:
    """A track id for every detection: ``detections[k]`` are the face boxes of keyframe ``k``
    (taken at ``timestamps[k]``, non-decreasing); the result has the same shape. None marks a
    duplicate box (IoU >= DUPLICATE_IOU with a box of the same keyframe that got a track).
    ``max_gap`` counts keyframes, not seconds."""
    _validate(detections, timestamps, iou_min, max_gap)
    tracks: dict[int, _Track] = {}
    out: list[list[int | None]] = []
    for k, boxes in enumerate(detections):
        live = {tid: t for tid, t in tracks.items() if k - t.last_seen - 1 <= max_gap}
        matched = _match(live, boxes, k, iou_min)
        ids: list[int | None] = []
        for j, box in enumerate(boxes):
            tid = matched.get(j)
            if tid is None:
                linked = [boxes[i] for i, t in enumerate(ids) if t is not None]
                linked += [boxes[i] for i in matched if i > j]
                if any(iou(box, other) >= DUPLICATE_IOU for other in linked):
                    ids.append(None)
                    continue
                tid = len(tracks)
                tracks[tid] = _Track(tuple(box), k)
            else:
                tracks[tid] = tracks[tid].moved(box, k)
            ids.append(tid)
        out.append(ids)
    return out


def relink(boxes: Sequence[Box], face_kf: Sequence[int], timestamps: Sequence[float],
           iou_min: float = 0.3, max_gap: int = 2) -> list[int]:
    """:func:`link_tracks` over a flat face list: face ``i`` is ``boxes[i]`` in keyframe
    ``face_kf[i]`` (positions into ``timestamps``, one per keyframe, those without a face
    included); faces of one keyframe keep their listed order. Returns one id per face.

    Given the faces one :func:`link_tracks` pass kept (its None duplicates dropped), the ids
    are that pass's: a dropped duplicate was never matched, so without it the greedy matching
    and the numbering are unchanged. A face this pass finds to be a duplicate (possible when
    the faces were kept by separate passes over parts of the video) takes the id of the face
    it overlaps most in its keyframe: the same face found twice."""
    if len(face_kf) != len(boxes):
        raise ValueError(f"need one keyframe position per face: {len(face_kf)} for "
                         f"{len(boxes)} faces")
    per_kf: list[list[int]] = [[] for _ in timestamps]
    for i, k in enumerate(face_kf):
        if not 0 <= k < len(per_kf):
            raise ValueError(f"face {i} is in keyframe {k}, but there are {len(per_kf)}")
        per_kf[k].append(i)
    ids = link_tracks([[tuple(boxes[i]) for i in faces] for faces in per_kf], timestamps,
                      iou_min, max_gap)
    out: list[int] = [0] * len(boxes)
    for faces, tids in zip(per_kf, ids):
        linked = [(i, tid) for i, tid in zip(faces, tids) if tid is not None]
        for i, tid in zip(faces, tids):
            out[i] = tid if tid is not None else max(
                linked, key=lambda it: iou(tuple(boxes[i]), tuple(boxes[it[0]])))[1]
    return out


def track_spans(track_ids: Sequence[Sequence[int | None]], timestamps: Sequence[float]
                ) -> dict[int, tuple[float, float, int]]:
    """Per track id: (first timestamp, last timestamp, keyframes seen)."""
    spans: dict[int, tuple[float, float, int]] = {}
    for ids, t in zip(track_ids, timestamps):
        for tid in ids:
            if tid is None:
                continue
            first, _, n = spans.get(tid, (t, t, 0))
            spans[tid] = (first, t, n + 1)
    return dict(sorted(spans.items()))
