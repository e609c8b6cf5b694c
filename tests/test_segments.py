"""mer_ray.score.segments: per-window audio, per-(window, track) rows, the summary over time."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mer_ray.config import EMOTIONS
from mer_ray.score.fusion import FusionWeights, fuse
from mer_ray.score.segments import (NO_TRACK, SEGMENTS_SCHEMA, segment_rows, segments_table,
                                    summarize_over_time, window_audio_probs)
from mer_ray.score.windows import segment_windows

SR = 1000


def _onehot(emotion: str, p: float = 0.7) -> np.ndarray:
    v = np.full(7, (1 - p) / 6)
    v[EMOTIONS.index(emotion)] = p
    return v


def _loud_fraction(y: np.ndarray, sr: int) -> float:
    """Stub voice activity: share of samples above 0.1."""
    return float(np.mean(np.abs(y) > 0.1))


def test_window_audio_probs_skips_silence_and_predicts_in_one_batch():
    y = np.zeros(10 * SR, np.float32)
    y[0:3 * SR] = 0.5                     # window 0: all speech
    y[3 * SR:3 * SR + 300] = 0.5          # window 1: 10 % speech < 0.2
    y[6 * SR:9 * SR:2] = 0.5              # window 2: 50 %
    calls = []

    def featurize(samples, sr):
        return np.array([np.abs(samples).mean(), samples.size / sr])

    def predict(x):
        calls.append(x.copy())
        return np.tile(_onehot("angry"), (len(x), 1))

    wins = segment_windows(10.0, 3.0)
    probs, fractions = window_audio_probs(y, SR, wins, featurize, predict, _loud_fraction)
    assert fractions == pytest.approx([1.0, 0.1, 0.5, 0.0])
    assert [p is None for p in probs] == [False, True, False, True]
    assert len(calls) == 1 and calls[0].shape == (2, 2)
    assert calls[0][:, 1].tolist() == [3.0, 3.0]          # each window's own samples
    short = window_audio_probs(y[:4 * SR], SR, wins, featurize, predict, _loud_fraction)
    assert short[1][2:] == [None, None]                   # past the audio's end: no audio
    assert window_audio_probs(None, SR, wins, featurize, predict) == ([None] * 4, [None] * 4)


def test_window_audio_probs_all_silent_never_calls_the_model():
    def predict(x):
        raise AssertionError("no window has speech")

    probs, fractions = window_audio_probs(np.zeros(5 * SR), SR, segment_windows(5.0, 2.5),
                                          lambda s, sr: s[:3], predict, _loud_fraction)
    assert probs == [None, None] and fractions == [0.0, 0.0]


def test_window_audio_probs_checks_the_model_output():
    with pytest.raises(ValueError, match="predict returned shape"):
        window_audio_probs(np.ones(3 * SR), SR, [(0.0, 3.0)], lambda s, sr: s[:2],
                           lambda x: np.ones((len(x), 3)), _loud_fraction)


def _two_track_video():
    """6 s, 3 s windows; track 0 happy all along, track 1 sad in the first window only;
    a faceless keyframe at 4.5 s."""
    ts = [0.5, 0.5, 1.5, 1.5, 3.5, 4.5, 5.5]
    tracks = [0, 1, 0, 1, 0, None, 0]
    probs = np.stack([_onehot("happy"), _onehot("sad"), _onehot("happy", 0.9), _onehot("sad"),
                      _onehot("happy"), np.zeros(7), _onehot("happy")])
    return ts, tracks, probs


def test_rows_per_window_and_track_with_the_window_audio_vote():
    ts, tracks, probs = _two_track_video()
    wins = segment_windows(6.0, 3.0)
    audio = [_onehot("sad", 0.8), None]
    rows = segment_rows("v", wins, ts, probs, audio, [0.9, 0.05], track_ids=tracks, path="a.mp4")
    assert [(r["segment_index"], r["track_id"]) for r in rows] == [(0, 0), (0, 1), (1, 0)]
    first, second, third = rows
    assert first["n_keyframes"] == 2 and third["n_keyframes"] == 2
    assert first["visual_probs"] == pytest.approx((probs[0] + probs[2]) / 2)
    expected = fuse(probs[[0, 2]], audio[0], FusionWeights())
    assert first["probs"] == pytest.approx(expected.probs)
    assert first["fusion_mode"] == second["fusion_mode"] == "audio_visual"
    assert first["audio_probs"] == second["audio_probs"] == pytest.approx(audio[0])
    assert second["emotion"] == "sad"
    assert third["fusion_mode"] == "visual_only" and third["audio_probs"] is None
    assert third["emotion"] == "happy" and third["speech_fraction"] == pytest.approx(0.05)
    assert (first["start_s"], first["end_s"], third["start_s"]) == (0.0, 3.0, 3.0)
    assert first["path"] == "a.mp4" and first["confidence"] == pytest.approx(max(expected.probs))


def test_window_without_faces_gets_one_no_track_row():
    wins = segment_windows(9.0, 3.0)
    ts = [0.5, 3.5, 4.0]
    rows = segment_rows("v", wins, ts, np.stack([_onehot("fear")] * 3),
                        [None, None, _onehot("angry")], [0.0, 0.0, 0.7],
                        track_ids=[0, None, None])
    assert [(r["segment_index"], r["track_id"]) for r in rows] == [(0, 0), (1, NO_TRACK),
                                                                   (2, NO_TRACK)]
    assert rows[1]["fusion_mode"] == "none" and rows[1]["emotion"] is None
    assert rows[1]["n_keyframes"] == 0 and rows[1]["probs"] is None
    assert rows[2]["fusion_mode"] == "audio_only" and rows[2]["emotion"] == "angry"


def test_default_track_is_0_and_shapes_are_checked():
    rows = segment_rows("v", [(0.0, 2.0)], [0.1], _onehot("happy")[None], [None], [None])
    assert rows[0]["track_id"] == 0 and rows[0]["fusion_mode"] == "visual_only"
    with pytest.raises(ValueError, match="visual_probs"):
        segment_rows("v", [(0.0, 2.0)], [0.1, 0.2], _onehot("happy")[None], [None], [None])
    with pytest.raises(ValueError, match="per window"):
        segment_rows("v", [(0.0, 2.0)], [], None, [], [])


def test_table_has_the_schema_and_survives_parquet(tmp_path):
    import pyarrow.parquet as pq

    ts, tracks, probs = _two_track_video()
    rows = segment_rows("v", segment_windows(6.0, 3.0), ts, probs, [_onehot("sad"), None],
                        [0.9, None], track_ids=tracks)
    table = segments_table(rows)
    assert table.schema == SEGMENTS_SCHEMA and table.num_rows == 3
    pq.write_table(table, tmp_path / "s.parquet")
    back = pq.read_table(tmp_path / "s.parquet")
    assert back.schema == SEGMENTS_SCHEMA
    assert back.column("track_id").to_pylist() == [0, 1, 0]
    assert back.column("audio_probs").type == pa.list_(pa.float32())


def _row(k, start, end, track, emotion, speech=None):
    return {"segment_index": k, "start_s": start, "end_s": end, "track_id": track,
            "emotion": emotion, "speech_fraction": speech}


def test_summary_shares_of_time_dominant_tracks_and_speech():
    rows = [_row(0, 0.0, 3.0, 0, "happy", 1.0), _row(0, 0.0, 3.0, 1, "sad", 1.0),
            _row(1, 3.0, 6.0, 0, "happy", 0.0), _row(2, 6.0, 7.0, NO_TRACK, None, 0.5)]
    s = summarize_over_time(rows)
    assert s["time_share"]["happy"] == pytest.approx(6 / 9)
    assert s["time_share"]["sad"] == pytest.approx(3 / 9)
    assert set(s["time_share"]) == set(EMOTIONS) and s["time_share"]["fear"] == 0.0
    assert s["dominant_emotion"] == "happy" and s["n_tracks"] == 2
    assert s["speech_fraction"] == pytest.approx((3 * 1.0 + 3 * 0.0 + 1 * 0.5) / 7)
    assert s["labelled_s"] == pytest.approx(9.0)


def test_summary_with_overlapping_windows_counts_time_once():
    wins = segment_windows(5.0, 3.0, 1.0)            # [0,3] [1,4] [2,5]
    labels = ["angry", "angry", "neutral"]
    rows = [_row(k, s, e, 0, lab, 1.0) for k, ((s, e), lab) in enumerate(zip(wins, labels))]
    s = summarize_over_time(rows)
    assert s["labelled_s"] == pytest.approx(5.0)
    assert s["time_share"]["angry"] == pytest.approx(3.0 / 5.0)   # owned: [0,2] + [2,3]


def test_summary_of_nothing():
    s = summarize_over_time([_row(0, 0.0, 3.0, NO_TRACK, None)])
    assert s["dominant_emotion"] is None and s["n_tracks"] == 0
    assert s["speech_fraction"] is None and sum(s["time_share"].values()) == 0.0
    assert summarize_over_time([])["labelled_s"] == 0.0
