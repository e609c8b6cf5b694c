"""mer_ray.report.timeline_plot: the per-video emotion timeline PNG."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mer_ray.report.timeline_plot import DPI, figure_size, plot_timeline
from mer_ray.score.segments import segment_rows, segments_table
from mer_ray.score.windows import segment_windows


def _png_size(path) -> tuple[int, int]:
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _expected(n_tracks: int, n_lanes: int) -> tuple[int, int]:
    w, h = figure_size(n_tracks, n_lanes)
    return round(w * DPI), round(h * DPI)


def _rows(video_id="v", seconds=12.0, tracks=(0, 1), audio=True, seed=0,
          hop=None) -> list[dict]:
    """Segment rows of random probabilities: face keyframes every 0.5 s per track (faceless
    ones without tracks), audio in every window but the second (none at all without audio)."""
    rng = np.random.default_rng(seed)
    wins = segment_windows(seconds, 3.0, hop)
    ts = np.repeat(np.arange(0.25, seconds, 0.5), max(1, len(tracks)))
    ids = np.tile(list(tracks) or [None], len(ts) // max(1, len(tracks))).tolist()
    probs = rng.dirichlet(np.ones(7) * 0.4, len(ts))
    sound = [rng.dirichlet(np.ones(7)) if audio and k != 1 else None for k in range(len(wins))]
    speech = [(0.9 if s is not None else 0.0) if audio else None for s in sound]
    return segment_rows(video_id, wins, ts, probs, sound, speech, track_ids=ids)


def _segments(*args, **kwargs) -> pd.DataFrame:
    return pd.DataFrame(_rows(*args, **kwargs))


def _via_parquet(rows: list[dict], tmp_path) -> pd.DataFrame:
    """Rows through segments_table -> Parquet -> pandas, as a score output is read back."""
    pq.write_table(segments_table(rows), tmp_path / "seg.parquet")
    return pq.read_table(tmp_path / "seg.parquet").to_pandas()


def test_two_tracks_and_voice(tmp_path):
    df = _via_parquet(_rows("v") + _rows("other", seed=1), tmp_path)
    out = plot_timeline(df, "v", str(tmp_path / "t.png"))
    assert out == str(tmp_path / "t.png")
    assert _png_size(out) == _expected(2, 2) and _png_size(out)[0] == 1200


def test_keyframe_dots_with_and_without_track_ids(tmp_path):
    df = _segments("v", tracks=(0,))
    keyframes = pd.DataFrame({"timestamp_s": [0.5, 1.0, 4.0],
                              "probs": [np.full(7, 1 / 7), None, np.eye(7)[3]]})
    out = plot_timeline(df, "v", str(tmp_path / "k.png"), keyframes=keyframes)
    assert _png_size(out) == _expected(1, 1)
    keyframes["track_id"] = [0, -1, 0]
    assert _png_size(plot_timeline(df, "v", str(tmp_path / "k2.png"), keyframes)) == _expected(1, 1)


def test_no_audio(tmp_path):
    df = _via_parquet(_rows("v", tracks=(0,), audio=False), tmp_path)
    assert df["audio_probs"].isna().all()
    out = plot_timeline(df, "v", str(tmp_path / "a.png"))
    assert _png_size(out) == _expected(1, 1)


def test_no_faces_and_a_long_video(tmp_path):
    df = _via_parquet(_rows("v", seconds=600.0, tracks=(), hop=1.0), tmp_path)
    assert (df["track_id"] == -1).all()
    out = plot_timeline(df, "v", str(tmp_path / "f.png"))
    assert _png_size(out) == _expected(0, 1)
    assert _expected(0, 1)[1] < _expected(2, 2)[1]


def test_unknown_video_or_wrong_table_is_a_plain_error(tmp_path):
    df = _segments("v")
    with pytest.raises(ValueError, match="no segments for video 'nope'"):
        plot_timeline(df, "nope", str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="audio_probs"):
        plot_timeline(df.drop(columns=["audio_probs"]), "v", str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()
