"""annotate: boxes and labels drawn, the video's length and audio kept."""
from __future__ import annotations

import numpy as np
import pytest

from mer_ray.config import AnnotateConfig
from mer_ray.score.annotate import COLOURS, LABEL_BG, Mark, draw_label, draw_overlay, mark_at


def test_draw_overlay_box_and_banner():
    frame = np.full((240, 320, 3), 200, np.uint8)
    out = draw_overlay(frame, Mark(0.0, (100, 80, 60, 60), "sad", 0.9), ["sad (low arousal)"])
    assert frame[0, 0, 0] == 200                          # input untouched
    assert tuple(out[110, 100]) == COLOURS["sad"]         # left edge of the box
    assert tuple(out[217, 5]) == LABEL_BG                 # caption on its fill, bottom left
    assert (out[150:170, 200:300] == 200).all()           # away from drawings: unchanged


@pytest.mark.parametrize("grey", [0, 128, 255])
def test_labels_are_white_on_a_filled_dark_box_on_any_background(grey):
    frame = np.full((240, 320, 3), grey, np.uint8)
    caption = ["happy (high arousal) 0.88 [audio+visual]", "visual happy 0.91"]
    out = draw_overlay(frame, Mark(0.0, (150, 100, 80, 80), "happy", 0.91), caption)
    for x0, y0, x1, y1 in [draw_label(frame.copy(), "happy 0.91", 150, 0, 0.4, 2)]:
        assert x1 - x0 > 40 and y1 - y0 > 10
    face_label = out[80:99, 150:230]                      # just above the box
    caption_band = out[200:236, 4:200]
    for region in (face_label, caption_band):
        pixels = region.reshape(-1, 3)
        fill = (pixels == LABEL_BG).all(axis=1).mean()
        text = (pixels.min(axis=1) > 200).mean()
        assert fill > 0.4 and text > 0.03, (fill, text)   # dark fill with white text on it


def test_face_label_moves_below_or_inside_at_the_top_edge():
    frame = np.full((240, 320, 3), 250, np.uint8)
    out = draw_overlay(frame, Mark(0.0, (200, 2, 100, 100), "happy", 0.9), ["happy"])
    assert tuple(out[105, 200]) == LABEL_BG               # no room above: below the box
    tall = draw_overlay(frame, Mark(0.0, (10, 2, 100, 200), "sad", 0.9), ["sad"])
    assert tuple(tall[5, 10]) == LABEL_BG                 # nor below: inside the box's top


def test_mark_at_holds_until_next_keyframe():
    marks = [Mark(0.0, None, None, None), Mark(0.5, (1, 1, 2, 2), "happy", 0.7)]
    times = [m.timestamp_s for m in marks]
    assert mark_at(marks, times, 0.49) is marks[0]
    assert mark_at(marks, times, 0.5) is marks[1] and mark_at(marks, times, 9.0) is marks[1]
    assert mark_at(marks, times, -1.0) is None


@pytest.mark.slow          # annotates (scores and re-encodes) a whole video
def test_annotate_video_keeps_audio(mixed_archive, tiny_bundles, tmp_path):
    from moviepy import VideoFileClip

    from mer_ray.score.annotate import annotate

    src = str(mixed_archive["good"][0])
    out = tmp_path / "annotated.mp4"
    result = annotate(AnnotateConfig(video=src, out=str(out), **tiny_bundles))
    assert result.fusion_mode == "audio_visual" and result.emotion is not None
    assert result.faces > 0 and any(m.box for m in result.marks)
    with VideoFileClip(src) as before, VideoFileClip(str(out)) as after:
        assert after.audio is not None
        assert after.duration == pytest.approx(before.duration, abs=0.1)
        assert after.size == before.size
        box = next(m.box for m in result.marks if m.box)
        a, b = before.get_frame(0.0).astype(int), after.get_frame(0.0).astype(int)
        x, y, w, h = box
        edge = np.abs(a[y:y + h, x:x + 3] - b[y:y + h, x:x + 3]).mean()
        inside = np.abs(a[y + h // 3:y + 2 * h // 3, x + w // 3:x + 2 * w // 3]
                        - b[y + h // 3:y + 2 * h // 3, x + w // 3:x + 2 * w // 3]).mean()
        assert edge > 20 > inside              # the box is drawn, the face under it is not


def test_annotate_refuses_audio_only(mixed_archive, tiny_bundles, tmp_path):
    from mer_ray.media.errors import MediaError
    from mer_ray.score.annotate import annotate

    with pytest.raises(MediaError):
        annotate(AnnotateConfig(video=str(mixed_archive["bad"]["audio_only"]),
                                out=str(tmp_path / "x.mp4"), **tiny_bundles))
