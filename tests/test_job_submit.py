"""`ray job submit --working-dir .` of the jobs in jobs/ against a real local Ray head.

One head per module (`ray start --head` on free ports, token auth, its own --temp-dir), stopped
by session in the fixture's finalizer. Jobs are submitted with the same `ray job submit`
command line docs/cluster.md shows; the test then polls the job server for the outcome.

The stop/resume test stops a job that cannot finish first (a submitted score job interrupted
midway is tests/test_node_death.py's, by a node's death): its first run is
tests/support/held_job.py, the same job with an extraction stage that commits a fixed number of
shards and then holds, so `ray job stop` lands midway on any machine; the resumed run is the
plain jobs/ script.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from support import cluster
from mer_ray.data.schema import SUMMARY_FILE

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
PYTHON = "python" if shutil.which("python") else sys.executable   # as the README writes it
JOB_TIMEOUT_S = 300
PASSES = 2          # extraction calls (one input each) the held first run lets through


@pytest.fixture(scope="module")
def head():
    """A private head: 2 CPUs, token auth; always stopped (only its own processes)."""
    local = cluster.start_head(num_cpus=2)
    try:
        yield local
    finally:
        local.stop()
        assert not local.processes(), "head processes left running"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict:
    """28 short RAVDESS-named clips (4 actors x 7 emotions), tiny frames."""
    from mer_ray.sample import SampleConfig, make_sample

    root = tmp_path_factory.mktemp("cluster_sample")
    paths = make_sample(root, SampleConfig(actors=4, clips_per_emotion=1, seconds=1.0,
                                           width=160, height=120))
    return {"root": root, "paths": [str(p.resolve()) for p in paths]}


def submit(head: cluster.LocalHead, script: str, args: list[str]) -> str:
    """`ray job submit --working-dir . --no-wait -- python SCRIPT ARGS` from the repo root
    (SCRIPT relative to it, e.g. jobs/preprocess.py)."""
    job_id = f"mer-test-{uuid.uuid4().hex[:10]}"
    cmd = cluster.submit_command([PYTHON, script, *args], head.address, submission_id=job_id)
    cluster.ray_cli(cmd, env=head.env(), cwd=REPO)
    return job_id


def committed(store) -> list[str]:
    """``path`` of every committed row of a ShardStore's primary table."""
    return store.read(store.primary, columns=["path"]).column("path").to_pylist()


def read_summary(out: str) -> dict:
    fs, root = pafs.FileSystem.from_uri(out) if "://" in out else (pafs.LocalFileSystem(), out)
    with fs.open_input_stream(f"{root}/{SUMMARY_FILE}") as fh:
        return json.loads(fh.read())


def stop_held_and_resume(head: cluster.LocalHead, job: str, args: list[str], store,
                         inputs: list[str], gate: Path) -> str:
    """Submit the held ``job`` (tests/support/held_job.py), wait until it has committed its
    PASSES shards and holds, stop it with `ray job stop`, check nothing more was committed,
    re-submit the plain jobs/<job>.py and wait for SUCCEEDED: one row per input, no duplicates.
    Returns the second job's log."""
    client = head.client()
    first = submit(head, "tests/support/held_job.py", [job, str(gate), str(PASSES), *args])

    def progress() -> str:
        return (f"status {cluster.job_status(client, first)}; {len(committed(store))} committed; "
                f"gate {sorted(p.name for p in gate.glob('*'))}\n{cluster.job_logs(client, first)}")

    cluster.wait_until(lambda: len(committed(store)) >= PASSES and any(gate.glob("held-*")),
                       JOB_TIMEOUT_S, f"{PASSES} committed shards of the held {job} job",
                       poll_s=0.2, on_timeout=progress)
    cluster.ray_cli(cluster.stop_command(first, head.address), env=head.env(), cwd=REPO)
    cluster.wait_for_job(client, first, timeout_s=60, expect="STOPPED")
    assert len(committed(store)) == PASSES < len(inputs), progress()

    second = submit(head, f"jobs/{job}.py", args)
    cluster.wait_for_job(client, second, timeout_s=JOB_TIMEOUT_S)
    assert client.get_job_info(second).runtime_env["working_dir"].startswith("gcs://")
    paths = committed(store)
    assert len(paths) == len(set(paths)), "duplicate rows after resume"
    assert sorted(paths) == sorted(inputs), "missing or foreign rows after resume"
    return cluster.job_logs(client, second, tail=1_000_000)


def resumed_counts(log: str, word: str) -> tuple[int, int]:
    """(inputs, already done) from the job's "N inputs: K already <word>" log line."""
    match = re.search(rf"(\d+) inputs: (\d+) already {word}", log)
    assert match, f"no 'already {word}' line in the job log:\n{log[-3000:]}"
    return int(match.group(1)), int(match.group(2))


def test_head_rejects_requests_without_the_token(head):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{head.address}/api/jobs/", timeout=10)
    assert err.value.code == 401
    assert isinstance(head.client().list_jobs(), list)       # with the token: accepted


@pytest.fixture(scope="module")
def preprocessed(head, sample, tmp_path_factory) -> dict:
    """preprocess, --out file:///...: held after PASSES shards, stopped, then re-submitted.
    One input per shard (--videos-per-shard 1), so PASSES calls commit PASSES rows."""
    from mer_ray.data.preprocess import store_for

    out = (tmp_path_factory.mktemp("cluster_shards") / "shards").as_uri()
    args = [str(sample["root"]), "--out", out, "--videos-per-shard", "1"]
    log = stop_held_and_resume(head, "preprocess", args, store_for(out), sample["paths"],
                               tmp_path_factory.mktemp("preprocess_gate"))
    return {"out": out, "log": log}


def test_preprocess_job_stopped_midway_resumes(preprocessed, sample):
    """Every input ends up with exactly one clips row; the second run did only the rest."""
    listed, already = resumed_counts(preprocessed["log"], "done")
    summary = read_summary(preprocessed["out"])
    assert listed == summary["inputs"] == len(sample["paths"]) and summary["failed"] == 0
    assert already == PASSES
    assert summary["this_run"]["processed"] == listed - PASSES
    assert summary["face_crops"] > 0


def test_train_job_on_the_submitted_shards(head, preprocessed, tmp_path):
    """train_audio.py reads the file:// shards through the uploaded working dir and writes a
    loadable bundle. (A submitted visual training run is test_node_death's: it also loses a
    node midway.)"""
    from mer_ray.models.bundle import load_bundle_info

    client = head.client()
    run = tmp_path / "audio"
    job_id = submit(head, "jobs/train_audio.py", [preprocessed["out"], "--out", str(run),
                                                  "--epochs", "1", "--val", "none"])
    cluster.wait_for_job(client, job_id, timeout_s=JOB_TIMEOUT_S)
    info = load_bundle_info(str(run))
    assert info.kind == "audio" and (run / info.model_file).is_file()
    assert (run / "metrics.json").is_file()
