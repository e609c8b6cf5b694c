"""Everything the pipeline takes from one input file, in one pass, without Ray.

``ClipExtractor.extract(path)`` decodes keyframes (every ``skip``-th frame), crops the largest
face of each (``face_mode`` all: every face, up to ``max_faces``, linked into tracks by
media/tracks.py), decodes the audio track and computes each audio recipe's vector
(media/audio_recipes.py: the 162-D thesis features, plus augmented copies for training, and
the rich vector). It never raises: a failure becomes ``status`` + ``error`` in the result.
A track with too little speech (media/voice_activity.py: silence, a click) gets no audio
vector, so it casts no audio vote; a decode that stops early on a damaged file is ``partial``.
With ``segment_s`` set (score --segments) the whole track is decoded, whatever
``max_audio_s`` says, and kept as ``Extraction.audio`` for the per-window features; the clip's
own vector still covers the first ``max_audio_s`` seconds. Given a ``Span`` (one chunk of a
long video, score/chunks.py) it decodes only that range: the keyframes in ``[start_s, end_s)``
and the audio in ``[audio_start_s, audio_end_s)``, kept as ``Extraction.audio`` with no clip
vector and no speech check (the chunks' merge judges speech over the whole track). Both the
preprocess job and the score job call it.
"""
from __future__ import annotations

import functools
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from mer_ray.media import errors as st
from mer_ray.media.audio_recipes import AUDIO_RECIPES, RECIPE_COLUMNS, RICH_COLUMN, AudioRecipe
from mer_ray.media.constants import SAMPLE_RATE
from mer_ray.media.errors import MediaError
from mer_ray.media.options import ExtractOptions


@dataclass(frozen=True)
class Span:
    """One time range of a video to extract (seconds): keyframes in ``[start_s, end_s)``,
    audio in ``[audio_start_s, audio_end_s)`` on the whole track's sample grid."""

    start_s: float
    end_s: float
    audio_start_s: float
    audio_end_s: float


@dataclass
class Extraction:
    """Media part of a clips row, plus one dict per face crop (keyframe order; with
    ``face_mode`` all, several per keyframe, left to right): ``frame_index``, ``timestamp_s``,
    ``face``, ``box``, ``keyframe`` (position in ``keyframe_times``) and ``track_id``. ``audio``:
    the whole decoded track (mono, ``audio_rate`` Hz), kept only with ``segment_s``."""

    clip: dict
    frames: list[dict] = field(default_factory=list)
    keyframe_times: list[tuple[int, float]] = field(default_factory=list)
    audio: np.ndarray | None = None
    audio_rate: int | None = None


def _empty_clip() -> dict:
    return {"duration_s": None, "fps": None, "width": None, "height": None, "frames_decoded": 0,
            "skip_used": None, "keyframes": 0, "faces_found": 0, "no_face_frames": 0,
            "has_audio": False, "audio_seconds": None, "audio_truncated": False,
            "speech_fraction": None,
            **{column: None for column in RECIPE_COLUMNS},
            "status": st.OK, "error": None,
            "t_decode_s": 0.0, "t_faces_s": 0.0, "t_audio_s": 0.0, "t_total_s": 0.0}


def audio_recipes(opts: ExtractOptions) -> list[AudioRecipe]:
    """The recipes whose vectors a clip gets: those of ``audio_columns`` if given, else every
    one, the rich one only with ``rich_audio``."""
    if opts.audio_columns is not None:
        return [r for r in AUDIO_RECIPES.values() if r.column in opts.audio_columns]
    return [r for r in AUDIO_RECIPES.values() if opts.rich_audio or r.column != RICH_COLUMN]


def failed_extraction(status: str, reason: str) -> Extraction:
    """The result for an input that could not be opened at all (e.g. a missing remote object)."""
    clip = _empty_clip()
    clip["status"], clip["error"] = status, reason
    return Extraction(clip=clip)


class ClipExtractor:
    """Build once per worker (loads the face detector); call ``extract`` per file."""

    def __init__(self, opts: ExtractOptions | None = None):
        from mer_ray.media.faces import FaceDetector

        self.opts = opts or ExtractOptions()
        self.detector = FaceDetector(detect_width=self.opts.detect_width) if self.opts.faces else None

    def extract(self, path: str, name: str | None = None, span: Span | None = None) -> Extraction:
        """All media of one file (of ``span`` only, when given); failures are reported in
        ``clip['status']`` / ``['error']``. ``name``: what the input is called when ``path``
        is a temporary copy (seeds the audio augmentation, so results do not depend on where
        the file was read from)."""
        from mer_ray.media.video import check_file, has_video_stream

        start = time.perf_counter()
        result = Extraction(clip=_empty_clip())
        clip = result.clip
        try:
            check_file(path, self.opts.max_file_mb)
            has_video = has_video_stream(path)
            video_err = self._video(path, result, span) if has_video else None
            partial = video_err is not None and video_err.status == st.PARTIAL
            audio = self._audio if span is None else functools.partial(self._audio_span, span=span)
            audio_err = (audio(path, result, name or path)
                         if self.opts.audio and not partial else None)
            clip["status"], clip["error"] = _decide_status(has_video, clip, video_err, audio_err,
                                                           self.opts)
        except MediaError as err:
            clip["status"], clip["error"] = err.status, err.reason
        except Exception as err:  # noqa: BLE001 - one bad file must never kill a job
            clip["status"], clip["error"] = st.ERROR, f"{type(err).__name__}: {err}"
        clip["t_total_s"] = time.perf_counter() - start
        return result

    def _video(self, path: str, result: Extraction, span: Span | None = None
               ) -> MediaError | None:
        """Keyframes + face crops into ``result``; the error if the video can't be read."""
        from mer_ray.media.faces import crop_face
        from mer_ray.media.video import KeyframeReader

        clip, t_faces = result.clip, 0.0
        find = self._face_finder()
        t0 = time.perf_counter()
        try:
            with KeyframeReader(path, self.opts.skip, self.opts.max_keyframes,
                                self.opts.decode_threads,
                                start_s=None if span is None else span.start_s,
                                end_s=None if span is None else span.end_s) as reader:
                info = reader.info
                for kf in reader:
                    k = len(result.keyframe_times)
                    result.keyframe_times.append((kf.index, kf.timestamp_s))
                    if find is None:
                        continue
                    t1 = time.perf_counter()
                    boxes = find(kf.image)
                    clip["no_face_frames"] += not boxes
                    result.frames.extend({"frame_index": kf.index, "timestamp_s": kf.timestamp_s,
                                          "face": crop_face(kf.image, box), "box": list(box),
                                          "keyframe": k, "track_id": 0} for box in boxes)
                    t_faces += time.perf_counter() - t1
                if self.opts.face_mode == "all":
                    result.frames = _tracked(result.frames, len(result.keyframe_times),
                                             [t for _, t in result.keyframe_times])
                clip.update(duration_s=info.duration_s, fps=info.fps, width=info.width,
                            height=info.height, frames_decoded=reader.frames_decoded,
                            skip_used=reader.skip_used, keyframes=len(result.keyframe_times),
                            faces_found=len({f["keyframe"] for f in result.frames}))
                if reader.stopped_early:
                    return MediaError(st.PARTIAL, f"decoding stopped at {reader.frames_seen} of "
                                                  f"~{info.frame_count} frames (damaged or cut file)")
        except MediaError as err:
            return err
        finally:
            clip["t_decode_s"] = time.perf_counter() - t0 - t_faces
            clip["t_faces_s"] = t_faces
        return None

    def _face_finder(self):
        """keyframe image -> its face boxes: the largest (FaceTracker) or every one, per
        ``face_mode``; None without a detector."""
        from mer_ray.media.faces import FaceTracker

        if self.detector is None:
            return None
        if self.opts.face_mode == "all":
            return lambda image: self.detector.detect_faces(image, self.opts.max_faces)
        track = FaceTracker(self.detector, self.opts.redetect_every)
        return lambda image: [box] if (box := track(image)) is not None else []

    def _audio(self, path: str, result: Extraction, name: str) -> MediaError | None:
        """Decode the track and compute features into ``result.clip``; the error if it can't."""
        from mer_ray.media.audio import decode_audio

        clip = result.clip
        t0 = time.perf_counter()
        segments = self.opts.segment_s is not None
        try:
            track = decode_audio(path, SAMPLE_RATE, None if segments else self.opts.max_audio_s)
            if segments:
                result.audio, result.audio_rate = track.samples, track.sample_rate
            y = track.samples[:_samples(self.opts.max_audio_s, track.sample_rate)]
            clip.update(has_audio=True, audio_seconds=len(track.samples) / track.sample_rate,
                        audio_truncated=bool(track.truncated)
                        or len(track.samples) - len(y) > 0.05 * track.sample_rate)
            if clip["duration_s"] is None:
                clip["duration_s"] = clip["audio_seconds"]
            if track.stopped_early:
                return MediaError(st.PARTIAL, f"audio decoding stopped at {track.seconds:.2f} of "
                                              f"{track.stated_seconds:.2f} s (damaged or cut file)")
            if not _voiced(y, track.sample_rate, clip):
                return None
            for recipe in audio_recipes(self.opts):
                clip[recipe.column] = recipe.features(y, track.sample_rate).tolist()
                if recipe.aug_column is not None and self.opts.audio_aug_copies > 0:
                    seed = zlib.crc32(name.encode()) ^ self.opts.seed
                    aug = recipe.augmented(y, track.sample_rate, self.opts.audio_aug_copies, seed)
                    clip[recipe.aug_column] = np.asarray(aug).tolist()
        except MediaError as err:
            return err
        finally:
            clip["t_audio_s"] = time.perf_counter() - t0
        return None


    def _audio_span(self, path: str, result: Extraction, name: str, span: Span
                    ) -> MediaError | None:
        """Decode ``span``'s audio range into ``result.audio`` (no clip vector, no speech
        check); the error if it can't."""
        from mer_ray.media.audio import decode_audio_range

        clip = result.clip
        t0 = time.perf_counter()
        try:
            track = decode_audio_range(path, span.audio_start_s, span.audio_end_s, SAMPLE_RATE)
            result.audio, result.audio_rate = track.samples, track.sample_rate
            clip.update(has_audio=True, audio_seconds=track.seconds)
            if clip["duration_s"] is None:
                clip["duration_s"] = track.source_seconds
        except MediaError as err:
            return err
        finally:
            clip["t_audio_s"] = time.perf_counter() - t0
        return None


def _samples(seconds: float | None, sr: int) -> int | None:
    return None if seconds is None else int(round(seconds * sr))


def _tracked(frames: list[dict], n_keyframes: int, timestamps: list[float]) -> list[dict]:
    """``frames`` (every face of every keyframe) with a ``track_id`` each (media.tracks);
    duplicate boxes of one face are dropped."""
    from mer_ray.media.tracks import link_tracks

    per_kf: list[list[dict]] = [[] for _ in range(n_keyframes)]
    for f in frames:
        per_kf[f["keyframe"]].append(f)
    ids = link_tracks([[tuple(f["box"]) for f in fs] for fs in per_kf], timestamps)
    out = []
    for fs, tids in zip(per_kf, ids):
        out.extend({**f, "track_id": tid} for f, tid in zip(fs, tids) if tid is not None)
    return out


def _voiced(y: np.ndarray, sr: int, clip: dict) -> bool:
    """Record the track's speech fraction; False (with a note) when it holds too little speech
    to vote on (voice_activity.enough_speech): silence gets no audio vector."""
    from mer_ray.media.voice_activity import enough_speech, speech_mask

    mask = speech_mask(y, sr)
    clip["speech_fraction"] = float(mask.mean()) if mask.size else 0.0
    if enough_speech(mask):
        return True
    from mer_ray.media.voice_activity import FRAME_S, MIN_SPEECH_FRACTION, MIN_SPEECH_S

    speech_s = float(mask.sum()) * FRAME_S
    clip["error"] = _join(clip["error"], f"too little speech to vote on ({speech_s:.2f} s, "
                                         f"{clip['speech_fraction']:.0%} of the track; needs "
                                         f"{MIN_SPEECH_S:g} s and {MIN_SPEECH_FRACTION:.0%}): "
                                         "no audio vote")
    return False


def _decide_status(has_video: bool, clip: dict, video_err: MediaError | None,
                   audio_err: MediaError | None, opts: ExtractOptions) -> tuple[str, str | None]:
    """One status for the file from what each path found."""
    note = clip["error"]
    audio_missing = audio_err is not None and audio_err.status == st.NO_AUDIO
    if video_err is not None and video_err.status == st.PARTIAL:
        return st.PARTIAL, video_err.reason     # not scored as whole, whatever the audio gave
    if video_err is not None:
        if audio_err is None and clip["has_audio"] and video_err.status in (st.NOT_MEDIA, st.AUDIO_ONLY):
            return st.AUDIO_ONLY, None          # an audio file the sniffer did not recognise
        audio_note = "the audio track decoded fine" if audio_err is None and clip["has_audio"] else None
        return video_err.status, _join(video_err.reason, audio_note)
    if audio_err is not None and audio_err.status == st.PARTIAL:
        return st.PARTIAL, audio_err.reason
    if audio_err is not None and not audio_missing:
        return audio_err.status, f"audio: {audio_err.reason}"
    if not has_video:
        return (st.AUDIO_ONLY, note) if clip["has_audio"] else (st.NOT_MEDIA, "no video or audio stream")
    if opts.faces and clip["faces_found"] == 0:
        reason = f"no face in any of {clip['keyframes']} keyframes"
        return st.NO_FACE, _join(reason, audio_missing and "no audio track", note)
    if audio_missing and opts.audio:
        return st.NO_AUDIO, _join("no audio track", note)
    return st.OK, note


def _join(*parts: object) -> str | None:
    text = "; ".join(str(p) for p in parts if p)
    return text or None
