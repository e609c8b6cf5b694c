"""mer_ray.media.tracks: greedy IoU linking of face boxes into tracks with stable ids."""
from __future__ import annotations

import pytest

from mer_ray.media.tracks import iou, link_tracks, relink, track_spans

LEFT, RIGHT = (20, 40, 80, 80), (220, 40, 80, 80)


def _times(n: int) -> list[float]:
    return [k * 0.4 for k in range(n)]


def _shift(box, dx: int, dy: int = 0):
    x, y, w, h = box
    return (x + dx, y + dy, w, h)


def test_iou():
    assert iou(LEFT, LEFT) == 1.0 and iou(LEFT, RIGHT) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_two_static_faces_keep_two_ids_in_order_of_appearance():
    frames = [[LEFT, RIGHT]] * 5 + [[RIGHT, LEFT]] * 5      # listing order changes
    ids = link_tracks(frames, _times(10))
    assert ids[:5] == [[0, 1]] * 5 and ids[5:] == [[1, 0]] * 5


def test_jitter_keeps_the_id():
    jitter = [(3, -2), (-4, 1), (2, 4), (-3, -3), (5, 0), (0, 2)]
    frames = [[_shift(LEFT, dx, dy), _shift(RIGHT, -dx, dy)] for dx, dy in jitter]
    assert link_tracks(frames, _times(len(frames))) == [[0, 1]] * len(frames)


def test_a_face_that_leaves_ends_its_track_and_a_new_face_gets_a_new_id():
    frames = [[LEFT, RIGHT]] * 4 + [[LEFT]] * 5 + [[LEFT, RIGHT]] * 2
    ids = link_tracks(frames, _times(len(frames)), max_gap=2)
    assert ids[:4] == [[0, 1]] * 4 and ids[4:9] == [[0]] * 5
    assert ids[9:] == [[0, 2]] * 2                          # back after 5 keyframes: new id
    spans = track_spans(ids, _times(len(frames)))
    assert spans[1] == (0.0, pytest.approx(1.2), 4)
    assert spans[2][0] == pytest.approx(3.6) and spans[0][2] == 11


def test_a_short_miss_within_max_gap_keeps_the_id():
    frames = [[LEFT, RIGHT], [LEFT], [LEFT], [LEFT, RIGHT], [RIGHT]]
    assert link_tracks(frames, _times(5), max_gap=2) == [[0, 1], [0], [0], [0, 1], [1]]
    assert link_tracks(frames, _times(5), max_gap=1) == [[0, 1], [0], [0], [0, 2], [2]]
    assert link_tracks(frames, _times(5), max_gap=0)[3] == [0, 2]


def test_crossing_faces_follow_their_motion():
    """Two faces walk past each other in 12 px steps; each id stays with its own face."""
    steps = range(0, 17)
    frames = [[_shift(LEFT, 12 * k, 4), _shift(RIGHT, -12 * k, -4)] for k in steps]
    ids = link_tracks(frames, _times(len(frames)))
    assert all(row == [0, 1] for row in ids)


def test_jump_too_far_is_a_new_track():
    frames = [[LEFT], [_shift(LEFT, 70)]]                   # IoU ~ 0.07 < 0.3
    assert link_tracks(frames, _times(2)) == [[0], [1]]
    assert link_tracks(frames, _times(2), iou_min=0.05) == [[0], [0]]


def test_duplicate_box_of_a_linked_face_gets_no_track():
    frames = [[LEFT], [LEFT, _shift(LEFT, 2, 2)], [LEFT]]
    assert link_tracks(frames, _times(3)) == [[0], [0, None], [0]]


def test_highest_iou_first():
    a, b = (100, 100, 80, 80), (130, 100, 80, 80)
    frames = [[a, b], [_shift(b, 4)]]                       # closer to b's track than to a's
    assert link_tracks(frames, _times(2)) == [[0, 1], [1]]


def test_empty_inputs_and_bad_arguments():
    assert link_tracks([], []) == []
    assert link_tracks([[], [], [LEFT]], _times(3)) == [[], [], [0]]
    with pytest.raises(ValueError, match="one timestamp per keyframe"):
        link_tracks([[LEFT]], [0.0, 1.0])
    with pytest.raises(ValueError, match="decrease"):
        link_tracks([[LEFT], [LEFT]], [1.0, 0.5])
    with pytest.raises(ValueError, match="iou_min"):
        link_tracks([[LEFT]], [0.0], iou_min=0)
    with pytest.raises(ValueError, match="max_gap"):
        link_tracks([[LEFT]], [0.0], max_gap=-1)


def _flat(frames, ids):
    """The faces one link_tracks pass kept, as a flat list (box, keyframe, id)."""
    return [(box, k, tid) for k, (boxes, tids) in enumerate(zip(frames, ids))
            for box, tid in zip(boxes, tids) if tid is not None]


def test_relink_of_the_kept_faces_gives_the_pass_s_ids():
    frames = ([[LEFT, RIGHT]] * 3 + [[_shift(RIGHT, 1), _shift(LEFT, 2, 2), LEFT]]
              + [[], [LEFT]] + [[LEFT, _shift(RIGHT, 90)]] * 2)
    ids = link_tracks(frames, _times(len(frames)))
    assert None in ids[3] and ids[6] == [0, 2]           # a duplicate, and a new face
    kept = _flat(frames, ids)
    assert relink([b for b, _, _ in kept], [k for _, k, _ in kept], _times(len(frames))) == \
        [t for _, _, t in kept]


def test_relink_joins_tracks_that_separate_passes_numbered_apart():
    """Two passes over halves of the keyframes (as chunks of a long video link their own
    faces): relinking all their faces gives the ids of one pass over the whole."""
    frames = [[_shift(LEFT, 12 * k), _shift(RIGHT, -12 * k)] for k in range(6)]
    frames += [[_shift(LEFT, 12 * k)] for k in range(6, 10)]
    times = _times(len(frames))
    halves = [link_tracks(frames[:5], times[:5]), link_tracks(frames[5:], times[5:])]
    assert halves[1][0] == [0, 1]                        # the second pass starts again at 0
    kept = _flat(frames, halves[0] + halves[1])
    got = relink([b for b, _, _ in kept], [k for _, k, _ in kept], times)
    assert got == [t for _, _, t in _flat(frames, link_tracks(frames, times))]
    assert got[:12] == [0, 1] * 6 and got[12:] == [0] * 4


def test_relink_gives_a_duplicate_the_id_of_the_face_it_doubles():
    # kept as two faces by a pass without the track that made the second one a duplicate
    boxes = [_shift(LEFT, 4), LEFT, _shift(LEFT, 6, 1)]
    assert relink(boxes, [0, 1, 1], _times(2)) == [0, 0, 0]


def test_relink_bad_arguments():
    with pytest.raises(ValueError, match="one keyframe position per face"):
        relink([LEFT], [0, 0], _times(1))
    with pytest.raises(ValueError, match="keyframe 3, but there are 2"):
        relink([LEFT], [3], _times(2))
