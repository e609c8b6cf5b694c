"""cluster.yaml against Ray's own autoscaler schema, and the local-head helpers of support.cluster."""
from __future__ import annotations

import copy
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import ray
from support import cluster

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster_config() -> dict:
    return yaml.safe_load((REPO / "cluster.yaml").read_text())


def _prepared(config: dict) -> dict:
    """What `ray up` does before talking to the cloud: defaults + docker checks + schema."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    full = prepare_config(copy.deepcopy(config))
    validate_config(full)
    return full


# ------------------------------------------------------------------------- cluster.yaml
def test_cluster_yaml_validates_against_ray_schema(cluster_config):
    full = _prepared(cluster_config)
    assert full["provider"]["type"] == "aws"
    assert full["head_node_type"] in full["available_node_types"]


def test_cluster_yaml_rejects_a_typo(cluster_config):
    """The validation is real: a misspelt node-type key fails it."""
    import jsonschema

    bad = copy.deepcopy(cluster_config)
    bad["available_node_types"]["gpu_worker"]["max_worker"] = 3
    with pytest.raises(jsonschema.ValidationError, match="max_worker"):
        _prepared(bad)


def test_cluster_yaml_has_cpu_and_gpu_worker_types(cluster_config):
    from ray._private.label_utils import validate_node_label_syntax

    types = cluster_config["available_node_types"]
    workers = {name: t for name, t in types.items() if name != cluster_config["head_node_type"]}
    gpu = [t for t in workers.values() if t["resources"].get("GPU", 0) >= 1]
    cpu = [t for t in workers.values() if t["resources"].get("GPU", 0) == 0 and t["resources"].get("CPU", 0) > 0]
    assert gpu and cpu, "need a CPU worker type (decode/crop) and a GPU worker type (models)"
    for node_type in types.values():
        validate_node_label_syntax(node_type.get("labels", {}))
    for node_type in workers.values():
        assert 0 <= node_type.get("min_workers", 0) <= node_type["max_workers"]
    assert sum(t.get("min_workers", 0) for t in workers.values()) <= cluster_config["max_workers"]


def test_cluster_yaml_images_match_installed_ray(cluster_config):
    """Nodes must run the Ray version that submits the jobs; tags look like X.Y.Z-py3NN-gpu."""
    docker = cluster_config["docker"]
    images = [docker["image"], docker.get("head_image", docker["image"])]
    images += [t["docker"]["worker_image"] for t in cluster_config["available_node_types"].values()
               if "docker" in t and "worker_image" in t["docker"]]
    for image in images:
        match = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py(\d)(\d+)-(cpu|gpu|cu\d+)", image)
        assert match, f"unexpected image tag {image}"
        assert match.group(1) == ray.__version__, f"{image} vs installed Ray {ray.__version__}"
        assert (int(match.group(2)), int(match.group(3))) >= (3, 11)
    assert docker["image"].endswith("-gpu"), "the default (GPU worker) image needs CUDA"


def test_cluster_yaml_installs_this_project(cluster_config):
    full = _prepared(cluster_config)
    mounts = cluster_config["file_mounts"]
    code_dir = next(remote for remote, local in mounts.items() if local == ".")
    assert (REPO / "pyproject.toml").is_file()     # `ray up` runs from the repo root
    for commands in (full["setup_commands"], full["head_setup_commands"]):
        assert any("pip install" in c and code_dir in c for c in commands), commands
    gpu = cluster_config["available_node_types"]["gpu_worker"]
    assert any("[gpu]" in c for c in gpu["worker_setup_commands"])
    starts = " ".join(full["head_start_ray_commands"] + full["worker_start_ray_commands"])
    assert starts.count("RAY_AUTH_MODE=token") == 2


# ------------------------------------------------------------------------- support.cluster
def test_free_port_is_bindable():
    port = cluster.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_write_token_is_private_and_random(tmp_path):
    first = cluster.write_token(tmp_path / "a" / "token")
    second = cluster.write_token(tmp_path / "b" / "token")
    assert re.fullmatch(r"[0-9a-f]{64}", first) and first != second
    assert (tmp_path / "a" / "token").read_text() == first
    assert stat.S_IMODE((tmp_path / "a" / "token").stat().st_mode) == 0o600


def test_auth_env_points_at_token_and_drops_foreign_addresses(tmp_path):
    base = {"PATH": "/bin", "RAY_ADDRESS": "ray://elsewhere:10001", "RAY_AUTH_TOKEN": "x"}
    env = cluster.auth_env(tmp_path / "token", base)
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN_PATH"] == str(tmp_path / "token")
    assert "RAY_ADDRESS" not in env and "RAY_AUTH_TOKEN" not in env and env["PATH"] == "/bin"
    assert cluster.auth_headers("abc") == {"Authorization": "Bearer abc"}


def test_submit_command_is_the_documented_one():
    cmd = cluster.submit_command(["python", "jobs/preprocess.py", "DATA", "--out", "OUT"],
                                 "http://127.0.0.1:8265", submission_id="s1")
    assert cmd[:7] == ["ray", "job", "submit", "--address", "http://127.0.0.1:8265",
                       "--working-dir", "."]
    assert cmd[cmd.index("--") + 1:] == ["python", "jobs/preprocess.py", "DATA", "--out", "OUT"]
    assert "--no-wait" in cmd and cmd[cmd.index("--submission-id") + 1] == "s1"
    assert "--no-wait" not in cluster.submit_command(["python", "x.py"], "http://h:1", wait=True)


def test_stop_ends_only_its_own_session(tmp_path):
    """kill by session: a process tree in another session survives."""
    import psutil

    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    mine = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        cluster.wait_until(lambda: len(psutil.Process(mine.pid).children()) == 1, 20, "child start")
        procs = cluster.session_processes(mine.pid)
        assert {p.pid for p in procs} >= {mine.pid, psutil.Process(mine.pid).children()[0].pid}
        assert other.pid not in {p.pid for p in procs} and os.getpid() not in {p.pid for p in procs}
        assert cluster.kill_processes(procs, grace_s=2) == 2
        mine.wait(timeout=5)
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs)
        assert other.poll() is None
    finally:
        for proc in (mine, other):
            proc.kill()
            proc.wait()


def test_wait_until_times_out_with_context():
    with pytest.raises(cluster.JobError, match=r"the thing\nextra info"):
        cluster.wait_until(lambda: False, 0.2, "the thing", poll_s=0.05, on_timeout=lambda: "extra info")


def test_watchdog_stops_the_session_when_its_parent_dies(tmp_path):
    """The watchdog (support/cluster.py run as a script, as start_head spawns it, from another
    directory): a killed test run does not leave its head behind."""
    import psutil

    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    head = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    marker = tmp_path / "head-temp"
    marker.mkdir()
    watchdog = subprocess.Popen(cluster.watchdog_argv(parent.pid, head.pid, marker, True),
                                start_new_session=True, cwd=tmp_path)
    try:
        assert watchdog.poll() is None and head.poll() is None
        parent.kill()
        parent.wait()
        assert watchdog.wait(timeout=30) == 0
        assert head.wait(timeout=10) is not None and not marker.exists()
        assert not psutil.pid_exists(head.pid) or psutil.Process(head.pid).status() == psutil.STATUS_ZOMBIE
    finally:
        for proc in (parent, head, watchdog):
            proc.kill()
            proc.wait()


def test_working_dir_upload_leaves_out_git_and_data(tmp_path):
    """What `ray job submit --working-dir .` zips, with this repo's .gitignore + .rayignore."""
    import shutil
    import zipfile

    from ray._private.runtime_env.packaging import create_package

    tree = tmp_path / "repo"
    for rel in (".git/HEAD", ".git/objects/ab/cd", "jobs/score.py", "mer_ray/cli.py",
                "tests/support/held_job.py", "shards/clips/part-1.parquet", "archive/Actor_01/clip.mp4", "runs/visual/model.keras",
                "cluster.yaml"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text("x")
    for name in (".gitignore", ".rayignore"):
        shutil.copy(REPO / name, tree / name)
    create_package(str(tree), tmp_path / "pkg.zip", include_gitignore=True)
    names = {n for n in zipfile.ZipFile(tmp_path / "pkg.zip").namelist() if not n.endswith("/")}
    # tests/support: test_job_submit submits its held job script from there
    assert {"jobs/score.py", "mer_ray/cli.py", "tests/support/held_job.py", "cluster.yaml"} <= names
    assert not any(n.startswith((".git/", "shards/", "runs/")) or n.endswith(".mp4") for n in names), names


# ------------------------------------------------------------------------- support.held_job
def test_held_job_gate_lets_a_fixed_number_of_calls_through(tmp_path):
    """The first PASSES input sets pass (a retry of one passes again); any other one holds."""
    from support import held_job

    gate = str(tmp_path)
    taken = [held_job.take_pass(gate, 2, paths) for paths in (["a"], ["b"], ["c"], ["a"], ["b", "c"])]
    assert taken == [True, True, False, True, False]
    assert sorted(p.name for p in tmp_path.glob("slot-*")) == ["slot-0", "slot-1"]


def test_held_job_wraps_the_extraction_stage_of_both_jobs(tmp_path, monkeypatch):
    """held_job replaces the class both jobs build their extraction stage from, also where it
    was imported by name; a held call never reaches the class's own __call__."""
    import importlib

    import pyarrow as pa

    from support import held_job

    module_name, name = held_job.EXTRACTION
    module = importlib.import_module(module_name)
    base = getattr(module, name)
    importer = type(sys)("mer_ray._held_job_probe")     # a module that imported it by name
    setattr(importer, name, base)
    monkeypatch.setitem(sys.modules, importer.__name__, importer)
    monkeypatch.setattr(module, name, base)             # restored after the test
    held = held_job.install(str(tmp_path), 1)
    assert issubclass(held, base) and held is not base
    assert getattr(module, name) is held and getattr(importer, name) is held

    class Stage:
        def __call__(self, batch):
            return batch.num_rows

    def hold(gate_dir):
        raise RuntimeError("held")

    monkeypatch.setattr(held_job, "hold", hold)
    stage = held_job.gated(Stage, str(tmp_path), 1)()
    assert stage(pa.table({"path": ["x.mp4"]})) == 1
    with pytest.raises(RuntimeError, match="held"):
        stage(pa.table({"path": ["y.mp4"]}))
