"""`ray job submit --working-dir .` of the jobs in jobs/ against a real local Ray head.

One head per module (`ray start --head` on free ports, token auth, its own --temp-dir), stopped
by session in the fixture's finalizer. Jobs are submitted with the same `ray job submit`
command line docs/cluster.md shows; the test then polls the job server for the outcome.
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

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
PYTHON = "python" if shutil.which("python") else sys.executable   # as the README writes it
JOB_TIMEOUT_S = 300


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
    """`ray job submit --working-dir . --no-wait -- python jobs/<script> ARGS` from the repo root."""
    job_id = f"mer-test-{uuid.uuid4().hex[:10]}"
    cmd = cluster.submit_command([PYTHON, f"jobs/{script}", *args], head.address,
                                 submission_id=job_id)
    cluster.ray_cli(cmd, env=head.env(), cwd=REPO)
    return job_id


def committed(store) -> list[str]:
    """``path`` of every committed row of a ShardStore's primary table."""
    return store.read(store.primary, columns=["path"]).column("path").to_pylist()


def read_summary(out: str) -> dict:
    fs, root = pafs.FileSystem.from_uri(out) if "://" in out else (pafs.LocalFileSystem(), out)
    with fs.open_input_stream(f"{root}/{SUMMARY_FILE}") as fh:
        return json.loads(fh.read())


def stop_midway_and_resume(head: cluster.LocalHead, script: str, args: list[str], store,
                           inputs: list[str]) -> tuple[int, str]:
    """Submit, stop the job with `ray job stop` once its first shard is committed, check it
    stopped with work left, re-submit and wait for SUCCEEDED. Returns (rows committed at the stop, the
    second job's log)."""
    client = head.client()
    first = submit(head, script, args)

    def progress() -> str:
        return (f"status {cluster.job_status(client, first)}; {len(committed(store))} committed\n"
                f"{cluster.job_logs(client, first)}")

    cluster.wait_until(lambda: len(committed(store)) > 0, JOB_TIMEOUT_S,
                       f"the first committed shard of {script}", poll_s=0.2, on_timeout=progress)
    cluster.ray_cli(cluster.stop_command(first, head.address), env=head.env(), cwd=REPO)
    cluster.wait_for_job(client, first, timeout_s=60, expect="STOPPED")
    done_before = len(committed(store))
    assert 0 < done_before < len(inputs), (
        f"{done_before} of {len(inputs)} rows committed when the stop landed: the job was not "
        f"stopped midway\n{progress()}")

    second = submit(head, script, args)
    cluster.wait_for_job(client, second, timeout_s=JOB_TIMEOUT_S)
    assert client.get_job_info(second).runtime_env["working_dir"].startswith("gcs://")
    paths = committed(store)
    assert len(paths) == len(set(paths)), "duplicate rows after resume"
    assert sorted(paths) == sorted(inputs), "missing or foreign rows after resume"
    return done_before, cluster.job_logs(client, second, tail=1_000_000)


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


def actor_of(path: str) -> int:
    return int(Path(path).stem.rsplit("-", 1)[1])


@pytest.fixture(scope="module")
def many(sample, tmp_path_factory) -> dict:
    """The 28 sample clips hard-linked under 3 more actor ids each: 112 inputs, so a job runs
    well past the 1-3 s `ray job stop` takes to land (28 tiny clips take only ~5 s)."""
    root = tmp_path_factory.mktemp("cluster_many")
    actors = sorted({actor_of(p) for p in sample["paths"]})
    spare = iter(a for a in range(1, 25) if a not in actors)
    new_ids = {a: [a, next(spare), next(spare), next(spare)] for a in actors}
    paths = []
    for src in map(Path, sample["paths"]):
        actor = actor_of(str(src))
        for new in new_ids[actor]:
            dst = root / f"Actor_{new:02d}" / src.name.replace(f"-{actor:02d}.mp4", f"-{new:02d}.mp4")
            dst.parent.mkdir(exist_ok=True)
            dst.hardlink_to(src)
            paths.append(str(dst.resolve()))
    return {"root": root, "paths": paths}


@pytest.fixture(scope="module")
def preprocessed(head, many, tmp_path_factory) -> dict:
    """preprocess, --out file:///...: stopped after its first shard, then re-submitted."""
    from mer_ray.data.preprocess import store_for

    out = (tmp_path_factory.mktemp("cluster_shards") / "shards").as_uri()
    args = [str(many["root"]), "--out", out, "--videos-per-shard", "1",
            "--skip", "5", "--aug-copies", "4"]          # more work per clip: a wider stop window
    done_before, log = stop_midway_and_resume(head, "preprocess.py", args, store_for(out),
                                              many["paths"])
    return {"out": out, "done_before": done_before, "log": log}


def test_preprocess_job_stopped_midway_resumes(preprocessed, many):
    """Every input ends up with exactly one clips row; the second run did only the rest."""
    listed, already = resumed_counts(preprocessed["log"], "done")
    summary = read_summary(preprocessed["out"])
    assert listed == summary["inputs"] == len(many["paths"]) and summary["failed"] == 0
    assert already >= preprocessed["done_before"]
    assert summary["this_run"]["processed"] == listed - already > 0
    assert summary["face_crops"] > 0


def test_train_jobs_on_the_submitted_shards(head, preprocessed, tmp_path):
    """train_audio.py and train_visual.py read the file:// shards and write loadable bundles.
    One after the other: two Ray Train jobs on 2 CPUs would wait on each other's CPUs."""
    from mer_ray.models.bundle import load_bundle_info

    common = ["--epochs", "1", "--val", "none"]
    extra = {"audio": [], "visual": ["--backbone", "tiny", "--init", "none"]}
    client = head.client()
    for kind in ("audio", "visual"):
        run = tmp_path / kind
        job_id = submit(head, f"train_{kind}.py", [preprocessed["out"], "--out", str(run),
                                                    *common, *extra[kind]])
        cluster.wait_for_job(client, job_id, timeout_s=JOB_TIMEOUT_S)
        info = load_bundle_info(str(run))
        assert info.kind == kind and (run / info.model_file).is_file()
        assert (run / "metrics.json").is_file()


def test_score_job_stopped_midway_resumes(head, many, tiny_bundles, tmp_path):
    """score to a local folder: stopped after its first shard, re-submitted, one row per input.
    On 112 inputs: with 28, the extraction finished while the models loaded and every row was
    committed within a second or two of the first, before the stop landed."""
    from mer_ray.score.pipeline import store_for

    out = str(tmp_path / "scores")
    args = [str(many["root"]), "--visual", tiny_bundles["visual"], "--audio",
            tiny_bundles["audio"], "--out", out, "--videos-per-shard", "1", "--skip", "5",
            "--visual-batch", "1", "--audio-batch", "1"]
    done_before, log = stop_midway_and_resume(head, "score.py", args, store_for(out),
                                              many["paths"])
    listed, already = resumed_counts(log, "scored")
    summary = read_summary(out)
    assert listed == summary["rows"] == len(many["paths"])
    assert already >= done_before and summary["this_run"]["scored"] == listed - already > 0
