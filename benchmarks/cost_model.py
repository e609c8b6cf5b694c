"""A measured cost model of `mer-ray score`: how long one night's archive takes on cluster.yaml.

Two parts:

* pure arithmetic (``estimate`` and its helpers, tested in tests/test_cost_model.py): CPU-s per
  video = duration x (decode + faces + audio + rows CPU-s per video-second) + faces per video /
  model images/s per CPU (+ one audio model call); node-hours = CPU-hours / (CPUs per node x
  efficiency); the pipeline runs at the slower of the extraction pool and the model actors;
* measurements (``--measure``): CPU-seconds (``time.process_time``) and wall seconds per
  video-second of decode, face detection, audio features and row building, in this process,
  one file at a time, no Ray, at the score job's extraction options, on generated clips of 5 s
  and of 5 min (the 5 s clip concatenated); the bundled visual model's images/s on one thread
  (64 and 256 faces per call) and the audio model's clips/s.

The efficiency factor is not guessed: it is the ratio of the model's ideal seconds to the
measured seconds of a real multi-node run (benchmarks/multinode.py, its JSON result).

    python benchmarks/cost_model.py --measure            # writes bench_out/cost_model/rates.json
    python benchmarks/multinode.py                       # the local multi-node check
    python benchmarks/cost_model.py [--gpu-images-s N] [--no-write]   # tables -> docs, BENCHMARKS
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_section  # noqa: E402

WORK = Path("bench_out/cost_model")
RATES_JSON = WORK / "rates.json"
MULTINODE_JSON = WORK / "multinode.json"
SCALING_MD = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"
LENGTHS_S = (5.0, 300.0)
ARCHIVE_SIZES = (10**4, 10**5, 10**6)
RAW_CROP_BYTES = 120_000


# ------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class NodeType:
    """One node type of cluster.yaml: CPUs and GPUs per node, and how many at most."""

    name: str
    instance: str
    cpus: int
    gpus: int
    max_nodes: int


NODE_TYPES = {"cpu_worker": NodeType("cpu_worker", "c6i.4xlarge", 16, 0, 8),
              "gpu_worker": NodeType("gpu_worker", "g5.xlarge", 4, 1, 2)}
"""cluster.yaml's worker types (the head has CPU 0: no work runs there)."""


@dataclass(frozen=True)
class Rates:
    """Measured costs of one clip length. CPU-s are per video-second, counts per video-second;
    model rates are for one CPU (one thread)."""

    decode_cpu_s: float
    faces_cpu_s: float
    audio_cpu_s: float
    rows_cpu_s: float          # score rows of the extraction (crops encoded), per video-second
    faces_per_s: float         # face crops per video-second (what the visual model sees)
    keyframes_per_s: float
    model_images_s: float      # visual model, images/s on one CPU
    audio_clips_s: float       # audio model, clips/s on one CPU

    def scaled(self, **factors: float) -> "Rates":
        """A copy with some fields multiplied (what-if rows, tests)."""
        return dataclasses.replace(self, **{k: getattr(self, k) * f for k, f in factors.items()})


def extraction_cpu_s(duration_s: float, r: Rates) -> float:
    """CPU-seconds the extraction actors spend on one video of ``duration_s`` seconds."""
    return duration_s * (r.decode_cpu_s + r.faces_cpu_s + r.audio_cpu_s + r.rows_cpu_s)


def faces_per_video(duration_s: float, r: Rates) -> float:
    """Face crops one video sends to the visual model."""
    return duration_s * r.faces_per_s


def padding(duration_s: float, r: Rates, visual_batch: int | None, model_batch: int = 256
            ) -> float:
    """Images the visual model computes per real face: a call takes ``visual_batch`` videos'
    faces in batches of ``model_batch``, and pads the last one to the next power of two from
    16 (``mer_ray.models.bundle.padded_size``; None: no padding, every batch full)."""
    from mer_ray.models.bundle import padded_size

    if visual_batch is None:
        return 1.0
    faces = faces_per_video(duration_s, r) * visual_batch
    if faces <= 0:
        return 1.0
    full, rest = divmod(math.ceil(faces), model_batch)
    return (full * model_batch + (padded_size(rest, model_batch) if rest else 0)) / faces


def visual_cpu_s(duration_s: float, r: Rates, visual_batch: int | None = None,
                 model_batch: int = 256) -> float:
    """CPU-seconds of the visual model on CPU for one video's faces (padding included)."""
    return (faces_per_video(duration_s, r) / r.model_images_s
            * padding(duration_s, r, visual_batch, model_batch))


def cpu_s_per_video(duration_s: float, r: Rates, gpu_images_s: float | None = None,
                    visual_batch: int | None = None) -> float:
    """CPU-seconds per video; with a GPU (``gpu_images_s``) the visual model leaves the CPUs."""
    visual = 0.0 if gpu_images_s else visual_cpu_s(duration_s, r, visual_batch)
    return extraction_cpu_s(duration_s, r) + visual + 1.0 / r.audio_clips_s


@dataclass(frozen=True)
class Estimate:
    """What ``estimate`` says for one archive on one cluster."""

    videos: int
    duration_s: float
    cpu_hours: float            # measured work, no overhead
    node_hours: float           # CPU-hours / (CPUs per node x efficiency)
    nodes: int
    wall_hours: float           # on ``nodes`` nodes, the slower stage deciding
    extract_videos_s: float     # the extraction pool's throughput
    visual_videos_s: float      # the visual actors' throughput
    bottleneck: str             # "extraction" or "visual model"
    visual_workers_to_balance: int
    padding: float              # images computed per real face (calls padded to 2^k)


def estimate(videos: int, duration_s: float, r: Rates, node_cpus: int = 16, nodes: int = 8,
             efficiency: float = 1.0, visual_workers: int = 1, visual_actor_cpus: float = 1.0,
             gpu_images_s: float | None = None, gpus: int = 0,
             visual_batch: int | None = 8) -> Estimate:
    """The cost of scoring ``videos`` videos of ``duration_s`` s on ``nodes`` CPU nodes.

    Extraction runs on every CPU the visual actors leave, at ``efficiency`` of the measured
    sequential rate; each visual actor on CPU delivers ``visual_actor_cpus`` CPUs' worth of
    ``r.model_images_s``. With ``gpu_images_s`` the visual actors run on ``gpus`` GPUs instead
    (one actor each) and take no CPU node's CPUs. The slower of the two sets the wall time.
    ``visual_batch``: videos per visual call (`--visual-batch`), whose padding (``padding``)
    costs model time (None: no padding)."""
    if videos < 0 or duration_s <= 0 or node_cpus <= 0 or nodes <= 0 or not 0 < efficiency <= 1:
        raise ValueError("videos >= 0, duration_s > 0, node_cpus > 0, nodes > 0 and "
                         "0 < efficiency <= 1 are required")
    per_video = cpu_s_per_video(duration_s, r, gpu_images_s, visual_batch)
    cpu_hours = videos * per_video / 3600
    node_hours = cpu_hours / (node_cpus * efficiency)
    faces = max(faces_per_video(duration_s, r), 1e-9)
    if gpu_images_s:
        model_cpus = 0.0
        per_actor = gpu_images_s / (faces * padding(duration_s, r, visual_batch))
        visual_videos_s = max(1, gpus) * per_actor
    else:
        model_cpus = visual_workers * visual_actor_cpus
        per_actor = visual_actor_cpus / max(visual_cpu_s(duration_s, r, visual_batch), 1e-12)
        visual_videos_s = visual_workers * per_actor
    extract_cpus = max(0.0, nodes * node_cpus - model_cpus)
    extract_per_video = extraction_cpu_s(duration_s, r) + 1.0 / r.audio_clips_s
    extract_videos_s = extract_cpus * efficiency / extract_per_video
    rate = min(extract_videos_s, visual_videos_s)
    wall_hours = math.inf if rate <= 0 else videos / rate / 3600
    bottleneck = "visual model" if visual_videos_s < extract_videos_s else "extraction"
    balance = math.ceil(nodes * node_cpus * efficiency / extract_per_video
                        / (per_actor + efficiency * visual_actor_cpus / extract_per_video))
    return Estimate(videos, duration_s, cpu_hours, node_hours, nodes, wall_hours,
                    extract_videos_s, visual_videos_s, bottleneck, max(1, balance),
                    padding(duration_s, r, visual_batch))


def full_batch_videos(duration_s: float, r: Rates, model_batch: int = 256,
                      most: int = 64) -> int:
    """The largest `--visual-batch` (at most ``most``, the default shard size that caps it)
    whose faces pad the model's batches by at most 10 % (larger calls spread the per-call
    cost); else the least padded one."""
    pads = {n: padding(duration_s, r, n, model_batch) for n in range(1, most + 1)}
    fits = [n for n, p in pads.items() if p <= 1.1]
    return max(fits) if fits else min(pads, key=pads.get)


def knob(e: Estimate, r: Rates, gpu: bool = False) -> str:
    """Which setting to turn first for ``e`` (``r``: its rates)."""
    if e.bottleneck == "extraction":
        return "more CPU nodes (cpu_worker max_workers) and `--extract-workers`"
    batch = (f"`--visual-batch {full_batch_videos(e.duration_s, r)}` (calls now padded "
             f"x{e.padding:.1f}), then " if e.padding > 1.1 else "")
    if gpu:
        return batch + "more GPUs (gpu_worker max_workers)"
    return batch + "`--visual-workers` (table below) or a GPU"


def ideal_seconds(videos: int, duration_s: float, r: Rates, cpus: float,
                  visual_batch: int | None = 8) -> float:
    """The model's seconds for ``videos`` on ``cpus`` CPUs at efficiency 1, every stage
    sharing the CPUs (what a small local cluster does)."""
    return videos * cpu_s_per_video(duration_s, r, visual_batch=visual_batch) / cpus


def efficiency_of(ideal_s: float, measured_s: float) -> float:
    """Measured efficiency: the model's ideal seconds over the measured ones (at most 1)."""
    if measured_s <= 0:
        raise ValueError("measured seconds must be > 0")
    return min(1.0, ideal_s / measured_s)


# ------------------------------------------------------------------------------ measuring
def make_clips(work: Path = WORK) -> dict[float, list[Path]]:
    """Generated clips per length: 5 s RAVDESS-layout clips (640x480, 30 fps, a face and a
    voice) and one 5-min video made of 60 of them back to back."""
    from benchmarks.long_video import concat
    from mer_ray.sample import SampleConfig, make_sample

    folder = work / "clips-5s"
    if not folder.is_dir():
        make_sample(folder, SampleConfig(actors=1, clips_per_emotion=2, seconds=5.0,
                                         width=640, height=480))
    short = sorted(folder.rglob("*.mp4"))
    long = concat(short[0], 60, work / "long-5min.mp4")
    return {5.0: short[:4], 300.0: [long]}


def score_options():
    """The extraction options the score job runs with the default bundled models."""
    from mer_ray.config import ScoreConfig
    from mer_ray.score.plan import resolve_models, resolve_plan

    cfg = resolve_models(ScoreConfig(source=".", out=".", visual="default", audio="default"),
                         [None])
    plan = resolve_plan(cfg)
    return cfg, plan


def _timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def measure_extraction(paths: list[Path], duration_s: float, warm: Path) -> dict:
    """CPU-s and wall-s per video-second of each extraction step over ``paths``: decode alone,
    decode + faces, everything (the differences give faces and audio), then the score rows.
    ``warm``: a short clip extracted first by each extractor (detector, numba, codecs)."""
    from mer_ray.data.sources import list_inputs_table
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.runtime import limit_cv2_threads
    from mer_ray.score.rows import extraction_rows

    limit_cv2_threads()
    _, plan = score_options()
    full = dataclasses.replace(plan.extract, decode_threads=1)
    variants = {"decode": dataclasses.replace(full, faces=False, audio=False),
                "decode+faces": dataclasses.replace(full, audio=False), "all": full}
    cpu, wall, results = {}, {}, []
    for name, opts in variants.items():
        extractor = ClipExtractor(opts)
        extractor.extract(str(warm))
        cpu[name] = wall[name] = 0.0
        for path in paths:
            res, c, w = _timed(lambda: extractor.extract(str(path)))
            if res.clip["status"] != "ok":
                raise RuntimeError(f"{path}: {res.clip['status']} {res.clip['error']}")
            cpu[name] += c
            wall[name] += w
            if name == "all":
                results.append(res)
    items = [row for path in paths for row in list_inputs_table(str(path)).to_pylist()]
    if len(items) != len(paths):
        raise RuntimeError(f"listing {len(paths)} clips gave {len(items)} input rows")
    _, rows_cpu, rows_wall = _timed(lambda: extraction_rows(items, results, plan.audio_column,
                                                            plan.extract))
    seconds = duration_s * len(paths)
    per = lambda d, a, b=None: (d[a] - (d[b] if b else 0.0)) / seconds  # noqa: E731
    return {"video_s": seconds, "clips": len(paths),
            "decode_cpu_s": per(cpu, "decode"), "faces_cpu_s": per(cpu, "decode+faces", "decode"),
            "audio_cpu_s": per(cpu, "all", "decode+faces"), "rows_cpu_s": rows_cpu / seconds,
            "decode_wall_s": per(wall, "decode"),
            "faces_wall_s": per(wall, "decode+faces", "decode"),
            "audio_wall_s": per(wall, "all", "decode+faces"), "rows_wall_s": rows_wall / seconds,
            "keyframes_per_s": sum(r.clip["keyframes"] for r in results) / seconds,
            "faces_per_s": sum(len(r.frames) for r in results) / seconds,
            "crops": [f["face"] for r in results for f in r.frames][:200]}


def measure_models(crops: list) -> dict:
    """The bundled visual model's images/s on one thread at 64 and 256 faces per call, run as
    score runs it (OpenCV, or Keras for a model OpenCV cannot run), and the bundled audio
    model's clips/s (rich vectors of one clip, repeated)."""
    import cv2
    import numpy as np

    from mer_ray.models.bundle import AudioPredictor, VisualPredictor
    from mer_ray.models.bundled import bundled_dir

    cv2.setNumThreads(1)
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = "1"  # if Keras
    faces = np.stack([crops[i % len(crops)] for i in range(256)])
    visual = VisualPredictor(bundled_dir("visual"))
    out = {"visual_predict_batch": visual.predict_batch, "visual_engine": visual.engine,
           "visual_mirror": visual.info.mirror}
    for batch in (64, 256):
        visual.predict(faces[:batch])                       # trace
        calls = max(2, 1024 // batch)
        _, c, w = _timed(lambda: [visual.predict(faces[:batch]) for _ in range(calls)])
        out[f"images_s_{batch}"] = calls * batch / w
        out[f"images_cpu_s_{batch}"] = calls * batch / c
    audio = AudioPredictor(bundled_dir("audio"))
    x = np.random.default_rng(0).normal(size=(256,) + audio.input_shape).astype(np.float32)
    audio.predict(x[:8])
    _, c, w = _timed(lambda: [audio.predict(x) for _ in range(4)])
    out["audio_clips_s"] = 4 * 256 / w
    out["audio_clips_cpu_s"] = 4 * 256 / c
    out["audio_batch"] = 256
    return out


def crop_bytes(crops: list) -> dict:
    """Bytes per stored crop (preprocess shards) with the project's crop codec, and raw."""
    try:
        from mer_ray.media.crop_codec import CROP_FORMAT, encode_crop
    except ImportError:
        return {"format": "raw", "bytes_per_crop": RAW_CROP_BYTES}
    sizes = [len(encode_crop(c)) for c in crops]
    return {"format": CROP_FORMAT, "bytes_per_crop": sum(sizes) / len(sizes)}


def measure(out: Path = RATES_JSON) -> dict:
    """Every measurement, written to ``out`` (JSON) and returned. BLAS / OpenMP pools run one
    thread, as in the job's actors (Ray sets OMP_NUM_THREADS to an actor's CPUs): with more,
    idle threads spinning on the other core would count as the audio features' CPU-s."""
    from threadpoolctl import threadpool_limits

    from mer_ray.runtime import configure_process

    configure_process()
    clips = make_clips()
    load0 = os.getloadavg()[0]
    lengths, crops = {}, []
    with threadpool_limits(1):
        for duration, paths in clips.items():
            m = measure_extraction(paths, duration, clips[LENGTHS_S[0]][0])
            crops += m.pop("crops")
            lengths[f"{duration:g}"] = m
            print(f"{duration:g} s:", json.dumps(m), flush=True)
        models = measure_models(crops)
    print("models:", json.dumps(models), flush=True)
    result = {"machine": machine(), "load_start": load0, "load_end": os.getloadavg()[0],
              "lengths": lengths, "models": models, "crops": crop_bytes(crops),
              "options": {k: v for k, v in dataclasses.asdict(score_options()[1].extract).items()
                          if k in ("skip", "max_keyframes", "max_audio_s", "detect_width",
                                   "redetect_every", "rich_audio")}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return result


def rates_of(measured: dict, duration_s: float, batch: int = 256) -> Rates:
    """The Rates of one measured length (CPU figures) with the model at ``batch`` per call."""
    m = measured["lengths"][f"{duration_s:g}"]
    models = measured["models"]
    return Rates(decode_cpu_s=m["decode_cpu_s"], faces_cpu_s=max(0.0, m["faces_cpu_s"]),
                 audio_cpu_s=max(0.0, m["audio_cpu_s"]), rows_cpu_s=m["rows_cpu_s"],
                 faces_per_s=m["faces_per_s"], keyframes_per_s=m["keyframes_per_s"],
                 model_images_s=models[f"images_cpu_s_{batch}"],
                 audio_clips_s=models["audio_clips_cpu_s"])


# ------------------------------------------------------------------------------ report
def _h(x: float) -> str:
    if math.isinf(x):
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 1 else f"{x:.2f}"


def _table(measured: dict, efficiency: float, gpu_images_s: float | None) -> list[str]:
    cpu = NODE_TYPES["cpu_worker"]
    gpu = NODE_TYPES["gpu_worker"]
    lines = [f"| videos | length | CPU-h | node-h ({cpu.instance}, {cpu.cpus} CPU) | wall h on "
             f"{cpu.max_nodes} nodes | saturates first | knob | wall h, GPU visual ({gpu.max_nodes}"
             f" x {gpu.instance}) |", "|" + " --- |" * 8]
    for duration in LENGTHS_S:
        r = rates_of(measured, duration)
        for videos in ARCHIVE_SIZES:
            e = estimate(videos, duration, r, cpu.cpus, cpu.max_nodes, efficiency)
            if gpu_images_s:
                g = estimate(videos, duration, r, cpu.cpus, cpu.max_nodes, efficiency,
                             gpu_images_s=gpu_images_s, gpus=gpu.max_nodes)
                gpu_cell = f"{_h(g.wall_hours)} ({g.bottleneck})"
            else:
                gpu_cell = "not measured"
            lines.append(f"| {videos:,} | {duration / 60:g} min | {_h(e.cpu_hours)} | "
                         f"{_h(e.node_hours)} | {_h(e.wall_hours)} | {e.bottleneck} | "
                         f"{knob(e, r)} | {gpu_cell} |" if duration >= 60 else
                         f"| {videos:,} | {duration:g} s | {_h(e.cpu_hours)} | "
                         f"{_h(e.node_hours)} | {_h(e.wall_hours)} | {e.bottleneck} | "
                         f"{knob(e, r)} | {gpu_cell} |")
    return lines


def _balanced(measured: dict, efficiency: float) -> list[str]:
    cpu = NODE_TYPES["cpu_worker"]
    lines = ["| length | `--visual-batch` | visual actors | padding | extraction videos/s | "
             "visual videos/s | wall h for 10^6 videos | bottleneck |", "|" + " --- |" * 8]
    for duration in LENGTHS_S:
        r = rates_of(measured, duration)
        full = max(8, full_batch_videos(duration, r))
        k = estimate(1, duration, r, cpu.cpus, cpu.max_nodes, efficiency,
                     visual_batch=full).visual_workers_to_balance
        for batch, workers in dict.fromkeys([(8, 1), (full, 1), (full, k)]):
            e = estimate(10**6, duration, r, cpu.cpus, cpu.max_nodes, efficiency, workers,
                         visual_batch=batch)
            lines.append(f"| {duration:g} s | {batch} | {workers} | x{e.padding:.2f} | "
                         f"{e.extract_videos_s:.1f} | {e.visual_videos_s:.1f} | "
                         f"{_h(e.wall_hours)} | {e.bottleneck} |")
    return lines


def _rates_table(measured: dict) -> list[str]:
    lines = ["| per video-second | " + " | ".join(f"{d:g} s clip" for d in LENGTHS_S) + " |",
             "|" + " --- |" * (1 + len(LENGTHS_S))]
    rows = [("decode CPU-s (wall s)", "decode"), ("face detection CPU-s (wall s)", "faces"),
            ("audio features CPU-s (wall s)", "audio"), ("score rows, crops encoded CPU-s (wall s)",
                                                         "rows")]
    for label, key in rows:
        cells = [f"{m[key + '_cpu_s']:.4f} ({m[key + '_wall_s']:.4f})"
                 for m in (measured["lengths"][f"{d:g}"] for d in LENGTHS_S)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for label, key in (("keyframes", "keyframes_per_s"), ("face crops", "faces_per_s")):
        lines.append(f"| {label} | " + " | ".join(f"{measured['lengths'][f'{d:g}'][key]:.2f}"
                                                  for d in LENGTHS_S) + " |")
    return lines


def report(measured: dict, multinode: dict | None, gpu_images_s: float | None) -> tuple[str, str]:
    """(the docs/scaling.md block, the BENCHMARKS.md section)."""
    m = measured["models"]
    eff = multinode["efficiency"] if multinode else 1.0
    eff_src = ("CPU-s, measured by benchmarks/multinode.py: steady state of its two runs"
               if multinode
               else "1.0: no multi-node run recorded yet (run benchmarks/multinode.py)")
    out = measured.get("output") or (multinode or {}).get("output") or {}
    lines = [f"Measured with `python benchmarks/cost_model.py --measure` on {measured['machine']};"
             f" one process, one file at a time, one OpenCV / FFmpeg / BLAS thread (the face model: "
             f"{measured['models'].get('visual_engine', 'keras')}); 1-min "
             f"load average {measured['load_start']:.1f} -> {measured['load_end']:.1f} (shared "
             "machine: CPU-s are steadier than wall s). Extraction options: "
             + ", ".join(f"{k} {v}" for k, v in measured["options"].items()) + ".", "",
             *_rates_table(measured), "",
             f"Visual model (bundled compact CNN), one thread: **{m['images_cpu_s_256']:.0f} "
             f"images per CPU-s at 256 faces per call**, {m['images_cpu_s_64']:.0f} at 64 ("
             + ("each face and its mirror image, two passes of the model, as score runs it; "
                if m.get("visual_mirror") else "")
             + ("in OpenCV, 64 faces at a time, unpadded). "
                if m.get("visual_engine") == "opencv" else
                f"in Keras: its batch is {m['visual_predict_batch']}; a call with fewer faces is "
                "padded to the next power of two from 16). ")
             + f"Audio model (bundled SVM): {m['audio_clips_cpu_s']:.0f} clips per CPU-s "
             f"({m['audio_batch']} per call).", ""]
    if out:
        lines += [f"Output: {out['bytes_per_video']:,.0f} bytes per video in scores + timeline "
                  f"shards ({out['source']}); preprocess shards store "
                  f"{measured['crops']['bytes_per_crop']:,.0f} bytes per face crop "
                  f"({measured['crops']['format']}), i.e. "
                  + ", ".join(f"{measured['crops']['bytes_per_crop'] * rates_of(measured, d).faces_per_s * d / 1e6:.2f} MB"
                              f" per {d:g} s video" for d in LENGTHS_S) + ".", ""]
    lines += [f"Efficiency: **{eff:.2f}** ({eff_src}).", "",
              "One night's archive on cluster.yaml (CPU-only: visual model on CPU, 1 visual "
              "actor unless the knob says otherwise):", "",
              *_table(measured, eff, gpu_images_s), "",
              "Balancing the visual actors on 8 cpu_worker nodes (each visual actor is taken "
              "as one CPU's worth of the measured images/s):", "", *_balanced(measured, eff)]
    if gpu_images_s:
        lines += ["", f"GPU rows: `--gpu-images-s {gpu_images_s:g}` (given, not measured here)."]
    else:
        lines += ["", "GPU rows: not measured (no GPU on this machine). With a GPU's images/s G "
                  "(`--gpu-images-s G`), the visual model handles G x GPUs / faces-per-video "
                  "videos/s and leaves the CPUs to extraction."]
    if multinode:
        lines += ["", *multinode_lines(multinode)]
    block = "\n".join(lines)
    cpu = NODE_TYPES["cpu_worker"]
    r5 = rates_of(measured, 5.0)
    e5 = estimate(10**6, 5.0, r5, cpu.cpus, cpu.max_nodes, eff)
    r300 = rates_of(measured, 300.0)
    e300 = estimate(10**5, 300.0, r300, cpu.cpus, cpu.max_nodes, eff)
    bench = ["## Scaling: a measured cost model (benchmarks/cost_model.py, benchmarks/multinode.py)",
             "", f"Machine: {measured['machine']}.", "",
             f"CPU-s per video-second (5 s / 5 min clips): decode "
             f"{r5.decode_cpu_s:.4f} / {r300.decode_cpu_s:.4f}, faces {r5.faces_cpu_s:.4f} / "
             f"{r300.faces_cpu_s:.4f}, audio {r5.audio_cpu_s:.4f} / {r300.audio_cpu_s:.4f}, rows "
             f"{r5.rows_cpu_s:.4f} / {r300.rows_cpu_s:.4f}; bundled visual model "
             f"{m['images_cpu_s_256']:.0f} images per CPU-s (256 per call). Efficiency {eff:.2f} "
             f"({'from the local multi-node run' if multinode else 'not measured'}).", "",
             f"10^6 videos of 5 s on 8 x c6i.4xlarge: {_h(e5.cpu_hours)} CPU-h, "
             f"{_h(e5.node_hours)} node-h, {_h(e5.wall_hours)} h wall, {e5.bottleneck} first. "
             f"10^5 videos of 5 min: {_h(e300.cpu_hours)} CPU-h, {_h(e300.node_hours)} node-h, "
             f"{_h(e300.wall_hours)} h wall, {e300.bottleneck} first. Tables and the knobs: "
             "[docs/scaling.md](docs/scaling.md)."]
    if multinode:
        bench += ["", *multinode_lines(multinode)]
    return block, "\n".join(bench)


def multinode_lines(mn: dict) -> list[str]:
    """The multi-node check, as Markdown lines."""
    lines = [f"Local multi-node check (`python benchmarks/multinode.py`): a head and "
             f"{mn['workers']} worker raylets on this machine, `--num-cpus 1` each "
             f"({mn['cluster_cpus']:g} Ray CPUs on {mn['cores']} real cores, which other jobs "
             f"shared: 1-min load average {mn['load_start']:.1f} at start, "
             f"{mn['load_end']:.1f} at the end; timings are rough). `jobs/score.py` submitted "
             f"with `ray job submit` (bundled models, `--timeline`) over generated "
             f"{mn['duration_s']:g} s clips; CPU-s: user + system time of every process of the "
             "cluster (raylets, workers, actors, the job's driver), sampled each second.", "",
             f"| videos | measured wall s | model s (efficiency 1, {min(mn['cluster_cpus'], mn['cores']):g}"
             " cores) | wall / model | measured CPU-s | model CPU-s | CPU / model |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for run in mn["runs"]:
        lines.append(f"| {run['videos']} | {run['seconds']:.1f} | {run['ideal_s']:.1f} | "
                     f"{run['seconds'] / run['ideal_s']:.2f} | {run['cpu_s']:.1f} | "
                     f"{run['ideal_cpu_s']:.1f} | {run['cpu_s'] / run['ideal_cpu_s']:.2f} |")
    lines += ["", f"Steady state (the difference of the two runs: Ray start-up, actor start and "
                  f"model loads cancel out): {mn['steady_cpu_s_per_video']:.3f} CPU-s per extra "
                  f"video against {mn['ideal_cpu_s_per_video']:.3f} modelled, **efficiency "
                  f"{mn['efficiency']:.2f}** (the Ray pipeline's own per-video work: crops "
                  f"between actors, fusion, shard writes, scheduling); wall "
                  f"{mn['steady_s_per_video']:.3f} s per extra video against "
                  f"{mn['ideal_s_per_video']:.3f} s on the real cores, {mn['wall_efficiency']:.2f}"
                  " (that one also counts the other jobs on this machine, so the tables use the "
                  f"CPU figure). Fixed cost per run: about {mn['fixed_s']:.0f} s wall, "
                  f"{mn['fixed_cpu_s']:.0f} CPU-s.", "",
              "Where each run's actors ran (node: actors):", ""]
    stages = ("ExtractActor", "VisualStage", "AudioStage")
    for run in mn["runs"]:
        cells = []
        for node, kinds in run["placement"].items():
            mine = [f"{k} x{n}" for k, n in sorted(kinds.items()) if k in stages]
            cells.append(f"{node}: " + (", ".join(mine) or "none of the job's actors"))
        lines.append(f"- {run['videos']} videos: " + "; ".join(cells))
    return lines


def write_scaling(block: str, path: Path = SCALING_MD) -> None:
    """Replace the text between the cost-model markers of docs/scaling.md."""
    start, end = "<!-- cost-model:start -->", "<!-- cost-model:end -->"
    text = path.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{path} has no {start} / {end} markers")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    path.write_text(pattern.sub(lambda _: f"{start}\n{block.rstrip()}\n{end}", text))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", action="store_true",
                    help=f"measure the rates (writes {RATES_JSON}) before reporting")
    ap.add_argument("--gpu-images-s", type=float, default=None,
                    help="the visual model's images/s on one GPU (not measured here); adds the "
                         "GPU column")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    if args.gpu_images_s is not None and args.gpu_images_s <= 0:
        ap.error("--gpu-images-s must be > 0")
    if args.measure:
        measure()
    if not RATES_JSON.is_file():
        ap.error(f"no measurements at {RATES_JSON}: run with --measure first")
    measured = json.loads(RATES_JSON.read_text())
    multinode = json.loads(MULTINODE_JSON.read_text()) if MULTINODE_JSON.is_file() else None
    block, bench = report(measured, multinode, args.gpu_images_s)
    print(block)
    if not args.no_write:
        write_scaling(block)
        write_section("scaling", bench)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
