"""mer_ray.score.windows: fixed segment windows, keyframes per window, owned spans."""
from __future__ import annotations

import pytest

from mer_ray.score.windows import assign_to_windows, owned_spans, segment_windows


def test_side_by_side_windows_and_a_clipped_last_one():
    assert segment_windows(10.0, 3.0) == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0), (9.0, 10.0)]
    assert segment_windows(9.0, 3.0) == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0)]
    assert segment_windows(9.0004, 3.0) == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0)]   # < 1 ms
    assert segment_windows(9.002, 3.0)[-1] == (9.0, 9.002)


def test_overlapping_windows_stop_at_the_first_that_reaches_the_end():
    wins = segment_windows(10.0, 3.0, 1.0)
    assert wins == [(float(s), float(s + 3)) for s in range(8)]
    wins = segment_windows(10.5, 3.0, 1.0)
    assert len(wins) == 9 and wins[-1] == (8.0, 10.5)
    assert segment_windows(10.0, 3.0, 5.0) == [(0.0, 3.0), (5.0, 8.0)]          # gaps


def test_short_and_empty_videos():
    assert segment_windows(1.25, 3.0) == [(0.0, 1.25)]
    assert segment_windows(0.0, 3.0) == []


def test_no_float_drift_over_an_hour():
    wins = segment_windows(3600.0, 0.1)
    assert len(wins) == 36000
    assert wins[2999] == (299.9, 300.0) and wins[-1] == (3599.9, 3600.0)
    assert all(b == a for (_, a), (b, _) in zip(wins, wins[1:]))


@pytest.mark.parametrize("args, word", [((10, 0), "window"), ((10, -1), "window"),
                                        ((10, 3, 0), "hop"), ((10, 3, -2), "hop"),
                                        ((-1, 3), "duration"), ((10, float("nan")), "window"),
                                        ((10, 3, float("inf")), "hop")])
def test_bad_arguments_are_plain_value_errors(args, word):
    with pytest.raises(ValueError, match=word):
        segment_windows(*args)


def test_assign_is_half_open_and_handles_overlap_and_order():
    wins = [(0.0, 3.0), (3.0, 6.0), (6.0, 7.5)]
    ts = [0.0, 2.999, 3.0, 5.9996, 6.5, 7.5, 1.0]    # 5.9996 rounds to 6.000 s
    assert assign_to_windows(ts, wins) == [[0, 1, 6], [2], [3, 4]]
    overlap = segment_windows(6.0, 3.0, 1.0)
    assert assign_to_windows([2.5], overlap) == [[0], [0], [0], []]
    assert assign_to_windows([], wins) == [[], [], []]
    with pytest.raises(ValueError, match="finite"):
        assign_to_windows([float("nan")], wins)


def test_owned_spans_partition_the_covered_time():
    side = segment_windows(10.0, 3.0)
    assert owned_spans(side) == side
    spans = owned_spans(segment_windows(10.0, 3.0, 1.0))
    assert spans[0] == (0.0, 2.0) and spans[1] == (2.0, 3.0) and spans[-1] == (8.0, 10.0)
    assert sum(e - s for s, e in spans) == pytest.approx(10.0)
    tail = owned_spans(segment_windows(10.5, 3.0, 1.0))
    assert tail[-2:] == [(8.0, 9.0), (9.0, 10.5)]
    assert sum(e - s for s, e in tail) == pytest.approx(10.5)
    gaps = owned_spans(segment_windows(10.0, 3.0, 5.0))
    assert gaps == [(0.0, 3.0), (5.0, 8.0)]
