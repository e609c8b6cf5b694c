"""score --segments / --faces all: segment rows per (window, face track) from the score job and
its in-process twin, on generated videos with known emotions, faces and change times."""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mer_ray.config import EMOTIONS, RayConfig, ScoreConfig
from mer_ray.media.options import ExtractOptions
from mer_ray.score.fusion import FusionWeights
from mer_ray.score.job import check_same_run, run_record
from mer_ray.score.plan import resolve_plan
from mer_ray.score.rows import fuse_row, split_output, to_table, FUSED_SCHEMA
from mer_ray.score.schema import RUN_FILE, SCORES_DIR, TIMELINE_DIR, scores_store
from mer_ray.score.segments import SEGMENTS_DIR

FPS = 10.0
SECONDS = 24.0
WINDOW = 3.0


# --- fast: flags, run.json, rows ------------------------------------------------------
def _flags(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"segments": None, "hop": None, "faces": "largest",
                                 "max_faces": None, **kw})


@pytest.mark.parametrize("kw, message", [
    ({"segments": 0.0}, "--segments must be a number of seconds >= 0.001"),
    ({"segments": float("nan")}, "--segments must be"),
    ({"segments": 3.0, "hop": -1.0}, "--hop must be"),
    ({"hop": 1.0}, "--hop needs --segments"),
    ({"max_faces": 2}, "--max-faces needs --faces all"),
    ({"faces": "all", "max_faces": 0}, "--max-faces must be at least 1"),
])
def test_bad_segment_flags_are_one_line_usage_errors(kw, message):
    from mer_ray.commands.checks import UsageError
    from mer_ray.commands.score import check_segment_flags

    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        check_segment_flags(_flags(**kw))
    check_segment_flags(_flags(segments=3.0, hop=1.0, faces="all", max_faces=2))


def test_cli_reports_a_bad_window_in_one_line(tmp_path, capsys):
    from mer_ray.cli import main

    assert main(["score", str(tmp_path), "--out", str(tmp_path / "o"), "--segments", "-2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mer-ray score: error: --segments must be a number of seconds >= 0.001, got -2"]


def test_flags_reach_the_extraction_options(tmp_path):
    from mer_ray.cli import build_parser
    from mer_ray.commands.score import config_from_args

    args = build_parser().parse_args(["score", str(tmp_path), "--out", "o", "--segments", "3",
                                      "--hop", "1", "--faces", "all", "--max-faces", "2",
                                      "--visual", "default", "--audio", "none"])
    opts = config_from_args(args).extract
    assert (opts.segment_s, opts.hop_s, opts.face_mode, opts.max_faces) == (3.0, 1.0, "all", 2)
    args = build_parser().parse_args(["score", str(tmp_path), "--out", "o"])
    opts = config_from_args(args).extract
    assert (opts.segment_s, opts.hop_s, opts.face_mode) == (None, None, "largest")


def _visual_bundle(root: Path) -> str:
    """A visual bundle folder that resolve_plan accepts (its weights are never loaded)."""
    from mer_ray.models.bundle import BundleInfo, write_bundle_info

    (root / "v").mkdir()
    (root / "v" / "model.keras").write_bytes(b"weights")
    write_bundle_info(str(root / "v"), BundleInfo("visual", list(EMOTIONS), "model.keras",
                                                  "face200", None, "tiny", ""))
    return str(root / "v")


def test_a_resumed_run_must_keep_its_segment_settings(tmp_path):
    visual = _visual_bundle(tmp_path)

    def record(**extract):
        cfg = ScoreConfig(source=str(tmp_path), out=str(tmp_path), visual=visual,
                          extract=ExtractOptions(**extract))
        return run_record(cfg, resolve_plan(cfg))

    store = scores_store(str(tmp_path))
    store.write_json(RUN_FILE, record(segment_s=3.0))
    check_same_run(store, record(segment_s=3.0, hop_s=3.0), has_rows=True)   # hop = W
    for other in ({}, {"segment_s": 2.0}, {"segment_s": 3.0, "hop_s": 1.0},
                  {"segment_s": 3.0, "face_mode": "all"}):
        with pytest.raises(ValueError, match="already holds scores made with"):
            check_same_run(store, record(**other), has_rows=True)
    old = record()                                  # an output from before these options
    store.write_json(RUN_FILE, {k: v for k, v in old.items()
                                if k not in ("segments", "faces", "chunk_s")})
    check_same_run(store, record(), has_rows=True)


def test_a_resumed_segments_run_must_keep_its_chunk_length(tmp_path, monkeypatch):
    """Committed chunk records are only valid for the chunk length that cut them."""
    from mer_ray.score import chunks

    cfg = ScoreConfig(source=str(tmp_path), out=str(tmp_path), visual=_visual_bundle(tmp_path),
                      extract=ExtractOptions(segment_s=3.0))
    run = run_record(cfg, resolve_plan(cfg))
    assert run["chunk_s"] == chunks.CHUNK_S
    store = scores_store(str(tmp_path))
    store.write_json(RUN_FILE, {k: v for k, v in run.items() if k != "chunk_s"})
    check_same_run(store, run, has_rows=True)       # older run.json: the 60 s it was cut with
    monkeypatch.setattr(chunks, "CHUNK_S", 30.0)
    with pytest.raises(ValueError, match="chunk_s=60.0; this run has chunk_s=30.0"):
        check_same_run(store, run_record(cfg, resolve_plan(cfg)), has_rows=True)


def _predicted_row(**kw) -> dict:
    """A predicted row of a 7 s video: 4 keyframes, two faces in the first two (tracks 0 and 1)."""
    onehot = [[1.0 if i == c else 0.0 for i in range(7)] for c in (3, 5, 3, 5, 3)]
    return {"path": "v.mp4", "video_id": "v", "status": "ok", "error": None,
            "keyframes": 4, "faces": 3, "duration_s": 7.0,
            "_kf_index": [0, 10, 20, 30], "_kf_time": [0.5, 2.5, 4.5, 6.5],
            "_kf_face": [0, 2, 4, -1], "_boxes": [[0, 0, 9, 9], [50, 0, 9, 9]] * 2 + [[0, 0, 9, 9]],
            "_face_kf": [0, 0, 1, 1, 2], "_face_track": [0, 1, 0, 1, 0],
            "_face_probs": onehot, "_audio_probs": None,
            "_windows": [[0.0, 3.0], [3.0, 6.0], [6.0, 7.0]],
            "_win_audio_probs": [None, [0.0, 0, 0, 0, 1, 0, 0], None],
            "_win_speech": [0.0, 0.9, 0.1], **kw}


def test_fuse_row_gives_rows_per_window_and_track_and_the_time_summary():
    row = fuse_row(_predicted_row(), FusionWeights(), {"visual": "v", "audio": "a"}, True)
    seg = [(s["segment_index"], s["track_id"], s["n_keyframes"], s["emotion"], s["fusion_mode"])
           for s in row["_segments"]]
    assert seg == [(0, 0, 2, "happy", "visual_only"), (0, 1, 2, "sad", "visual_only"),
                   (1, 0, 1, "happy", "audio_visual"), (2, -1, 0, None, "none")]
    assert row["n_tracks"] == 2 and row["dominant_emotion_time"] == "happy"
    assert row["time_happy"] == pytest.approx(6 / 9) and row["time_sad"] == pytest.approx(3 / 9)
    timeline = [(e["frame_index"], e["has_face"], e["track_id"]) for e in row["_timeline"]]
    assert timeline == [(0, True, 0), (0, True, 1), (10, True, 0), (10, True, 1),
                        (20, True, 0), (30, False, None)]
    out = split_output(to_table([row], FUSED_SCHEMA), timeline=True, segments=True)
    assert out[SEGMENTS_DIR].num_rows == 4 and out[TIMELINE_DIR].num_rows == 6
    assert set(out[SEGMENTS_DIR].column("path").to_pylist()) == {"v.mp4"}
    plain = fuse_row(_predicted_row(_windows=None), FusionWeights(), {}, False)
    assert plain["_segments"] is None and plain["time_happy"] is None
    assert SEGMENTS_DIR not in split_output(to_table([plain], FUSED_SCHEMA), timeline=False)


def test_a_failed_input_has_no_segment_rows():
    row = fuse_row(_predicted_row(status="partial", error="cut"), FusionWeights(), {}, False)
    assert row["_segments"] is None and row["dominant_emotion_time"] is None


# --- slow: generated videos ------------------------------------------------------------
@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from mer_ray.sample.long_video import write_long_video, write_two_face_video

    root = tmp_path_factory.mktemp("segments_archive")
    spans = write_long_video(root / "long.mp4", seconds=SECONDS, width=160, height=120,
                             fps=FPS, audio_rate=8000)
    truth = write_two_face_video(root / "two.mp4", seconds=6.0, width=320, height=180,
                                 fps=FPS, audio_rate=8000)
    return {"root": root, "long": root / "long.mp4", "spans": spans, "two": root / "two.mp4",
            "truth": truth}


@pytest.fixture(scope="module")
def voice_bundle(tmp_path_factory) -> str:
    """An audio SVM bundle (rich recipe) fitted on the sample voices of actor 1 (the long
    video's speaker): 3 s clips other than the video's, made at the video's 8 kHz and
    resampled as decoding does, as the demo trains on sample clips."""
    import soxr

    from mer_ray.media.audio_recipes import AUDIO_RECIPES
    from mer_ray.media.constants import SAMPLE_RATE
    from mer_ray.models import audio_svm
    from mer_ray.models.bundle import BundleInfo, write_bundle_info
    from mer_ray.sample.voice import synth_voice

    rich = AUDIO_RECIPES["rich"]
    x, y = [], []
    for label, emotion in enumerate(EMOTIONS):
        for clip in range(50, 58):
            voice = soxr.resample(synth_voice(emotion, 1, WINDOW, 8000, 0, clip), 8000,
                                  SAMPLE_RATE).astype(np.float32)
            x.append(rich.features(voice, SAMPLE_RATE))
            y.append(label)
    out = tmp_path_factory.mktemp("voice")
    audio_svm.save_svm(audio_svm.fit_svm(np.stack(x), np.array(y)), out / audio_svm.MODEL_FILE)
    write_bundle_info(str(out), BundleInfo("audio", list(EMOTIONS), audio_svm.MODEL_FILE,
                                           "rich", rich.column, None, "", classifier="svm"))
    return str(out)


def _cfg(source, out, visual=None, audio=None, **extract) -> ScoreConfig:
    return ScoreConfig(source=str(source), out=str(out), visual=visual, audio=audio,
                       timeline=True, videos_per_shard=1, ray=RayConfig(num_cpus=2),
                       extract=ExtractOptions(skip=5, **extract))


def _majority(spans, start: float, end: float) -> str | None:
    overlap = Counter()
    for s in spans:
        overlap[s.emotion] += max(0.0, min(end, s.end_s) - max(start, s.start_s))
    return overlap.most_common(1)[0][0]


@pytest.mark.slow
def test_long_video_segments_are_exact_and_follow_the_known_emotions(videos, voice_bundle,
                                                                      tmp_path):
    from mer_ray.score.local import score_locally

    cfg = _cfg(videos["root"], tmp_path, audio=voice_bundle, segment_s=WINDOW)
    out = score_locally(cfg, [{"path": str(videos["long"]), "video_id": "long"}])
    rows = out[SEGMENTS_DIR].to_pylist()
    expected = [(k * WINDOW, (k + 1) * WINDOW) for k in range(int(SECONDS / WINDOW))]
    assert [(r["segment_index"], r["start_s"], r["end_s"]) for r in rows] == \
        [(k, a, b) for k, (a, b) in enumerate(expected)]
    assert {r["track_id"] for r in rows} == {-1}              # no visual model: no face tracks
    voted = [r for r in rows if r["audio_probs"] is not None]
    hits = [r["emotion"] == _majority(videos["spans"], r["start_s"], r["end_s"]) for r in voted]
    assert len(voted) >= 6 and np.mean(hits) >= 0.5, hits     # chance: 1/7
    video = out[SCORES_DIR].to_pylist()[0]
    shares = [video[f"time_{e}"] for e in EMOTIONS]
    assert sum(shares) == pytest.approx(1.0) and video["dominant_emotion_time"] in EMOTIONS
    assert video["duration_s"] == pytest.approx(SECONDS)


@pytest.mark.slow
def test_overlapping_windows_and_silence(videos, voice_bundle, tmp_path):
    from mer_ray.score.local import score_locally

    cfg = _cfg(videos["root"], tmp_path, audio=voice_bundle, segment_s=2.0, hop_s=1.0)
    rows = score_locally(cfg, [{"path": str(videos["long"]), "video_id": "long"}])[SEGMENTS_DIR]
    rows = rows.to_pylist()
    assert [(r["start_s"], r["end_s"]) for r in rows] == \
        [(float(k), float(min(k + 2, SECONDS))) for k in range(int(SECONDS) - 1)]
    silent = [r for r in rows for s in videos["spans"]
              if s.emotion is None and s.start_s <= r["start_s"] and r["end_s"] <= s.end_s]
    assert silent and all(r["audio_probs"] is None and r["fusion_mode"] == "none"
                          and r["speech_fraction"] < 0.2 for r in silent)


@pytest.mark.slow
def test_two_faces_give_two_stable_tracks_and_the_leaving_one_ends(videos, tiny_bundles,
                                                                   tmp_path):
    from mer_ray.score.local import score_locally

    right = videos["truth"].faces[1]
    cfg = _cfg(videos["root"], tmp_path, visual=tiny_bundles["visual"],
               audio=tiny_bundles["audio"], segment_s=1.0, face_mode="all")
    out = score_locally(cfg, [{"path": str(videos["two"]), "video_id": "two"}])
    rows = out[SEGMENTS_DIR].to_pylist()
    tracks = {t: [r["segment_index"] for r in rows if r["track_id"] == t]
              for t in {r["track_id"] for r in rows}}
    assert set(tracks) == {0, 1}
    assert tracks[0] == list(range(6))                              # the left face stays
    assert tracks[1][0] == 0 and max(tracks[1]) < right.end_s       # the right one ends
    assert max(tracks[1]) >= int(right.leave_s) - 1
    assert all(r["audio_probs"] is not None for r in rows if r["segment_index"] == 0)
    window0 = [r for r in rows if r["segment_index"] == 0]
    assert window0[0]["audio_probs"] == window0[1]["audio_probs"]   # one vote for every track
    timeline = out[TIMELINE_DIR].to_pylist()
    half = 160
    assert all((e["box"][0] < half) == (e["track_id"] == 0) for e in timeline if e["has_face"])
    video = out[SCORES_DIR].to_pylist()[0]
    assert video["n_tracks"] == 2 and video["status"] == "ok"


@pytest.mark.slow
def test_a_killed_run_resumes_without_duplicate_segments(videos, tiny_bundles, ray_local,
                                                          tmp_path):
    """One video committed before the 'kill', the other's segments written without its scores
    file (killed before the commit): the re-run adds the missing one, once, and matches the
    in-process path."""
    from mer_ray.score.job import run_score
    from mer_ray.score.local import score_locally

    out = tmp_path / "out"
    cfg = _cfg(videos["root"], out, visual=tiny_bundles["visual"], audio=tiny_bundles["audio"],
               segment_s=WINDOW, face_mode="all")
    store = scores_store(str(out))
    long_row = {"path": str(videos["long"]), "video_id": "long"}
    two_row = {"path": str(videos["two"]), "video_id": "two"}
    store.write_shard("earlier", score_locally(cfg, [long_row]))
    killed = score_locally(cfg, [two_row])
    store.write_shard("killed", killed)
    (out / SCORES_DIR / "part-killed.parquet").unlink()
    store.write_json(RUN_FILE, run_record(cfg, resolve_plan(cfg)))

    summary = run_score(cfg)
    assert summary["rows"] == 2 and summary["this_run"]["scored"] == 1
    scores = scores_store(str(out)).read(SCORES_DIR).to_pylist()
    assert sorted(r["path"] for r in scores) == sorted([long_row["path"], two_row["path"]])
    segments = scores_store(str(out)).read(SEGMENTS_DIR).to_pylist()
    keys = [(r["path"], r["segment_index"], r["track_id"]) for r in segments]
    assert len(keys) == len(set(keys)) == summary["segments"]
    assert {r["path"] for r in segments} == {long_row["path"], two_row["path"]}
    ray_two = sorted((r["segment_index"], r["track_id"], r["emotion"], r["n_keyframes"])
                     for r in segments if r["path"] == two_row["path"])
    local_two = sorted((r["segment_index"], r["track_id"], r["emotion"], r["n_keyframes"])
                       for r in killed[SEGMENTS_DIR].to_pylist())
    assert ray_two == local_two
    assert json.loads((out / RUN_FILE).read_text())["segments"] == {"window_s": WINDOW,
                                                                     "hop_s": WINDOW}
