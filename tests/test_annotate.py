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


# ------------------------------------------------------------ from a score output's segments
def _segments(windows, labels, audio=None) -> list[dict]:
    """Segment rows: ``labels[k]`` maps track id -> (emotion, confidence, mode) in window k."""
    rows = []
    for k, ((start, end), tracks) in enumerate(zip(windows, labels)):
        for tid, (emotion, conf, mode) in tracks.items():
            rows.append({"segment_index": k, "start_s": start, "end_s": end, "track_id": tid,
                         "emotion": emotion, "confidence": conf, "fusion_mode": mode,
                         "audio_probs": None if audio is None else audio[k],
                         "speech_fraction": None})
    return rows


def test_segment_on_screen_follows_the_owned_spans():
    from mer_ray.score.annotate import SegmentTimeline
    from mer_ray.score.windows import owned_spans, segment_windows

    side_by_side = SegmentTimeline(_segments([(0, 2), (2, 4), (4, 6)],
                                             [{0: ("happy", 0.8, "visual_only")}] * 3))
    assert [side_by_side.segment_at(t).start_s for t in (0.0, 1.9, 2.0, 5.9, 6.1)] == [0, 0, 2, 4, 4]
    assert side_by_side.segment_at(-0.5) is None and side_by_side.segment_at(7.0) is None
    wins = segment_windows(4.0, 2.0, 1.0)                       # overlapping windows
    overlapping = SegmentTimeline(_segments(wins, [{0: ("sad", 0.6, "audio_visual")}] * len(wins)))
    for k, (lo, hi) in enumerate(owned_spans(wins)):
        assert overlapping.segment_at((lo + hi) / 2).start_s == wins[k][0]


def test_boxes_per_track_hold_until_the_next_keyframe():
    from mer_ray.score.annotate import FaceBox, SegmentTimeline

    keyframes = [{"timestamp_s": 0.0, "box": [10, 10, 40, 40], "track_id": 0},
                 {"timestamp_s": 0.0, "box": [100, 10, 40, 40], "track_id": 1},
                 {"timestamp_s": 0.5, "box": [12, 10, 40, 40], "track_id": 0},
                 {"timestamp_s": 1.0, "box": None, "track_id": None},        # no face
                 {"timestamp_s": 1.5, "box": [14, 10, 40, 40], "track_id": None}]  # old shard
    tl = SegmentTimeline(_segments([(0, 2)], [{0: ("happy", 0.9, "visual_only")}]), keyframes)
    assert [b.track_id for b in tl.boxes_at(0.4)] == [0, 1]
    assert tl.boxes_at(0.7) == [FaceBox(0, (12, 10, 40, 40))]
    assert tl.boxes_at(1.2) == [] and tl.boxes_at(-0.1) == []
    assert tl.boxes_at(1.9) == [FaceBox(0, (14, 10, 40, 40))]


def test_draw_segments_banner_and_a_labelled_box_per_track():
    from mer_ray.score.annotate import FaceBox, SegmentTimeline, draw_segments, segment_caption

    audio = [np.eye(7)[5] * 0.5 + 0.5 / 7]
    tl = SegmentTimeline(_segments([(3, 6)], [{0: ("happy", 0.81, "audio_visual"),
                                              1: ("sad", 0.55, "audio_visual")}], audio))
    view = tl.segment_at(4.0)
    caption = segment_caption(view)
    assert caption[0].startswith("0:03-0:06") and "track 0: happy 0.81" in caption[0]
    assert "face+voice" in caption[0] and caption[1].startswith("track 1: sad 0.55")
    assert caption[-1].startswith("voice sad")
    assert segment_caption(None) == ["no segment"]
    frame = np.full((360, 640, 3), 128, np.uint8)
    boxes = [FaceBox(0, (60, 80, 100, 100)), FaceBox(1, (400, 80, 100, 100)),
             FaceBox(2, (250, 200, 60, 60))]                  # a track with no row here
    out = draw_segments(frame, view, boxes)
    assert tuple(out[130, 60]) == COLOURS["happy"] and tuple(out[130, 400]) == COLOURS["sad"]
    assert tuple(out[230, 250]) == (255, 255, 255)           # unlabelled track: white box
    for x in (60, 400):                                       # label on its fill above the box
        pixels = out[50:78, x:x + 100].reshape(-1, 3)
        assert (pixels == LABEL_BG).all(axis=1).mean() > 0.4
    assert tuple(out[350, 5]) == LABEL_BG                     # banner at the bottom left
    silent = segment_caption(SegmentTimeline(_segments([(0, 3)], [{-1: (None, None, "none")}]))
                             .segment_at(1.0))
    assert silent[0].endswith("no face: no emotion") and silent[-1] == "no voice vote"


BOXES = {0: [20, 40, 100, 100], 1: [180, 40, 100, 100]}
"""Where the hand-made timeline puts the two faces of the 320x180 two-face video."""


def _score_output(root, video: str, duration_s: float = 2.0) -> str:
    """A score output holding ``video``: 1 s segments of two tracks (0 happy, 1 sad, no
    voice) and a timeline placing them at BOXES every 0.5 s."""
    import pyarrow as pa

    from mer_ray.data.shards import ShardStore
    from mer_ray.score.schema import SCHEMAS, SCORES_DIR, SCORES_SCHEMA, TIMELINE_DIR, TIMELINE_SCHEMA
    from mer_ray.score.segments import SEGMENTS_DIR, SEGMENTS_SCHEMA, segment_rows, segments_table
    from mer_ray.score.windows import segment_windows

    wins = segment_windows(duration_s, 1.0)
    ts = np.repeat(np.arange(0.0, duration_s, 0.5), 2)
    ids = [0, 1] * (len(ts) // 2)
    probs = np.array([np.eye(7)[3 if t == 0 else 5] for t in ids]) * 0.8 + 0.2 / 7
    rows = segment_rows("two", wins, ts, probs, [None] * len(wins), [None] * len(wins),
                        track_ids=ids, path=video)
    timeline = [{"path": video, "video_id": "two", "frame_index": i, "timestamp_s": float(t),
                 "has_face": True, "box": BOXES[tid], "track_id": tid}
                for i, (t, tid) in enumerate(zip(ts, ids))]
    store = ShardStore(str(root / "scores"), {**SCHEMAS, SEGMENTS_DIR: SEGMENTS_SCHEMA},
                       primary=SCORES_DIR)
    scores = pa.Table.from_pylist([{"path": video, "video_id": "two", "status": "ok"}],
                                  schema=SCORES_SCHEMA)
    store.write_shard("s0", {SEGMENTS_DIR: segments_table(rows), SCORES_DIR: scores,
                             TIMELINE_DIR: pa.Table.from_pylist(timeline, schema=TIMELINE_SCHEMA)})
    return str(root / "scores")


@pytest.mark.slow          # writes and re-encodes a short video
def test_annotate_from_scores_draws_each_track(tmp_path, capsys):
    import cv2

    from mer_ray import cli
    from mer_ray.sample.long_video import write_two_face_video

    video = str(tmp_path / "two.mp4")
    truth = write_two_face_video(video, seconds=2.0, leave_s=1.0, slide_s=0.5, width=320,
                                 height=180, audio_rate=8000)
    scores, boxes = _score_output(tmp_path, video, truth.duration_s), BOXES
    out = tmp_path / "a.mp4"
    assert cli.main(["annotate", video, "--scores", scores, "-o", str(out)]) == 0
    assert "2 face track(s), mostly happy" in capsys.readouterr().out
    cap = cv2.VideoCapture(str(out))
    cap.set(cv2.CAP_PROP_POS_MSEC, 600)
    ok, bgr = cap.read()
    assert ok
    rgb = bgr[:, :, ::-1].astype(int)
    for tid, emotion in ((0, "happy"), (1, "sad")):
        x, y, w, h = boxes[tid]
        edge = rgb[y + 20:y + h - 20, x].mean(axis=0)        # the box's left edge
        assert np.abs(edge - COLOURS[emotion]).max() < 40, (tid, edge)


def test_annotate_from_scores_errors_in_one_line(tmp_path, capsys):
    from mer_ray import cli

    video = str(tmp_path / "two.mp4")
    (tmp_path / "two.mp4").write_bytes(b"x")          # never opened: the checks come first
    scores = _score_output(tmp_path, video)
    other = tmp_path / "other.mp4"
    other.write_bytes(b"x")
    cases = [(["annotate", str(other), "--scores", scores, "-o", str(tmp_path / "o.mp4")], 1,
              "no segments for video .*other.mp4.*known videos: two \\(two.mp4\\)"),
             (["annotate", video, "--scores", scores, "--visual", "default", "-o",
               str(tmp_path / "o.mp4")], 2, "takes no --visual / --audio"),
             (["annotate", video, "--scores", str(tmp_path), "-o", str(tmp_path / "o.mp4")], 1,
              "no segments in .*run `mer-ray score` with --segments"),   # scores/ but no segments/
             (["annotate", video, "--scores", str(tmp_path / "scores" / "scores"), "-o",
               str(tmp_path / "o.mp4")], 1, "not a `mer-ray score` output")]
    import re

    for argv, code, expected in cases:
        assert cli.main(argv) == code
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and re.search(expected, err), err
    assert not (tmp_path / "o.mp4").exists()
