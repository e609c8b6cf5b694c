"""`annotate`: one video -> the same video with face boxes, per-keyframe emotions and the fused
emotion drawn on it, audio kept (the thesis's real-time display, Fig. 4.28). No Ray.

Uses the same extraction (ClipExtractor), models (bundle predictors) and fusion (Alg. 3.9) as
the score job. Each keyframe's box and label stay on screen until the next keyframe.
"""
from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mer_ray.config import EMOTIONS, AnnotateConfig
from mer_ray.media import errors as st
from mer_ray.media.errors import MediaError
from mer_ray.score.fusion import FusionResult, FusionWeights, fuse
from mer_ray.score.plan import check_audio_bundle, run_extract_options

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
        faces = np.stack([f["face"] for f in ext.frames])
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
             f"[{result.mode.replace('_', '+')}]"]
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


def draw_overlay(frame_rgb: np.ndarray, mark: Mark | None, caption: list[str]) -> np.ndarray:
    """A copy of ``frame_rgb`` with the mark's box + label and the caption lines drawn on it.
    Every label is white text on a filled dark rectangle, so it reads on any face or scene:
    the caption (fused emotion, then each path's) at the bottom left like subtitles, the face's
    label just above its box (below it, or inside its top edge, when there is no room or the
    caption is there), "no face" at the top left."""
    import cv2

    img = np.ascontiguousarray(frame_rgb, dtype=np.uint8).copy()
    h, w = img.shape[:2]
    scale = max(0.4, w / 900)
    thick = max(2, int(round(scale * 2.5)))
    scales = [scale * (1.0 if i == 0 else 0.8) for i in range(len(caption))]
    heights = [label_height(sc, thick) + 2 for sc in scales]
    caption_top = h - 4 - sum(heights)
    if mark is not None and mark.box is not None:
        x, y, bw, bh = mark.box
        colour = COLOURS.get(mark.emotion or "", (255, 255, 255))
        cv2.rectangle(img, (x, y), (x + bw, y + bh), colour, thick)
        lh = label_height(scale, thick)
        above, below = y - lh - thick // 2, y + bh + thick
        if above >= 0:
            top = above
        elif below + lh <= caption_top:
            top = below
        else:
            top = y + thick
        draw_label(img, f"{mark.emotion} {mark.confidence:.2f}", x - thick // 2, top, scale,
                   thick, swatch=colour)
    elif mark is not None:
        draw_label(img, "no face", 4, 4, scale, thick)
    y = caption_top
    for text, line_scale, height in zip(caption, scales, heights):
        draw_label(img, text, 4, y, line_scale, thick)
        y += height
    return img


def annotate(cfg: AnnotateConfig) -> AnnotateResult:
    """Write ``cfg.out``: the input video with boxes and emotions drawn, audio kept."""
    from moviepy import VideoFileClip

    t0 = time.perf_counter()
    clip_info, marks, result = predict_video(cfg)
    caption = fused_caption(result)
    times = [m.timestamp_s for m in marks]
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with VideoFileClip(cfg.video) as video:
        drawn = video.transform(lambda get_frame, t: draw_overlay(get_frame(t), mark_at(marks, times, t),
                                                                  caption), apply_to=[])
        has_audio = video.audio is not None
        drawn.write_videofile(str(out), fps=video.fps, codec="libx264", audio=has_audio,
                              audio_codec="aac", temp_audiofile_path=str(out.parent), threads=1,
                              logger=None, pixel_format="yuv420p")
    return AnnotateResult(str(out), clip_info["status"], result.mode, result.emotion,
                          result.arousal, result.confidence, int(clip_info["keyframes"]),
                          int(clip_info["faces_found"]), has_audio, time.perf_counter() - t0, marks)
