"""annotate: boxes and labels drawn, the video's length and audio kept."""
from __future__ import annotations

import numpy as np
import pytest

from mer_ray.config import AnnotateConfig
from mer_ray.score.annotate import COLOURS, Mark, draw_overlay, mark_at


def test_draw_overlay_box_and_banner():
    frame = np.full((240, 320, 3), 200, np.uint8)
    out = draw_overlay(frame, Mark(0.0, (100, 80, 60, 60), "sad", 0.9), ["sad (low arousal)"])
    assert frame[0, 0, 0] == 200                          # input untouched
    assert tuple(out[110, 100]) == COLOURS["sad"]         # left edge of the box
    assert out[1, 300].max() < 200                        # banner darkened
    assert (out[150:170, 200:300] == 200).all()           # away from drawings: unchanged


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
