"""`mer-ray plot-timeline SCORES VIDEO_ID -o PNG` on hand-made segment shards (no Ray)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mer_ray import cli
from mer_ray.data.shards import ShardStore
from mer_ray.report.timeline_plot import DPI, figure_size
from mer_ray.score.schema import SCHEMAS, SCORES_DIR, SCORES_SCHEMA, TIMELINE_DIR, TIMELINE_SCHEMA
from mer_ray.score.segments import SEGMENTS_DIR, SEGMENTS_SCHEMA, segment_rows, segments_table
from mer_ray.score.windows import segment_windows


def video_rows(path: str, video_id: str, tracks=(0, 1), seconds: float = 9.0, seed: int = 0):
    """Segment rows of one video: 3 s windows, keyframes every 0.5 s per track."""
    rng = np.random.default_rng(seed)
    wins = segment_windows(seconds, 3.0)
    ts = np.repeat(np.arange(0.25, seconds, 0.5), len(tracks))
    ids = np.tile(list(tracks), len(ts) // len(tracks)).tolist()
    sound = [rng.dirichlet(np.ones(7)) for _ in wins]
    return segment_rows(video_id, wins, ts, rng.dirichlet(np.ones(7), len(ts)), sound,
                        [0.9] * len(wins), track_ids=ids, path=path)


def write_scores(out, videos: dict[str, tuple[str, list[dict]]], keyframes: list[dict] = (),
                 segments: bool = True) -> None:
    """A score output: one committed shard per video (scores + segments [+ timeline])."""
    schemas = {**SCHEMAS, SEGMENTS_DIR: SEGMENTS_SCHEMA}
    store = ShardStore(str(out), schemas, primary=SCORES_DIR)
    for k, (path, (video_id, rows)) in enumerate(videos.items()):
        tables = {SCORES_DIR: pa.Table.from_pylist(
            [{"path": path, "video_id": video_id, "status": "ok"}], schema=SCORES_SCHEMA)}
        if segments:
            tables[SEGMENTS_DIR] = segments_table(rows)
        mine = [r for r in keyframes if r["path"] == path]
        if mine:
            tables[TIMELINE_DIR] = pa.Table.from_pylist(mine, schema=TIMELINE_SCHEMA)
        store.write_shard(f"shard{k}", tables)


def _png_size(path) -> tuple[int, int]:
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture
def scores(tmp_path):
    a, b = str(tmp_path / "in" / "a.mp4"), str(tmp_path / "in" / "b.mp4")
    write_scores(tmp_path / "scores", {a: ("id_a", video_rows(a, "id_a")),
                                       b: ("id_b", video_rows(b, "id_b", tracks=(0,)))})
    return tmp_path / "scores", a, b


def test_plots_the_video_named_by_id_or_path(scores, tmp_path, capsys):
    out_dir, a, b = scores
    png = tmp_path / "pics" / "a.png"                 # a folder that does not exist yet
    assert cli.main(["plot-timeline", str(out_dir), "id_a", "-o", str(png)]) == 0
    w, h = figure_size(2, 2)
    assert _png_size(png) == (round(w * DPI), round(h * DPI))      # two face tracks
    assert "3 segments, 2 face track(s)" in capsys.readouterr().out
    assert cli.main(["plot-timeline", str(out_dir), b, "-o", str(tmp_path / "b.png")]) == 0
    w, h = figure_size(1, 1)
    assert _png_size(tmp_path / "b.png") == (round(w * DPI), round(h * DPI))
    capsys.readouterr()
    assert cli.main(["plot-timeline", str(out_dir), "b", "-o", str(tmp_path / "b2.png")]) == 0
    assert "b.mp4: 3 segments, 1 face track(s)" in capsys.readouterr().out   # the name's stem


def test_keyframes_of_the_timeline_are_passed(tmp_path, monkeypatch):
    a = str(tmp_path / "a.mp4")
    keyframes = [{"path": a, "video_id": "id_a", "frame_index": i, "timestamp_s": i / 2,
                  "has_face": True, "box": [1, 2, 3, 4], "probs": list(np.eye(7)[i % 7]),
                  "track_id": 0} for i in range(6)]
    write_scores(tmp_path / "s", {a: ("id_a", video_rows(a, "id_a", tracks=(0,)))}, keyframes)
    seen = {}

    def fake_plot(segments, video_id, out_png, keyframes=None, title=None):
        seen.update(video_id=video_id, keyframes=keyframes, n=len(segments))
        open(out_png, "wb").close()

    monkeypatch.setattr("mer_ray.report.timeline_plot.plot_timeline", fake_plot)
    assert cli.main(["plot-timeline", str(tmp_path / "s"), "a.mp4", "-o",
                     str(tmp_path / "t.png")]) == 0
    assert seen["video_id"] == "id_a" and seen["n"] == 3
    assert list(seen["keyframes"]["frame_index"]) == list(range(6))


@pytest.mark.parametrize("case, expected", [
    ("unknown", "no segments for video nope in .*known videos: id_a \\(a.mp4\\), id_b \\(b.mp4\\)"),
    ("no_segments", "no segments in .*run `mer-ray score` with --segments"),
    ("out_is_folder", "-o .* is a folder"),
    ("out_in_a_file", "is a file, not a folder"),
    ("not_scores", "not a `mer-ray score` output"),
])
def test_one_line_errors(scores, tmp_path, capsys, case, expected):
    import re

    out_dir, a, _ = scores
    args = [str(out_dir), "nope" if case == "unknown" else "id_a", "-o", str(tmp_path / "x.png")]
    if case == "no_segments":
        write_scores(tmp_path / "plain", {a: ("id_a", [])}, segments=False)
        args[0] = str(tmp_path / "plain")
    elif case == "out_is_folder":
        args[3] = str(tmp_path)
    elif case == "out_in_a_file":
        (tmp_path / "file").write_text("x")
        args[3] = str(tmp_path / "file" / "x.png")
    elif case == "not_scores":
        args[0] = str(tmp_path / "in")
        (tmp_path / "in").mkdir(exist_ok=True)
    assert cli.main(["plot-timeline", *args]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("mer-ray plot-timeline: error: ")
    assert re.search(expected, err), err
    assert not (tmp_path / "x.png").exists()
