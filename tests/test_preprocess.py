"""End-to-end preprocess runs on local Ray: rows == inputs, statuses, resume, kill, strict."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mer_ray.config import EMOTIONS, N_THESIS_FEATURES, PreprocessConfig
from mer_ray.data.preprocess import block_sizes, clips_store, input_blocks, run_preprocess
from mer_ray.media.crop_codec import CROP_FORMAT, crop_format, decode_crop
from mer_ray.data.sources import list_inputs
from mer_ray.media.audio_rich import N_RICH_FEATURES

from expected_rows import assert_one_row_per_input
from support.outputs import assert_only_added_inputs_written, shard_files



@pytest.fixture(scope="module")
def preprocessed(small_sample, ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "shards"
    summary = run_preprocess(PreprocessConfig(data_dir=str(small_sample), out=str(out),
                                              videos_per_shard=4))
    return out, summary


def read(out: Path, name: str):
    return pq.read_table(out / name).to_pandas()


@pytest.mark.slow
def test_rows_equal_inputs_with_right_statuses(small_sample, preprocessed):
    out, summary = preprocessed
    clips = read(out, "clips")
    good = assert_one_row_per_input(clips, list_inputs(str(small_sample)), summary)
    assert sorted(good.label) == sorted(EMOTIONS * 2)
    failed = clips[clips.status.isin(["empty_file", "truncated", "not_media"])]
    assert failed.error.str.len().min() > 10          # every failure says why


@pytest.mark.slow
def test_face_crops_and_keyframes(preprocessed):
    out, _ = preprocessed
    clips, frames = read(out, "clips"), read(out, "frames")
    ok = clips[clips.status == "ok"]
    # 1.0 s at 30 fps, skip 10 -> keyframes 0, 10, 20
    assert set(ok.keyframes) == {3}
    assert ((ok.frames_decoded >= 3) & (ok.frames_decoded <= 30)).all()  # non-ref frames skipped
    assert (ok.faces_found + ok.no_face_frames == ok.keyframes).all()
    assert len(frames) == clips.faces_found.sum()
    assert set(frames.face.map(crop_format)) == {CROP_FORMAT}
    assert set(frames.frame_index) <= {0, 10, 20}
    assert np.allclose(frames.timestamp_s, frames.frame_index / 30.0, atol=1e-3)
    per_video = frames.groupby("video_id").size()
    assert (per_video.reindex(clips.video_id).fillna(0).values == clips.faces_found.values).all()
    face = decode_crop(frames.face.iloc[0])
    assert face.std() > 5                              # a picture, not a constant block


@pytest.mark.slow
def test_audio_features_and_augmented_copies(preprocessed):
    out, _ = preprocessed
    clips = read(out, "clips")
    with_audio = clips[clips.status.isin(["ok", "no_face", "audio_only"])]
    assert len(with_audio) == 16
    for feats, aug in zip(with_audio.audio_features, with_audio.audio_aug_features):
        assert len(feats) == N_THESIS_FEATURES and np.isfinite(feats).all()
        assert len(aug) == 2 and all(len(a) == N_THESIS_FEATURES for a in aug)
    rich = np.stack(with_audio.audio_rich_features.values)
    assert rich.shape == (16, N_RICH_FEATURES) and np.isfinite(rich).all()
    no_audio = clips[clips.status.isin(["no_audio", "video_only"])]
    assert no_audio.audio_features.isna().all() and not no_audio.has_audio.any()


@pytest.mark.slow
def test_summary_json(preprocessed):
    out, summary = preprocessed
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["inputs"] == summary["inputs"] == 22
    assert on_disk["status"]["ok"] == 14 and on_disk["status"]["dropped"] == 1
    assert on_disk["face_crops"] == int(read(out, "frames").shape[0])


@pytest.mark.slow
def test_rerun_resumes_without_duplicates(small_sample, preprocessed, tmp_path):
    out, _ = preprocessed
    copy = tmp_path / "shards"
    shutil.copytree(out, copy)
    before = read(copy, "clips")
    summary = run_preprocess(PreprocessConfig(data_dir=str(small_sample), out=str(copy)))
    assert summary["this_run"]["processed"] == 0
    after = read(copy, "clips")
    assert len(after) == len(before) and after.path.is_unique


@pytest.mark.slow
def test_files_added_to_the_archive_are_the_only_ones_processed(small_sample, ray_local, tmp_path):
    """A finished output, then new files in its archive: the re-run writes shards for the new
    files only and leaves every earlier shard file as it was (same bytes, same mtime)."""
    clips = sorted((small_sample / "Actor_01").glob("*.mp4"))
    archive = tmp_path / "archive" / "Actor_01"
    archive.mkdir(parents=True)
    for clip in clips[:4]:
        shutil.copy(clip, archive)
    out = tmp_path / "shards"
    cfg = PreprocessConfig(data_dir=str(archive.parent), out=str(out), videos_per_shard=2)
    assert run_preprocess(cfg)["this_run"]["processed"] == 4
    before = shard_files(out)
    added = {str(Path(shutil.copy(clip, archive)).resolve()) for clip in clips[4:]}
    summary = run_preprocess(cfg)
    assert summary["this_run"]["processed"] == len(added) == 3
    assert_only_added_inputs_written(before, out, "clips", added)
    rows = Counter(read(out, "clips").path)
    assert rows == Counter(it.path for it in list_inputs(str(archive.parent)))   # one row each
    assert summary["inputs"] == 7 and set(read(out, "frames").path) <= set(rows)


@pytest.mark.slow
def test_strict_fails_on_bad_inputs(small_sample, ray_local, tmp_path):
    from mer_ray.cli import main

    bad_only = tmp_path / "in"
    bad_only.mkdir()
    shutil.copy(small_sample / "bad" / "01-01-05-01-01-09-24.mp4", bad_only)
    assert main(["preprocess", str(bad_only), "--out", str(tmp_path / "a")]) == 0
    assert main(["preprocess", str(bad_only), "--out", str(tmp_path / "b"), "--strict"]) == 1


@pytest.mark.slow
def test_killed_run_resumes_to_exact_rows(small_sample, tmp_path):
    """SIGKILL a CLI run after its first committed shard; the re-run completes without
    duplicates, and its console (a newcomer's: no console variables set) is quiet: the
    resume line, the progress line and the summary, no library lines."""
    from support.quiet import assert_quiet, newcomer_env

    out = tmp_path / "shards"
    cmd = [sys.executable, "-m", "mer_ray.cli", "preprocess", str(small_sample), "--out", str(out),
           "--videos-per-shard", "1", "--num-cpus", "1"]
    env = newcomer_env()
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if len(list((out / "clips").glob("part-*.parquet"))) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(pq.read_table(out / "clips"))
    total = len(list_inputs(str(small_sample)))
    assert 0 < partial < total
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout + done.stderr
    assert_quiet(text)
    resumed = re.search(rf"{total} inputs: (\d+) already done", text)
    # a shard the killed run's workers were committing may land after `partial` was read
    assert resumed and partial <= int(resumed.group(1)) < total, text
    assert f"preprocessed {total}/{total} (100%)" in text and "face crops from" in text, text
    clips = read(out, "clips")
    frames = read(out, "frames")
    assert len(clips) == total and clips.path.is_unique
    assert len(frames) == clips.faces_found.sum()
    assert not Counter(zip(frames.video_id, frames.frame_index)).most_common(1)[0][1] > 1
    assert not list(out.rglob("_tmp-*"))


@pytest.mark.slow
def test_real_ravdess_clip_and_speech(shared_data, ray_local, tmp_path):
    data = tmp_path / "real"
    (data / "Actor_01").mkdir(parents=True)
    os.symlink(shared_data / "ravdess-video" / "01-01-07-02-02-01-01_1.mp4",
               data / "01-01-07-02-02-01-01_1.mp4")
    speech = sorted((shared_data / "ravdess-speech" / "Actor_01").glob("*.wav"))[:12]
    for wav in speech:
        os.symlink(wav, data / "Actor_01" / wav.name)
    summary = run_preprocess(PreprocessConfig(data_dir=str(data), out=str(tmp_path / "out")))
    clips = clips_store(str(tmp_path / "out")).read("clips").to_pandas()
    assert summary["inputs"] == 13
    video = clips[clips.path.str.endswith(".mp4")].iloc[0]
    assert video.status == "ok" and video.label == "disgust" and video.actor == 1
    assert video.keyframes == 12 and video.faces_found >= 10
    wavs = clips[clips.path.str.endswith(".wav")]
    calm = wavs.path.map(lambda p: Path(p).name.split("-")[2] == "02")
    assert set(wavs[calm].status) == {"dropped"} and set(wavs[~calm].status) == {"audio_only"}
    assert all(len(f) == N_THESIS_FEATURES for f in wavs[~calm].audio_features)


@pytest.mark.parametrize("n, actors, cap", [(1, 2, 16), (7, 2, 16), (28, 2, 16), (200, 2, 16),
                                            (1000, 8, 16), (50, 1, 64)])
def test_block_sizes_cover_inputs_and_shrink_at_the_end(n, actors, cap):
    sizes = block_sizes(n, actors, cap)
    assert sum(sizes) == n and all(0 < s <= cap for s in sizes)
    assert sizes == sorted(sizes, reverse=True), "blocks must shrink, never grow"
    if n >= 8 * actors:
        assert len(sizes) >= 4 * actors, "each actor should get several blocks"
        assert sizes[-1] <= max(1, -(-sizes[0] // 4)), "the last block should be short"


def test_input_blocks_keep_order_and_one_schema():
    rows = [{"path": f"v{i}.mp4", "speaker": None if i % 2 else "a"} for i in range(10)]
    blocks = input_blocks(rows, [4, 3, 2, 1])
    assert [b.num_rows for b in blocks] == [4, 3, 2, 1]
    assert len({b.schema for b in blocks}) == 1
    assert [r["path"] for b in blocks for r in b.to_pylist()] == [r["path"] for r in rows]


def linked_archive(clip: Path, root: Path) -> list[str]:
    """``root`` with a copy of ``clip``, a relative and an absolute symlink to it and a hard
    link: four inputs, one file. Returns the four paths as given."""
    root.mkdir(parents=True)
    shutil.copy(clip, root / "clip.mp4")
    os.symlink("clip.mp4", root / "rel_link.mp4")
    os.symlink(root / "clip.mp4", root / "abs_link.mp4")
    os.link(root / "clip.mp4", root / "hard_link.mp4")
    return sorted(str(root / n) for n in ("clip.mp4", "rel_link.mp4", "abs_link.mp4", "hard_link.mp4"))


@pytest.mark.slow
def test_links_are_one_row_each_under_the_given_path(small_sample, ray_local, tmp_path):
    clip = next(p for p in sorted(small_sample.rglob("*.mp4")) if "bad" not in p.parts)
    paths = linked_archive(clip, tmp_path / "archive")
    out = tmp_path / "out"
    cfg = PreprocessConfig(data_dir=str(tmp_path / "archive"), out=str(out), videos_per_shard=1)
    summary = run_preprocess(cfg)
    clips = read(out, "clips")
    assert summary["inputs"] == 4 and sorted(clips.path) == paths
    assert clips.video_id.is_unique and set(clips.status) == {"ok"}
    assert run_preprocess(cfg)["this_run"]["processed"] == 0      # resume matches the paths
    assert sorted(read(out, "clips").path) == paths
