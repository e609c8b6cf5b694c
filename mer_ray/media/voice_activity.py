"""Where a signal holds voice: an energy-based speech mask, pure NumPy.

A frame (``frame_s``, 30 ms) counts as speech when its level (standard deviation, so a DC
offset is not energy) is above both an absolute floor (``ABS_FLOOR_DBFS``: digital silence,
dither and faint hiss never count) and a level relative to the clip's loud frames
(``REL_DB`` below the 95th percentile of frame levels: pauses between words do not count).
It is an energy check, not a voice classifier: steady loud noise or music counts as speech.

Extraction gives a clip no audio vector (so no audio vote in fusion) when
:func:`has_speech` is False: silence would otherwise be scored as an emotion.
"""
from __future__ import annotations

import numpy as np

FRAME_S = 0.03
ABS_FLOOR_DBFS = -55.0        # frame level (re full scale 1.0) below which nothing is speech
REL_DB = 30.0                 # ... nor anything this far below the clip's loud frames
LOUD_PERCENTILE = 95.0
MIN_SPEECH_FRACTION = 0.05    # has_speech: at least 5 % of the frames ...
MIN_SPEECH_S = 0.2            # ... and 0.2 s in all


def frame_levels(y: np.ndarray, sr: int, frame_s: float = FRAME_S) -> np.ndarray:
    """Standard deviation of each non-overlapping ``frame_s`` frame of mono ``y`` (the last,
    shorter frame included); empty for an empty signal."""
    y = np.asarray(y, np.float32).ravel()
    step = max(1, int(round(frame_s * sr)))
    n = -(-len(y) // step)
    if n == 0:
        return np.zeros(0, np.float32)
    padded = np.full(n * step, np.nan, np.float32)
    padded[:len(y)] = y
    return np.nanstd(padded.reshape(n, step), axis=1)


def speech_mask(y: np.ndarray, sr: int, frame_s: float = FRAME_S) -> np.ndarray:
    """One bool per ``frame_s`` frame of ``y``: True where the frame's level is above
    ``ABS_FLOOR_DBFS`` and within ``REL_DB`` of the clip's 95th-percentile frame level."""
    levels = frame_levels(y, sr, frame_s)
    if levels.size == 0:
        return np.zeros(0, bool)
    floor = 10 ** (ABS_FLOOR_DBFS / 20)
    loud = float(np.percentile(levels, LOUD_PERCENTILE))
    return levels > max(floor, loud * 10 ** (-REL_DB / 20))


def speech_fraction(y: np.ndarray, sr: int, frame_s: float = FRAME_S) -> float:
    """The share of ``y``'s frames that are speech (0.0 for an empty signal)."""
    mask = speech_mask(y, sr, frame_s)
    return float(mask.mean()) if mask.size else 0.0


def enough_speech(mask: np.ndarray, frame_s: float = FRAME_S) -> bool:
    """Whether a :func:`speech_mask` holds enough speech to vote on: at least
    MIN_SPEECH_FRACTION of the frames and MIN_SPEECH_S seconds in all."""
    mask = np.asarray(mask, bool)
    return bool(mask.size) and float(mask.mean()) >= MIN_SPEECH_FRACTION \
        and float(mask.sum()) * frame_s >= MIN_SPEECH_S


def has_speech(y: np.ndarray, sr: int, frame_s: float = FRAME_S) -> bool:
    """:func:`enough_speech` of ``y``'s speech mask."""
    return enough_speech(speech_mask(y, sr, frame_s), frame_s)
