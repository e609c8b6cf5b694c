"""Per-segment, per-face-track emotion rows of one video and their summary over time.

Pure NumPy, no Ray and no models: the score job hands in what its stages computed.

* :func:`window_audio_probs`: the audio model's probabilities for each window (windows with
  too little speech get None: they cast no audio vote, rather than voting "neutral").
* :func:`segment_rows`: one row per (window, face track) with the mean visual probabilities of
  that track's keyframes in the window, the window's audio probabilities, and their Alg. 3.9
  fusion (``score.fusion.fuse``); a window without any face gets one row with track -1.
* :func:`summarize_over_time`: share of time per emotion, the dominant emotion by time, the
  number of face tracks and the speech fraction of the video.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from mer_ray.config import EMOTIONS, NUM_CLASSES
from mer_ray.score.fusion import FusionWeights, fuse
from mer_ray.score.windows import Window, assign_to_windows, owned_spans

NO_TRACK = -1
"""track_id of the row of a window in which no face was seen."""

MIN_SPEECH_FRACTION = 0.2
"""A window with less speech than this (share of its duration) has no audio vote."""

SEGMENTS_DIR = "segments"
"""Folder of a score output holding the segment rows (SEGMENTS_SCHEMA), one shard per part."""

_probs = pa.list_(pa.float32())

SEGMENTS_SCHEMA = pa.schema([
    ("path", pa.string()),
    ("video_id", pa.string()),
    ("segment_index", pa.int32()),        # 0-based window number in the video
    ("start_s", pa.float64()),
    ("end_s", pa.float64()),
    ("track_id", pa.int32()),             # face track (media.tracks), -1: no face in the window
    ("n_keyframes", pa.int32()),          # keyframes of this track in the window (0 for -1)
    ("visual_probs", _probs),             # mean over those keyframes (7), null without a face
    ("audio_probs", _probs),              # the window's audio (7), null: silent / no audio
    ("speech_fraction", pa.float32()),    # share of the window with voice, null without audio
    ("fusion_mode", pa.string()),         # audio_visual | visual_only | audio_only | none
    ("emotion", pa.string()),             # argmax of probs, null when mode is none
    ("confidence", pa.float32()),         # max of probs
    ("probs", _probs),                    # fused distribution (7), null when mode is none
])

Featurize = Callable[[np.ndarray, int], np.ndarray]
Predict = Callable[[np.ndarray], np.ndarray]
SpeechFraction = Callable[[np.ndarray, int], float]


def window_audio_features(y: np.ndarray | None, sr: int, windows: Sequence[Window],
                          featurize: Featurize,
                          speech_fraction_fn: SpeechFraction | None = None,
                          min_speech: float = MIN_SPEECH_FRACTION,
                          speech_mask: np.ndarray | None = None, frame_s: float = 0.03
                          ) -> tuple[list[np.ndarray | None], list[float | None]]:
    """The audio recipe's vector (``featurize(samples, sr)``) and the speech fraction of each
    window of the mono signal ``y``; None as vector where the window has less speech than
    ``min_speech`` (no audio vote), None for both without audio or past the audio's end.

    The fraction is measured on the window's samples with ``speech_fraction_fn`` (default:
    ``media.voice_activity.speech_fraction``), or, given ``speech_mask`` (one bool per
    ``frame_s`` frame of the whole of ``y``, e.g. ``voice_activity.speech_mask(y, sr)``), read
    from the frames the window covers: then a quiet window is judged against the loud parts
    of the whole track rather than against itself."""
    if y is None:
        return [None] * len(windows), [None] * len(windows)
    if speech_fraction_fn is None:
        from mer_ray.media.voice_activity import speech_fraction as speech_fraction_fn
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    features: list[np.ndarray | None] = []
    fractions: list[float | None] = []
    for start, end in windows:
        samples = y[round(start * sr):round(end * sr)]
        if not samples.size:
            fraction = None
        elif speech_mask is not None:
            lo = int(start / frame_s)
            frames = speech_mask[lo:max(lo + 1, int(np.ceil(end / frame_s)))]
            fraction = float(frames.mean()) if frames.size else None
        else:
            fraction = float(speech_fraction_fn(samples, sr))
        fractions.append(fraction)
        voiced = fraction is not None and fraction >= min_speech
        features.append(np.asarray(featurize(samples, sr), np.float32) if voiced else None)
    return features, fractions


def predict_windows(features: Sequence[np.ndarray | None], predict: Predict
                    ) -> list[np.ndarray | None]:
    """``predict`` (X -> (n, 7)) on the windows that have a vector, in one batch; None for
    the others."""
    voiced = [k for k, f in enumerate(features) if f is not None]
    probs: list[np.ndarray | None] = [None] * len(features)
    if voiced:
        out = np.asarray(predict(np.stack([features[k] for k in voiced])), dtype=np.float64)
        if out.shape != (len(voiced), NUM_CLASSES):
            raise ValueError(f"predict returned shape {out.shape} for {len(voiced)} windows, "
                             f"expected ({len(voiced)}, {NUM_CLASSES})")
        for k, row in zip(voiced, out):
            probs[k] = row
    return probs


def window_audio_probs(y: np.ndarray | None, sr: int, windows: Sequence[Window],
                       featurize: Featurize, predict: Predict,
                       speech_fraction_fn: SpeechFraction | None = None,
                       min_speech: float = MIN_SPEECH_FRACTION
                       ) -> tuple[list[np.ndarray | None], list[float | None]]:
    """Audio probabilities and speech fraction per window of the mono signal ``y``:
    :func:`window_audio_features`, then :func:`predict_windows` (``predict(X) -> (n, 7)``,
    one batch). Windows with speech below ``min_speech``, or without audio, get None."""
    features, fractions = window_audio_features(y, sr, windows, featurize, speech_fraction_fn,
                                                min_speech)
    return predict_windows(features, predict), fractions


def _track_array(track_ids: Sequence[int | None] | None, n: int) -> np.ndarray:
    if track_ids is None:
        return np.zeros(n, np.int64)
    ids = np.array([NO_TRACK if t is None else int(t) for t in track_ids], np.int64)
    if ids.shape != (n,):
        raise ValueError(f"need one track id per keyframe: {ids.size} for {n} keyframes")
    return ids


def _probs_list(p: np.ndarray | None) -> list[float] | None:
    return None if p is None else [float(v) for v in p]


def segment_rows(video_id: str, windows: Sequence[Window], timestamps: Sequence[float],
                 visual_probs: np.ndarray | None, audio_probs: Sequence[np.ndarray | None],
                 speech_fractions: Sequence[float | None],
                 track_ids: Sequence[int | None] | None = None,
                 weights: FusionWeights = FusionWeights(), path: str | None = None) -> list[dict]:
    """The segment rows (SEGMENTS_SCHEMA columns) of one video.

    ``timestamps`` / ``visual_probs`` (N, 7) / ``track_ids`` describe the keyframe faces: one
    entry per face (several per keyframe with ``--faces all``); ``track_ids`` None means one
    face per keyframe, track 0; a track id None or -1 (no face) is left out. ``audio_probs``
    and ``speech_fractions`` have one entry per window (None: no audio vote / no audio).
    Rows come per window, by track id; the audio vote applies to every track of the window."""
    ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    probs = (np.zeros((0, NUM_CLASSES)) if visual_probs is None
             else np.asarray(visual_probs, np.float64))
    if probs.shape != (ts.size, NUM_CLASSES):
        raise ValueError(f"visual_probs must be ({ts.size}, {NUM_CLASSES}), got {probs.shape}")
    if len(audio_probs) != len(windows) or len(speech_fractions) != len(windows):
        raise ValueError("need one audio entry and one speech fraction per window")
    ids = _track_array(track_ids, ts.size)
    rows = []
    for k, members in enumerate(assign_to_windows(ts, windows)):
        members = np.asarray(members, np.int64)
        present = sorted({int(t) for t in ids[members] if t != NO_TRACK}) or [NO_TRACK]
        for tid in present:
            frame_probs = probs[members[ids[members] == tid]] if tid != NO_TRACK else None
            rows.append(_row(video_id, path, k, windows[k], tid, frame_probs,
                             audio_probs[k], speech_fractions[k], weights))
    return rows


def _row(video_id: str, path: str | None, k: int, window: Window, tid: int,
         frame_probs: np.ndarray | None, audio: np.ndarray | None, speech: float | None,
         weights: FusionWeights) -> dict:
    result = fuse(frame_probs, audio, weights)
    return {
        "path": path, "video_id": video_id, "segment_index": k,
        "start_s": window[0], "end_s": window[1], "track_id": tid,
        "n_keyframes": 0 if frame_probs is None else len(frame_probs),
        "visual_probs": _probs_list(result.visual_probs),
        "audio_probs": _probs_list(result.audio_probs),
        "speech_fraction": None if speech is None else float(speech),
        "fusion_mode": result.mode, "emotion": result.emotion,
        "confidence": result.confidence, "probs": _probs_list(result.probs),
    }


def segments_table(rows: Sequence[dict]) -> pa.Table:
    """Segment rows as a table with exactly SEGMENTS_SCHEMA."""
    return pa.table({name: [row.get(name) for row in rows] for name in SEGMENTS_SCHEMA.names},
                     schema=SEGMENTS_SCHEMA)


def summarize_over_time(segment_rows: Sequence[dict]) -> dict:
    """The per-video summary of its segment rows (one video).

    Time counts each window for the stretch it stands for (``windows.owned_spans``: the window
    itself when windows do not overlap), once per face track, so with two people in view a
    second counts twice. ``time_share``: share of the labelled time per emotion (all 7 keys);
    ``dominant_emotion``: the largest share (None when nothing was labelled); ``n_tracks``:
    distinct face tracks; ``speech_fraction``: time-weighted over windows with audio (None
    without audio); ``labelled_s``: the time behind ``time_share``."""
    windows = sorted({(r["segment_index"], r["start_s"], r["end_s"]) for r in segment_rows})
    spans = dict(zip((w[0] for w in windows), owned_spans([(s, e) for _, s, e in windows])))
    seconds = dict.fromkeys(EMOTIONS, 0.0)
    for row in segment_rows:
        if row["emotion"] is not None:
            lo, hi = spans[row["segment_index"]]
            seconds[row["emotion"]] += hi - lo
    labelled = sum(seconds.values())
    share = {e: (s / labelled if labelled else 0.0) for e, s in seconds.items()}
    dominant = max(EMOTIONS, key=lambda e: (seconds[e], -EMOTIONS.index(e))) if labelled else None
    return {"time_share": share, "dominant_emotion": dominant,
            "n_tracks": len({r["track_id"] for r in segment_rows if r["track_id"] != NO_TRACK}),
            "speech_fraction": _speech_fraction(segment_rows, spans), "labelled_s": labelled}


def _speech_fraction(rows: Sequence[dict], spans: dict[int, Window]) -> float | None:
    per_window = {r["segment_index"]: r["speech_fraction"] for r in rows
                  if r["speech_fraction"] is not None}
    total = sum(spans[k][1] - spans[k][0] for k in per_window)
    if not per_window or total <= 0:
        return None
    return sum(f * (spans[k][1] - spans[k][0]) for k, f in per_window.items()) / total
