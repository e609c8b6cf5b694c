"""`annotate`: one video -> the same video with face boxes, per-keyframe emotions and the fused
emotion drawn on it, audio kept (the thesis's real-time display, Fig. 4.28). No Ray.

Uses the same extraction (ClipExtractor), models (bundle predictors) and fusion (Alg. 3.9) as
the score job. Each keyframe's box and label stay on screen until the next keyframe.

From a score output made with ``--segments`` (:func:`annotate_segments`) nothing is scored
again: the banner shows the current segment's fused label per face track and its modality,
and each face of the timeline (``--timeline``) gets a box and its track's label.
"""
from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mer_ray.config import EMOTIONS, AnnotateConfig
from mer_ray.media import errors as st
from mer_ray.media.errors import MediaError
from mer_ray.score.fusion import FusionResult, FusionWeights, fuse
from mer_ray.score.plan import check_audio_bundle, run_extract_options

MODE_TEXT = {"audio_visual": "face+voice", "visual_only": "face only",
             "audio_only": "voice only", "none": "no signal"}
"""How a fusion mode reads on screen."""

COLOURS = {  # RGB per class
    "angry": (220, 40, 40), "disgust": (120, 160, 30), "fear": (150, 60, 200),
    "happy": (250, 200, 0), "neutral": (200, 200, 200), "sad": (40, 110, 230),
    "surprise": (250, 120, 20),
}


@dataclass
class Mark:
    """What to draw from one keyframe on until the next."""

    timestamp_s: float
    box: tuple[int, int, int, int] | None
    emotion: str | None
    confidence: float | None


@dataclass
class AnnotateResult:
    out: str
    status: str
    fusion_mode: str
    emotion: str | None
    arousal: str | None
    confidence: float | None
    keyframes: int
    faces: int
    has_audio: bool
    seconds: float
    marks: list[Mark] = field(default_factory=list)


def predict_video(cfg: AnnotateConfig) -> tuple[dict, list[Mark], FusionResult]:
    """Extract, predict and fuse one video: (clip info, keyframe marks, fused result)."""
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.models.bundle import AudioPredictor, VisualPredictor

    if cfg.visual is None and cfg.audio is None:
        raise ValueError("annotate needs --visual and/or --audio")
    audio_model = None
    if cfg.audio is not None:
        audio_model = AudioPredictor(cfg.audio)
        check_audio_bundle(audio_model.info, cfg.audio)
    column = audio_model.info.feature_column if audio_model else None
    opts = run_extract_options(cfg.extract, faces=cfg.visual is not None, audio_column=column)
    ext = ClipExtractor(opts).extract(cfg.video)
    clip = ext.clip
    if clip["status"] in st.FAILED_STATUSES or clip["status"] == st.AUDIO_ONLY:
        raise MediaError(clip["status"], clip["error"] or f"{cfg.video} has no video stream")
    face_probs = np.zeros((0, len(EMOTIONS)), np.float32)
    if ext.frames and cfg.visual is not None:
        from mer_ray.media.crop_codec import as_stored

        # the pixels score's visual stage gets (crops travel encoded), so the labels match
        faces = as_stored(np.stack([f["face"] for f in ext.frames]))
        face_probs = VisualPredictor(cfg.visual).predict(faces)
    audio_probs = None
    if column is not None and clip.get(column) is not None:
        audio_probs = audio_model.predict(np.asarray([clip[column]], np.float32))[0]
    result = fuse(face_probs, audio_probs, FusionWeights(cfg.w_visual, cfg.w_audio))
    by_index = {f["frame_index"]: (tuple(f["box"]), p) for f, p in zip(ext.frames, face_probs)}
    marks = []
    for index, ts in ext.keyframe_times:
        box, probs = by_index.get(index, (None, None))
        marks.append(Mark(float(ts), box, None if probs is None else EMOTIONS[int(np.argmax(probs))],
                          None if probs is None else float(np.max(probs))))
    return clip, marks, result


def fused_caption(result: FusionResult) -> list[str]:
    """Banner lines: the fused label with its arousal, then each path's own label."""
    if result.emotion is None:
        return ["no face and no audio: no emotion"]
    lines = [f"{result.emotion} ({result.arousal} arousal) {result.confidence:.2f} "
             f"[{MODE_TEXT.get(result.mode, result.mode)}]"]
    paths = [f"{name} {EMOTIONS[int(np.argmax(p))]} {float(np.max(p)):.2f}"
             for name, p in (("visual", result.visual_probs), ("audio", result.audio_probs))
             if p is not None]
    return lines + ["  ".join(paths)]


def mark_at(marks: list[Mark], times: list[float], t: float) -> Mark | None:
    """The last keyframe mark at or before ``t``."""
    i = bisect.bisect_right(times, t + 1e-6) - 1
    return marks[i] if i >= 0 else None


LABEL_BG = (24, 24, 24)
"""RGB fill behind every label: white text on it reads on any face or background."""
LABEL_FG = (255, 255, 255)


def draw_label(img: np.ndarray, text: str, x: int, y: int, scale: float, thick: int,
               swatch: tuple[int, int, int] | None = None) -> tuple[int, int, int, int]:
    """Draw ``text`` in white on a filled dark rectangle with its top-left corner at (x, y),
    moved inside the image where it would stick out; ``swatch``: a square of that colour
    before the text (the emotion's box colour). Returns the rectangle (x0, y0, x1, y1)."""
    import cv2

    h, w = img.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    text_thick = max(1, thick - 1)
    (tw, th), base = cv2.getTextSize(text, font, scale, text_thick)
    pad = max(3, int(round(4 * scale)))
    sw = th + 2 if swatch is not None else 0
    box_w, box_h = tw + 2 * pad + (sw + pad if sw else 0), th + base + 2 * pad
    x0 = int(min(max(0, x), max(0, w - box_w)))
    y0 = int(min(max(0, y), max(0, h - box_h)))
    x1, y1 = min(w - 1, x0 + box_w), min(h - 1, y0 + box_h)
    cv2.rectangle(img, (x0, y0), (x1, y1), LABEL_BG, cv2.FILLED)
    tx = x0 + pad
    if sw:
        cv2.rectangle(img, (tx, y0 + pad), (tx + sw - 1, y0 + pad + sw - 1), swatch, cv2.FILLED)
        tx += sw + pad
    cv2.putText(img, text, (tx, y0 + pad + th), font, scale, LABEL_FG, text_thick, cv2.LINE_AA)
    return x0, y0, x1, y1


def label_height(scale: float, thick: int) -> int:
    """The height of a ``draw_label`` rectangle at this scale."""
    import cv2

    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thick - 1))
    return th + base + 2 * max(3, int(round(4 * scale)))


def _style(img: np.ndarray) -> tuple[float, int]:
    """Label scale and line thickness for a frame of this width."""
    scale = max(0.4, img.shape[1] / 900)
    return scale, max(2, int(round(scale * 2.5)))


def _caption_layout(caption: list[str], scale: float, thick: int, h: int
                    ) -> tuple[list[float], list[int], int]:
    """Scales and heights of the caption lines, and the top of the caption block."""
    scales = [scale * (1.0 if i == 0 else 0.8) for i in range(len(caption))]
    heights = [label_height(sc, thick) + 2 for sc in scales]
    return scales, heights, h - 4 - sum(heights)


def _fit(text: str, scale: float, thick: int, width: int) -> float:
    """``scale``, made smaller (down to half) until ``text``'s label fits ``width`` pixels."""
    import cv2

    for _ in range(6):
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thick - 1))
        if tw + 2 * max(3, int(round(4 * scale))) <= width:
            break
        scale *= 0.88
    return scale


def _draw_caption(img: np.ndarray, caption: list[str], scale: float, thick: int) -> None:
    scales, heights, y = _caption_layout(caption, scale, thick, img.shape[0])
    for text, line_scale, height in zip(caption, scales, heights):
        draw_label(img, text, 4, y, _fit(text, line_scale, thick, img.shape[1] - 8), thick)
        y += height


def _draw_face(img: np.ndarray, box: tuple[int, int, int, int], text: str,
               colour: tuple[int, int, int], scale: float, thick: int, caption_top: int) -> None:
    """A face box and its label: above the box, else below it (clear of the caption), else
    inside its top edge."""
    import cv2

    x, y, bw, bh = box
    cv2.rectangle(img, (x, y), (x + bw, y + bh), colour, thick)
    lh = label_height(scale, thick)
    above, below = y - lh - thick // 2, y + bh + thick
    if above >= 0:
        top = above
    elif below + lh <= caption_top:
        top = below
    else:
        top = y + thick
    draw_label(img, text, x - thick // 2, top, scale, thick, swatch=colour)


def draw_overlay(frame_rgb: np.ndarray, mark: Mark | None, caption: list[str]) -> np.ndarray:
    """A copy of ``frame_rgb`` with the mark's box + label and the caption lines drawn on it.
    Every label is white text on a filled dark rectangle, so it reads on any face or scene:
    the caption (fused emotion, then each path's) at the bottom left like subtitles, the face's
    label just above its box (below it, or inside its top edge, when there is no room or the
    caption is there), "no face" at the top left."""
    img = np.ascontiguousarray(frame_rgb, dtype=np.uint8).copy()
    scale, thick = _style(img)
    caption_top = _caption_layout(caption, scale, thick, img.shape[0])[2]
    if mark is not None and mark.box is not None:
        colour = COLOURS.get(mark.emotion or "", (255, 255, 255))
        _draw_face(img, mark.box, f"{mark.emotion} {mark.confidence:.2f}", colour, scale,
                   thick, caption_top)
    elif mark is not None:
        draw_label(img, "no face", 4, 4, scale, thick)
    _draw_caption(img, caption, scale, thick)
    return img


# --------------------------------------------------------- from a score output's segments
END_SLACK_S = 0.5
"""The last segment stays on screen this long past its end (frames past the scored length)."""


@dataclass(frozen=True)
class TrackLabel:
    """One face track's fused label in a segment (track -1: no face in the window)."""

    track_id: int
    emotion: str | None
    confidence: float | None
    mode: str


@dataclass(frozen=True)
class SegmentView:
    """What the banner says during one segment: its span, the label per track, the voice."""

    start_s: float
    end_s: float
    labels: tuple[TrackLabel, ...]
    voice: tuple[str, float] | None        # the window's audio vote (class, probability)


@dataclass(frozen=True)
class FaceBox:
    """One face of a keyframe and the track it belongs to."""

    track_id: int
    box: tuple[int, int, int, int]


def _missing(value) -> bool:
    return value is None or (np.isscalar(value) and value != value)


def _voice(audio_probs) -> tuple[str, float] | None:
    if _missing(audio_probs):
        return None
    p = np.asarray(audio_probs, np.float64)
    return EMOTIONS[int(np.argmax(p))], float(np.max(p))


def _label(row: dict) -> TrackLabel:
    emotion = None if _missing(row["emotion"]) else str(row["emotion"])
    conf = None if emotion is None or _missing(row["confidence"]) else float(row["confidence"])
    return TrackLabel(int(row["track_id"]), emotion, conf, str(row["fusion_mode"]))


class SegmentTimeline:
    """What to draw at each instant of one video from its segment rows (SEGMENTS_SCHEMA
    columns) and, when given, its timeline rows (timestamp_s, box, track_id: one per face, or
    a faceless keyframe with a null box; a box with a null or no track_id is track 0, the
    largest face).

    A segment is shown over the stretch it owns (``score.windows.owned_spans``: overlapping
    windows split their overlap), so exactly one is on screen at a time; a keyframe's boxes
    stay until the next keyframe."""

    def __init__(self, segments: Sequence[dict], keyframes: Sequence[dict] | None = None):
        from mer_ray.score.windows import owned_spans

        by_index: dict[int, list[dict]] = {}
        for row in sorted(segments, key=lambda r: (int(r["segment_index"]), int(r["track_id"]))):
            by_index.setdefault(int(row["segment_index"]), []).append(row)
        rows = [by_index[k] for k in sorted(by_index)]
        spans = owned_spans([(float(r[0]["start_s"]), float(r[0]["end_s"])) for r in rows])
        self.views = [SegmentView(float(r[0]["start_s"]), float(r[0]["end_s"]),
                                  tuple(_label(x) for x in r), _voice(r[0]["audio_probs"]))
                      for r in rows]
        self.starts = [lo for lo, _ in spans]
        self.ends = [hi for _, hi in spans]
        self.times, self.boxes = _keyframe_boxes(keyframes or [])

    def segment_at(self, t: float) -> SegmentView | None:
        """The segment on screen at ``t`` (None before the first, in a gap, after the last)."""
        i = bisect.bisect_right(self.starts, t + 1e-6) - 1
        if i < 0 or (t >= self.ends[i] and i + 1 < len(self.ends)) or t > self.ends[i] + END_SLACK_S:
            return None
        return self.views[i]

    def boxes_at(self, t: float) -> list[FaceBox]:
        """The faces of the last keyframe at or before ``t``."""
        i = bisect.bisect_right(self.times, t + 1e-6) - 1
        return self.boxes[i] if i >= 0 else []


def _keyframe_boxes(rows: Sequence[dict]) -> tuple[list[float], list[list[FaceBox]]]:
    """Keyframe times (sorted) and the faces of each."""
    faces: dict[float, list[FaceBox]] = {}
    for row in rows:
        boxes = faces.setdefault(float(row["timestamp_s"]), [])
        track = row.get("track_id")
        track = 0 if _missing(track) else int(track)     # shards before tracks: largest face
        if not _missing(row.get("box")) and track >= 0:
            boxes.append(FaceBox(track, tuple(int(v) for v in row["box"])))
    times = sorted(faces)
    return times, [sorted(faces[t], key=lambda b: b.track_id) for t in times]


def _clock(seconds: float) -> str:
    """``m:ss``, with tenths when the time is not a whole second."""
    tenths = int(round(seconds * 10))
    minutes, rest = divmod(tenths, 600)
    return f"{minutes}:{rest // 10:02d}" + (f".{rest % 10}" if rest % 10 else "")


def track_text(label: TrackLabel) -> str:
    """``track 0: happy 0.81 [audio+visual]`` (``no face: ...`` for track -1)."""
    who = "no face" if label.track_id < 0 else f"track {label.track_id}"
    if label.emotion is None:
        return f"{who}: no emotion"
    return f"{who}: {label.emotion} {label.confidence:.2f} [{MODE_TEXT.get(label.mode, label.mode)}]"


def segment_caption(view: SegmentView | None) -> list[str]:
    """Banner lines: the segment's span and its first track's fused label, the other tracks'
    labels, then the voice's own vote."""
    if view is None:
        return ["no segment"]
    texts = [track_text(label) for label in view.labels] or ["no rows"]
    voice = "no voice vote" if view.voice is None else f"voice {view.voice[0]} {view.voice[1]:.2f}"
    return [f"{_clock(view.start_s)}-{_clock(view.end_s)}  {texts[0]}", *texts[1:], voice]


def draw_segments(frame_rgb: np.ndarray, view: SegmentView | None,
                  boxes: Sequence[FaceBox]) -> np.ndarray:
    """A copy of ``frame_rgb`` with the segment banner at the bottom left and each face's
    box in its track's emotion colour, labelled ``track N emotion confidence`` on a filled
    background (``track N`` alone when the segment has no row for that track)."""
    img = np.ascontiguousarray(frame_rgb, dtype=np.uint8).copy()
    scale, thick = _style(img)
    caption = segment_caption(view)
    caption_top = _caption_layout(caption, scale, thick, img.shape[0])[2]
    labels = {lab.track_id: lab for lab in (view.labels if view else ())}
    for face in boxes:
        label = labels.get(face.track_id)
        emotion = label.emotion if label else None
        text = f"track {face.track_id}" + (f" {emotion} {label.confidence:.2f}" if emotion else "")
        _draw_face(img, face.box, text, COLOURS.get(emotion or "", (255, 255, 255)), scale,
                   thick, caption_top)
    _draw_caption(img, caption, scale, thick)
    return img


@dataclass
class SegmentAnnotateResult:
    out: str
    segments: int
    tracks: int
    dominant_emotion: str | None
    boxes: bool                             # faces boxed (the scores had a timeline)
    has_audio: bool
    seconds: float


def annotate_segments(video: str, out: str, segments: Sequence[dict],
                      keyframes: Sequence[dict] | None = None) -> SegmentAnnotateResult:
    """Write ``out``: ``video`` with its scored segments drawn as it plays (banner) and a box
    + label per face track where ``keyframes`` (timeline rows) place them; audio kept."""
    from mer_ray.score.segments import summarize_over_time

    t0 = time.perf_counter()
    timeline = SegmentTimeline(segments, keyframes)
    has_audio = write_drawn(video, out, lambda frame, t: draw_segments(
        frame, timeline.segment_at(t), timeline.boxes_at(t)))
    summary = summarize_over_time([{**r, "emotion": _label(r).emotion} for r in segments])
    return SegmentAnnotateResult(str(Path(out)), len(timeline.views), summary["n_tracks"],
                                 summary["dominant_emotion"],
                                 any(timeline.boxes), has_audio, time.perf_counter() - t0)


def write_drawn(video_path: str, out_path: str, draw: Callable[[np.ndarray, float], np.ndarray]
                ) -> bool:
    """Re-encode ``video_path`` to ``out_path`` (H.264, audio kept) with every frame passed
    through ``draw(frame_rgb, t)``; returns whether the video has audio."""
    from moviepy import VideoFileClip

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with VideoFileClip(video_path) as video:
        drawn = video.transform(lambda get_frame, t: draw(get_frame(t), t), apply_to=[])
        has_audio = video.audio is not None
        drawn.write_videofile(str(out), fps=video.fps, codec="libx264", audio=has_audio,
                              audio_codec="aac", temp_audiofile_path=str(out.parent), threads=1,
                              logger=None, pixel_format="yuv420p")
    return has_audio


def annotate(cfg: AnnotateConfig) -> AnnotateResult:
    """Write ``cfg.out``: the input video with boxes and emotions drawn, audio kept."""
    t0 = time.perf_counter()
    clip_info, marks, result = predict_video(cfg)
    caption = fused_caption(result)
    times = [m.timestamp_s for m in marks]
    has_audio = write_drawn(cfg.video, cfg.out, lambda frame, t: draw_overlay(
        frame, mark_at(marks, times, t), caption))
    return AnnotateResult(str(Path(cfg.out)), clip_info["status"], result.mode, result.emotion,
                          result.arousal, result.confidence, int(clip_info["keyframes"]),
                          int(clip_info["faces_found"]), has_audio, time.perf_counter() - t0, marks)
