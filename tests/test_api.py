"""The Python API (mer_ray.score_videos, load_scores, load_timeline, load_model)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import mer_ray
from mer_ray.config import EMOTIONS
from mer_ray.score.schema import PROB_COLUMNS


def test_import_is_light_and_api_is_exported():
    code = ("import sys, mer_ray; heavy = [m for m in ('tensorflow', 'keras', 'ray') "
            "if m in sys.modules]; print(heavy, callable(mer_ray.load_scores))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True"
    assert {"score_videos", "load_scores", "load_timeline", "load_model"} <= set(dir(mer_ray))
    with pytest.raises(AttributeError):
        mer_ray.no_such_function


def test_load_model_registers_the_custom_layers_itself(tiny_bundles):
    """A fresh process: no `import mer_ray.models.layers` before loading (the keras error
    'Could not locate class ImagePreprocess' without it)."""
    code = ("import mer_ray, numpy as np; m = mer_ray.load_model(%r); "
            "print(m.predict(np.zeros((1, 200, 200, 3), np.float32), verbose=0).shape)"
            % tiny_bundles["visual"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "(1, 7)"


def test_load_model_kinds_and_the_bundled_voice_model(tiny_bundles):
    audio = mer_ray.load_model(tiny_bundles["audio"], kind="audio")
    assert tuple(audio.output_shape) == (None, len(EMOTIONS))
    with pytest.raises(ValueError, match="holds a audio model, not visual"):
        mer_ray.load_model(tiny_bundles["audio"], kind="visual")
    with pytest.raises(ValueError, match="needs kind="):
        mer_ray.load_model("default")
    svm = mer_ray.load_model("default", kind="audio")                  # bundled: skops SVM
    probs = svm.predict_proba(np.zeros((1, svm.n_features_in_), np.float32))
    assert probs.shape == (1, len(EMOTIONS))


@pytest.fixture(scope="module")
def two_clips(mixed_archive, tmp_path_factory):
    root = tmp_path_factory.mktemp("api_in")
    for clip in mixed_archive["good"][:2]:
        shutil.copy(clip, root / clip.name)
    return root


def test_score_videos_in_process(two_clips, tiny_bundles, tmp_path):
    df = mer_ray.score_videos(two_clips, **tiny_bundles)
    paths = sorted(str(p) for p in two_clips.iterdir())
    assert list(df.path) == paths and list(df.status) == ["ok", "ok"]
    assert set(df.fusion_mode) == {"audio_visual"}
    assert np.allclose(df[list(PROB_COLUMNS)].sum(axis=1), 1.0, atol=1e-4)
    assert df.label.notna().all()                               # from the RAVDESS names
    # a list of files, the given order kept, a timeline, and an output folder kept
    scores, timeline = mer_ray.score_videos(paths[::-1], out=tmp_path / "s", timeline=True,
                                            visual=tiny_bundles["visual"], audio="none")
    assert list(scores.path) == paths[::-1] and set(scores.fusion_mode) == {"visual_only"}
    assert set(timeline.path) == set(paths) and timeline.has_face.any()
    again = mer_ray.load_scores(tmp_path / "s")
    assert sorted(again.path) == paths
    assert np.allclose(np.stack(again.sort_values("path").visual_probs),
                       np.stack(scores.sort_values("path").visual_probs))
    assert len(mer_ray.load_timeline(tmp_path / "s")) == len(timeline)
    assert not (tmp_path / "s" / "_lock.json").exists()            # taken, then given back
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["rows_without_input"] == 0                      # this run's inputs known
    with pytest.raises(ValueError, match="both 'none'"):
        mer_ray.score_videos(paths, visual="none", audio=None)


def test_load_scores_errors_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no score output"):
        mer_ray.load_scores(tmp_path)


@pytest.mark.slow
def test_score_videos_on_ray_for_many_inputs(ray_local, two_clips, tiny_bundles, tmp_path):
    local = mer_ray.score_videos(two_clips, audio=tiny_bundles["audio"], visual="none")
    on_ray = mer_ray.score_videos(sorted(two_clips.iterdir()), audio=tiny_bundles["audio"],
                                  visual="none", local_below=0, num_cpus=2)
    assert list(on_ray.path) == list(local.path)
    assert np.allclose(np.stack(on_ray.audio_probs), np.stack(local.audio_probs), atol=1e-5)


def _segment_shards(out, videos: dict[str, str]) -> None:
    """Committed scores + segments shards, one per video (path -> video_id), by hand."""
    import pyarrow as pa

    from mer_ray.data.shards import ShardStore
    from mer_ray.score.schema import SCHEMAS, SCORES_DIR, SCORES_SCHEMA
    from mer_ray.score.segments import SEGMENTS_DIR, SEGMENTS_SCHEMA, segment_rows, segments_table
    from mer_ray.score.windows import segment_windows

    store = ShardStore(str(out), {**SCHEMAS, SEGMENTS_DIR: SEGMENTS_SCHEMA}, primary=SCORES_DIR)
    for k, (path, vid) in enumerate(videos.items()):
        wins = segment_windows(6.0, 2.0)
        ts = np.arange(0.25, 6.0, 0.5)
        rows = segment_rows(vid, wins, ts, np.full((len(ts), 7), 1 / 7), [None] * len(wins),
                            [None] * len(wins), path=path)
        scores = pa.Table.from_pylist([{"path": path, "video_id": vid, "status": "ok"}],
                                      schema=SCORES_SCHEMA)
        store.write_shard(f"s{k}", {SEGMENTS_DIR: segments_table(rows), SCORES_DIR: scores})


def test_load_segments_reads_committed_shards_of_one_or_all_videos(tmp_path):
    import shutil as sh

    out = tmp_path / "scores"
    _segment_shards(out, {"/data/a.mp4": "ida", "/data/b.mp4": "idb"})
    seg = out / "segments"
    sh.copy(seg / "part-s0.parquet", seg / "part-uncommitted.parquet")   # no scores twin
    (seg / "_tmp-s9.parquet").write_bytes(b"half")
    df = mer_ray.load_segments(out)
    assert list(df.drop_duplicates("path").path) == ["/data/a.mp4", "/data/b.mp4"]
    assert len(df) == 6 and list(df.segment_index[:3]) == [0, 1, 2]
    assert list(df.columns[:6]) == ["path", "video_id", "segment_index", "start_s", "end_s",
                                    "track_id"]
    assert list(mer_ray.load_segments(out, video_id="idb").path.unique()) == ["/data/b.mp4"]
    assert list(mer_ray.load_segments(out, "/data/a.mp4").video_id.unique()) == ["ida"]
    with pytest.raises(ValueError, match="no segments for video zzz .*known videos: ida"):
        mer_ray.load_segments(out, "zzz")
    (seg / "part-s1.parquet").write_bytes(b"damaged")                    # skipped, not moved
    assert list(mer_ray.load_segments(out).path.unique()) == ["/data/a.mp4"]
    assert (seg / "part-s1.parquet").exists()
    assert "load_segments" in dir(mer_ray)


def test_load_segments_errors_without_segments(tmp_path):
    (tmp_path / "scores").mkdir()
    with pytest.raises(FileNotFoundError, match="run `mer-ray score` with --segments"):
        mer_ray.load_segments(tmp_path)
    with pytest.raises(FileNotFoundError, match="no score output"):
        mer_ray.load_segments(tmp_path / "nowhere")


def test_score_videos_takes_the_output_lock(two_clips, tiny_bundles, tmp_path):
    import os
    import socket
    import time

    from mer_ray.data.out_lock import LOCK_FILE, OutputBusyError

    clip = sorted(str(p) for p in two_clips.iterdir())[0]
    out = tmp_path / "s"
    out.mkdir()
    live = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
            "heartbeat": time.time(), "token": "another-run"}
    (out / LOCK_FILE).write_text(json.dumps(live))
    with pytest.raises(OutputBusyError, match="is being written by pid"):
        mer_ray.score_videos([clip], out=out, visual="none", audio=tiny_bundles["audio"])
    assert not (out / "scores").exists() and (out / LOCK_FILE).exists()
