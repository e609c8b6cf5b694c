"""Ground-truth videos for segment and face-track scoring, made from the sample material.

* :func:`write_long_video`: one speaker whose emotion changes at known times (labelled sample
  clips back to back, 3-5 s each), with a silent, faceless gap after every second clip.
* :func:`write_two_face_video`: two sample faces side by side with different emotions; the
  right one slides out of the frame midway, the left one stays to the end.

Both are deterministic (fixed seeds, the bit-exact encoder of :func:`write_clip`) and return
their ground truth, so tests can check segment boundaries, labels and tracks exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from mer_ray.config import EMOTIONS
from mer_ray.sample.face_video import FaceRenderer, warm_up
from mer_ray.sample.mux import write_clip
from mer_ray.sample.spec import ClipSpec, SampleConfig
from mer_ray.sample.voice import synth_voice

CLIP_SECONDS = (3.0, 4.0, 5.0)
"""Lengths a long video's clips are drawn from."""
NOISE_FLOOR = 0.003
"""Amplitude of the background noise in silent gaps (the sample voice's own floor)."""


class Span(NamedTuple):
    """A stretch of a generated video and its emotion; None: silence and no face."""

    start_s: float
    end_s: float
    emotion: str | None


@dataclass(frozen=True)
class FaceTruth:
    """One face of the two-face video: which side, who, what emotion, when it is in view.
    ``leave_s`` is when it starts sliding out, ``end_s`` when it is fully out (or the end)."""

    side: str
    actor: int
    emotion: str
    start_s: float
    leave_s: float
    end_s: float


@dataclass(frozen=True)
class TwoFaceTruth:
    """The ground truth of :func:`write_two_face_video`: its faces and the voice heard."""

    faces: tuple[FaceTruth, ...]
    voice: tuple[Span, ...]
    duration_s: float


def _frames(seconds: float, fps: float) -> int:
    return max(1, round(seconds * fps))


def long_video_plan(seconds: float, seed: int = 0, fps: float = 15.0,
                    gap_s: float = 2.0) -> list[Span]:
    """The spans of a long video: clips of CLIP_SECONDS drawn with ``seed``, no emotion twice in
    a row, a ``gap_s`` silent gap after every second clip, the last span cut at ``seconds``.
    Boundaries fall on frame times (multiples of 1 / ``fps``)."""
    if seconds <= 0 or fps <= 0 or gap_s < 0:
        raise ValueError("seconds and fps must be > 0 and gap_s >= 0")
    rng = np.random.default_rng([seed, 0x5E6])
    total = _frames(seconds, fps)
    spans: list[Span] = []
    frame, previous, clip = 0, None, 0
    while frame < total:
        emotion = str(rng.choice([e for e in EMOTIONS if e != previous]))
        length = _frames(float(rng.choice(CLIP_SECONDS)), fps)
        parts = [(emotion, length)] + ([(None, _frames(gap_s, fps))] if clip % 2 and gap_s else [])
        for label, n in parts:
            end = min(total, frame + n)
            if end > frame:
                spans.append(Span(frame / fps, end / fps, label))
            frame = end
        previous, clip = emotion, clip + 1
    return spans


def write_long_video(path: str | Path, seconds: float = 30.0, seed: int = 0, actor: int = 1,
                     width: int = 320, height: int = 240, fps: float = 15.0,
                     audio_rate: int = 22050, gap_s: float = 2.0) -> list[Span]:
    """Write the long video of :func:`long_video_plan` to ``path`` (H.264 + AAC); return its
    spans. Each clip is a sample clip of ``actor`` (face and voice of that emotion); a gap
    shows the last clip's background, without the face, over near-silence."""
    spans = long_video_plan(seconds, seed, fps, gap_s)
    cfg = SampleConfig(width=width, height=height, fps=fps, seed=seed, audio_rate=audio_rate)
    cfg.validate()
    warm_up()
    renderers = [None if s.emotion is None else
                 FaceRenderer(ClipSpec(s.emotion, actor, k, 1, 1, 1), cfg)
                 for k, s in enumerate(spans)]
    audio = np.concatenate([_span_audio(s, k, actor, cfg) for k, s in enumerate(spans)])
    write_clip(path, _long_frames(spans, renderers, cfg), audio, fps, audio_rate)
    return spans


def _span_audio(span: Span, k: int, actor: int, cfg: SampleConfig) -> np.ndarray:
    n = round((span.end_s - span.start_s) * cfg.audio_rate)
    if span.emotion is None:
        rng = np.random.default_rng([cfg.seed, k, 0x0])
        return (rng.normal(size=n) * NOISE_FLOOR).astype(np.float32)
    y = synth_voice(span.emotion, actor, span.end_s - span.start_s, cfg.audio_rate, cfg.seed, k)
    return np.pad(y, (0, max(0, n - y.size)))[:n]


def _long_frames(spans: list[Span], renderers: list, cfg: SampleConfig) -> Iterator[np.ndarray]:
    background = None
    for span, renderer in zip(spans, renderers):
        n = round((span.end_s - span.start_s) * cfg.fps)
        if renderer is not None:
            background = renderer.bg_u8
            yield from (renderer.frame(i) for i in range(n))
        else:
            still = background if background is not None else np.full(
                (cfg.height, cfg.width, 3), 90, np.uint8)
            yield from (still for _ in range(n))


def write_two_face_video(path: str | Path, seconds: float = 6.0, leave_s: float | None = None,
                         slide_s: float = 1.0, emotions: tuple[str, str] = ("happy", "sad"),
                         actors: tuple[int, int] = (1, 2), width: int = 640, height: int = 360,
                         fps: float = 15.0, audio_rate: int = 22050, seed: int = 0) -> TwoFaceTruth:
    """Write two sample faces side by side (left: ``actors[0]`` showing ``emotions[0]``; right:
    ``actors[1]``, ``emotions[1]``), each on its own half of the frame. From ``leave_s``
    (default: half way) the right face slides out to the right over ``slide_s`` seconds. The
    sound is the left person's voice. Returns the ground truth."""
    if emotions[0] == emotions[1] or actors[0] == actors[1] or width % 4:
        raise ValueError("two different emotions and actors, and a width divisible by 4")
    leave_s = seconds / 2 if leave_s is None else leave_s
    if not (0 < leave_s and leave_s + slide_s <= seconds):
        raise ValueError("the right face must leave after the start and be out before the end")
    cfg = SampleConfig(width=width // 2, height=height, fps=fps, seconds=seconds, seed=seed,
                       audio_rate=audio_rate)
    warm_up()
    left, right = (FaceRenderer(ClipSpec(e, a, 0, 1, 1, 1), cfg) for e, a in zip(emotions, actors))
    n = _frames(seconds, fps)
    frames = (_side_by_side(left, right, i, fps, leave_s, slide_s) for i in range(n))
    voice = synth_voice(emotions[0], actors[0], n / fps, audio_rate, seed)
    write_clip(path, frames, voice, fps, audio_rate)
    duration = n / fps
    faces = (FaceTruth("left", actors[0], emotions[0], 0.0, duration, duration),
             FaceTruth("right", actors[1], emotions[1], 0.0, leave_s, leave_s + slide_s))
    return TwoFaceTruth(faces, (Span(0.0, duration, emotions[0]),), duration)


def _side_by_side(left: FaceRenderer, right: FaceRenderer, i: int, fps: float,
                  leave_s: float, slide_s: float) -> np.ndarray:
    """Frame ``i``: the left renderer's frame, then the right one's shifted right by how far
    it has slid out (its background fills the space behind it)."""
    a, b = left.frame(i), right.frame(i)
    half = b.shape[1]
    progress = min(1.0, max(0.0, (i / fps - leave_s) / slide_s))
    shift = round(progress * half)
    if shift:
        moved = right.bg_u8.copy()
        moved[:, shift:] = b[:, :half - shift]
        b = moved
    return np.concatenate([a, b], axis=1)
