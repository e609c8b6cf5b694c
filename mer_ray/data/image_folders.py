"""Labelled face-image folders (FER2013 / AffectNet layout) read into memory, without Ray.

``read_image_folder(root)`` finds images under class folders (names normalised by
``ingest_images.label_of``: anger->angry, fearful->fear, ...), skips and counts folders with no
project class (contempt) and files that do not decode, and returns the faces as 0..255 RGB at
one size. Used by the bundled-model recipe and ``mer-ray evaluate-images``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from mer_ray.config import EMOTION_INDEX


@dataclass
class ImageFolder:
    """Faces and labels of one labelled folder."""

    images: np.ndarray                  # (N, size, size, 3) uint8 RGB
    labels: np.ndarray                  # (N,) label index (config.EMOTIONS order)
    paths: list[str]
    skipped: Counter = field(default_factory=Counter)   # reason -> count

    def grey(self) -> np.ndarray:
        """(N, size, size, 1) float32 grey in [0, 1] (BT.601 weights, as the model does)."""
        from mer_ray.models.layers import GREY_WEIGHTS

        grey = self.images.astype(np.float32) @ np.asarray(GREY_WEIGHTS, np.float32)
        return (grey / 255.0)[..., None]


def list_labelled_images(root: str) -> tuple[list[dict], Counter]:
    """Rows (path, label) of every image under a class folder of ``root``, and a Counter of
    what was skipped (folders with no project class)."""
    from mer_ray.data.ingest_images import list_folder_images

    rows, dropped = list_folder_images(root)
    return rows, Counter({f"no project class ({name})": n for name, n in dropped.items()})


def load_faces(paths: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (M, size, size, 3) uint8 RGB, ok mask (len(paths),)) for the files that decode;
    smaller images are enlarged linearly, larger ones area-averaged, as ingest-images does."""
    import cv2

    images, ok = [], np.zeros(len(paths), bool)
    for i, path in enumerate(paths):
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            continue
        if image.shape[:2] != (size, size):
            interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
            image = cv2.resize(image, (size, size), interpolation=interp)
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        ok[i] = True
    stacked = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return stacked, ok


def read_image_folder(root: str, size: int = 48, limit_per_class: int | None = None
                      ) -> ImageFolder:
    """Every image under class folders of ``root`` as ``size`` x ``size`` RGB, in memory
    (``limit_per_class``: the first N of each class)."""
    rows, skipped = list_labelled_images(root)
    if limit_per_class is not None:
        rows = _first_per_class(rows, limit_per_class)
    paths = [r["path"] for r in rows]
    images, ok = load_faces(paths, size)
    if (~ok).any():
        skipped["unreadable image"] += int((~ok).sum())
    labels = np.asarray([EMOTION_INDEX[r["label"]] for r, good in zip(rows, ok) if good], np.int64)
    return ImageFolder(images, labels, [p for p, good in zip(paths, ok) if good], skipped)


def _first_per_class(rows: list[dict], limit: int) -> list[dict]:
    seen: Counter = Counter()
    kept = []
    for row in rows:
        seen[row["label"]] += 1
        if seen[row["label"]] <= limit:
            kept.append(row)
    return kept
