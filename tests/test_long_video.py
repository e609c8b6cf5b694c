"""mer_ray.sample.long_video: ground-truth videos (emotion changes with silent gaps; two faces,
one leaving) and that detection and tracking recover what they say."""
from __future__ import annotations

import numpy as np
import pytest

from mer_ray.media.audio import decode_audio
from mer_ray.media.faces import FaceDetector
from mer_ray.media.tracks import link_tracks, track_spans
from mer_ray.media.video import read_keyframes
from mer_ray.sample.long_video import long_video_plan, write_long_video, write_two_face_video

FPS = 10.0


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    spans = write_long_video(path, seconds=20.0, width=160, height=120, fps=FPS,
                             audio_rate=8000)
    return path, spans


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory):
    path = tmp_path_factory.mktemp("two") / "two.mp4"
    truth = write_two_face_video(path, seconds=6.0, width=320, height=180, fps=FPS,
                                 audio_rate=8000)
    return path, truth


def test_plan_is_deterministic_contiguous_and_has_gaps():
    spans = long_video_plan(40.0, seed=3, fps=15.0)
    assert spans == long_video_plan(40.0, seed=3, fps=15.0)
    assert spans != long_video_plan(40.0, seed=4, fps=15.0)
    assert spans[0].start_s == 0.0 and spans[-1].end_s == 40.0
    assert all(a.end_s == b.start_s for a, b in zip(spans, spans[1:]))
    assert all(round(s.start_s * 15, 9).is_integer() for s in spans)
    clips = [s.emotion for s in spans if s.emotion is not None]
    assert all(a != b for a, b in zip(clips, clips[1:]))
    gaps = [s for s in spans if s.emotion is None]
    assert len(gaps) >= 2 and all(s.end_s - s.start_s == 2.0 for s in gaps[:-1])
    assert long_video_plan(7.5, fps=10.0)[-1].end_s == 7.5
    with pytest.raises(ValueError):
        long_video_plan(0.0)


def test_long_video_matches_its_ground_truth(long_video):
    path, spans = long_video
    info, keyframes = read_keyframes(str(path), skip=5)            # 2 keyframes per second
    assert info.duration_s == pytest.approx(20.0)
    audio = decode_audio(str(path), 8000)
    detector = FaceDetector()
    for span in spans:
        lo, hi = round(span.start_s * 8000) + 400, round(span.end_s * 8000) - 400
        rms = float(np.sqrt(np.mean(audio.samples[lo:hi] ** 2)))
        inside = [k for k in keyframes if span.start_s + 0.1 < k.timestamp_s < span.end_s - 0.1]
        faces = sum(detector.detect(k.image) is not None for k in inside)
        if span.emotion is None:
            assert rms < 0.01 and faces == 0, span
        else:
            assert rms > 0.03 and faces >= 0.8 * len(inside), span


def test_long_video_is_the_same_file_every_time(tmp_path):
    a = write_long_video(tmp_path / "a.mp4", seconds=4.0, width=160, height=120, fps=FPS)
    b = write_long_video(tmp_path / "b.mp4", seconds=4.0, width=160, height=120, fps=FPS)
    assert a == b and (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_two_face_video_gives_two_tracks_and_the_right_one_ends(two_faces):
    path, truth = two_faces
    left, right = truth.faces
    assert (left.side, right.side) == ("left", "right") and left.emotion != right.emotion
    assert right.leave_s == 3.0 and right.end_s == 4.0 and left.end_s == truth.duration_s
    _, keyframes = read_keyframes(str(path), skip=5)
    detector = FaceDetector()
    boxes = [detector.detect_faces(k.image) for k in keyframes]
    times = [k.timestamp_s for k in keyframes]
    early = [b for b, t in zip(boxes, times) if t < right.leave_s]
    assert early and all(len(b) == 2 for b in early)
    assert all(b[0][0] + b[0][2] <= 160 <= b[1][0] for b in early)  # one per half, left first
    ids = link_tracks(boxes, times)
    assert all(row == [0, 1] for row, t in zip(ids, times) if t < right.leave_s)
    spans = track_spans(ids, times)
    assert set(spans) == {0, 1}                                     # no third track
    assert right.leave_s <= spans[1][1] < right.end_s               # the right one ends
    assert spans[0][1] == times[-1]                                 # the left one stays


def test_two_face_video_arguments(tmp_path):
    with pytest.raises(ValueError, match="different"):
        write_two_face_video(tmp_path / "x.mp4", emotions=("sad", "sad"))
    with pytest.raises(ValueError, match="leave"):
        write_two_face_video(tmp_path / "x.mp4", seconds=4.0, leave_s=3.5)
