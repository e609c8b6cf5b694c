"""The score job on local Ray, for what its output directory promises: shards commit as work
completes whatever the model batch sizes, and a full disk ends in one line."""
from __future__ import annotations

import errno
import functools
import shutil
import sys
import time
from pathlib import Path

import pytest

from mer_ray.config import RayConfig, ScoreConfig

GATE_LIMIT_S = 240.0
"""How long a held input waits for a committed shard before giving up (a failure bound only:
with prompt commits the first shard lands as soon as its inputs are through)."""


def _wav_archive(shared_data: Path, root: Path, n: int) -> Path:
    root.mkdir()
    for wav in sorted((shared_data / "ravdess-speech" / "Actor_01").glob("*.wav"))[:n]:
        shutil.copy(wav, root)
    return root


def gated_rows(items, results, audio_column, out, first, marks, opts=None):
    """extraction_rows, but an input outside ``first`` waits until OUT/scores holds a
    committed shard; ``marks`` records, per held input, how many shards there were then."""
    from mer_ray.score.rows import extraction_rows

    for item in items:
        if item["path"] in first:
            continue
        deadline = time.monotonic() + GATE_LIMIT_S
        while not (shards := list(Path(out, "scores").glob("part-*.parquet"))):
            if time.monotonic() > deadline or Path(marks, "gave-up").exists():
                Path(marks, "gave-up").touch()          # the later held inputs do not wait
                break
            time.sleep(0.2)
        Path(marks, Path(item["path"]).name).write_text(str(len(shards)))
    return extraction_rows(items, results, audio_column=audio_column, opts=opts)


@pytest.mark.slow
def test_shards_commit_before_the_model_batch_fills(ray_local, shared_data, tiny_bundles,
                                                    tmp_path, monkeypatch):
    """Audio batch 64, 2 videos per shard, 6 inputs: every input after the first two is held
    at extraction until a shard is committed. Rows waiting for a full model batch (64) would
    never reach the sink, so nothing would commit and the held inputs would give up."""
    import ray.cloudpickle

    from mer_ray.data.sources import list_inputs
    from mer_ray.score import job

    archive = _wav_archive(shared_data, tmp_path / "archive", 6)
    out, marks = tmp_path / "scores", tmp_path / "marks"
    marks.mkdir()
    first = {it.path for it in list_inputs(str(archive))[:2]}
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setattr(job, "extraction_rows", functools.partial(
        gated_rows, out=str(out), first=first, marks=str(marks)))
    cfg = ScoreConfig(source=str(archive), out=str(out), audio=tiny_bundles["audio"],
                      audio_batch_videos=64, videos_per_shard=2, ray=RayConfig(num_cpus=2),
                      in_process_max=0)                            # Ray Data's batching
    summary = job.run_score(cfg)
    assert summary["rows"] == 6
    seen = {p.name: int(p.read_text() or 0) for p in marks.iterdir()}
    assert "gave-up" not in seen and len(seen) == 4 and min(seen.values()) >= 1, seen


def full_disk_split(table, timeline=False, segments=False):
    """split_output on a full disk: the sink's write fails as ShardStore reports it."""
    from mer_ray.data.shards import _write_error

    raise _write_error(OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] "
                                             "No space left on device"), "OUT/scores")


@pytest.mark.slow
@pytest.mark.parametrize("in_process_max", ["64", "0"], ids=["without Ray", "on Ray"])
def test_full_disk_ends_in_one_line(ray_local, shared_data, tiny_bundles, tmp_path,
                                    monkeypatch, capfd, in_process_max):
    import ray.cloudpickle

    from mer_ray.cli import main
    from mer_ray.score import in_process, job

    archive = _wav_archive(shared_data, tmp_path / "archive", 2)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setattr(job, "split_output", full_disk_split)
    monkeypatch.setattr(in_process, "split_output", full_disk_split)
    out = tmp_path / "scores"
    rc = main(["score", str(archive), "--visual", "none", "--audio", tiny_bundles["audio"],
               "--out", str(out), "--videos-per-shard", "1", "--in-process-max", in_process_max])
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert rc == 1
    assert err[-1] == "mer-ray score: error: no space left on device writing OUT/scores"
    assert not any("Traceback" in line for line in err), err
    assert not (out / "_lock.json").exists()            # released on the way out
