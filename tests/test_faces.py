"""mer_ray.media.faces: Haar detection (downscaled vs full frame) and the 200x200 crop."""
from __future__ import annotations

import numpy as np
import pytest

from mer_ray.config import EMOTIONS, FACE_SIZE
from mer_ray.media.faces import FaceDetector, crop_face
from mer_ray.media.video import read_keyframes
from mer_ray.sample import ClipSpec, SampleConfig, clip_frames


@pytest.fixture(scope="module")
def detectors() -> dict:
    return {"fast": FaceDetector(detect_width=480), "full": FaceDetector(detect_width=None)}


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / float(aw * ah + bw * bh - w * h)


def _agree(frames_bgr, detectors) -> tuple[int, int, list[float]]:
    """Face counts with detect_width=480 and None, and the IoU of boxes found by both."""
    fast = [detectors["fast"].detect(f) for f in frames_bgr]
    full = [detectors["full"].detect(f) for f in frames_bgr]
    ious = [_iou(a, b) for a, b in zip(fast, full) if a is not None and b is not None]
    return sum(b is not None for b in fast), sum(b is not None for b in full), ious


def _within_5_percent(a: int, b: int) -> bool:
    return abs(a - b) <= 0.05 * max(a, b)


def test_missing_or_broken_cascade(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.xml"):
        FaceDetector(cascade_path=str(tmp_path / "nope.xml"))
    broken = tmp_path / "broken.xml"
    broken.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(RuntimeError, match="broken.xml"):
        FaceDetector(cascade_path=str(broken))


def test_no_face_on_blank_and_shapes(detectors, mixed_archive):
    blank = np.full((360, 480, 3), 127, np.uint8)
    assert detectors["fast"].detect(blank) is None
    _, keyframes = read_keyframes(str(mixed_archive["bad"]["no_face"]), skip=5)
    assert keyframes and all(detectors["fast"].detect(k.image) is None for k in keyframes)


def test_faces_on_most_generated_keyframes(detectors, mixed_archive):
    total = found = 0
    for path in mixed_archive["good"]:
        _, keyframes = read_keyframes(str(path), skip=10)
        for k in keyframes:
            box = detectors["fast"].detect(k.image)
            total += 1
            if box is not None:
                found += 1
                x, y, w, h = box
                height, width = k.image.shape[:2]
                assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
                assert w >= 0.1 * min(height, width)
    assert total >= 7 and found >= 0.9 * total


def test_detect_width_agrees_with_full_frame_on_720p(detectors):
    cfg = SampleConfig(width=1280, height=720, seconds=0.1)
    frames = []
    for actor in (1, 2):
        for emotion in EMOTIONS:
            rgb = list(clip_frames(ClipSpec(emotion, actor, 0, 1, 1, 1), cfg))[-1]
            frames.append(np.ascontiguousarray(rgb[..., ::-1]))
    n_fast, n_full, ious = _agree(frames, detectors)
    assert n_full >= 0.9 * len(frames)
    assert _within_5_percent(n_fast, n_full)
    assert ious and min(ious) > 0.6


@pytest.mark.real_data
def test_detect_width_agrees_on_the_real_clip(detectors, real_video):
    _, keyframes = read_keyframes(str(real_video), skip=10)
    n_fast, n_full, ious = _agree([k.image for k in keyframes], detectors)
    assert n_full >= 0.9 * len(keyframes)
    assert _within_5_percent(n_fast, n_full)
    assert min(ious) > 0.6


@pytest.mark.real_data
def test_boxes_are_mapped_back_to_frame_pixels(detectors, real_video):
    import cv2

    _, keyframes = read_keyframes(str(real_video), skip=60)
    frame = keyframes[0].image
    box = detectors["full"].detect(frame)
    assert box is not None
    big = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    big_box = detectors["fast"].detect(big)          # detected at 480 px wide, i.e. 0.375x
    assert big_box is not None
    assert _iou(big_box, tuple(2 * v for v in box)) > 0.7


def test_crop_face_shape_dtype_and_rgb_order():
    frame = np.zeros((100, 120, 3), np.uint8)
    frame[20:60, 30:70] = (255, 0, 0)                # BGR blue square
    crop = crop_face(frame, (30, 20, 40, 40))
    assert crop.shape == (FACE_SIZE, FACE_SIZE, 3) and crop.dtype == np.uint8
    assert (crop[..., 2] == 255).all() and (crop[..., :2] == 0).all()   # RGB: blue is last
    small = crop_face(frame, (100, 80, 50, 50), size=32)                # clipped to the frame
    assert small.shape == (32, 32, 3) and (small == 0).all()
    with pytest.raises(ValueError):
        crop_face(frame, (200, 200, 10, 10))


def _clip_keyframes_bgr(emotion: str, actor: int, size=(1280, 720), seconds=2.0) -> list:
    cfg = SampleConfig(width=size[0], height=size[1], seconds=seconds)
    frames = list(clip_frames(ClipSpec(emotion, actor, 0, 1, 1, 1), cfg))
    return [np.ascontiguousarray(rgb[..., ::-1]) for rgb in frames[::10]]


@pytest.mark.parametrize("emotion", ["angry", "surprise"])
def test_tracker_finds_the_faces_full_search_finds_with_fewer_full_searches(emotion):
    from mer_ray.media.faces import FaceTracker

    detector = FaceDetector()
    frames = _clip_keyframes_bgr(emotion, 1)
    plain = [detector.detect(f) for f in frames]
    tracker = FaceTracker(detector, redetect_every=6)
    tracked = [tracker(f) for f in frames]
    assert [b is None for b in tracked] == [b is None for b in plain]
    assert all(_iou(a, b) > 0.6 for a, b in zip(plain, tracked) if a is not None)
    assert tracker.full_searches < len(frames) / 2


@pytest.mark.real_data
def test_tracker_agrees_with_full_search_on_the_real_clip(real_video):
    from mer_ray.media.faces import FaceTracker

    detector = FaceDetector()
    _, keyframes = read_keyframes(str(real_video), skip=10)
    plain = [detector.detect(k.image) for k in keyframes]
    tracker = FaceTracker(detector)
    tracked = [tracker(k.image) for k in keyframes]
    assert _within_5_percent(sum(b is not None for b in tracked), sum(b is not None for b in plain))
    ious = [_iou(a, b) for a, b in zip(plain, tracked) if a is not None and b is not None]
    assert ious and min(ious) > 0.6
    assert tracker.full_searches < len(keyframes) / 2


def test_redetect_every_1_is_the_plain_detector():
    from mer_ray.media.faces import FaceTracker

    detector = FaceDetector()
    frames = _clip_keyframes_bgr("happy", 2, seconds=1.0)
    tracker = FaceTracker(detector, redetect_every=1)
    assert [tracker(f) for f in frames] == [detector.detect(f) for f in frames]
    assert tracker.full_searches == len(frames)
    with pytest.raises(ValueError):
        FaceTracker(detector, redetect_every=0)


def test_tracker_switches_to_a_larger_face_at_the_next_full_search():
    """A bigger face that appears elsewhere is the largest face from the next full search on."""
    import cv2

    from mer_ray.media.faces import FaceTracker

    big = _clip_keyframes_bgr("neutral", 1, seconds=0.1)[0]        # 1280x720, face ~290 px
    detector = FaceDetector()
    x, y, w, h = detector.detect(big)
    m = w // 4
    big_face = big[max(0, y - m):y + h + m, max(0, x - m):x + w + m]
    canvas = np.full((720, 1280, 3), 90, np.uint8)
    one = canvas.copy()
    one[:360, :640] = cv2.resize(big, (640, 360), interpolation=cv2.INTER_AREA)  # face ~145 px
    two = one.copy()
    two[720 - big_face.shape[0]:, 1280 - big_face.shape[1]:] = big_face
    detector = FaceDetector()
    assert detector.detect(one)[0] < 400 and detector.detect(two)[0] >= 640
    tracker = FaceTracker(detector, redetect_every=3)
    boxes = [tracker(f) for f in [one, two, two, two]]
    assert boxes[0][0] < 400 and boxes[1][0] < 400  # tracking keeps the first face ...
    assert boxes[3][0] >= 640                        # ... until the full search (3rd keyframe)
    assert tracker.full_searches == 2


def test_detect_near_looks_only_near_the_box():
    detector = FaceDetector()
    frame = _clip_keyframes_bgr("happy", 1, seconds=0.1)[0]
    box = detector.detect(frame)
    assert box is not None
    near = detector.detect_near(frame, box)
    assert near is not None and _iou(near, box) > 0.6
    x, y, w, h = box
    far = (0 if x > frame.shape[1] / 2 else frame.shape[1] - w // 2, 0, w // 2, h // 2)
    assert detector.detect_near(frame, far) is None


def _two_faces_bgr(size=(320, 240)) -> np.ndarray:
    """Two sample faces side by side: actor 1 (left, smaller frame) and actor 2 (right)."""
    left = _clip_keyframes_bgr("happy", 1, size=size, seconds=0.1)[0]
    right = _clip_keyframes_bgr("sad", 2, size=size, seconds=0.1)[0]
    return np.ascontiguousarray(np.concatenate([left, right], axis=1))


def test_detect_faces_finds_both_faces_left_to_right_and_caps_by_size():
    detector = FaceDetector()
    frame = _two_faces_bgr()
    boxes = detector.detect_faces(frame)
    assert len(boxes) == 2
    assert boxes[0][0] + boxes[0][2] <= 320 <= boxes[1][0]          # one face per half
    assert detector.detect_faces(frame, max_faces=1) == [detector.detect(frame)]
    assert detector.detect(frame) in boxes                          # largest-face call unchanged
    assert detector.detect_faces(np.full((240, 640, 3), 127, np.uint8)) == []
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_faces"):
            detector.detect_faces(frame, max_faces=bad)


class _FixedCascade:
    """Stands in for the Haar cascade: always 'finds' the given boxes."""

    def __init__(self, boxes):
        self.boxes = np.asarray(boxes, np.int32)

    def detectMultiScale(self, *args, **kwargs):  # noqa: N802 (OpenCV's name)
        return self.boxes


def test_detect_faces_drops_boxes_nested_in_a_larger_face_and_keeps_the_largest():
    detector = FaceDetector(detect_width=None)
    big, nested = (100, 50, 100, 100), (120, 70, 50, 50)
    other, small = (300, 60, 80, 80), (10, 10, 30, 30)
    detector._cascade = _FixedCascade([small, nested, other, big])
    frame = np.zeros((240, 480, 3), np.uint8)
    assert detector.detect_faces(frame) == [small, big, other]       # left to right
    assert detector.detect_faces(frame, max_faces=2) == [big, other]  # the 2 largest
    assert detector.detect_all(frame)[:2] == [big, other]             # detect_all unchanged
