"""score --segments on a long video in chunks: the same segment rows (and, with --faces all,
the same face track ids) as the whole-file path, one scores row per input, and a resumed run
that redoes only the missing chunks."""
from __future__ import annotations

import numpy as np
import pytest

from mer_ray.config import RayConfig, ScoreConfig
from mer_ray.media.options import ExtractOptions
from mer_ray.score.schema import SCORES_DIR, TIMELINE_DIR, scores_store
from mer_ray.score.segments import SEGMENTS_DIR

SECONDS, WINDOW, CHUNK = 24.0, 3.0, 8.0
KEYS = ("segment_index", "start_s", "end_s", "track_id", "n_keyframes", "fusion_mode",
        "emotion")
PROBS = ("visual_probs", "audio_probs", "probs", "speech_fraction", "confidence")


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    from mer_ray.sample.long_video import write_long_video

    root = tmp_path_factory.mktemp("long_archive")
    write_long_video(root / "long.mp4", seconds=SECONDS, width=160, height=120, fps=10.0,
                     audio_rate=8000)
    return root / "long.mp4"


def _cfg(source, out, bundles, hop=None) -> ScoreConfig:
    # redetect_every=1: a full-frame face search on every keyframe, so no face-tracker state
    # crosses a chunk boundary (see chunks.py on the default)
    return ScoreConfig(source=str(source), out=str(out), visual=bundles["visual"],
                       audio=bundles["audio"], timeline=True, videos_per_shard=1,
                       ray=RayConfig(num_cpus=2),
                       extract=ExtractOptions(skip=5, segment_s=WINDOW, hop_s=hop,
                                              redetect_every=1))


def _assert_same_segments(got: list[dict], want: list[dict]) -> None:
    key = lambda r: (r["segment_index"], r["track_id"])  # noqa: E731
    got, want = sorted(got, key=key), sorted(want, key=key)
    assert [tuple(r[k] for k in KEYS) for r in got] == [tuple(r[k] for k in KEYS) for r in want]
    for g, w in zip(got, want):
        for k in PROBS:
            assert (g[k] is None) == (w[k] is None), (g["segment_index"], k)
            if g[k] is not None:
                np.testing.assert_allclose(g[k], w[k], atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("hop", [None, 2.0])
def test_chunks_give_the_whole_file_segments(long_video, tiny_bundles, tmp_path, hop):
    from mer_ray.score.local import score_locally

    cfg = _cfg(long_video.parent, tmp_path, tiny_bundles, hop)
    row = [{"path": str(long_video), "video_id": "long"}]
    whole = score_locally(cfg, row, chunk_s=float("inf"))
    chunked = score_locally(cfg, row, chunk_s=CHUNK)
    assert whole[SEGMENTS_DIR].num_rows >= SECONDS / WINDOW
    _assert_same_segments(chunked[SEGMENTS_DIR].to_pylist(), whole[SEGMENTS_DIR].to_pylist())
    assert chunked[SCORES_DIR].num_rows == 1
    w, c = whole[SCORES_DIR].to_pylist()[0], chunked[SCORES_DIR].to_pylist()[0]
    assert (c["status"], c["keyframes"], c["faces"], c["dominant_emotion_time"]) == \
        (w["status"], w["keyframes"], w["faces"], w["dominant_emotion_time"])
    np.testing.assert_allclose(c["visual_probs"], w["visual_probs"], atol=1e-5)
    assert chunked[TIMELINE_DIR].column("frame_index").to_pylist() == \
        whole[TIMELINE_DIR].column("frame_index").to_pylist()


def test_face_tracks_keep_their_ids_across_chunk_boundaries(tiny_bundles, tmp_path):
    """--faces all, two faces, the right one sliding out across a chunk boundary: the chunked
    run's track ids, segment rows and timeline are the whole-file run's."""
    from mer_ray.sample.long_video import write_two_face_video
    from mer_ray.score.local import score_locally

    path = tmp_path / "two.mp4"
    write_two_face_video(path, seconds=6.0, leave_s=3.5, width=320, height=180, fps=10.0,
                         audio_rate=8000)
    cfg = ScoreConfig(source=str(tmp_path), out=str(tmp_path / "out"),
                      visual=tiny_bundles["visual"], timeline=True,
                      extract=ExtractOptions(skip=5, segment_s=1.0, face_mode="all",
                                             audio=False))
    row = [{"path": str(path), "video_id": "two"}]
    whole = score_locally(cfg, row, chunk_s=float("inf"))
    chunked = score_locally(cfg, row, chunk_s=2.0)                  # 3 chunks
    segments = whole[SEGMENTS_DIR].to_pylist()
    assert {r["track_id"] for r in segments} == {0, 1}
    assert max(r["segment_index"] for r in segments if r["track_id"] == 1) >= 3
    _assert_same_segments(chunked[SEGMENTS_DIR].to_pylist(), segments)
    pick = lambda t: [(e["frame_index"], e["track_id"], e["box"])  # noqa: E731
                      for e in t[TIMELINE_DIR].to_pylist()]
    assert pick(chunked) == pick(whole)
    assert chunked[SCORES_DIR].column("n_tracks").to_pylist() == [2]


@pytest.mark.slow
def test_a_killed_chunked_run_redoes_only_missing_chunks(long_video, tiny_bundles, ray_local,
                                                         tmp_path, monkeypatch):
    from mer_ray.score import chunks
    from mer_ray.score.job import run_score
    from mer_ray.score.local import score_locally

    from mer_ray.media.video import probe_duration

    monkeypatch.setattr(chunks, "CHUNK_S", CHUNK)
    n_chunks = len(chunks.plan_chunks(probe_duration(str(long_video)), WINDOW, None, CHUNK))
    assert n_chunks > 2
    out = tmp_path / "out"
    cfg = _cfg(long_video.parent, out, tiny_bundles)
    summary = run_score(cfg)
    assert summary["rows"] == 1
    store = chunks.chunks_store(str(out))
    committed = store.read(chunks.CHUNKS_DIR, columns=["path"]).column("path").to_pylist()
    assert len(committed) == len(set(committed)) == n_chunks
    # "kill": the video's merged row and one chunk never committed
    for name in (SCORES_DIR, SEGMENTS_DIR, TIMELINE_DIR):
        for part in (out / name).glob("part-*.parquet"):
            part.unlink()
    parts = sorted((out / chunks.CHUNKS_DIR).glob("part-*.parquet"))
    parts[0].unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in parts[1:]}
    again = run_score(cfg)
    assert (out / chunks.CHUNKS_DIR / parts[0].name).exists()          # the missing chunk redone
    assert {p.name: p.stat().st_mtime_ns for p in parts[1:]} == kept   # the others untouched
    assert again["rows"] == 1
    committed = store.read(chunks.CHUNKS_DIR, columns=["path"]).column("path").to_pylist()
    assert len(committed) == len(set(committed)) == n_chunks
    segments = scores_store(str(out)).read(SEGMENTS_DIR).to_pylist()
    keys = [(r["segment_index"], r["track_id"]) for r in segments]
    assert len(keys) == len(set(keys)) == again["segments"]
    local = score_locally(cfg, [{"path": str(long_video), "video_id": "long"}],
                          chunk_s=float("inf"))
    _assert_same_segments(segments, local[SEGMENTS_DIR].to_pylist())
