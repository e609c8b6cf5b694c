"""Score throughput and memory: a sequential Alg. 3.9 loop vs `mer-ray score`, same models and
clips, one run; then the score job on a small and a large archive to show that peak memory does
not grow with the number of videos.

Baseline (thesis Alg. 3.4 / 3.7 / 3.9, one process, one video at a time): cv2 ``read()`` of every
frame, Haar on the full frame of every 10th, crop + resize, ``model.predict`` on the video's
faces, mean; MoviePy writes the audio to a wav, ``librosa.load`` reads it, 162 features,
``model.predict`` (an SVM audio bundle: its recipe's vector, scikit-learn's predict_proba); fused
with 0.5 / 0.5, argmax. Models are loaded once, before timing.
mer_ray: ``run_score`` as the CLI calls it (start-up and model loads included): embedded local
Ray, or without Ray for an archive of at most --in-process-max inputs (score/in_process.py).
Memory: RSS (and PSS, which counts shared pages once) summed over this process and every
process it started (the Ray head, raylet, workers, actors), sampled every 0.5 s.

    python benchmarks/score.py [--clips 42] [--seconds 2] [--size 640x480] [--baseline 50]
                               [--small 50] [--large 500] [--backbone efficientnetb0]
                               [--visual RUN] [--audio RUN] [--no-write]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_section  # noqa: E402
from mer_ray.runtime import configure_process  # noqa: E402
from mer_ray.score.schema import PROB_COLUMNS  # noqa: E402

configure_process()

THESIS = {"visual": 0.236, "audio": 0.039, "fusion": 0.453}   # Table 4.7, RTX 3070


@dataclass
class BenchConfig:
    clips: int = 42
    seconds: float = 2.0
    width: int = 640
    height: int = 480
    baseline: int = 50
    small: int = 50
    large: int = 500
    backbone: str = "efficientnetb0"
    visual: str | None = None
    audio: str | None = None
    work_dir: str = "bench_out/score"
    num_cpus: int | None = None
    write: bool = True


# ------------------------------------------------------------------------------ inputs
def make_clips(cfg: BenchConfig) -> list[Path]:
    """Generated RAVDESS-layout clips at the benchmark size (cached between runs)."""
    from mer_ray.sample import SampleConfig, make_sample

    actors = math.ceil(cfg.clips / 14)
    folder = Path(cfg.work_dir) / f"clips-{cfg.width}x{cfg.height}-{cfg.seconds}s-{actors}a"
    if not folder.is_dir():
        make_sample(folder, SampleConfig(actors=actors, clips_per_emotion=2, seconds=cfg.seconds,
                                         width=cfg.width, height=cfg.height))
    return sorted(folder.rglob("*.mp4"))[: cfg.clips]


def make_archive(clips: list[Path], n: int, cfg: BenchConfig) -> Path:
    """A folder of ``n`` videos: hard links to the clips (distinct paths, same bytes),
    ``copy_KKK/Actor_XX/<RAVDESS name>`` so labels still parse."""
    folder = Path(cfg.work_dir) / f"archive-{n}-{clips[0].parent.parent.name}"
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.mp4")) == n:
        return folder
    for i in range(n):
        src = clips[i % len(clips)]
        dest = folder / f"copy_{i // len(clips):03d}" / src.parent.name / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            os.link(src, dest)
    return folder


def make_bundles(cfg: BenchConfig) -> tuple[str, str]:
    """Trained bundles if given, else untrained ones of the thesis architectures (same cost)."""
    if cfg.visual and cfg.audio:
        return cfg.visual, cfg.audio
    from mer_ray.config import EMOTIONS
    from mer_ray.models.audio_mlp import build_audio_mlp
    from mer_ray.models.bundle import BundleInfo, save_bundle
    from mer_ray.models.visual import build_visual_model

    root = Path(cfg.work_dir) / f"bundles-{cfg.backbone}"
    visual, audio = root / "visual", root / "audio"
    if not (visual / "bundle.json").is_file():
        save_bundle(str(visual), build_visual_model(cfg.backbone, weights=None),
                    BundleInfo("visual", list(EMOTIONS), "model.keras", "face200", None, cfg.backbone, ""))
    if not (audio / "bundle.json").is_file():
        save_bundle(str(audio), build_audio_mlp(),
                    BundleInfo("audio", list(EMOTIONS), "model.keras", "thesis", "audio_features", None, ""))
    return cfg.visual or str(visual), cfg.audio or str(audio)


# ------------------------------------------------------------------------------ memory
def _kind(proc) -> str:
    """A short name for a process: Ray sets titles like ray::MapWorker(MapBatches(VisualStage))."""
    cmd = " ".join(proc.cmdline()[:2]) or proc.name()
    for key in ("ExtractActor", "VisualStage", "AudioStage", "raylet", "gcs_server", "dashboard",
                "IDLE", "log_monitor", "runtime_env", "monitor.py"):
        if key in cmd:
            return key
    return "driver" if proc.pid == os.getpid() else ("ray worker" if "ray::" in cmd or
                                                      "default_worker" in cmd else "other")


class MemorySampler:
    """Peak RSS / PSS summed over this process and all its descendants."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak_rss, self.peak_pss, self.peak_procs = interval, 0, 0, 0
        self.breakdown: dict[str, int] = {}
        self.counts: dict[str, int] = {}                   # processes per kind at the peak
        self.max_counts: dict[str, int] = {}               # most processes per kind at once
        self.series: list[tuple[float, int]] = []          # (time, summed PSS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        rss = pss = 0
        by_kind: dict[str, int] = {}
        counts: dict[str, int] = {}
        procs = [me] + me.children(recursive=True)
        for p in procs:
            try:
                info = p.memory_full_info()
                kind = _kind(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            by_kind[kind] = by_kind.get(kind, 0) + getattr(info, "pss", info.rss)
            counts[kind] = counts.get(kind, 0) + 1
        if pss > self.peak_pss:
            self.breakdown, self.counts = by_kind, counts
        for kind, n in counts.items():
            self.max_counts[kind] = max(self.max_counts.get(kind, 0), n)
        self.series.append((time.monotonic(), pss))
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.peak_procs = max(self.peak_procs, len(procs))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def thirds(self) -> list[int]:
        """Peak summed PSS in the first, middle and last third of the sampled time."""
        if len(self.series) < 3:
            return [self.peak_pss] * 3
        t0, t1 = self.series[0][0], self.series[-1][0]
        span = (t1 - t0) / 3 or 1.0
        peaks = [0, 0, 0]
        for t, pss in self.series:
            i = min(2, int((t - t0) / span))
            peaks[i] = max(peaks[i], pss)
        return peaks

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# ------------------------------------------------------------------------------ baseline
def baseline_video(path: Path, detector, visual_model, audio_model) -> dict:
    """Alg. 3.9 for one video, thesis style; per-path seconds and the fused probabilities."""
    from benchmarks.common import thesis_style_faces
    from mer_ray.media.audio import thesis_style_audio

    t0 = time.perf_counter()
    faces = thesis_style_faces(path, detector)
    visual = visual_model(np.stack(faces).astype(np.float32)).mean(axis=0) if faces else None
    t1 = time.perf_counter()
    y, sr = thesis_style_audio(str(path))
    audio = audio_model(y, sr)
    t2 = time.perf_counter()
    fused = 0.5 * visual + 0.5 * audio if visual is not None else audio
    label = int(np.argmax(fused))
    t3 = time.perf_counter()
    return {"visual": t1 - t0, "audio": t2 - t1, "fusion": t3 - t2, "probs": fused, "label": label,
            "faces": len(faces)}


def load_visual_model(visual_dir: str):
    """``faces -> probabilities`` of the visual bundle in Keras, as the thesis ran its model; a
    bundle that averages each face with its mirror image (bundle.json: mirror) does so here too,
    so the loop and the job apply the same model."""
    import keras

    from mer_ray.models.bundle import mirror_average

    info = json.loads(Path(visual_dir, "bundle.json").read_text())
    model = keras.saving.load_model(f"{visual_dir}/{info['model_file']}", compile=False)
    predict = lambda x: model.predict(x, verbose=0)                      # noqa: E731
    return (lambda x: mirror_average(predict, x)) if info.get("mirror") else predict


def load_audio_model(audio_dir: str):
    """``(samples, rate) -> probabilities`` of the audio bundle as the thesis ran its model:
    a Keras MLP on the 162 thesis features, or an SVM bundle (the bundled voice model) on its
    recipe's vector through scikit-learn."""
    import keras

    from mer_ray.media.audio import thesis_features
    from mer_ray.media.audio_recipes import audio_recipe

    info = json.loads(Path(audio_dir, "bundle.json").read_text())
    if info.get("classifier") == "svm":
        from mer_ray.models.audio_svm import load_svm, predict_proba

        svm, recipe = load_svm(f"{audio_dir}/{info['model_file']}"), audio_recipe(info["recipe"])
        return lambda y, sr: predict_proba(svm, recipe.features(y, sr)[None])[0]
    mlp = keras.saving.load_model(f"{audio_dir}/model.keras", compile=False)
    return lambda y, sr: mlp.predict(thesis_features(y, sr)[None].astype(np.float32), verbose=0)[0]


def run_baseline(paths: list[Path], visual_dir: str, audio_dir: str) -> dict:
    """The sequential loop over ``paths``; models load once before the timed part."""
    import mer_ray.models.visual  # noqa: F401  (registers the preprocessing layer)
    from mer_ray.media.faces import FaceDetector

    load = os.getloadavg()[0]
    with MemorySampler() as mem:
        t_load = time.perf_counter()
        visual = load_visual_model(visual_dir)
        audio = load_audio_model(audio_dir)
        detector = FaceDetector(detect_width=None)
        audio(np.zeros(22050, np.float32), 22050)                # librosa warm-up
        baseline_video(paths[0], detector, visual, audio)        # predict warm-up, not timed
        t_load = time.perf_counter() - t_load
        t0 = time.perf_counter()
        rows = {str(p.resolve()): baseline_video(p, detector, visual, audio) for p in paths}
        seconds = time.perf_counter() - t0
    for r in rows.values():
        r["probs"] = np.asarray(r["probs"]).tolist()
    return {"seconds": seconds, "load_s": t_load, "rows": rows, "peak_rss": mem.peak_rss,
            "peak_pss": mem.peak_pss, "breakdown": mem.breakdown,
            "loadavg": [load, os.getloadavg()[0]]}


# ------------------------------------------------------------------------------ mer_ray
def run_job(archive: Path, out: Path, visual: str, audio: str, num_cpus: int | None) -> dict:
    """The score job on ``archive`` into a fresh ``out`` (Ray started and stopped inside)."""
    import shutil

    import ray

    from mer_ray.config import RayConfig, ScoreConfig
    from mer_ray.score.job import run_score
    from mer_ray.score.schema import scores_store

    if out.exists():
        shutil.rmtree(out)
    load = os.getloadavg()[0]
    with MemorySampler() as mem:
        t0 = time.perf_counter()
        summary = run_score(ScoreConfig(source=str(archive), out=str(out), visual=visual, audio=audio,
                                        ray=RayConfig(num_cpus=num_cpus)))
        seconds = time.perf_counter() - t0
        ray.shutdown()
    keep = ["path", "emotion", "t_decode_s", "t_faces_s", "t_visual_s", "t_audio_features_s",
            "t_audio_s", "t_fusion_s", *PROB_COLUMNS]
    rows = scores_store(str(out)).read("scores", columns=keep).to_pylist()
    return {"seconds": seconds, "summary": summary, "peak_rss": mem.peak_rss,
            "peak_pss": mem.peak_pss, "procs": mem.peak_procs, "breakdown": mem.breakdown,
            "counts": mem.counts, "max_counts": mem.max_counts, "pss_thirds": mem.thirds(), "loadavg": [load, os.getloadavg()[0]], "rows": {r["path"]: r for r in rows}}


def in_subprocess(args: list[str], json_path: Path) -> dict:
    """Run one phase in a fresh Python (so no phase's memory counts in another's)."""
    import subprocess

    subprocess.run([sys.executable, __file__, *args, "--json", str(json_path)], check=True)
    return json.loads(json_path.read_text())


def per_path(rows: list[dict]) -> dict[str, float]:
    """Mean seconds per video of each path (job rows)."""
    def mean(keys):
        vals = [sum(r[k] or 0.0 for k in keys) for r in rows]
        return float(np.mean(vals)) if vals else float("nan")

    return {"visual": mean(["t_decode_s", "t_faces_s", "t_visual_s"]),
            "visual_model": mean(["t_visual_s"]),
            "audio": mean(["t_audio_features_s", "t_audio_s"]),
            "audio_model": mean(["t_audio_s"]),
            "fusion": mean(["t_fusion_s"])}


def agreement(base: dict, job: dict) -> dict:
    from mer_ray.config import EMOTIONS

    same, diffs = 0, []
    for path, b in base["rows"].items():
        r = job["rows"][path]
        same += r["emotion"] == EMOTIONS[b["label"]]
        diffs.append(float(np.max(np.abs(np.array([r[c] for c in PROB_COLUMNS]) - b["probs"]))))
    return {"same_label": same / len(base["rows"]), "max_prob_diff_median": float(np.median(diffs))}


# ------------------------------------------------------------------------------ report
def gib(n: int) -> str:
    return f"{n / 2**30:.2f}"


def _breakdown(job: dict) -> str:
    """PSS per kind of process at the peak, GiB, with the number of such processes."""
    parts = sorted(job["breakdown"].items(), key=lambda kv: -kv[1])
    counts = job.get("counts", {})
    return ", ".join(f"{k} {v / 2**30:.2f}" + (f" ({counts[k]} processes)" if counts.get(k, 1) > 1 else "")
                     for k, v in parts if v > 50 * 2**20)


def _memory_ratio(small_job: dict, big_job: dict, n_small: int, n_big: int) -> str:
    """Peak memory of the large run against the small one: a ratio when both ran on Ray (the
    memory that must not grow with the archive), both figures when the small one did not."""
    if small_job["summary"]["this_run"].get("on_ray") is False:
        return (f"**Peak PSS {gib(small_job['peak_pss'])} GiB without Ray ({n_small} videos: the "
                f"driver and its extraction processes), {gib(big_job['peak_pss'])} GiB on Ray "
                f"({n_big}).** ")
    return (f"**Peak memory, {n_big} vs {n_small} videos: PSS x"
            f"{big_job['peak_pss'] / small_job['peak_pss']:.2f}, RSS x"
            f"{big_job['peak_rss'] / small_job['peak_rss']:.2f}.** ")


def report(cfg: BenchConfig, base: dict, small_job: dict, big_job: dict, agree: dict) -> str:
    n = len(base["rows"])
    b_rate = n / base["seconds"]
    rate = {k: j["summary"]["rows"] / j["seconds"] for k, j in (("small", small_job), ("large", big_job))}
    bp = {k: float(np.mean([r[k] for r in base["rows"].values()])) for k in ("visual", "audio", "fusion")}
    jp = per_path(list(big_job["rows"].values()))
    n_small, n_big = small_job["summary"]["rows"], big_job["summary"]["rows"]
    loads = [base["loadavg"], small_job["loadavg"], big_job["loadavg"]]
    load_text = ", ".join(f"{a:.1f}->{b:.1f}" for a, b in loads)
    title = {(True, True): "## Score with the bundled models", (True, False):
             "## Score with the bundled face model"}.get((bool(cfg.visual), bool(cfg.audio)), "## Score")
    given = (f"--visual {cfg.visual}" if cfg.visual else f"--backbone {cfg.backbone}") + (
        f" --audio {cfg.audio}" if cfg.audio else "")
    models = ("as given" if cfg.visual and cfg.audio else
              "face model as given + untrained thesis MLP" if cfg.visual else
              f"untrained {cfg.backbone} + thesis MLP (same cost as trained)")

    def where(job: dict) -> str:
        if job["summary"]["this_run"].get("on_ray") is False:
            return "without Ray: at most --in-process-max inputs"
        return "local Ray"

    return "\n".join([
        title,
        "",
        f"`python benchmarks/score.py --clips {cfg.clips} --seconds {cfg.seconds} --size "
        f"{cfg.width}x{cfg.height} --baseline {cfg.baseline} --small {cfg.small} --large {cfg.large} "
        f"{given}` on {machine()}; CPU only (no GPU was lent to this task); models {models}. "
        f"Each run is a fresh Python process; archives are hard links to the generated clips "
        f"(distinct paths, same bytes). 1-min load average at start->end of each run: {load_text} "
        f"(other jobs shared this 2-core machine: treat timings as rough).",
        "",
        "| run | videos | wall s | videos/s | peak RSS GiB (sum) | peak PSS GiB (sum) |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| sequential Alg. 3.9 loop (models loaded before timing) | {n} | {base['seconds']:.1f} | "
        f"{b_rate:.2f} | {gib(base['peak_rss'])} | {gib(base['peak_pss'])} |",
        f"| `mer-ray score` ({where(small_job)}; start-up + model loads included) | {n_small} | "
        f"{small_job['seconds']:.1f} | {rate['small']:.2f} | {gib(small_job['peak_rss'])} | "
        f"{gib(small_job['peak_pss'])} |",
        f"| `mer-ray score`, large archive ({where(big_job)}) | {n_big} | {big_job['seconds']:.1f} | {rate['large']:.2f} | "
        f"{gib(big_job['peak_rss'])} | {gib(big_job['peak_pss'])} |",
        "",
        f"**Throughput ratio job / loop: {rate['small'] / b_rate:.2f}x on {n_small} videos, "
        f"{rate['large'] / b_rate:.2f}x on {n_big}** (start-up and model loads are paid once per "
        f"run; on Ray: the head, the worker processes and one model load per actor). "
        + _memory_ratio(small_job, big_job, n_small, n_big) + "PSS at the large run's peak, GiB: "
        f"{_breakdown(big_job)}. Within the large run, peak PSS in its first / middle / last "
        f"third of time: {' / '.join(gib(v) for v in big_job['pss_thirds'])} GiB.",
        f"Same fused label as the loop on {agree['same_label']:.0%} of the {n} videos (median max "
        f"|p diff| {agree['max_prob_diff_median']:.3f}; the job detects faces on a 480-px-wide "
        f"grey frame and decodes audio in-process with PyAV + soxr, the loop on the full frame and "
        f"through MoviePy + wav).",
        "",
        f"Mean seconds per video and path vs thesis Table 4.7 (RTX 3070); job figures from the "
        f"{n_big}-video run:",
        "",
        "| path | thesis | sequential loop | mer_ray job (per-video share) |",
        "| --- | --- | --- | --- |",
        f"| visual (decode + faces + model) | {THESIS['visual']:.3f} | {bp['visual']:.3f} | "
        f"{jp['visual']:.3f} (model {jp['visual_model']:.3f}) |",
        f"| audio (decode + features + model) | {THESIS['audio']:.3f} | {bp['audio']:.3f} | "
        f"{jp['audio']:.3f} (model {jp['audio_model']:.4f}) |",
        f"| fusion | {THESIS['fusion']:.3f} | {bp['fusion']:.5f} | {jp['fusion']:.5f} |",
        "",
        "The job's per-path seconds are time inside each stage (model time is the video's share "
        "of its batch's predict call); stages run in parallel, so they do not add up to wall time. "
        "The thesis does not say what its fusion time covers; Alg. 3.9 itself is a weighted sum.",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("clips", "baseline", "small", "large"):
        p.add_argument(f"--{name}", type=int, default=getattr(BenchConfig, name))
    p.add_argument("--seconds", type=float, default=BenchConfig.seconds)
    p.add_argument("--size", default="640x480")
    p.add_argument("--backbone", default=BenchConfig.backbone)
    p.add_argument("--visual", default=None, help="trained visual bundle (default: untrained)")
    p.add_argument("--audio", default=None, help="trained audio bundle (default: untrained)")
    p.add_argument("--num-cpus", type=int, default=None)
    p.add_argument("--work-dir", default=BenchConfig.work_dir)
    p.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    p.add_argument("--phase", choices=["baseline", "job"], help=argparse.SUPPRESS)
    p.add_argument("--archive", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.phase == "baseline":
        paths = sorted(Path(a.archive).rglob("*.mp4"))[: a.baseline]
        Path(a.json).write_text(json.dumps(run_baseline(paths, a.visual, a.audio), default=float))
        return 0
    if a.phase == "job":
        result = run_job(Path(a.archive), Path(a.out), a.visual, a.audio, a.num_cpus)
        Path(a.json).write_text(json.dumps(result, default=float))
        return 0
    w, h = (int(v) for v in a.size.lower().split("x"))
    cfg = BenchConfig(clips=a.clips, seconds=a.seconds, width=w, height=h, baseline=a.baseline,
                      small=a.small, large=a.large, backbone=a.backbone, visual=a.visual,
                      audio=a.audio, work_dir=a.work_dir, num_cpus=a.num_cpus, write=not a.no_write)
    clips = make_clips(cfg)
    visual, audio = make_bundles(cfg)
    small, large = make_archive(clips, cfg.small, cfg), make_archive(clips, cfg.large, cfg)
    out = Path(cfg.work_dir)
    models = ["--visual", visual, "--audio", audio]
    cpus = ["--num-cpus", str(cfg.num_cpus)] if cfg.num_cpus else []
    print(f"{len(clips)} clips; sequential loop on {cfg.baseline} videos ...", flush=True)
    base = in_subprocess(["--phase", "baseline", "--archive", str(small), "--baseline",
                          str(cfg.baseline), *models], out / "phase-baseline.json")
    print(f"loop {base['seconds']:.1f} s; score job on {cfg.small} ...", flush=True)
    small_job = in_subprocess(["--phase", "job", "--archive", str(small), "--out",
                               str(out / "scores-small"), *models, *cpus], out / "phase-small.json")
    print(f"job {small_job['seconds']:.1f} s; score job on {cfg.large} ...", flush=True)
    big_job = in_subprocess(["--phase", "job", "--archive", str(large), "--out",
                             str(out / "scores-large"), *models, *cpus], out / "phase-large.json")
    text = report(cfg, base, small_job, big_job, agreement(base, small_job))
    print(text)
    if cfg.write:      # the bundled face model's run has its own section
        write_section("score-bundled" if cfg.visual else "score", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
