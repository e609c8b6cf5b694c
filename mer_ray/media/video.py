"""Probe a video file and decode its keyframes (one frame every ``skip``), streaming.

No Ray here. Decoding uses PyAV (FFmpeg): frames that are neither keyframes nor referenced
by other frames are skipped by the decoder, only keyframes are converted to BGR numpy arrays,
and frames are yielded one at a time, so memory stays bounded whatever the video length.

Failure statuses (``MediaError.status``):

- ``empty_file`` / ``unreadable`` / ``too_large``: :func:`check_file`;
- ``not_media``: the first bytes are not a known media container (e.g. text named ``.mp4``);
- ``audio_only``: a known audio container (wav, mp3, ...) or one that lists no video stream
  (e.g. ``.m4a``). Callers should ask :func:`has_video_stream` first; the reader raises this
  only if asked to decode such a file anyway. Note ``audio_only`` is a *usable* status;
- ``truncated``: a video container (valid header) that cannot be opened or yields no frame.

A decode that ends well before the stream's frame count sets ``stopped_early`` (a damaged or
cut file; callers report it as ``partial``), unless the count was only an estimate and the
decoder reported no error (see :attr:`KeyframeReader.stopped_early`).
"""
from __future__ import annotations

import itertools
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
STOPPED_EARLY_FRACTION = 0.9           # decoded < 90 % of the header's frame count -> stopped_early


@dataclass
class VideoInfo:
    """What the container header says about the video stream."""

    width: int
    height: int
    fps: float
    frame_count: int      # from the header; may be 0 (unknown) for some containers
    duration_s: float     # frame_count / fps, 0.0 when unknown
    count_stated: bool = True   # frame_count is the video stream's own (frames or duration),
                                # not an estimate from the container's duration


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
    listed = _iso_lists_track(path, kind, b"vide")
    return True if listed is None else listed


def _iso_lists_track(path: str, kind: str | None, handler: bytes) -> bool | None:
    """Whether an ISO-BMFF file's header lists a track of ``handler`` type (b"vide", b"soun");
    None when the file is no ISO-BMFF or its moov is unreadable."""
    if kind in ("mp4", "mov"):
        handlers = _iso_handlers(path)
        if handlers is not None:
            return handler in handlers
    return None


def has_audio_stream(path: str) -> bool | None:
    """Cheap check (no decoding): True / False when the header says, None when unknown.

    Audio containers -> True; ISO-BMFF (mp4/mov/m4a) with a readable moov -> whether a sound
    track is listed; anything else (matroska, avi, truncated mp4, ...) -> None: decode to know.
    """
    check_file(path)
    kind = container_kind(path)
    if kind in AUDIO_KINDS:
        return True
    return _iso_lists_track(path, kind, b"soun")


class KeyframeReader:
    """Stream every ``skip_used``-th frame of a video as :class:`Keyframe` (BGR).

    Use as a context manager::

        with KeyframeReader(path, skip=10, max_keyframes=512) as reader:
            info = reader.info
            for kf in reader: ...

    Decoding uses PyAV (FFmpeg's libavcodec). A packet whose frame is not a keyframe is
    decoded with ``skip_frame=NONREF``: if no other frame refers to it (e.g. most B-frames)
    the decoder drops it unseen; reference frames are always decoded, so every keyframe is
    bit-exact with a full decode at a fraction of the cost. Only keyframes are converted to
    BGR. Frames stream one at a time, so memory is bounded for any length. A frame's index
    comes from its timestamp (``round((pts - start) * time_base * fps)``); a stream without
    timestamps or frame rate is decoded in full and frames are counted instead.

    ``skip_used`` is ``max(skip, ceil(frame_count / max_keyframes))`` so long videos get a
    larger stride; at most ``max_keyframes`` keyframes are yielded in any case.
    ``frames_decoded`` counts frames the decoder produced, ``frames_seen`` the frame index
    reached (+1), ``keyframes_read`` the keyframes yielded, ``decode_error`` the decoder's
    error that ended the stream (None when it ended cleanly). ``stopped_early`` is True after
    iteration if the stream ended below STOPPED_EARLY_FRACTION of the header's frame count
    and either the decoder failed or the count is the video stream's own: a damaged or cut
    file. A count estimated from the container's duration (Matroska without stream
    durations, whose audio may outlast the video) with a clean end is not flagged, nor is a
    stop at ``max_keyframes``. ``decode_threads``: FFmpeg slice threads (None = FFmpeg's
    default). ``start_s`` / ``end_s``: only the keyframes whose timestamp (in whole ms) is in
    ``[start_s, end_s)``, after a seek to the keyframe before ``start_s``; indices and
    timestamps stay those of the whole video (one chunk of a long video; ``stopped_early`` is
    only judged for a range that runs to the end).
    """

    _container = None

    def __init__(self, path: str, skip: int = 10, max_keyframes: int | None = None,
                 decode_threads: int | None = None, start_s: float | None = None,
                 end_s: float | None = None):
        if skip < 1:
            raise ValueError(f"skip must be >= 1, got {skip}")
        if max_keyframes is not None and max_keyframes < 1:
            raise ValueError(f"max_keyframes must be >= 1, got {max_keyframes}")
        self.path = str(path)
        self.skip = skip
        self.max_keyframes = max_keyframes
        self.frames_decoded = 0
        self.frames_seen = 0
        self.keyframes_read = 0
        self.stopped_early = False
        self.decode_error: str | None = None
        self._iterated = False
        self._start_ms = None if not start_s else round(start_s * 1000)
        self._end_ms = None if end_s is None else round(end_s * 1000)
        self._open(decode_threads)

    # -- opening ------------------------------------------------------------------------
    def _open(self, decode_threads: int | None) -> None:
        import av

        check_file(self.path)
        kind = container_kind(self.path)
        if kind is None:
            head = _read_head(self.path, 16)
            raise MediaError(errors.NOT_MEDIA,
                             f"not a video container: unknown file signature {head[:8]!r} in {self.path}")
        if not _has_video(self.path, kind):
            raise MediaError(errors.AUDIO_ONLY, f"no video stream ({kind} file): {self.path}")
        try:
            self._container = av.open(self.path, metadata_errors="ignore")
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise MediaError(errors.TRUNCATED,
                             f"{kind} header found but the video cannot be opened "
                             f"(truncated or corrupt container: {exc}): {self.path}") from None
        if not self._container.streams.video:
            self.close()
            raise MediaError(errors.AUDIO_ONLY, f"no video stream ({kind} file): {self.path}")
        stream = self._stream = self._container.streams.video[0]
        stream.thread_type = "SLICE"      # frame threads would apply skip_frame to the wrong packet
        if decode_threads:
            stream.thread_count = int(decode_threads)
        self.info = _stream_info(stream, self._container.duration)
        if self.info.width <= 0 or self.info.height <= 0:
            self.close()
            raise MediaError(errors.TRUNCATED, f"{kind} container opened but the video stream "
                                               f"has no frame size or codec (corrupt header): "
                                               f"{self.path}")
        self.skip_used = self._stride()
        self._start = stream.start_time or 0
        self._index_scale = (float(stream.time_base) * self.info.fps
                             if stream.time_base and self.info.fps else 0.0)
        if self._start_ms and self._index_scale:
            target = self._start + int(self._start_ms / 1000 / float(stream.time_base))
            self._container.seek(target, stream=stream, backward=True)   # keyframe before
        self._decoded = self._frames()
        self._first = next(self._decoded, None)      # a header with no decodable frame is
        if self._first is None:                      # a cut or corrupt file
            self.close()
            raise MediaError(errors.TRUNCATED, f"{kind} container opened but no frame decodes: {self.path}")
        self._turns = _quarter_turns(self._first[1])  # display rotation (phone videos)
        if self._turns % 2:
            self.info.width, self.info.height = self.info.height, self.info.width

    def _stride(self) -> int:
        """Every ``skip``-th frame, widened so that at most ``max_keyframes`` fall in what is
        read: the whole video, or the ``[start_s, end_s)`` range of a chunk (so a long video's
        chunks each keep their share instead of one cap spread over hours)."""
        frames = self.info.frame_count
        if self._end_ms is not None and self.info.fps:
            span_s = (self._end_ms - (self._start_ms or 0)) / 1000
            frames = min(frames or math.inf, math.ceil(span_s * self.info.fps))
        if self.max_keyframes and frames and math.isfinite(frames):
            return max(self.skip, math.ceil(frames / self.max_keyframes))
        return self.skip

    # -- iteration ----------------------------------------------------------------------
    def _index_of(self, pts: int | None) -> int | None:
        if pts is None or not self._index_scale:
            return None
        return round((pts - self._start) * self._index_scale)

    def _frames(self) -> Iterator[tuple[int, object]]:
        """(index, frame) for every frame the decoder outputs, non-keyframe non-reference
        frames skipped where timestamps allow it."""
        import av

        codec, counted = self._stream.codec_context, 0
        try:
            for packet in self._container.demux(self._stream):
                wanted = self._index_of(packet.pts)
                skip = wanted is not None and wanted % self.skip_used != 0
                codec.skip_frame = "NONREF" if skip else "DEFAULT"
                for frame in packet.decode():
                    index = self._index_of(frame.pts)
                    yield (counted if index is None else index), frame
                    counted += 1
        except (av.FFmpegError, EOFError) as exc:
            self.decode_error = str(exc) or type(exc).__name__
            return                        # damaged data: what decoded so far is kept

    def __iter__(self) -> Iterator[Keyframe]:
        if self._container is None or self._iterated:
            raise RuntimeError("a KeyframeReader can be iterated once, while open")
        self._iterated = True
        for index, frame in itertools.chain([self._first], self._decoded):
            self.frames_decoded += 1
            self.frames_seen = max(self.frames_seen, index + 1)
            if index % self.skip_used:
                continue
            where = self._in_range(index, frame)
            if where < 0:
                continue
            if where > 0:
                return                    # past the range: not "stopped early"
            self.keyframes_read += 1
            image = frame.to_ndarray(format="bgr24")
            if self._turns:                           # upright, as OpenCV and players show it
                image = np.ascontiguousarray(np.rot90(image, self._turns))
            yield Keyframe(index, self._timestamp(index, frame), image)
            if self.max_keyframes and self.keyframes_read >= self.max_keyframes:
                return                    # cap reached on purpose: not "stopped early"
        expected = self.info.frame_count
        short = bool(expected) and self.frames_seen < STOPPED_EARLY_FRACTION * expected
        self.stopped_early = short and (self.decode_error is not None or self.info.count_stated)

    def _in_range(self, index: int, frame) -> int:
        """-1 before ``start_s``, 0 inside the range, 1 at or after ``end_s``."""
        if self._start_ms is None and self._end_ms is None:
            return 0
        ms = round(self._timestamp(index, frame) * 1000)
        if self._start_ms is not None and ms < self._start_ms:
            return -1
        return 1 if self._end_ms is not None and ms >= self._end_ms else 0

    def _timestamp(self, index: int, frame) -> float:
        if self.info.fps:
            return index / self.info.fps
        return float(frame.time or 0.0)

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        if self._container is not None:
            self._decoded = self._first = None
            self._container.close()
            self._container = None

    def __enter__(self) -> "KeyframeReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that make a frame upright (its display matrix)."""
    rotation = getattr(frame, "rotation", 0) or 0
    return round(rotation / 90) % 4


def _stream_info(stream, container_duration: int | None = None) -> VideoInfo:
    """Size, frame rate and frame count from a PyAV video stream's header. Containers that do
    not store a frame count (Matroska / WebM) get duration x fps, from the stream's duration or
    else the container's (``container_duration``, in microseconds), as OpenCV estimates it."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    fps = fps if math.isfinite(fps) and fps > 0 else 0.0
    count = int(stream.frames or 0)
    if not count and fps and stream.duration and stream.time_base:
        count = round(float(stream.duration * stream.time_base) * fps)
    stated = bool(count)
    if not count and fps and container_duration:
        count = round(container_duration / 1_000_000 * fps)
    ctx = stream.codec_context        # None when the stream's codec is unknown (damaged header)
    width, height = (int(ctx.width or 0), int(ctx.height or 0)) if ctx is not None else (0, 0)
    return VideoInfo(width, height, fps, count,
                     count / fps if fps else 0.0, count_stated=stated)


def read_keyframes(path: str, skip: int = 10, max_keyframes: int | None = None) -> tuple[VideoInfo, list[Keyframe]]:
    """Convenience for tests and small clips: all keyframes in a list (not for long videos)."""
    with KeyframeReader(path, skip, max_keyframes) as reader:
        return reader.info, list(reader)


def probe_duration(path: str) -> float | None:
    """The video stream's duration from the header (no frame decoded); None when the file
    has no video stream or cannot be opened (extraction then reports why)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                return None
            info = _stream_info(container.streams.video[0], container.duration)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return None
    return info.duration_s or None
