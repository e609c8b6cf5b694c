"""Probe a video file and decode its keyframes (one frame every ``skip``), streaming.

No Ray here. Decoding uses OpenCV's FFmpeg backend: every frame is ``grab()``-ed (demux +
decode, unavoidable for inter-coded video) but only keyframes are ``retrieve()``-d (colour
conversion + copy into a numpy array), and frames are yielded one at a time, so memory stays
bounded whatever the video length.

Failure statuses (``MediaError.status``):

- ``empty_file`` / ``unreadable`` / ``too_large``: :func:`check_file`;
- ``not_media``: the first bytes are not a known media container (e.g. text named ``.mp4``);
- ``audio_only``: a known audio container (wav, mp3, ...) or one that lists no video stream
  (e.g. ``.m4a``). Callers should ask :func:`has_video_stream` first; the reader raises this
  only if asked to decode such a file anyway. Note ``audio_only`` is a *usable* status;
- ``truncated``: a video container (valid header) that cannot be opened or yields no frame.

A decode that ends well before the container's frame count sets ``stopped_early``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from mer_ray.media import errors
from mer_ray.media.errors import MediaError

AUDIO_KINDS = frozenset({"wav", "mp3", "flac", "aac", "aiff", "ogg"})
"""Containers that hold audio only (an Ogg with Theora is reported as 'ogg-video')."""
VIDEO_KINDS = frozenset({"mp4", "mov", "matroska", "avi", "flv", "asf", "mpeg-ps", "mpeg-ts",
                         "ogg-video"})
"""Containers that usually hold video (an ISO-BMFF file may still be audio-only: .m4a)."""

_SNIFF_BYTES = 512
_MOOV_READ_LIMIT = 64 * 1024 * 1024   # a moov box larger than this is not parsed (assume video)
STOPPED_EARLY_FRACTION = 0.95          # decoded < 95 % of the header's frame count -> stopped_early


@dataclass
class VideoInfo:
    """What the container header says about the video stream."""

    width: int
    height: int
    fps: float
    frame_count: int      # from the header; may be 0 (unknown) for some containers
    duration_s: float     # frame_count / fps, 0.0 when unknown


@dataclass
class Keyframe:
    """One decoded keyframe."""

    index: int            # frame index in the video (0, skip, 2*skip, ...)
    timestamp_s: float
    image: np.ndarray     # BGR uint8, H x W x 3


def check_file(path: str, max_file_mb: float | None = None) -> int:
    """Return the file size in bytes, or raise MediaError (unreadable / empty_file / too_large)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MediaError(errors.UNREADABLE, f"no such file: {path}") from None
    except OSError as exc:
        raise MediaError(errors.UNREADABLE, f"cannot stat {path}: {exc.strerror or exc}") from None
    if not os.path.isfile(path):
        raise MediaError(errors.UNREADABLE, f"not a regular file: {path}")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise MediaError(errors.UNREADABLE, f"cannot open {path}: {exc.strerror or exc}") from None
    if st.st_size == 0:
        raise MediaError(errors.EMPTY_FILE, f"empty file (0 bytes): {path}")
    if max_file_mb is not None and st.st_size > max_file_mb * 1024 * 1024:
        raise MediaError(errors.TOO_LARGE,
                         f"file is {st.st_size / 2**20:.1f} MiB, over the {max_file_mb:g} MiB limit: {path}")
    return st.st_size


def _read_head(path: str, n: int = _SNIFF_BYTES) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise MediaError(errors.UNREADABLE, f"cannot read {path}: {exc.strerror or exc}") from None


def sniff_kind(head: bytes) -> str | None:
    """Container kind from a file's first bytes (see :func:`container_kind`)."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"             # also WebM
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg-video" if b"theora" in head else "ogg"
    if head.startswith(b"FLV"):
        return "flv"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"                  # wmv / wma
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg-ps"
    if head.startswith(b"\x47") and len(head) > 188 and head[188:189] == b"\x47":
        return "mpeg-ts"
    if head.startswith(b"ID3"):
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:
            return "aac"              # ADTS
        if head[1] & 0xE0 == 0xE0:
            return "mp3"              # MPEG audio frame sync
    return None


def container_kind(path: str) -> str | None:
    """Sniff the container from magic bytes: 'mp4', 'mov', 'matroska', 'avi', 'wav', 'mp3',
    'flac', 'ogg', ... or None when the file is not a media container we know."""
    return sniff_kind(_read_head(path))


def _iso_handlers(path: str) -> set[bytes] | None:
    """Track handler types ('vide', 'soun', ...) of an ISO-BMFF file; None if no moov box."""
    with open(path, "rb") as fh:
        size_total = os.fstat(fh.fileno()).st_size
        pos = 0
        while pos + 8 <= size_total:
            fh.seek(pos)
            header = fh.read(16)
            if len(header) < 8:
                return None
            size = int.from_bytes(header[:4], "big")
            kind = header[4:8]
            offset = 8
            if size == 1:
                if len(header) < 16:
                    return None
                size, offset = int.from_bytes(header[8:16], "big"), 16
            elif size == 0:
                size = size_total - pos
            if size < offset:
                return None               # corrupt box
            if kind == b"moov":
                if pos + size > size_total:
                    return None           # moov cut off
                if size > _MOOV_READ_LIMIT:
                    return {b"vide"}
                fh.seek(pos + offset)
                moov = fh.read(size - offset)
                handlers, i = set(), moov.find(b"hdlr")
                while i >= 0:
                    handlers.add(moov[i + 12:i + 16])
                    i = moov.find(b"hdlr", i + 4)
                return handlers
            pos += size
    return None


def has_video_stream(path: str) -> bool:
    """Cheap check (no decoding): False only when the file is known to hold no video stream.

    Audio containers (wav, mp3, flac, ...) -> False; an ISO-BMFF file (mp4/m4a/mov) whose
    header lists no video track -> False. Anything else, including a video container whose
    header is damaged or missing (truncated), -> True, so that :class:`KeyframeReader` reports
    the real error. Raises MediaError for unreadable / empty files.
    """
    check_file(path)
    return _has_video(path, container_kind(path))


def _has_video(path: str, kind: str | None) -> bool:
    if kind in AUDIO_KINDS:
        return False
    if kind in ("mp4", "mov"):
        handlers = _iso_handlers(path)
        if handlers is not None:
            return b"vide" in handlers
    return True


def has_audio_stream(path: str) -> bool | None:
    """Cheap check (no decoding): True / False when the header says, None when unknown.

    Audio containers -> True; ISO-BMFF (mp4/mov/m4a) with a readable moov -> whether a sound
    track is listed; anything else (matroska, avi, truncated mp4, ...) -> None: decode to know.
    """
    check_file(path)
    kind = container_kind(path)
    if kind in AUDIO_KINDS:
        return True
    if kind in ("mp4", "mov"):
        handlers = _iso_handlers(path)
        if handlers is not None:
            return b"soun" in handlers
    return None


class KeyframeReader:
    """Stream every ``skip_used``-th frame of a video as :class:`Keyframe` (BGR).

    Use as a context manager::

        with KeyframeReader(path, skip=10, max_keyframes=512) as reader:
            info = reader.info
            for kf in reader: ...

    ``skip_used`` is ``max(skip, ceil(frame_count / max_keyframes))`` so long videos get a
    larger stride; at most ``max_keyframes`` keyframes are yielded in any case.
    ``frames_decoded`` counts grabbed frames; ``keyframes_read`` retrieved ones.
    ``stopped_early`` is True after iteration if decoding ended below
    STOPPED_EARLY_FRACTION of the header's frame count (a damaged or cut file).
    ``decode_threads`` sets FFmpeg's decoder threads (1 in Ray workers; None = OpenCV default).
    """

    _cap = None

    def __init__(self, path: str, skip: int = 10, max_keyframes: int | None = None,
                 decode_threads: int | None = None):
        if skip < 1:
            raise ValueError(f"skip must be >= 1, got {skip}")
        if max_keyframes is not None and max_keyframes < 1:
            raise ValueError(f"max_keyframes must be >= 1, got {max_keyframes}")
        self.path = str(path)
        self.skip = skip
        self.max_keyframes = max_keyframes
        self.frames_decoded = 0
        self.keyframes_read = 0
        self.stopped_early = False
        self._pending = False             # frame 0 grabbed at open, not yet consumed
        self._open(decode_threads)

    # -- opening ------------------------------------------------------------------------
    def _open(self, decode_threads: int | None) -> None:
        import cv2

        check_file(self.path)
        kind = container_kind(self.path)
        if kind is None:
            head = _read_head(self.path, 16)
            raise MediaError(errors.NOT_MEDIA,
                             f"not a video container: unknown file signature {head[:8]!r} in {self.path}")
        if not _has_video(self.path, kind):
            raise MediaError(errors.AUDIO_ONLY, f"no video stream ({kind} file): {self.path}")
        params = [cv2.CAP_PROP_N_THREADS, int(decode_threads)] if decode_threads else []
        cap = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise MediaError(errors.TRUNCATED,
                             f"{kind} header found but the video cannot be opened "
                             f"(truncated or corrupt container): {self.path}")
        self._cap = cap
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        fps = fps if math.isfinite(fps) and fps > 0 else 0.0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        count = int(count) if math.isfinite(count) and count > 0 else 0
        self.info = VideoInfo(width, height, fps, count, count / fps if fps else 0.0)
        if width <= 0 or height <= 0 or not cap.grab():
            self.close()
            raise MediaError(errors.TRUNCATED, f"{kind} container opened but no frame decodes: {self.path}")
        self.frames_decoded = 1
        self._pending = True
        self.skip_used = self._stride()

    def _stride(self) -> int:
        if self.max_keyframes and self.info.frame_count:
            return max(self.skip, math.ceil(self.info.frame_count / self.max_keyframes))
        return self.skip

    # -- iteration ----------------------------------------------------------------------
    def _timestamp(self, index: int) -> float:
        if self.info.fps:
            return index / self.info.fps
        import cv2

        return float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0

    def __iter__(self) -> Iterator[Keyframe]:
        if self._cap is None or not self._pending:
            raise RuntimeError("a KeyframeReader can be iterated once, while open")
        self._pending = False
        cap, index = self._cap, 0
        while True:
            if index % self.skip_used == 0:
                ok, image = cap.retrieve()
                if not ok or image is None:
                    break
                self.keyframes_read += 1
                yield Keyframe(index, self._timestamp(index), image)
                if self.max_keyframes and self.keyframes_read >= self.max_keyframes:
                    return              # cap reached on purpose: not "stopped early"
            if not cap.grab():
                break
            self.frames_decoded += 1
            index += 1
        expected = self.info.frame_count
        self.stopped_early = bool(expected) and self.frames_decoded < STOPPED_EARLY_FRACTION * expected

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> "KeyframeReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def read_keyframes(path: str, skip: int = 10, max_keyframes: int | None = None) -> tuple[VideoInfo, list[Keyframe]]:
    """Convenience for tests and small clips: all keyframes in a list (not for long videos)."""
    with KeyframeReader(path, skip, max_keyframes) as reader:
        return reader.info, list(reader)
