"""Face crops (200x200x3 uint8 RGB) as compact bytes for shards and for the score pipeline.

A crop is written with ``encode_crop`` (JPEG or PNG) and read with ``decode_crop`` /
``decode_crops``, which recognise the format from the blob's first bytes.
A blob of exactly ``FACE_NBYTES`` bytes without a PNG or JPEG signature is raw row-major RGB,
the layout of shards written before crops were encoded, so those still read. A crop whose three
channels are equal (FER2013's grey faces) is stored as a one-channel image; it decodes to the
same three equal channels. In-process model calls that must agree with the score job
(annotate, evaluate-images) pass their crops through ``as_stored``.

Default: JPEG at quality 95 (CROP_FORMAT, JPEG_QUALITY), measured with
``benchmarks/crop_codec.py`` (BENCHMARKS.md, "crop-codec") on the 3,589 FER2013 validation
crops and the 120 face crops of the RAVDESS audio-visual clip; the rule was PNG unless JPEG
moves FER2013 validation accuracy by at most 0.3 points and is much smaller:

    format         bytes/crop FER / video   encode / decode ms   FER accuracy (raw 0.6420)
    raw            120,000 / 120,000        -                    -
    PNG level 1     18,636 / 53,962         1.7-3 / 1-1.8        0.6420 (bit-exact)
    PNG level 3     17,805 / 51,928         3-4 / 1-2.4          0.6420 (bit-exact)
    JPEG q90         7,083 / 9,111          0.2 / 0.2-0.3        0.6428, 0.25 % changed
    JPEG q95         9,729 / 12,608         0.2 / 0.2-0.3        0.6425, 0.31 % changed

JPEG 95 moves accuracy +0.06 points and is 4.3x smaller than PNG on video crops (9.5x smaller
than raw) and about ten times faster to write. 95 rather than 90: lower pixel error (mean
1.1 vs 1.35 levels on video crops), while both are within noise on accuracy. PNG stays
available, lossless: ``encode_crop(rgb, PNG)``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mer_ray.media.constants import FACE_SIZE

FACE_SHAPE = (FACE_SIZE, FACE_SIZE, 3)
FACE_NBYTES = FACE_SIZE * FACE_SIZE * 3
"""A decoded crop's shape, and the size of a raw (unencoded) crop blob."""

PNG, JPEG, RAW = "png", "jpeg", "raw"
FORMATS = (PNG, JPEG, RAW)
CROP_FORMAT = JPEG
"""What every writer of crops uses (preprocess and ingest-images shards, score in flight)."""
JPEG_QUALITY = 95
"""cv2.IMWRITE_JPEG_QUALITY of JPEG crops."""
PNG_LEVEL = 1
"""cv2.IMWRITE_PNG_COMPRESSION of PNG crops: 1 is within 5 % of 3's size and faster."""

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"


def encode_crop(rgb: np.ndarray, fmt: str = CROP_FORMAT, level: int | None = None) -> bytes:
    """One 200x200x3 uint8 RGB crop -> bytes in ``fmt`` (png, jpeg or raw); ``level``: the
    PNG compression level or JPEG quality (None: PNG_LEVEL / JPEG_QUALITY)."""
    import cv2

    rgb = np.asarray(rgb)
    if rgb.shape != FACE_SHAPE or rgb.dtype != np.uint8:
        raise ValueError(f"a face crop must be {FACE_SIZE}x{FACE_SIZE}x3 uint8 RGB; got "
                         f"{'x'.join(map(str, rgb.shape))} {rgb.dtype}")
    if fmt == RAW:
        return np.ascontiguousarray(rgb).tobytes()
    if fmt == PNG:
        ext, params = ".png", [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL if level is None else level]
    elif fmt == JPEG:
        ext, params = ".jpg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY if level is None else level]
    else:
        raise ValueError(f"unknown crop format {fmt!r}; expected one of {', '.join(FORMATS)}")
    grey = _is_grey(rgb)
    image = rgb[..., 0] if grey else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a face crop as {fmt}")
    return buf.tobytes()


def _is_grey(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and
                np.array_equal(rgb[..., 0], rgb[..., 2]))


def crop_format(blob: bytes | memoryview) -> str:
    """png, jpeg or raw, from the blob's signature and size; ValueError when it is none."""
    head = bytes(blob[:8])
    n = len(blob)
    if head == _PNG_MAGIC:
        return PNG
    if head[:3] == _JPEG_MAGIC and (n != FACE_NBYTES or bytes(blob[-2:]) == _JPEG_END):
        return JPEG
    if n == FACE_NBYTES:
        return RAW
    raise ValueError(f"face crops must be PNG, JPEG or raw {FACE_SIZE}x{FACE_SIZE}x3 uint8 "
                     f"({FACE_NBYTES} bytes each); got one of {n} bytes that is none of them")


def decode_crop(blob: bytes | memoryview) -> np.ndarray:
    """One blob (PNG, JPEG or raw) -> a 200x200x3 uint8 RGB crop."""
    fmt = crop_format(blob)
    if fmt == RAW:
        return np.frombuffer(blob, np.uint8).reshape(FACE_SHAPE)
    import cv2

    image = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        if len(blob) == FACE_NBYTES:         # raw pixels that happen to start like a signature
            return np.frombuffer(blob, np.uint8).reshape(FACE_SHAPE)
        raise ValueError(f"a face crop of {len(blob)} bytes looks like {fmt} but does not decode")
    if image.shape != FACE_SHAPE:
        raise ValueError(f"a face crop decodes to {'x'.join(map(str, image.shape))}, not "
                         f"{FACE_SIZE}x{FACE_SIZE}x3")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_crops(blobs: Sequence[bytes | memoryview]) -> np.ndarray:
    """Blobs (any mix of formats) -> (N, 200, 200, 3) uint8 RGB."""
    out = np.empty((len(blobs), *FACE_SHAPE), np.uint8)
    for i, blob in enumerate(blobs):
        out[i] = decode_crop(blob)
    return out


def as_stored(crops: np.ndarray, fmt: str = CROP_FORMAT) -> np.ndarray:
    """(N, 200, 200, 3) crops as a reader of stored or in-flight crops gets them back, for
    in-process model calls that must see what the score job's visual stage sees."""
    return decode_crops([encode_crop(c, fmt) for c in crops])
