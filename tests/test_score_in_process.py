"""Small archives scored without Ray (score/in_process.py): when it applies, the same rows as
the Ray job, resume, and a dying extraction process handing the rest to Ray."""
from __future__ import annotations

import dataclasses
import math
import os
from collections import Counter

import pyarrow.compute as pc
import pytest

from mer_ray.config import RayConfig, ScoreConfig
from mer_ray.data.sources import list_inputs
from mer_ray.score.in_process import extraction_processes, runs_in_process
from mer_ray.score.job import run_score
from mer_ray.score.local import score_locally
from mer_ray.score.schema import SCORES_DIR, TIMELINE_DIR, scores_store

TIMINGS = {"t_decode_s", "t_faces_s", "t_visual_s", "t_audio_features_s", "t_audio_s",
           "t_fusion_s"}


def _cfg(archive, bundles, out, **kw) -> ScoreConfig:
    return ScoreConfig(source=str(archive["root"]), out=str(out), visual=bundles["visual"],
                       audio=bundles["audio"], timeline=True, videos_per_shard=4,
                       ray=RayConfig(num_cpus=2), **kw)


def test_which_runs_are_scored_without_ray(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cfg = ScoreConfig(source="-", out="-", in_process_max=10)
    assert runs_in_process(cfg, 1) and runs_in_process(cfg, 10)
    assert not runs_in_process(cfg, 11) and not runs_in_process(cfg, 0)     # nothing to do
    assert not runs_in_process(dataclasses.replace(cfg, in_process_max=0), 1)
    assert not runs_in_process(dataclasses.replace(cfg, gpus_per_worker=1), 1)
    assert not runs_in_process(dataclasses.replace(cfg, audio_gpus=0.5), 1)
    assert not runs_in_process(dataclasses.replace(cfg, ray=RayConfig(address="auto")), 1)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")                      # ray job submit
    assert not runs_in_process(cfg, 1)


def test_extraction_processes_follow_the_cpus_and_the_inputs():
    cfg = ScoreConfig(source="-", out="-", ray=RayConfig(num_cpus=3))
    assert extraction_processes(cfg, 100) == 3 and extraction_processes(cfg, 2) == 2
    assert extraction_processes(dataclasses.replace(cfg, extract_workers=1), 100) == 1
    assert extraction_processes(ScoreConfig(source="-", out="-"), 100) == (os.cpu_count() or 1)


def test_each_shard_is_predicted_in_model_batches():
    from mer_ray.score.in_process import _batch_sizes

    assert _batch_sizes(50, 8) == [8] * 6 + [2] and sum(_batch_sizes(50, 8)) == 50
    assert _batch_sizes(16, 8) == [8, 8] and _batch_sizes(3, 8) == [3] and _batch_sizes(0, 8) == []


def test_processes_are_spawned_once_this_process_runs_ray(monkeypatch):
    """A forked copy of Ray's core worker crashes the child: fork only while Ray is off."""
    import sys

    import ray

    from mer_ray.score.in_process import _start_method

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    assert _start_method() == "spawn"
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    assert _start_method() == "fork"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert _start_method() == "spawn"


def _rows(out, table: str, key) -> list[dict]:
    rows = scores_store(str(out)).read(table).to_pylist()
    return sorted(({k: v for k, v in r.items() if k not in TIMINGS} for r in rows), key=key)


def _same(a, b) -> bool:
    """Equal, floats to 1e-6 (a model sees other batches on Ray: float round-off)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _differences(a: list[dict], b: list[dict]) -> list:
    assert len(a) == len(b)
    return [(x["path"], k) for x, y in zip(a, b) for k in x if not _same(x[k], y.get(k))]


VICTIM = "MER_TEST_VICTIM"
"""The variable naming the input _crash_on_victim kills its extraction process on (forked and
spawned processes both inherit the environment; the pool finds the function by its name)."""


def _crash_on_victim(item: dict):
    import mer_ray.score.in_process as in_process

    if item["path"] == os.environ.get(VICTIM):
        os._exit(3)
    return in_process._ACTOR.rows([item])


@pytest.mark.slow
def test_the_rows_are_the_ray_jobs_and_a_resume_adds_only_the_rest(ray_local, mixed_archive,
                                                                   tiny_bundles, tmp_path):
    """An output with 2 inputs committed, finished without Ray, then the same archive on Ray
    from scratch: the same rows (timings aside), scores and timeline, one shard per 4 inputs."""
    here, there = tmp_path / "here", tmp_path / "there"
    cfg = _cfg(mixed_archive, tiny_bundles, here)
    items = [it.to_row() for it in list_inputs(cfg.source)]
    scores_store(str(here)).write_shard("earlier", score_locally(cfg, items[:2]))
    summary = run_score(cfg)
    assert summary["this_run"] == {**summary["this_run"], "scored": len(items) - 2,
                                   "on_ray": False}
    on_ray = run_score(_cfg(mixed_archive, tiny_bundles, there, in_process_max=0))
    assert on_ray["this_run"]["on_ray"] is True and on_ray["rows"] == summary["rows"] == len(items)
    by_path = lambda r: r["path"]                                        # noqa: E731
    assert not _differences(_rows(here, SCORES_DIR, by_path), _rows(there, SCORES_DIR, by_path))
    frames = lambda r: (r["path"], r["frame_index"])                     # noqa: E731
    timeline = _rows(here, TIMELINE_DIR, frames)
    assert timeline and not _differences(timeline, _rows(there, TIMELINE_DIR, frames))
    shards = sorted((here / SCORES_DIR).glob("part-*.parquet"))
    assert len(shards) == 1 + math.ceil((len(items) - 2) / 4)
    again = run_score(cfg)
    assert again["this_run"]["scored"] == 0 and again["rows"] == len(items)


@pytest.mark.slow
def test_a_dying_extraction_process_hands_the_rest_to_ray(ray_local, mixed_archive, tiny_bundles,
                                                          tmp_path, monkeypatch):
    """A decoder crash kills its process (os._exit here): what is committed stays, and the
    inputs left are scored on Ray, each once."""
    import mer_ray.score.in_process as in_process

    victim = str(sorted(mixed_archive["good"])[-1].resolve())
    monkeypatch.setenv(VICTIM, victim)
    monkeypatch.setattr(in_process, "_extract", _crash_on_victim)
    cfg = _cfg(mixed_archive, tiny_bundles, tmp_path / "s")
    summary = run_score(cfg)
    table = scores_store(cfg.out).read(SCORES_DIR)
    listed = list_inputs(cfg.source)
    assert Counter(table.column("path").to_pylist()) == Counter(it.path for it in listed)
    assert summary["this_run"]["on_ray"] is True and summary["rows"] == len(listed)
    victim_row = table.filter(pc.equal(table.column("path"), victim))
    assert victim_row.column("status").to_pylist() == ["ok"]
