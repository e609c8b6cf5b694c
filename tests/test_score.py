"""The score job end to end on local Ray: one row per input with the right status, the same
probabilities as direct model calls, resume after a killed run, and the pure row helpers."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mer_ray.config import AROUSAL, EMOTIONS, RayConfig, ScoreConfig
from mer_ray.data.shards import shard_id_for
from mer_ray.score.job import run_score
from mer_ray.score.local import score_locally
from mer_ray.score.plan import plan_workers, resolve_plan
from mer_ray.score.rows import fuse_row
from mer_ray.score.schema import scores_store
from mer_ray.score.schema import NO_SIGNAL, PROB_COLUMNS, SCORES_DIR, TIMELINE_DIR

from support.outputs import assert_only_added_inputs_written, shard_files

# kind of bad input -> (status, fusion_mode)
EXPECTED = {
    "zero_byte": ("empty_file", "none"),
    "truncated": ("truncated", "none"),
    "text_as_mp4": ("not_media", "none"),
    "no_audio": ("no_audio", "visual_only"),
    "video_only": ("video_only", "visual_only"),      # RAVDESS modality 02: as in preprocess
    "audio_only": ("audio_only", "audio_only"),
    "no_face": ("no_face", "audio_only"),
    "calm": ("ok", "audio_visual"),
    "blank": (NO_SIGNAL, "none"),
}


def _cfg(archive, bundles, out, **kw) -> ScoreConfig:
    """The run these tests check: on Ray (``in_process_max=0``), unless ``kw`` says otherwise."""
    return ScoreConfig(source=str(archive["root"]), out=str(out), visual=bundles["visual"],
                       audio=bundles["audio"], timeline=True, videos_per_shard=4,
                       ray=RayConfig(num_cpus=2), **{"in_process_max": 0, **kw})


@pytest.fixture(scope="module")
def killed_run(mixed_archive, tiny_bundles, tmp_path_factory):
    """An output folder as a killed run leaves it: one committed shard (2 inputs, scored by the
    same stages without Ray), the timeline of a shard whose scores file never got renamed
    into place, and a half-written temporary."""
    from mer_ray.data.sources import list_inputs

    out = tmp_path_factory.mktemp("scores")
    cfg = _cfg(mixed_archive, tiny_bundles, out)
    items = [it.to_row() for it in list_inputs(cfg.source)]
    store = scores_store(str(out))
    store.write_shard("earlier", score_locally(cfg, items[:2]))
    orphan = score_locally(cfg, items[2:3])
    store.write_shard("killed", {TIMELINE_DIR: orphan[TIMELINE_DIR], SCORES_DIR: orphan[SCORES_DIR]})
    (out / SCORES_DIR / "part-killed.parquet").unlink()     # the kill came before the rename
    (out / SCORES_DIR / "_tmp-deadbeef.parquet").write_bytes(b"half a parquet file")
    return cfg, store.read(SCORES_DIR).to_pylist()


@pytest.fixture(scope="module")
def scored(ray_local, killed_run):
    cfg, _ = killed_run
    return cfg, run_score(cfg)


def _rows(out) -> dict[str, dict]:
    table = scores_store(str(out)).read(SCORES_DIR)
    return {r["path"]: r for r in table.to_pylist()}


@pytest.mark.slow
def test_one_row_per_input_with_right_status(scored, mixed_archive):
    from mer_ray.data.sources import list_inputs

    cfg, summary = scored
    inputs = list_inputs(cfg.source)
    rows = _rows(cfg.out)
    assert summary["rows"] == len(rows) == len(inputs) == len(mixed_archive["good"]) + len(mixed_archive["bad"])
    assert set(rows) == {it.path for it in inputs}
    for kind, (status, mode) in EXPECTED.items():
        row = rows[str(mixed_archive["bad"][kind].resolve())]
        assert (row["status"], row["fusion_mode"]) == (status, mode), kind
    video_only = rows[str(mixed_archive["bad"]["video_only"].resolve())]
    assert video_only["fusion_mode"] == "visual_only" and video_only["audio_probs"] is None
    for path in mixed_archive["good"]:
        row = rows[str(path.resolve())]
        assert (row["status"], row["fusion_mode"]) == ("ok", "audio_visual")
        assert row["faces"] > 0 and row["keyframes"] >= row["faces"] and row["has_audio"]


@pytest.mark.slow
def test_rows_are_consistent(scored):
    cfg, _ = scored
    for row in _rows(cfg.out).values():
        if row["fusion_mode"] == "none":
            assert row["emotion"] is None and row["error"], row["path"]
            assert all(row[c] is None for c in PROB_COLUMNS)
            continue
        probs = np.array([row[c] for c in PROB_COLUMNS])
        assert probs.sum() == pytest.approx(1.0, abs=1e-4)
        assert row["emotion"] == EMOTIONS[int(probs.argmax())]
        assert row["arousal"] == AROUSAL[row["emotion"]]
        assert row["confidence"] == pytest.approx(probs.max(), abs=1e-6)
        assert (row["visual_probs"] is not None) == (row["fusion_mode"] in ("audio_visual", "visual_only"))
        assert (row["audio_probs"] is not None) == (row["fusion_mode"] in ("audio_visual", "audio_only"))
        assert row["visual_model_id"].startswith("visual:tiny:")
        assert row["audio_model_id"].startswith("audio:thesis:")
        assert row["t_fusion_s"] is not None and row["t_decode_s"] is not None


@pytest.mark.slow
def test_timeline_has_every_keyframe(scored):
    cfg, _ = scored
    timeline = scores_store(cfg.out).read(TIMELINE_DIR).to_pylist()
    for path, row in _rows(cfg.out).items():
        mine = [t for t in timeline if t["path"] == path]
        assert len(mine) == row["keyframes"], path
        assert sum(t["has_face"] for t in mine) == row["faces"], path
        for t in mine:
            assert (t["probs"] is not None) == t["has_face"] == (t["box"] is not None)


@pytest.mark.slow
def test_same_probabilities_as_direct_model_calls(scored, mixed_archive, tiny_bundles):
    from mer_ray.media.crop_codec import as_stored
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.models.bundle import AudioPredictor, VisualPredictor

    cfg, _ = scored
    path = str(mixed_archive["good"][0].resolve())
    row = _rows(cfg.out)[path]
    ext = ClipExtractor(resolve_plan(cfg).extract).extract(path)
    faces = as_stored(np.stack([f["face"] for f in ext.frames]))     # as the job carries them
    visual = VisualPredictor(tiny_bundles["visual"]).predict(faces)
    audio = AudioPredictor(tiny_bundles["audio"]).predict(np.array([ext.clip["audio_features"]]))[0]
    np.testing.assert_allclose(row["visual_probs"], visual.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(row["audio_probs"], audio, atol=1e-5)
    fused = 0.5 * visual.mean(axis=0) + 0.5 * audio       # Alg. 3.9 by hand
    np.testing.assert_allclose([row[c] for c in PROB_COLUMNS], fused, atol=1e-5)


@pytest.mark.slow
def test_resume_after_a_killed_run(scored, killed_run):
    from mer_ray.data.sources import list_inputs

    cfg, summary = scored
    _, earlier = killed_run
    store = scores_store(cfg.out)
    after = store.read(SCORES_DIR).to_pylist()
    paths = [r["path"] for r in after]
    assert len(paths) == len(set(paths)) == len(list_inputs(cfg.source))
    assert summary["this_run"]["scored"] == len(paths) - len(earlier) == len(paths) - 2
    kept = {r["path"]: r for r in after if r["path"] in {e["path"] for e in earlier}}
    assert kept == {e["path"]: e for e in earlier}                 # committed rows kept as is
    assert not list(Path(cfg.out).rglob("_tmp-*"))
    assert len(store.read(TIMELINE_DIR)) == sum(r["keyframes"] for r in after)  # orphan gone
    again = run_score(cfg)                      # nothing left to do: no Ray work
    assert again["this_run"]["scored"] == 0 and again["rows"] == len(paths)


@pytest.mark.slow
def test_progress_counts_committed_rows(scored):
    from mer_ray.score.progress import ProgressLogger

    cfg, summary = scored
    progress = ProgressLogger(scores_store(cfg.out), SCORES_DIR, total=summary["rows"] + 5,
                              already=0)
    line = progress.line()
    assert progress.done == summary["rows"]
    assert line.startswith(f"scored {summary['rows']}/{summary['rows'] + 5} (")


@pytest.mark.slow
def test_refuses_to_mix_models_or_weights(scored, mixed_archive, tiny_bundles):
    cfg, _ = scored
    with pytest.raises(ValueError, match="weights"):
        run_score(_cfg(mixed_archive, tiny_bundles, cfg.out, w_visual=0.9, w_audio=0.1))


@pytest.mark.slow
def test_files_added_to_the_archive_are_the_only_ones_scored(ray_local, mixed_archive,
                                                             tiny_bundles, tmp_path):
    """A finished score output, then new files in its archive: the re-run scores the new files
    only and leaves every earlier shard file (scores and timeline) as it was. (The finished
    output is scored by the same stages without Ray, as in killed_run.)"""
    from mer_ray.data.sources import list_inputs

    good = sorted(mixed_archive["good"])
    archive = tmp_path / "archive"
    archive.mkdir()
    for clip in good[:3]:
        shutil.copy(clip, archive)
    out = tmp_path / "scores"
    cfg = _cfg({"root": archive}, tiny_bundles, out)
    items = [it.to_row() for it in list_inputs(cfg.source)]
    scores_store(str(out)).write_shard("earlier", score_locally(cfg, items))
    before = shard_files(out)
    assert len(before) == 2                                # its scores and timeline files
    added = {str(Path(shutil.copy(clip, archive)).resolve()) for clip in good[3:5]}
    summary = run_score(cfg)
    assert summary["this_run"]["scored"] == len(added) == 2
    assert_only_added_inputs_written(before, out, SCORES_DIR, added)
    rows = Counter(scores_store(str(out)).read(SCORES_DIR).column("path").to_pylist())
    assert rows == Counter(it.path for it in list_inputs(str(archive)))   # one row each
    assert summary["rows"] == 5


@pytest.mark.slow
def test_links_are_one_row_each_under_the_given_path(ray_local, mixed_archive, tiny_bundles,
                                                      tmp_path):
    import os

    root = tmp_path / "archive"
    root.mkdir()
    shutil.copy(mixed_archive["good"][0], root / "clip.mp4")
    os.symlink("clip.mp4", root / "rel_link.mp4")
    os.symlink(root / "clip.mp4", root / "abs_link.mp4")
    os.link(root / "clip.mp4", root / "hard_link.mp4")
    given = sorted(str(root / n) for n in ("clip.mp4", "rel_link.mp4", "abs_link.mp4",
                                            "hard_link.mp4"))
    cfg = ScoreConfig(source=str(root), out=str(tmp_path / "s"), audio=tiny_bundles["audio"],
                      videos_per_shard=1, ray=RayConfig(num_cpus=2))
    assert run_score(cfg)["rows"] == 4
    rows = _rows(cfg.out)
    assert sorted(rows) == given and len({r["video_id"] for r in rows.values()}) == 4
    assert {r["fusion_mode"] for r in rows.values()} == {"audio_only"}
    again = run_score(cfg)                                  # resume matches the given paths
    assert again["this_run"]["scored"] == 0 and again["rows"] == 4


def test_fuse_row_statuses():
    from mer_ray.score.fusion import FusionWeights

    base = {"path": "p", "video_id": "v", "status": "ok", "error": None, "keyframes": 2, "faces": 1,
            "_kf_index": [0, 10], "_kf_time": [0.0, 0.4], "_kf_face": [-1, 0], "_boxes": [[1, 2, 3, 4]]}
    onehot = [0, 0, 0, 1.0, 0, 0, 0]
    w, ids = FusionWeights(), {"visual": "v1", "audio": "a1"}
    ok = fuse_row({**base, "_face_probs": [onehot], "_audio_probs": None}, w, ids, True)
    assert (ok["fusion_mode"], ok["emotion"], ok["p_happy"]) == ("visual_only", "happy", 1.0)
    assert [t["has_face"] for t in ok["_timeline"]] == [False, True]
    assert ok["_timeline"][1]["box"] == [1, 2, 3, 4] and ok["_timeline"][1]["emotion"] == "happy"
    none = fuse_row({**base, "status": "no_face", "_face_probs": [], "_audio_probs": None},
                             w, ids, False)
    assert none["status"] == NO_SIGNAL and none["emotion"] is None and none["error"]
    failed = fuse_row({**base, "status": "truncated", "error": "cut",
                                "_face_probs": [onehot], "_audio_probs": onehot}, w, ids, False)
    assert (failed["status"], failed["fusion_mode"], failed["error"]) == ("truncated", "none", "cut")


def test_plan_workers_leaves_room_for_models():
    cfg = ScoreConfig(source="s", out="o", visual="v", audio="a")
    for cpus in (1, 2, 16):
        for gpus in (0, 1):
            cfg.gpus_per_worker = gpus
            plan = plan_workers(cfg, cpus)
            used = plan.extract_workers * plan.extract_cpus + 2 * plan.model_cpus + 0.3
            assert used <= cpus + 1e-9 and plan.extract_cpus <= 1, (cpus, gpus, plan)
    cfg.gpus_per_worker = 0
    assert plan_workers(cfg, 16).extract_workers >= 14
    assert plan_workers(cfg, 2).extract_workers == 2
    forced = plan_workers(ScoreConfig("s", "o", audio="a", extract_workers=4), 2)
    assert forced.extract_workers == 4 and 4 * forced.extract_cpus <= 2 - 0.25


def test_actors_declare_their_memory_and_always_fit():
    from mer_ray.score.plan import ACTOR_MEMORY, GIB

    cfg = ScoreConfig(source="s", out="o", visual="v", audio="a")
    roomy = plan_workers(cfg, 2, cluster_memory=64 * GIB)
    assert roomy.memory == {k: int(v) for k, v in ACTOR_MEMORY.items()}
    for memory in (1 * GIB, 3 * GIB):               # less than the actors are measured to use
        tight = plan_workers(cfg, 16, cluster_memory=memory)
        declared = (tight.extract_workers * tight.memory["extract"] + tight.memory["visual"]
                    + tight.memory["audio"])
        assert 0 < declared <= 0.9 * memory
    audio_only = plan_workers(ScoreConfig("s", "o", audio="a"), 2, cluster_memory=64 * GIB)
    assert set(audio_only.memory) == {"extract", "audio"}


def test_the_pipeline_buffer_grows_with_the_cluster_and_caps_ray_data():
    """Ray Data may hold BUFFER_PER_CPU per cluster CPU between the stages (never less than
    MIN_BUFFER); limit_buffer caps the context it is given and nothing else of it."""
    import ray.data

    from mer_ray.score.job import limit_buffer
    from mer_ray.score.plan import BUFFER_PER_CPU, MIN_BUFFER

    cfg = ScoreConfig(source="s", out="o", visual="v", audio="a")
    assert plan_workers(cfg, 1).buffer == plan_workers(cfg, 2).buffer == MIN_BUFFER
    assert plan_workers(cfg, 64).buffer == 64 * BUFFER_PER_CPU > MIN_BUFFER
    context = ray.data.DataContext.get_current().copy()
    saved = context.execution_options.resource_limits
    limit_buffer(context, plan_workers(cfg, 64).buffer)
    limit_buffer(context, MIN_BUFFER)                  # a later, smaller run: its own budget
    limits = context.execution_options.resource_limits
    assert limits.object_store_memory == MIN_BUFFER
    assert limits.cpu == saved.cpu                      # nothing else changed


@pytest.mark.slow
def test_the_score_pipeline_caps_its_own_dataset_not_the_process(ray_local, mixed_archive,
                                                                 tiny_bundles, tmp_path):
    """The cap rides on the score dataset's context: a training dataset (or a notebook's)
    built later in the same process keeps Ray Data's default budget."""
    import ray.data

    from mer_ray.data.sources import list_inputs_table
    from mer_ray.score.job import build_dataset
    from mer_ray.score.plan import MIN_BUFFER

    cfg = _cfg(mixed_archive, tiny_bundles, str(tmp_path / "o"))
    listed = list_inputs_table(cfg.source, cfg.corpus)
    before = ray.data.DataContext.get_current().execution_options.resource_limits
    ds = build_dataset(cfg, resolve_plan(cfg), listed)       # lazy: nothing runs
    assert ds.context.execution_options.resource_limits.object_store_memory == MIN_BUFFER
    after = ray.data.DataContext.get_current().execution_options.resource_limits
    assert after.object_store_memory == before.object_store_memory != MIN_BUFFER


def test_shard_id_depends_on_paths_only():
    a = ["/x/1.mp4", "/x/2.mp4"]
    assert shard_id_for(a) == shard_id_for(["/x/2.mp4", "/x/1.mp4"])
    assert shard_id_for(a) != shard_id_for(["/x/1.mp4"])


def test_rich_recipe_audio_model_gets_its_own_vector(mixed_archive, tiny_bundles, tmp_path):
    from dataclasses import replace

    from mer_ray.media.audio_rich import N_RICH_FEATURES
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.models.audio_mlp import build_audio_mlp
    from mer_ray.models.bundle import AudioPredictor, BundleInfo, load_bundle_info, save_bundle
    from mer_ray.score.plan import check_audio_bundle

    run = tmp_path / "rich"
    save_bundle(str(run), build_audio_mlp(N_RICH_FEATURES),
                BundleInfo("audio", list(EMOTIONS), "model.keras", "rich", "audio_rich_features", None, ""))
    cfg = ScoreConfig(source="-", out=str(tmp_path / "o"), audio=str(run))
    path = str(mixed_archive["good"][1].resolve())
    scores = score_locally(cfg, [{"path": path, "video_id": "v"}])[SCORES_DIR].to_pylist()[0]
    ext = ClipExtractor(resolve_plan(cfg).extract).extract(path)
    direct = AudioPredictor(str(run)).predict(np.array([ext.clip["audio_rich_features"]]))[0]
    assert ext.clip.get("audio_features") is None          # the thesis vector: not computed
    assert scores["fusion_mode"] == "audio_only" and scores["visual_probs"] is None
    np.testing.assert_allclose(scores["audio_probs"], direct, atol=1e-5)

    info = replace(load_bundle_info(str(run)), speaker_norm=True)
    check_audio_bundle(info, str(run), speaker_norm=True)          # score: its finalize pass
    with pytest.raises(ValueError, match="per speaker"):             # one video (annotate): no
        check_audio_bundle(info, str(run))
