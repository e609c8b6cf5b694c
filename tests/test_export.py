"""export: a score output as a flat CSV (no list columns), scores or timeline."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from mer_ray.cli import main
from mer_ray.commands.export import flatten
from mer_ray.config import EMOTIONS
from mer_ray.score.schema import (SCORES_DIR, SCORES_SCHEMA, TIMELINE_DIR, TIMELINE_SCHEMA,
                                  scores_store)

PROBS = [0.1, 0.2, 0.3, 0.1, 0.1, 0.1, 0.1]


@pytest.fixture
def score_dir(tmp_path):
    """A score output with two inputs (one scored from both paths, one failed) and a timeline."""
    out = tmp_path / "scores"
    scores = pa.Table.from_pylist([
        {"path": "/data/b.mp4", "video_id": "b", "status": "ok", "fusion_mode": "audio_visual",
         "emotion": "fear", "confidence": 0.3, **{f"p_{e}": p for e, p in zip(EMOTIONS, PROBS)},
         "visual_probs": PROBS, "audio_probs": PROBS[::-1], "audio_input": [1.0] * 735},
        {"path": "/data/a.mp4", "video_id": "a", "status": "truncated", "fusion_mode": "none",
         "error": "cut short"},
    ], schema=SCORES_SCHEMA)
    timeline = pa.Table.from_pylist([
        {"path": "/data/b.mp4", "video_id": "b", "frame_index": 10, "timestamp_s": 0.33,
         "has_face": False},
        {"path": "/data/b.mp4", "video_id": "b", "frame_index": 0, "timestamp_s": 0.0,
         "has_face": True, "box": [1, 2, 30, 40], "emotion": "fear", "confidence": 0.3,
         "probs": PROBS},
    ], schema=TIMELINE_SCHEMA)
    scores_store(str(out)).write_shard("x", {SCORES_DIR: scores, TIMELINE_DIR: timeline})
    return out


def test_flatten_scores_one_column_per_class(score_dir):
    df = flatten(scores_store(str(score_dir)).read(SCORES_DIR).to_pandas())
    assert "audio_input" not in df and "visual_probs" not in df and "audio_probs" not in df
    visual = [f"visual_p_{e}" for e in EMOTIONS]
    audio = [f"audio_p_{e}" for e in EMOTIONS]
    cols = list(df.columns)
    assert cols[cols.index("visual_emotion") + 1:cols.index("visual_emotion") + 8] == visual
    row = df.set_index("path").loc["/data/b.mp4"]
    assert list(row[visual]) == pytest.approx(PROBS) and list(row[audio]) == pytest.approx(PROBS[::-1])
    assert df.set_index("path").loc["/data/a.mp4", visual].isna().all()
    assert not any(isinstance(v, (list, tuple)) for v in df.to_numpy().ravel())


def test_export_csv_scores_and_timeline(score_dir, tmp_path, capsys):
    csv = tmp_path / "out" / "scores.csv"
    assert main(["export", str(score_dir), "--csv", str(csv)]) == 0
    assert "2 inputs" in capsys.readouterr().out
    df = pd.read_csv(csv)
    assert list(df.path) == ["/data/a.mp4", "/data/b.mp4"]            # sorted by path
    assert df.loc[1, "p_fear"] == pytest.approx(0.3) and df.loc[1, "visual_p_fear"] == pytest.approx(0.3)
    assert df.loc[0, "error"] == "cut short" and pd.isna(df.loc[0, "p_fear"])
    assert main(["export", str(score_dir), "--csv", str(tmp_path / "t.csv"), "--timeline"]) == 0
    tl = pd.read_csv(tmp_path / "t.csv")
    assert list(tl.frame_index) == [0, 10]
    assert list(tl.loc[0, ["box_x", "box_y", "box_w", "box_h"]]) == [1, 2, 30, 40]
    assert tl.loc[0, "p_fear"] == pytest.approx(0.3) and pd.isna(tl.loc[1, "box_x"])


def test_export_to_stdout_and_errors(score_dir, tmp_path, capsys):
    assert main(["export", str(score_dir), "--csv", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("path,video_id,") and len(lines) == 3
    assert main(["export", str(tmp_path / "nothing"), "--csv", str(tmp_path / "x.csv")]) == 1
    assert "SCORES not found" in capsys.readouterr().err
    assert main(["export", str(score_dir), "--csv", str(tmp_path)]) == 1     # a folder
    assert not (tmp_path / "x.csv").exists()
