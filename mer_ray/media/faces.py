"""Face detection (OpenCV Haar cascade) and the 200x200 RGB face crop. No Ray here.

The thesis does not name its detector; the Haar frontal-face cascade shipped with OpenCV is
the portable default. Detection runs on a grey frame downscaled to ``detect_width`` pixels
(``None`` = full resolution, the thesis-style baseline). The smallest face searched for is
``min_face_frac`` of the frame's shorter side in *both* cases, so the two settings look for
the same faces and find them in the same frames; only the cost differs.

:meth:`FaceDetector.detect_faces` returns every face of a frame (up to ``max_faces``) for
multi-face scoring; linking them into tracks across keyframes is ``media/tracks.py``.

Across the keyframes of one video, :class:`FaceTracker` searches near the last face first
(a small window, a narrow range of scales) and falls back to the full-frame search on a miss
and every few keyframes, so a video costs a few full searches instead of one per keyframe.
"""
from __future__ import annotations

import os

import numpy as np

from mer_ray.media.constants import DETECT_WIDTH

Box = tuple[int, int, int, int]
"""x, y, w, h in original-frame pixels."""

CASCADE_FILE = "haarcascade_frontalface_default.xml"

MAX_FACES = 4
"""Default cap on the faces :meth:`FaceDetector.detect_faces` returns per frame."""

NESTED_FRACTION = 0.5
"""A box with at least this share of its area inside a larger box is the same face found
twice (the cascade's grouping can leave a smaller box on a found face): it is dropped."""


def default_cascade_path() -> str:
    """The frontal-face cascade shipped with opencv-python (cv2.data.haarcascades)."""
    import cv2

    return os.path.join(cv2.data.haarcascades, CASCADE_FILE)


class FaceDetector:
    """Haar face detector: the largest face (:meth:`detect`) or every face of a frame
    (:meth:`detect_faces`); create one per process (not thread-safe to share)."""

    def __init__(self, detect_width: int | None = DETECT_WIDTH, scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_face_frac: float = 0.1,
                 cascade_path: str | None = None):
        import cv2

        if detect_width is not None and detect_width < 32:
            raise ValueError(f"detect_width must be >= 32 or None, got {detect_width}")
        if not 0.0 < min_face_frac < 1.0:
            raise ValueError(f"min_face_frac must be in (0, 1), got {min_face_frac}")
        path = cascade_path or default_cascade_path()
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Haar cascade file not found: {path} "
                                    "(is opencv-python(-headless) installed with its data files?)")
        try:
            self._cascade = cv2.CascadeClassifier(path)
        except (cv2.error, SystemError) as exc:
            raise RuntimeError(f"could not load the Haar cascade from {path}: {exc}") from None
        if self._cascade.empty():
            raise RuntimeError(f"could not load the Haar cascade from {path}")
        self.cascade_path = path
        self.detect_width = detect_width
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_frac = min_face_frac

    def detect_all(self, frame_bgr: np.ndarray) -> list[Box]:
        """Every face found, in original-frame pixels (largest first)."""
        import cv2

        if frame_bgr is None or frame_bgr.ndim not in (2, 3) or frame_bgr.size == 0:
            raise ValueError("detect expects a non-empty BGR (H x W x 3) or grey (H x W) image")
        grey = frame_bgr if frame_bgr.ndim == 2 else cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        height, width = grey.shape
        scale = 1.0
        if self.detect_width is not None and width > self.detect_width:
            scale = self.detect_width / width
            grey = cv2.resize(grey, (self.detect_width, max(1, round(height * scale))),
                              interpolation=cv2.INTER_AREA)
        min_side = max(1, int(self.min_face_frac * min(grey.shape)))
        found = self._cascade.detectMultiScale(grey, scaleFactor=self.scale_factor,
                                               minNeighbors=self.min_neighbors,
                                               minSize=(min_side, min_side))
        boxes = [_to_frame(box, scale, width, height) for box in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)

    def detect(self, frame_bgr: np.ndarray) -> Box | None:
        """The largest face, or None when there is none."""
        boxes = self.detect_all(frame_bgr)
        return boxes[0] if boxes else None

    def detect_faces(self, frame_bgr: np.ndarray, max_faces: int = MAX_FACES) -> list[Box]:
        """Up to ``max_faces`` faces of one frame, left to right (then top to bottom).

        The same full-frame search as :meth:`detect`; boxes lying mostly inside a larger one
        are dropped, then the ``max_faces`` largest are kept, so a cap never trades a real face
        for a smaller one. Left-to-right order makes the listing stable across keyframes."""
        if isinstance(max_faces, bool) or not isinstance(max_faces, int) or max_faces < 1:
            raise ValueError(f"max_faces must be an integer >= 1, got {max_faces!r}")
        kept: list[Box] = []
        for box in self.detect_all(frame_bgr):          # largest first
            if not any(_inside_fraction(box, big) >= NESTED_FRACTION for big in kept):
                kept.append(box)
        return sorted(kept[:max_faces], key=lambda b: (b[0], b[1]))

    def detect_near(self, frame_bgr: np.ndarray, box: Box, margin: float = 0.5,
                    face_px: int = 48, scale_range: float = 1.25) -> Box | None:
        """The largest face in a window around ``box`` (``margin`` x its size on each side),
        of a size within ``scale_range`` of it. The window is scaled so that a face of the old
        size is ``face_px`` pixels: a handful of small scales instead of the whole pyramid."""
        import cv2

        height, width = frame_bgr.shape[:2]
        x, y, w, h = box
        x0, y0 = max(0, int(x - margin * w)), max(0, int(y - margin * h))
        x1, y1 = min(width, int(x + w + margin * w)), min(height, int(y + h + margin * h))
        scale = min(1.0, face_px / max(w, h, 1))
        size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        if x1 <= x0 or y1 <= y0 or min(size) < face_px:
            return None
        window = frame_bgr[y0:y1, x0:x1]
        grey = window if window.ndim == 2 else cv2.cvtColor(window, cv2.COLOR_BGR2GRAY)
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        side = max(w, h) * scale
        lo, hi = max(1, int(side / scale_range)), max(2, int(side * scale_range))
        found = self._cascade.detectMultiScale(grey, scaleFactor=self.scale_factor,
                                               minNeighbors=self.min_neighbors,
                                               minSize=(lo, lo), maxSize=(hi, hi))
        boxes = [_to_frame(b, scale, x1 - x0, y1 - y0) for b in np.asarray(found).reshape(-1, 4)]
        if not boxes:
            return None
        bx, by, bw, bh = max(boxes, key=lambda b: b[2] * b[3])
        return (bx + x0, by + y0, bw, bh)


class FaceTracker:
    """The largest face of each keyframe of one video, cheaply.

    A full-frame search (:meth:`FaceDetector.detect`) on the first keyframe, after any miss,
    and every ``redetect_every`` keyframes (so a larger face that walks in is picked up);
    in between, a search near the last face (:meth:`FaceDetector.detect_near`). A keyframe
    counts as faceless only when the full-frame search finds nothing. ``redetect_every=1``
    is the plain per-keyframe detector. Create one per video.
    """

    def __init__(self, detector: FaceDetector, redetect_every: int = 6):
        if redetect_every < 1:
            raise ValueError(f"redetect_every must be >= 1, got {redetect_every}")
        self.detector = detector
        self.redetect_every = redetect_every
        self.full_searches = 0
        self._last: Box | None = None
        self._since_full = 0

    def __call__(self, frame_bgr: np.ndarray) -> Box | None:
        """The largest face of the next keyframe, or None."""
        if self._last is not None and self._since_full < self.redetect_every - 1:
            box = self.detector.detect_near(frame_bgr, self._last)
            if box is not None:
                self._last, self._since_full = box, self._since_full + 1
                return box
        self.full_searches += 1
        self._last, self._since_full = self.detector.detect(frame_bgr), 0
        return self._last


def _inside_fraction(box: Box, other: Box) -> float:
    """The share of ``box``'s area that lies inside ``other``."""
    x, y, w, h = box
    ox, oy, ow, oh = other
    iw = max(0, min(x + w, ox + ow) - max(x, ox))
    ih = max(0, min(y + h, oy + oh) - max(y, oy))
    return iw * ih / float(max(1, w * h))


def _to_frame(box: np.ndarray, scale: float, width: int, height: int) -> Box:
    """Map a box from the detection image back to the original frame, clipped to it."""
    x, y, w, h = (float(v) / scale for v in box)
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1, y1 = min(width, round(x + w)), min(height, round(y + h))
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def crop_face(frame_bgr: np.ndarray, box: Box, size: int = 200) -> np.ndarray:
    """Crop ``box`` from a BGR frame and resize it to an RGB uint8 ``size x size x 3`` image."""
    import cv2

    height, width = frame_bgr.shape[:2]
    x, y, w, h = (int(v) for v in box)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {box} lies outside the {width}x{height} frame")
    face = frame_bgr[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if (x1 - x0) > size else cv2.INTER_LINEAR
    face = cv2.resize(face, (size, size), interpolation=interp)
    if face.ndim == 2:
        return cv2.cvtColor(face, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(face, cv2.COLOR_BGR2RGB)
