"""Fitting a Keras model on Ray Train: the loop config, the TensorflowTrainer run, the best
model copied out of the last checkpoint. Tasks that train in epochs use this (tasks.py)."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mer_ray.data.splits import TRAIN, VAL, SplitPlan
from mer_ray.train import rundir
from mer_ray.train.data import LocalSplit, TrainData, split_dataset
from mer_ray.train.loop import BEST_FILE, META_FILE, TrainHooks, WorkerLoop

log = logging.getLogger(__name__)

CACHE_VAL_BYTES = 1 << 30     # rank 0 keeps the validation rows in memory below this size
RAY_DIR = rundir.RAY_DIR
RUN_NAME = "train"
MODEL_FILE = "model.keras"


@dataclass
class LoopSpec:
    """What a task hands the worker loop: how to build its model and feed it."""

    build_model: Callable            # () -> an uncompiled keras.Model (picklable)
    model_key: dict                  # the model settings a checkpoint must match
    x_dtype: str                     # "uint8" faces | "float32" feature vectors
    augmented: bool = False          # training rows get their augmented copies
    augment: bool = False            # Alg. 3.1 image augmentation in the train step
    cache: bool = False              # keep the training shard in worker memory
    class_weights: list[float] | None = None   # loss weight per class (None: unweighted)


def config_key(cfg, spec: LoopSpec) -> str:
    """A hash of the settings a resumed checkpoint must have been written with."""
    keys = {k: getattr(cfg, k) for k in ("protocol", "fold", "val", "seed", "batch_size", "lr")}
    keys["model"] = spec.model_key
    if spec.class_weights is not None:
        keys["class_weights"] = spec.class_weights
    return hashlib.sha1(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cpus_per_worker(cfg) -> float:
    import ray

    if cfg.cpus_per_worker:
        return float(cfg.cpus_per_worker)
    if cfg.gpu:
        return 1.0
    total = float(ray.cluster_resources().get("CPU", 1.0))
    return max(0.25, min(1.0, (total - 1.0) / max(cfg.workers, 1)))


def loop_config(cfg, spec: LoopSpec, data: TrainData, cpus: float) -> dict:
    """The dict every worker gets (see loop.train_loop_per_worker): plain data only, since
    Ray Train's controller unpickles it too (the callables go in loop.WorkerLoop)."""
    n_train = data.count(TRAIN, spec.augmented)
    per_worker_batch = max(1, cfg.batch_size // cfg.workers)
    steps = (n_train // cfg.workers) // per_worker_batch
    if steps < 1:
        raise ValueError(f"{n_train} training rows are too few for batch size {cfg.batch_size} "
                         f"on {cfg.workers} worker(s)")
    n_val = data.count(VAL)
    return {
        "x_dtype": spec.x_dtype, "epochs": cfg.epochs,
        "global_batch": cfg.batch_size, "lr": cfg.lr, "steps_per_epoch": steps,
        "seed": cfg.seed, "augment": spec.augment, "cache": spec.cache,
        "cache_val": n_val * data.source.row_bytes <= CACHE_VAL_BYTES, "has_val": n_val > 0,
        "threads": max(1, math.ceil(cpus)), "config_key": config_key(cfg, spec),
        "checkpoint_every": cfg.checkpoint_every, "class_weights": spec.class_weights,
    }


def _progress_callback(total_epochs: int):
    """A ray.train UserCallback printing one line per reported epoch (runs in the controller;
    Ray forwards its stdout to the driver)."""
    from ray.train import UserCallback

    from mer_ray.console import worker_line   # marked: the driver shows it unless -q

    class Progress(UserCallback):
        def after_report(self, run_context, metrics, checkpoint):
            m = metrics[0] if metrics else {}
            sums = [w.get("weights_checksum") for w in metrics if "weights_checksum" in w]
            if sums and max(sums) - min(sums) > 1e-4 * max(1.0, abs(max(sums))):
                worker_line(f"WARNING: worker replicas differ (weight checksums {sums})")
            for row in m.get("epochs") or ([m] if "epoch" in m else []):
                worker_line(format_progress(row, total_epochs))

    return Progress()


def format_progress(m: dict, total_epochs: int) -> str:
    """One line per epoch: loss, accuracy, validation accuracy, time."""
    val = (f" val_loss {m['val_loss']:.4f} val_acc {m['val_acc']:.3f}"
           if m.get("val_acc") is not None else "")
    return (f"epoch {m['epoch'] + 1}/{total_epochs} loss {m['train_loss']:.4f} "
            f"acc {m['train_acc']:.3f}{val} ({m['train_s']:.1f}s"
            f"{', resumed' if m.get('attempt') else ''})")


def run_ray_train(worker: WorkerLoop, loop_cfg: dict, datasets: dict, cfg, storage: str,
                  progress: bool = False):
    """Fit with TensorflowTrainer; returns the ray.train Result (raises on failure)."""
    import ray.train
    from ray.train.tensorflow import TensorflowTrainer

    from mer_ray.train.tf_backend import TFConfig

    scaling = ray.train.ScalingConfig(num_workers=cfg.workers, use_gpu=cfg.gpu,
                                      resources_per_worker={"CPU": cpus_per_worker(cfg)})
    run_config = ray.train.RunConfig(
        name=RUN_NAME, storage_path=storage,
        failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
        callbacks=[_progress_callback(cfg.epochs)] if progress else None)
    trainer = TensorflowTrainer(       # TFConfig: no TensorFlow import in the controller
        worker, train_loop_config=loop_cfg, tensorflow_config=TFConfig(),
        scaling_config=scaling,
        run_config=run_config, datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=[TRAIN]))
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    if result.checkpoint is None:
        raise RuntimeError("training finished without a checkpoint")
    return result


def fit(cfg, spec: LoopSpec, data: TrainData, plan: SplitPlan, out: Path,
        progress: bool = False, hooks: TrainHooks | None = None) -> list[dict]:
    """Train on Ray Train, copy the best model to ``out/model.keras``; returns the history
    (one row per epoch, ``best`` marking the epoch kept)."""
    from mer_ray.runtime import init_ray

    # Ray Train's controller polls workers every 2 s by default, which caps reports (and so
    # checkpoints) at one per 2 s; only effective when this process starts Ray itself.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
    init_ray(cfg.ray)
    cpus = cpus_per_worker(cfg)
    loop_cfg = loop_config(cfg, spec, data, cpus)
    worker = WorkerLoop(spec.build_model, hooks.on_epoch_start if hooks else None,
                        val=LocalSplit(data, plan, VAL) if loop_cfg["has_val"] else None)
    datasets = {TRAIN: split_dataset(data, plan, TRAIN, augmented=spec.augmented,
                                     shuffle_blocks=True)}
    storage = cfg.storage or str(out / RAY_DIR)
    log.info("Ray Train: %d worker(s), %.2f CPU each, gpu=%s, storage %s", cfg.workers, cpus,
             cfg.gpu, storage)
    result = run_ray_train(worker, loop_cfg, datasets, cfg, storage, progress)
    log.info("training finished; evaluating the best model on the test split")
    return _copy_best(result.checkpoint, out)


def _copy_best(checkpoint, out: Path) -> list[dict]:
    with checkpoint.as_directory() as d:
        shutil.copyfile(os.path.join(d, BEST_FILE), out / MODEL_FILE)
        meta = json.loads(Path(d, META_FILE).read_text())
    history = meta["history"]
    for row in history:
        row["best"] = row["epoch"] == meta["best_epoch"]
    return history


def remove_checkpoints(cfg, out: Path) -> None:
    """Delete OUT/_ray after success unless asked to keep it or it is elsewhere."""
    if not cfg.keep_checkpoints and not cfg.storage:
        shutil.rmtree(out / RAY_DIR, ignore_errors=True)
