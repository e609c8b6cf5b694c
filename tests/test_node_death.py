"""A worker node dies mid-job on a local multi-node Ray cluster (a head and two worker raylets,
all on this machine, each a process session of its own).

The score job is submitted with `ray job submit`; once it has committed some shards, every
process of one worker node is SIGKILLed at once (the raylet, its workers, its agents), as when a
machine is lost. Either the job finishes (Ray Data restarts the lost actors and retries their
tasks) or, if it fails, a re-submit resumes it; rows == inputs with no duplicates either way.
The same for a Ray Train run of the visual model: it resumes from its last checkpoint.
"""
from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from support import cluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
PYTHON = "python" if shutil.which("python") else sys.executable
JOB_TIMEOUT_S = 420
FAST_DEATH = {"RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4"}
"""The head marks a silent node dead after ~2 s instead of Ray's default ~15 s."""


@pytest.fixture(scope="module")
def nodes():
    """A head (1 CPU) and two worker nodes (1 CPU each); everything stopped afterwards."""
    head = cluster.start_head(num_cpus=1, extra_env=FAST_DEATH)
    try:
        workers = [cluster.start_worker_node(head, num_cpus=1) for _ in range(2)]
        yield head, workers
    finally:
        head.stop()


def submit(head: cluster.LocalHead, script: str, args: list[str]) -> str:
    """`ray job submit` of ``script`` (relative to the repo) without --working-dir: the raylets
    here share one session folder, and their runtime-env agents unpacking the same working_dir
    package at once race (a worker then imports a half-unpacked mer_ray). Every node of this
    machine imports the installed package instead, as on a cluster with mer_ray installed."""
    job_id = f"mer-node-death-{uuid.uuid4().hex[:8]}"
    cmd = cluster.submit_command([PYTHON, str(REPO / script), *args], head.address,
                                 working_dir=None, submission_id=job_id)
    cluster.ray_cli(cmd, env=head.env(), cwd=REPO)
    return job_id


def finish_or_resubmit(head: cluster.LocalHead, job_id: str, script: str, args: list[str]) -> list[str]:
    """Wait for ``job_id``; if it failed, submit ``script`` again and wait for that one.
    Returns the statuses seen (first job, then the re-submit if there was one)."""
    client = head.client()
    status = _wait_terminal(client, job_id)
    if status == "SUCCEEDED":
        return [status]
    again = submit(head, script, args)
    cluster.wait_for_job(client, again, timeout_s=JOB_TIMEOUT_S)
    return [status, "SUCCEEDED"]


def _wait_terminal(client, job_id: str) -> str:
    holder: dict[str, str] = {}

    def done() -> bool:
        holder["status"] = cluster.job_status(client, job_id)
        return holder["status"] in cluster.TERMINAL

    cluster.wait_until(done, JOB_TIMEOUT_S, f"job {job_id} to end", poll_s=1.0,
                       on_timeout=lambda: cluster.job_logs(client, job_id))
    return holder["status"]


def test_score_survives_a_node_death(nodes, tiny_bundles, tmp_path):
    from mer_ray.sample import SampleConfig, make_sample
    from mer_ray.score.schema import scores_store

    head, workers = nodes
    paths = make_sample(tmp_path / "archive", SampleConfig(actors=4, clips_per_emotion=1, seconds=1.0,
                                                          width=160, height=120))
    inputs = sorted(str(p.resolve()) for p in paths)
    out = str(tmp_path / "scores")
    args = [str(tmp_path / "archive"), "--visual", tiny_bundles["visual"], "--audio",
            tiny_bundles["audio"], "--out", out, "--videos-per-shard", "1",
            "--visual-batch", "1", "--audio-batch", "1"]
    store = scores_store(out)
    client = head.client()
    job_id = submit(head, "jobs/score.py", args)

    def committed() -> list[str]:
        return store.read(store.primary, columns=["path"]).column("path").to_pylist()

    def started() -> bool:
        status = cluster.job_status(client, job_id)
        if status in cluster.TERMINAL and len(committed()) < len(inputs):
            raise cluster.JobError(f"job {status} before the kill:\n{cluster.job_logs(client, job_id)}")
        return len(committed()) >= 3

    cluster.wait_until(started, JOB_TIMEOUT_S, "3 committed shards", poll_s=0.2,
                       on_timeout=lambda: cluster.job_logs(client, job_id))
    before = len(committed())
    assert before < len(inputs), "the job ended before the node could be killed"
    assert workers[0].kill() > 0
    statuses = finish_or_resubmit(head, job_id, "jobs/score.py", args)
    rows = committed()
    assert len(rows) == len(set(rows)), f"duplicate rows ({statuses})"
    assert sorted(rows) == inputs, f"missing or foreign rows ({statuses})"
    print("score after a node death:", statuses, f"{before} of {len(inputs)} committed at the kill")


def _train_worker_node(workers: list[cluster.LocalNode]) -> cluster.LocalNode | None:
    """The worker node that runs a Ray Train worker of the job, if one does now."""
    for node in workers:
        for proc in node.processes():
            try:
                title = " ".join(proc.cmdline()) + proc.name()
            except Exception:       # psutil.Error: it ended meanwhile
                continue
            if "RayTrainWorker" in title:
                return node
    return None


def _checkpoint_registered(storage: Path) -> bool:
    """Ray Train's controller has registered a checkpoint of the run under ``storage``: its
    checkpoint manager snapshot names one. A worker's report returns before that, and a
    restart only resumes from a registered checkpoint (else it starts afresh, attempt 0)."""
    for snapshot in storage.rglob("checkpoint_manager_snapshot.json"):
        try:
            if json.loads(snapshot.read_text()).get("latest_checkpoint_result"):
                return True
        except (OSError, ValueError):       # being written
            continue
    return False


def test_visual_training_survives_a_node_death(nodes, tmp_path):
    """Two Ray Train workers hold at epoch 1 (tests/support/train_hooks.py HoldAt); the node of
    one is killed, a new node joins (as an autoscaler would: the restarted group needs its two
    CPUs plus one for the dataset's read tasks) and the hold is released: the run restarts from
    its last checkpoint (FailureConfig) and every epoch appears once in history.csv."""
    from mer_ray.train.rundir import read_history_csv
    from support.synthetic import write_synthetic_shards

    head, workers = nodes
    alive = [n for n in workers if n.processes()]
    while len(alive) < 2:                        # the score test killed one: bring back two
        alive.append(cluster.start_worker_node(head, num_cpus=1))
    shards = write_synthetic_shards(tmp_path / "shards", clips_per_class=1, frames_per_clip=3)
    out, gate, epochs = tmp_path / "run", tmp_path / "gate", 2   # held at the last
    args = [str(shards), "--backbone", "tiny", "--init", "none", "--epochs", str(epochs),
            "--batch-size", "8", "--workers", "2", "--max-failures", "2", "--val", "none",
            "--out", str(out)]
    client = head.client()
    job_id = submit(head, "tests/support/train_hooks.py", [str(gate), "1", "train-visual", *args])

    def held() -> bool:
        if cluster.job_status(client, job_id) in cluster.TERMINAL:
            raise cluster.JobError(f"training ended before the kill:\n{cluster.job_logs(client, job_id)}")
        return len(list(gate.glob("held-*"))) == 2 and _checkpoint_registered(out / "_ray")

    cluster.wait_until(held, JOB_TIMEOUT_S, "both train workers to hold at epoch 1, after "
                       "epoch 0's checkpoint is registered", poll_s=0.5,
                       on_timeout=lambda: cluster.job_logs(client, job_id))
    victim = _train_worker_node(alive)
    assert victim is not None, "no train worker on a worker node"
    assert victim.kill() > 0
    cluster.start_worker_node(head, num_cpus=1)
    (gate / "release").write_text("go\n")
    statuses = finish_or_resubmit(head, job_id, "jobs/train_visual.py", args)
    rows = read_history_csv(out / "history.csv")
    assert [r["epoch"] for r in rows] == list(range(epochs)), f"epochs redone or lost ({statuses})"
    attempts = [r["attempt"] for r in rows]
    assert attempts[0] == 0 and attempts[-1] >= 1, f"no restart recorded: {attempts} ({statuses})"
    assert json.loads((out / "metrics.json").read_text())["resumed"] is True
    print("training after a node death:", statuses, "attempts per epoch", attempts)
