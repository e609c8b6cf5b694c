"""Training throughput: the Ray Train path vs a plain single-process Keras loop (model.fit).

Same synthetic data (tests/support/synthetic.py), same model, same batch size, in one run:

- visual: images/s over the training epochs after the first (tracing/warm-up excluded),
  Alg. 3.1 augmentation on in both paths;
- audio: epochs/s of the Table 4.4 MLP on the training rows (originals + augmented copies).

Ray figures come from the per-epoch ``train_s`` the workers measure (data streaming included,
validation and checkpointing excluded); the plain figures from a Keras callback timing each
epoch. Wall time of each whole run (Ray start-up, workers, evaluation) is printed too.
The result replaces the "Training" section of BENCHMARKS.md.

    python benchmarks/train.py                       # a few minutes on 2 cores
    python benchmarks/train.py --backbone efficientnetb0 --visual-epochs 3 --workers 1 2
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MER_RAY_PROGRESS", "0")
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")

from benchmarks.common import write_section  # noqa: E402


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or os.cpu_count()
    gpu = "no GPU"
    try:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        gpu = f"{len(gpus)} GPU(s)" if gpus else "no GPU"
    except Exception:  # noqa: BLE001
        pass
    load = ", load average at start {:.1f}".format(os.getloadavg()[0]) if hasattr(os, "getloadavg") else ""
    return f"{nproc} CPUs (`nproc`), {cpu}, {gpu}, Python {platform.python_version()}{load}"


def steady(rows: list[dict], key: str) -> tuple[float, float]:
    """(samples, seconds) over the epochs after the first."""
    rest = rows[1:] or rows
    return sum(r["train_samples"] for r in rest), sum(r[key] for r in rest)


def visual_batch(args) -> int:
    """The visual runs' batch size (16, the thesis's, unless ``args.visual_batch`` says)."""
    return getattr(args, "visual_batch", None) or 16


def ray_run(kind: str, shards: str, workers: int, args) -> dict:
    from mer_ray.config import RayConfig, TrainAudioConfig, TrainVisualConfig
    from mer_ray.train.runner import train

    out = tempfile.mkdtemp(prefix=f"bench-{kind}-")
    common = dict(shards=shards, out=out, workers=workers, protocol="thesis", val="none",
                  gpu=getattr(args, "gpu", False), ray=RayConfig(num_cpus=args.num_cpus))
    if kind == "visual":
        cfg = TrainVisualConfig(**common, backbone=args.backbone, case=args.case, init="none",
                                epochs=args.visual_epochs, batch_size=visual_batch(args),
                                checkpoint_every=1)
    else:
        cfg = TrainAudioConfig(**common, epochs=args.audio_epochs, batch_size=32,
                               checkpoint_every=args.audio_epochs)
    t0 = time.perf_counter()
    outcome = train(cfg)
    wall = time.perf_counter() - t0
    samples, seconds = steady(outcome.history, "train_s")
    return {"path": f"Ray Train, {workers} worker(s)", "wall_s": wall, "samples": samples,
            "seconds": seconds, "epochs": len(outcome.history[1:] or outcome.history),
            "acc": outcome.metrics["accuracy"]}


def plain_run(kind: str, shards: str, args) -> dict:
    """model.fit in this process on the same training rows (thesis split, no validation)."""
    import keras
    import tensorflow as tf

    from mer_ray.data.splits import TRAIN, make_plan
    from mer_ray.models.audio_mlp import build_audio_mlp, standardisation
    from mer_ray.models.augment import augment_batch
    from mer_ray.models.visual import build_visual_model
    from mer_ray.train.data import iter_split_local, plan_data

    t0 = time.perf_counter()
    plan, data = plan_data(shards, kind, lambda g: make_plan(g, "thesis", None, "none"))
    batches = list(iter_split_local(data, plan, TRAIN, augmented=kind == "audio",
                                    batch_rows=1024))
    x = np.concatenate([b["x"] for b in batches])
    y = np.concatenate([b["y"] for b in batches])
    if kind == "visual":
        model = build_visual_model(args.backbone, args.case, weights=None)
        batch, epochs = visual_batch(args), args.visual_epochs
        ds = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y)).batch(batch, drop_remainder=True)
              .map(lambda a, b: (augment_batch(a), b)))
    else:
        model = build_audio_mlp(x.shape[1], *standardisation(x))
        batch, epochs = 32, args.audio_epochs
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y)).batch(batch, drop_remainder=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    model.fit(ds, epochs=epochs, verbose=0, callbacks=[Timer()])
    per_epoch = (len(y) // batch) * batch
    rest = times[1:] or times
    return {"path": "plain Keras model.fit, 1 process", "wall_s": time.perf_counter() - t0,
            "samples": per_epoch * len(rest), "seconds": sum(rest), "epochs": len(rest),
            "acc": None}


def table(kind: str, results: list[dict]) -> list[str]:
    unit = "images/s" if kind == "visual" else "epochs/s"
    base = results[0]
    lines = [f"| path | {unit} | vs plain | timed epochs | wall time of the run |",
             "| --- | --- | --- | --- | --- |"]
    for r in results:
        rate = r["samples"] / r["seconds"] if kind == "visual" else r["epochs"] / r["seconds"]
        r["rate"] = rate
        ratio = rate / base["rate"] if base.get("rate") else 1.0
        lines.append(f"| {r['path']} | {rate:.2f} | {ratio:.2f}x | {r['epochs']} | {r['wall_s']:.0f} s |")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbone", default="mobilenetv2")
    p.add_argument("--case", default="frozen", choices=["frozen", "unfrozen"])
    p.add_argument("--visual-epochs", type=int, default=3)
    p.add_argument("--audio-epochs", type=int, default=40)
    p.add_argument("--workers", type=int, nargs="+", default=[2])
    p.add_argument("--frames-per-clip", type=int, default=4)
    p.add_argument("--clips-per-class", type=int, default=3)
    p.add_argument("--num-cpus", type=int, default=None)
    p.add_argument("--kinds", nargs="+", default=["visual", "audio"])
    p.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = p.parse_args()

    sys.path.insert(0, str(REPO / "tests"))          # test helpers: support.synthetic
    from support.synthetic import write_synthetic_shards

    shards = str(write_synthetic_shards(tempfile.mkdtemp(prefix="bench-shards-"),
                                        clips_per_class=args.clips_per_class,
                                        frames_per_clip=args.frames_per_clip))
    out = ["## Training (benchmarks/train.py)", "",
           f"Machine: {machine()}.", "",
           f"Command: `python benchmarks/train.py {' '.join(sys.argv[1:])}`".rstrip() + ". "
           "Synthetic data (tests/support/synthetic.py), thesis split (80 % of rows for training), "
           "no validation; rates exclude the first epoch (tracing); Ray rates are the workers' "
           "own per-epoch training time (data streaming included, checkpointing excluded).", ""]
    for kind in args.kinds:
        results = [plain_run(kind, shards, args)]
        for w in args.workers:
            results.append(ray_run(kind, shards, w, args))
        what = (f"visual: {args.backbone} ({args.case}, random init), batch 16, "
                f"Alg. 3.1 augmentation" if kind == "visual" else "audio: Table 4.4 MLP, batch 32")
        out += [f"### {what}", ""] + table(kind, results) + [""]
    text = "\n".join(out)
    print(text)
    if not args.no_write:
        write_section("train-benchmark", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
