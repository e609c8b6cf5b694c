"""GPU figures: the score job with its visual model on a GPU, how busy the GPU is, where the
bottleneck is, and Ray Train's images/s of the visual model by batch size.

- score: ``--clips`` videos (hard links to generated clips, as in benchmarks/score.py),
  EfficientNetB0 (untrained: the same cost as trained) + the thesis MLP, the visual actor on one
  GPU (``gpus_per_worker=1``), extraction actors on the CPUs left (the job's own plan).
  nvidia-smi samples utilisation and memory every 0.5 s. Each stage's capacity comes from its
  own seconds per video (actors / seconds per video), set against the rate the job reached:
  the stage of least capacity is the bottleneck.
- train: Ray Train, one worker on the GPU, the visual model on synthetic shards, images/s over
  the epochs after the first, at each ``--batches`` size; plain Keras ``model.fit`` on the same
  GPU, same rows, as the peer in the same run.

Each phase runs in a fresh Python process. The result replaces the "GPU" section of
BENCHMARKS.md (not with ``--allow-cpu``, whose CPU figures would be mislabelled).

    python benchmarks/gpu.py                                  # 1,000 videos, batches 16 64 256
    python benchmarks/gpu.py --allow-cpu --clips 12 --batches 16 --train-faces 2 --no-write
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MER_RAY_PROGRESS", "0")

from benchmarks.common import machine, write_section  # noqa: E402
from mer_ray import console  # noqa: E402


class GpuSampler:
    """nvidia-smi's utilisation (%) and memory used (MiB), averaged over the GPUs, every
    ``interval_ms``; no samples where nvidia-smi is missing."""

    def __init__(self, interval_ms: int = 500):
        self.interval_ms = interval_ms
        self.samples: list[tuple[float, float, float]] = []      # (monotonic s, util, MiB)
        self.available = shutil.which("nvidia-smi") is not None
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "GpuSampler":
        if self.available:
            self._proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                 "--format=csv,noheader,nounits", f"-lms={self.interval_ms}"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                util, mem = (float(v) for v in line.split(",")[:2])
            except ValueError:
                continue
            self.samples.append((time.monotonic(), util, mem))

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._thread.join(timeout=10)

    def summary(self) -> dict:
        """Mean utilisation over all samples and while the GPU worked (first to last sample
        above 0 %), the share of samples at >= 50 %, peak memory."""
        if not self.samples:
            return {}
        util = np.array([s[1] for s in self.samples])
        busy = np.flatnonzero(util > 0)
        window = util[busy[0]: busy[-1] + 1] if busy.size else util
        return {"samples": int(util.size), "mean_util": float(util.mean()),
                "mean_util_working": float(window.mean()),
                "share_ge_50": float((window >= 50).mean()),
                "working_s": float(window.size * self.interval_ms / 1000),
                "peak_mem_mib": float(max(s[2] for s in self.samples))}


def gpus_seen() -> int:
    """GPUs TensorFlow sees in this process."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


# ------------------------------------------------------------------------------ score
def score_phase(archive: str, out: str, visual: str, audio: str, gpus: float) -> dict:
    """The score job with the visual actor on ``gpus`` GPUs, sampled; stage capacities."""
    import ray

    from mer_ray.config import RayConfig, ScoreConfig
    from mer_ray.score.job import run_score
    from mer_ray.score.plan import plan_workers
    from mer_ray.score.schema import scores_store

    shutil.rmtree(out, ignore_errors=True)
    cfg = ScoreConfig(source=archive, out=out, visual=visual, audio=audio, gpus_per_worker=gpus,
                      ray=RayConfig())
    with GpuSampler() as gpu:
        t0 = time.perf_counter()
        summary = run_score(cfg)
        seconds = time.perf_counter() - t0
        resources = ray.cluster_resources()
        ray.shutdown()
    workers = plan_workers(cfg, float(resources.get("CPU", 1)), resources.get("memory"))
    cols = ["t_decode_s", "t_faces_s", "t_audio_features_s", "t_visual_s", "t_audio_s"]
    rows = scores_store(out).read("scores", columns=[*cols, "faces"]).to_pylist()
    mean = {c: float(np.mean([r[c] or 0.0 for r in rows])) for c in cols}
    faces = sum(r["faces"] or 0 for r in rows)
    model_s = sum(r["t_visual_s"] or 0.0 for r in rows)
    per_video = {"extraction": mean["t_decode_s"] + mean["t_faces_s"] + mean["t_audio_features_s"],
                 "visual model": mean["t_visual_s"], "audio model": mean["t_audio_s"]}
    actors = {"extraction": workers.extract_workers, "visual model": cfg.visual_workers,
              "audio model": cfg.audio_workers}
    capacity = {k: actors[k] / v if v > 0 else float("inf") for k, v in per_video.items()}
    return {"videos": summary["rows"], "seconds": seconds, "gpu": gpu.summary(),
            "per_video_s": per_video, "actors": actors, "capacity": capacity,
            "faces_per_video": faces / max(1, len(rows)),
            "model_images_s": faces / model_s if model_s else float("nan"),
            "cpus": float(resources.get("CPU", 0)), "gpus": float(resources.get("GPU", 0)),
            "gpus_seen_by_driver": gpus_seen()}


# ------------------------------------------------------------------------------ train
def train_phase(shards: str, batch: int, backbone: str, epochs: int) -> dict:
    """Ray Train (1 worker, GPU when there is one) and plain model.fit at one batch size."""
    from benchmarks.train import plain_run, ray_run

    gpu = gpus_seen() > 0
    args = argparse.Namespace(backbone=backbone, case="unfrozen", visual_epochs=epochs,
                              num_cpus=None, visual_batch=batch, gpu=gpu)
    with GpuSampler() as sampler:
        ray_result = ray_run("visual", shards, 1, args)
    plain = plain_run("visual", shards, args)
    rate = lambda r: r["samples"] / r["seconds"] if r["seconds"] else float("nan")  # noqa: E731
    return {"batch": batch, "gpu": gpu, "ray_images_s": rate(ray_result),
            "plain_images_s": rate(plain), "epochs": ray_result["epochs"],
            "ray_wall_s": ray_result["wall_s"], "gpu_util": sampler.summary()}


# ------------------------------------------------------------------------------ report
def report(argv: list[str], score: dict, trains: list[dict]) -> str:
    rate = score["videos"] / score["seconds"]
    g = score["gpu"]
    gpu_text = (f"GPU utilisation (nvidia-smi, {g['samples']} samples): mean {g['mean_util']:.0f} % "
                f"over the run, {g['mean_util_working']:.0f} % over the {g['working_s']:.0f} s the "
                f"GPU worked ({g['share_ge_50']:.0%} of those samples at >= 50 %); peak memory "
                f"{g['peak_mem_mib'] / 1024:.1f} GiB." if g else "nvidia-smi not found: no GPU samples.")
    caps = score["capacity"]
    neck = min(caps, key=caps.get)
    lines = [
        "## GPU (benchmarks/gpu.py)", "",
        f"`python benchmarks/gpu.py {' '.join(argv)}`".replace(" `", "`") + f" on {machine()}; "
        f"{score['cpus']:.0f} CPUs and {score['gpus']:.0f} GPU(s) in Ray.", "",
        f"**Score: {score['videos']} videos in {score['seconds']:.1f} s, {rate:.1f} videos/s** "
        f"(start-up and model loads included), EfficientNetB0 on the "
        f"{'GPU' if score['gpus'] else 'CPU'}. {gpu_text}", "",
        "| stage | actors | seconds per video inside the stage | capacity, videos/s |",
        "| --- | --- | --- | --- |",
    ]
    for k in caps:
        lines.append(f"| {k} | {score['actors'][k]} | {score['per_video_s'][k]:.4f} | "
                     f"{caps[k]:.1f} |")
    lines += ["", f"Bottleneck: **{neck}** (least capacity, {caps[neck]:.1f} videos/s; the job "
              f"reached {rate:.1f} with its start-up). The visual model scored "
              f"**{score['model_images_s']:.0f} faces/s** inside its stage "
              f"({score['faces_per_video']:.1f} faces per video): G for "
              "`benchmarks/cost_model.py --gpu-images-s G`.", "",
              "Ray Train, visual model (EfficientNetB0, unfrozen, random init), 1 worker, images/s "
              "over the epochs after the first, against plain `model.fit` on the same device:", "",
              "| batch | device | Ray Train images/s | plain model.fit images/s | Ray / plain | "
              "GPU util while training |", "| --- | --- | --- | --- | --- | --- |"]
    for t in trains:
        util = t["gpu_util"].get("mean_util_working")
        lines.append(f"| {t['batch']} | {'GPU' if t['gpu'] else 'CPU'} | {t['ray_images_s']:.0f} | "
                     f"{t['plain_images_s']:.0f} | {t['ray_images_s'] / t['plain_images_s']:.2f}x | "
                     f"{'-' if util is None else f'{util:.0f} %'} |")
    return "\n".join(lines)


def run_phase(args: list[str], json_path: Path) -> dict:
    subprocess.run([sys.executable, __file__, *args, "--json", str(json_path)], check=True)
    return json.loads(json_path.read_text())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", type=int, default=1000, help="videos to score")
    p.add_argument("--batches", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--backbone", default="efficientnetb0")
    p.add_argument("--epochs", type=int, default=3, help="training epochs per batch size")
    p.add_argument("--train-faces", type=int, default=8,
                   help="clips per class and faces per clip of the synthetic training shards")
    p.add_argument("--work-dir", default="bench_out/gpu")
    p.add_argument("--allow-cpu", action="store_true", help="run without a GPU (no BENCHMARKS.md)")
    p.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    for hidden in ("--phase", "--archive", "--out", "--visual", "--audio", "--shards", "--json"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    console.setup(console.NORMAL)        # no TF / Ray start-up lines between the figures
    if a.phase == "score":
        result = score_phase(a.archive, a.out, a.visual, a.audio, 0.0 if a.allow_cpu else 1.0)
        Path(a.json).write_text(json.dumps(result))
        return 0
    if a.phase == "train":
        Path(a.json).write_text(json.dumps(train_phase(a.shards, a.batch, a.backbone, a.epochs)))
        return 0
    if not a.allow_cpu and gpus_seen() == 0:
        print("gpu.py: TensorFlow sees no GPU here (run with --allow-cpu to check the script on "
              "CPU)", file=sys.stderr)
        return 2
    from benchmarks.score import BenchConfig, make_archive, make_bundles, make_clips

    work = Path(a.work_dir)
    bench = BenchConfig(clips=42, backbone=a.backbone, work_dir=str(work))
    clips = make_clips(bench)
    visual, audio = make_bundles(bench)
    archive = make_archive(clips, a.clips, bench)
    cpu = ["--allow-cpu"] if a.allow_cpu else []
    print(f"score job on {a.clips} videos ...", flush=True)
    score = run_phase(["--phase", "score", "--archive", str(archive), "--out", str(work / "scores"),
                       "--visual", visual, "--audio", audio, *cpu], work / "phase-score.json")
    sys.path.insert(0, str(REPO / "tests"))          # test helpers: support.synthetic
    from support.synthetic import write_synthetic_shards

    shards = write_synthetic_shards(tempfile.mkdtemp(prefix="bench-gpu-shards-"),
                                    clips_per_class=a.train_faces, frames_per_clip=a.train_faces)
    trains = []
    for b in a.batches:
        print(f"training at batch {b} ...", flush=True)
        trains.append(run_phase(["--phase", "train", "--shards", str(shards), "--batch", str(b),
                                 "--backbone", a.backbone, "--epochs", str(a.epochs)],
                                work / f"phase-train-{b}.json"))
    text = report(argv, score, trains)
    print(text)
    if not (a.no_write or a.allow_cpu):
        write_section("gpu", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
