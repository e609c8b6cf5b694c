"""Fixed time windows over a video (``--segments W --hop H``) and the keyframes inside each.

All times are handled in whole milliseconds, so the same inputs always give the same windows
(no ``0.1 + 0.2`` drift over an hour) and a keyframe on a boundary falls on one side of it.

Rule: windows start at 0, H, 2H, ...; each is ``[start, min(start + W, duration)]``, and the
list stops at the first window that reaches the duration. So every instant of the video is in
a window when H <= W, all windows are W long except possibly the last, and that last, clipped
window is kept however short it is (it holds the end of the video). A video shorter than W is
one window ``[0, duration]``; a zero-length video has none. With H > W the gaps between
windows belong to no window.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Window = tuple[float, float]
"""(start_s, end_s), both multiples of 1 ms."""


def _ms(value: float, name: str, positive: bool) -> int:
    """``value`` seconds as whole milliseconds, with a plain error for a bad value."""
    if value is None or isinstance(value, bool) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    ms = round(float(value) * 1000)
    if positive and ms <= 0:
        raise ValueError(f"{name} must be at least 0.001 seconds, got {value!r}")
    if ms < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return ms


def segment_windows(duration_s: float, window_s: float, hop_s: float | None = None) -> list[Window]:
    """The windows of a ``duration_s`` video: ``window_s`` long, one every ``hop_s`` seconds
    (``None``: ``hop_s = window_s``, windows side by side). See the module docstring for the
    rule at the end. Raises ValueError for a window or hop <= 0 or a negative duration."""
    window = _ms(window_s, "segment window", positive=True)
    hop = window if hop_s is None else _ms(hop_s, "segment hop", positive=True)
    duration = _ms(duration_s, "video duration", positive=False)
    out: list[Window] = []
    start = 0
    while start < duration:
        end = min(start + window, duration)
        out.append((start / 1000, end / 1000))
        if end >= duration:
            break
        start += hop
    return out


def assign_to_windows(timestamps: Sequence[float], windows: Sequence[Window]) -> list[list[int]]:
    """For each window, the indices (ascending) of the ``timestamps`` in ``[start, end)``.

    Timestamps are rounded to the millisecond first, as the windows are. A keyframe is in every
    window that holds it (several when windows overlap, none in a gap or at/after the end)."""
    ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    if not np.isfinite(ts).all():
        raise ValueError("keyframe timestamps must be finite numbers of seconds")
    ms = np.round(ts * 1000).astype(np.int64)
    order = np.argsort(ms, kind="stable")
    sorted_ms = ms[order]
    out = []
    for start, end in windows:
        lo = np.searchsorted(sorted_ms, round(start * 1000), side="left")
        hi = np.searchsorted(sorted_ms, round(end * 1000), side="left")
        out.append(sorted(int(i) for i in order[lo:hi]))
    return out


def owned_spans(windows: Sequence[Window]) -> list[Window]:
    """The part of the timeline each window stands for, so that time shares add up to the
    covered time even when windows overlap: where two consecutive windows overlap, each owns
    its half of the overlap. With hop = window this is the window itself; with hop < window
    each full window owns the hop-long stretch around its centre."""
    out = []
    for k, (start, end) in enumerate(windows):
        lo, hi = start, end
        if k > 0 and start < windows[k - 1][1]:
            lo = (start + windows[k - 1][1]) / 2
        if k + 1 < len(windows) and windows[k + 1][0] < end:
            hi = (windows[k + 1][0] + end) / 2
        out.append((lo, max(lo, hi)))
    return out
