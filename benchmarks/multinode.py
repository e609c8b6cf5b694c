"""The cost model (benchmarks/cost_model.py) against a real run on a local multi-node Ray cluster.

Starts a head and ``--workers`` worker raylets on this machine (tests/support/cluster.py,
``--num-cpus 1`` each, token auth, every process stopped at the end whatever happens), submits
`jobs/score.py` (the same arguments as `mer-ray score`, bundled models, ``--timeline``) over an
archive of generated 5 s clips, twice (``--videos``, e.g. 40 and 200), and records each run's
wall time, where every actor ran (the state API's actor list), the output's bytes per video,
and the load average. The model's ideal seconds (efficiency 1 on the machine's real cores) are
set against the measured ones; the difference of the two runs cancels the fixed start-up, and
gives the efficiency the cost model uses. The clips are unlabelled copies (``clipNNNN.mp4``),
so the default voice model is the plain one, as for an archive without speaker names.

    python benchmarks/cost_model.py --measure            # first: the rates
    python benchmarks/multinode.py [--videos 40 200] [--workers 3]
    python benchmarks/cost_model.py                      # tables + this check -> docs
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from benchmarks import cost_model as cm  # noqa: E402

WORK = cm.WORK / "multinode"
DURATION_S = 5.0
JOB_TIMEOUT_S = 1200.0
STAGES = ("ExtractActor", "VisualStage", "AudioStage")


def make_archive(clips: list[Path], n: int, work: Path = WORK) -> Path:
    """A folder of ``n`` unlabelled videos: hard links to ``clips`` in turn."""
    folder = work / f"archive-{n}"
    if folder.is_dir() and len(list(folder.glob("*.mp4"))) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(n):
        os.link(clips[i % len(clips)], folder / f"clip{i:04d}.mp4")
    return folder


def _get(head, route: str) -> dict:
    import urllib.request

    from support.cluster import auth_headers

    request = urllib.request.Request(f"{head.address}{route}", headers=auth_headers(head.token))
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def list_actors(head) -> list[dict]:
    """Every actor the cluster has run (alive or dead), from the state API."""
    data = _get(head, "/api/v0/actors?limit=10000&detail=1")["data"]["result"]
    return data.get("result", []) if isinstance(data, dict) else data


def actor_placement(actors: list[dict], names: dict[str, str]) -> dict[str, dict[str, int]]:
    """node name -> {stage: actors} for ``actors`` (list_actors rows)."""
    placed: dict[str, Counter] = defaultdict(Counter)
    for actor in actors:
        label = " ".join(str(actor.get(k) or "") for k in ("class_name", "repr_name", "name"))
        stage = next((s for s in STAGES if s in label), actor.get("class_name") or "?")
        node = names.get(actor.get("node_id") or "", (actor.get("node_id") or "?")[:8])
        placed[node][stage] += 1
    return {node: dict(kinds) for node, kinds in sorted(placed.items())}


class CpuSampler:
    """CPU-seconds (user + system) that the cluster's processes spend while it runs: every
    ``interval`` s, the CPU times of each live process of ``procs()``, counted from its value
    at the start (processes that live through several runs) or from zero (new ones)."""

    def __init__(self, procs, interval: float = 1.0):
        self.procs, self.interval = procs, interval
        self.start: dict[tuple, float] = {}
        self.latest: dict[tuple, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[tuple, float]:
        found = {}
        for proc in self.procs():
            try:
                t = proc.cpu_times()
                found[(proc.pid, proc.create_time())] = t.user + t.system
            except Exception:       # psutil.Error: it ended meanwhile
                continue
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.latest.update(self._sample())

    def __enter__(self) -> "CpuSampler":
        self.start = self._sample()
        self.latest = dict(self.start)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.latest.update(self._sample())

    @property
    def cpu_s(self) -> float:
        return sum(v - self.start.get(k, 0.0) for k, v in self.latest.items())


def output_bytes(out: Path) -> dict[str, int]:
    """Bytes of the committed Parquet shards under each top folder of ``out``."""
    sizes: dict[str, int] = defaultdict(int)
    for path in out.rglob("*.parquet"):
        sizes[path.relative_to(out).parts[0]] += path.stat().st_size
    return dict(sizes)


def run_score(head, archive: Path, out: Path, timeout_s: float = JOB_TIMEOUT_S) -> float:
    """Submit jobs/score.py over ``archive`` and wait for it; returns the wall seconds from
    submit to success (JobError with the log tail otherwise)."""
    from support.cluster import ray_cli, submit_command, wait_for_job

    shutil.rmtree(out, ignore_errors=True)
    job_id = f"mer-scaling-{uuid.uuid4().hex[:8]}"
    python = shutil.which("python") or sys.executable
    cmd = submit_command([python, str(REPO / "jobs" / "score.py"), str(archive.resolve()),
                          "--out", str(out.resolve()), "--timeline", "-q"], head.address,
                         working_dir=None, submission_id=job_id)
    t0 = time.perf_counter()
    ray_cli(cmd, env=head.env(), cwd=REPO)
    wait_for_job(head.client(), job_id, timeout_s=timeout_s, poll_s=0.5)
    return time.perf_counter() - t0


def check(videos: list[int], workers: int, rates: cm.Rates) -> dict:
    """Both runs on one local cluster; the figures multinode_lines reports."""
    from support.cluster import start_head, start_worker_node

    cm.make_clips()
    short = sorted((cm.WORK / "clips-5s").rglob("*.mp4"))
    archives = {n: make_archive(short, n) for n in videos}
    os.environ.setdefault("RAY_num_workers_soft_limit", "3")    # cluster.yaml: CPUs + 2
    cores = os.cpu_count() or 1
    load_start = os.getloadavg()[0]
    runs, output = [], {}
    head = start_head(num_cpus=1, extra_env={"RAY_num_workers_soft_limit": "3"})
    try:
        nodes = [start_worker_node(head, num_cpus=1) for _ in range(workers)]
        names = {n.node_id: f"worker {i + 1}" for i, n in enumerate(nodes)}
        for nid in cm_nodes(head):
            names.setdefault(nid, "head")
        cluster_cpus = float(1 + workers)
        usable = min(cluster_cpus, cores)
        procs = lambda: head.processes() + [p for n in nodes for p in n.processes()]  # noqa: E731
        seen: set[str] = set()
        for n in videos:
            out = WORK / f"scores-{n}"
            with CpuSampler(procs) as cpu:
                seconds = run_score(head, archives[n], out)
            actors = [a for a in list_actors(head) if a.get("actor_id") not in seen]
            seen.update(a.get("actor_id") for a in actors)
            runs.append({"videos": n, "seconds": seconds, "cpu_s": cpu.cpu_s,
                         "ideal_s": cm.ideal_seconds(n, DURATION_S, rates, usable),
                         "ideal_cpu_s": cm.ideal_seconds(n, DURATION_S, rates, 1),
                         "load_end": os.getloadavg()[0],
                         "placement": actor_placement(actors, names)})
            print(json.dumps(runs[-1]), flush=True)
            sizes = output_bytes(out)
            output = {"bytes_per_video": sum(sizes.values()) / n, "by_folder": sizes,
                      "source": f"the {n}-video run, --timeline, "
                                f"{sum(1 for _ in out.rglob('*.parquet'))} Parquet files"}
    finally:
        head.stop()
    first, last = runs[0], runs[-1]
    extra = max(1, last["videos"] - first["videos"])
    steady = (last["seconds"] - first["seconds"]) / extra
    steady_cpu = (last["cpu_s"] - first["cpu_s"]) / extra
    ideal_cpu = cm.ideal_seconds(1, DURATION_S, rates, 1)
    ideal = ideal_cpu / usable
    return {"workers": workers, "cluster_cpus": cluster_cpus, "cores": cores,
            "duration_s": DURATION_S, "load_start": load_start, "load_end": os.getloadavg()[0],
            "runs": runs, "steady_s_per_video": steady, "ideal_s_per_video": ideal,
            "steady_cpu_s_per_video": steady_cpu, "ideal_cpu_s_per_video": ideal_cpu,
            "wall_efficiency": cm.efficiency_of(ideal, steady) if steady > 0 else 1.0,
            "efficiency": cm.efficiency_of(ideal_cpu, steady_cpu) if steady_cpu > 0 else 1.0,
            "fixed_s": first["seconds"] - first["videos"] * max(steady, 0.0),
            "fixed_cpu_s": first["cpu_s"] - first["videos"] * max(steady_cpu, 0.0),
            "output": output}


def cm_nodes(head) -> set[str]:
    """Ids of the cluster's alive nodes."""
    from support.cluster import _node_ids

    return _node_ids(head)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, nargs=2, default=[40, 200],
                    help="videos in the first and the second run (the second larger)")
    ap.add_argument("--workers", type=int, default=3, help="worker raylets beside the head")
    args = ap.parse_args(argv)
    if not 0 < args.videos[0] < args.videos[1]:
        ap.error("--videos takes two counts, the second larger than the first")
    if args.workers < 1:
        ap.error("--workers must be at least 1")
    if not cm.RATES_JSON.is_file():
        ap.error(f"no measurements at {cm.RATES_JSON}: run benchmarks/cost_model.py --measure first")
    rates = cm.rates_of(json.loads(cm.RATES_JSON.read_text()), DURATION_S)
    result = check(args.videos, args.workers, rates)
    cm.MULTINODE_JSON.write_text(json.dumps(result, indent=1))
    print("\n".join(cm.multinode_lines(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
