"""Driver side of both train jobs: plan the split, launch Ray Train, write the run directory."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from mer_ray.config import EMOTIONS, TrainAudioConfig, TrainVisualConfig
from mer_ray.data.schema import FACE_NBYTES
from mer_ray.data.splits import TEST, TRAIN, VAL, SplitPlan, make_plan
from mer_ray.train import rundir
from mer_ray.train.data import TrainData, iter_split_local, plan_data, split_dataset

log = logging.getLogger(__name__)

CACHE_VAL_BYTES = 1 << 30     # rank 0 keeps the validation faces in memory below this size
RAY_DIR = rundir.RAY_DIR
RUN_NAME = "train"
LEAKY_NOTE = ("thesis protocol: random split over rows; frames/clips of the same actor are on "
              "both sides, so this accuracy is optimistic (leaky), not actor-independent")


@dataclass
class TrainOutcome:
    """What a finished training run produced."""

    run_dir: str
    metrics: dict
    history: list[dict]
    plan: SplitPlan
    counts: dict = field(default_factory=dict)


def _kind(cfg) -> str:
    return "visual" if isinstance(cfg, TrainVisualConfig) else "audio"


def resolve_plan(cfg) -> Callable[[list[str]], SplitPlan]:
    return lambda groups: make_plan(groups, cfg.protocol, cfg.fold, cfg.val, cfg.seed)


def _config_key(cfg, model_cfg: dict) -> str:
    keys = {k: getattr(cfg, k) for k in ("protocol", "fold", "val", "seed", "batch_size", "lr")}
    keys["model"] = {k: v for k, v in model_cfg.items() if k not in ("mean", "variance")}
    return hashlib.sha1(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:16]


def audio_standardisation(data: TrainData, plan: SplitPlan, cfg: TrainAudioConfig
                          ) -> tuple[np.ndarray, np.ndarray, int]:
    """(mean, variance, dim) over the training rows only (with their augmented copies when
    those are used): validation and test rows never influence it."""
    from mer_ray.models.audio_mlp import standardisation

    xs = [b["x"] for b in iter_split_local(data, plan, TRAIN, feature_column=cfg.feature_column,
                                           augmented=cfg.use_augmented, batch_rows=4096)]
    x = np.concatenate(xs)
    mean, var = standardisation(x)
    return mean, var, int(x.shape[1])


def _model_config(cfg, kind: str, data: TrainData, plan: SplitPlan) -> dict:
    if kind == "visual":
        from mer_ray.models.visual import imagenet_weights_path
        from mer_ray.storage import is_uri

        init, weights = cfg.init, cfg.weights_file
        if init == "imagenet":    # resolved here: workers may have another $KERAS_HOME / cwd
            weights = os.path.abspath(imagenet_weights_path(cfg.backbone, weights))
        elif init != "none" and not is_uri(init):       # URIs are fetched on each worker
            init = os.path.abspath(init)
        return {"backbone": cfg.backbone, "case": cfg.case, "init": init, "weights_file": weights}
    mean, var, dim = audio_standardisation(data, plan, cfg)
    return {"input_dim": dim, "mean": mean.tolist(), "variance": var.tolist()}


def _cpus_per_worker(cfg) -> float:
    import ray

    if cfg.cpus_per_worker:
        return float(cfg.cpus_per_worker)
    if cfg.gpu:
        return 1.0
    total = float(ray.cluster_resources().get("CPU", 1.0))
    return max(0.25, min(1.0, (total - 1.0) / max(cfg.workers, 1)))


def loop_config(cfg, kind: str, data: TrainData, plan: SplitPlan, model_cfg: dict,
                cpus: float) -> dict:
    """The JSON-like dict every worker gets (see loop.train_loop_per_worker)."""
    augmented = kind == "audio" and cfg.use_augmented
    n_train = data.count(TRAIN, augmented)
    per_worker_batch = max(1, cfg.batch_size // cfg.workers)
    steps = (n_train // cfg.workers) // per_worker_batch
    if steps < 1:
        raise ValueError(f"{n_train} training rows are too few for batch size {cfg.batch_size} "
                         f"on {cfg.workers} worker(s)")
    return {
        "kind": kind, "model": model_cfg, "epochs": cfg.epochs, "global_batch": cfg.batch_size,
        "lr": cfg.lr, "steps_per_epoch": steps, "seed": cfg.seed,
        "augment": kind == "visual" and cfg.augment, "cache": kind == "audio",
        "cache_val": kind == "audio" or data.count(VAL) * FACE_NBYTES <= CACHE_VAL_BYTES,
        "has_val": data.count(VAL) > 0, "threads": max(1, math.ceil(cpus)),
        "config_key": _config_key(cfg, model_cfg), "checkpoint_every": cfg.checkpoint_every,
    }


def _progress_callback(total_epochs: int):
    """A ray.train UserCallback printing one line per reported epoch (runs in the controller;
    Ray forwards its stdout to the driver)."""
    from ray.train import UserCallback

    class Progress(UserCallback):
        def after_report(self, run_context, metrics, checkpoint):
            m = metrics[0] if metrics else {}
            sums = [w.get("weights_checksum") for w in metrics if "weights_checksum" in w]
            if sums and max(sums) - min(sums) > 1e-4 * max(1.0, abs(max(sums))):
                print(f"WARNING: worker replicas differ (weight checksums {sums})", flush=True)
            for row in m.get("epochs") or ([m] if "epoch" in m else []):
                print(format_progress(row, total_epochs), flush=True)

    return Progress()


def format_progress(m: dict, total_epochs: int) -> str:
    """One line per epoch: loss, accuracy, validation accuracy, time."""
    val = (f" val_loss {m['val_loss']:.4f} val_acc {m['val_acc']:.3f}"
           if m.get("val_acc") is not None else "")
    return (f"epoch {m['epoch'] + 1}/{total_epochs} loss {m['train_loss']:.4f} "
            f"acc {m['train_acc']:.3f}{val} ({m['train_s']:.1f}s"
            f"{', resumed' if m.get('attempt') else ''})")


def run_ray_train(loop_cfg: dict, datasets: dict, cfg, storage: str, progress: bool = False):
    """Fit with TensorflowTrainer; returns the ray.train Result (raises on failure)."""
    import ray.train
    from ray.train.tensorflow import TensorflowTrainer

    from mer_ray.train.loop import train_loop_per_worker

    cpus = _cpus_per_worker(cfg)
    scaling = ray.train.ScalingConfig(num_workers=cfg.workers, use_gpu=cfg.gpu,
                                      resources_per_worker={"CPU": cpus})
    run_config = ray.train.RunConfig(
        name=RUN_NAME, storage_path=storage,
        failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
        callbacks=[_progress_callback(cfg.epochs)] if progress else None)
    trainer = TensorflowTrainer(
        train_loop_per_worker, train_loop_config=loop_cfg, scaling_config=scaling,
        run_config=run_config, datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=[TRAIN]))
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    if result.checkpoint is None:
        raise RuntimeError("training finished without a checkpoint")
    return result


def _test_hooks_from_env() -> dict:
    """Failure injection for tests of the CLI: MER_RAY_TEST_FAIL_ONCE_AT_EPOCH=N makes the last
    worker raise once at epoch N (0-based); MER_RAY_TEST_FAIL_MARKER is the file that records
    it already happened. Never set in normal use."""
    at = os.environ.get("MER_RAY_TEST_FAIL_ONCE_AT_EPOCH")
    marker = os.environ.get("MER_RAY_TEST_FAIL_MARKER")
    return {"fail_once_at_epoch": int(at), "fail_marker": marker} if at and marker else {}


def train(cfg: TrainVisualConfig | TrainAudioConfig, progress: bool = False,
          test_hooks: dict | None = None) -> TrainOutcome:
    """Run one training job end to end and write its run directory (``cfg.out``, a local
    path or a URI: see rundir.train_to_uri).

    ``progress``: print one line per epoch (loss, accuracy, validation accuracy).

    ``test_hooks`` (tests only) may hold ``fail_once_at_epoch`` and ``fail_marker`` (or see
    _test_hooks_from_env).
    """
    from mer_ray.runtime import init_ray
    from mer_ray.storage import is_uri

    if is_uri(cfg.out):
        return rundir.train_to_uri(train, cfg, progress=progress, test_hooks=test_hooks)
    kind = _kind(cfg)
    # Ray Train's controller polls workers every 2 s by default, which caps reports (and so
    # checkpoints) at one per 2 s; only effective when this process starts Ray itself.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
    init_ray(cfg.ray)
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    feature_column = getattr(cfg, "feature_column", "audio_features")
    plan, data = plan_data(cfg.shards, kind, resolve_plan(cfg), feature_column)
    augmented = kind == "audio" and cfg.use_augmented
    counts = data.summary(augmented)
    for split in (TRAIN, TEST):
        if counts[split]["rows"] == 0:
            raise ValueError(f"the {split} split is empty ({plan.protocol} fold {plan.fold})")
    log.info("split %s fold %s: %s", plan.protocol, plan.fold,
             {k: v["rows"] for k, v in counts.items()})
    model_cfg = _model_config(cfg, kind, data, plan)
    cpus = _cpus_per_worker(cfg)
    loop_cfg = {**loop_config(cfg, kind, data, plan, model_cfg, cpus),
                **(test_hooks or _test_hooks_from_env())}
    datasets = {TRAIN: split_dataset(data, plan, TRAIN, feature_column=feature_column,
                                     augmented=augmented, shuffle_blocks=True)}
    if loop_cfg["has_val"]:
        datasets[VAL] = split_dataset(data, plan, VAL, feature_column=feature_column)
    storage = cfg.storage or str(out / RAY_DIR)
    log.info("Ray Train: %d worker(s), %.2f CPU each, gpu=%s, storage %s", cfg.workers, cpus,
             cfg.gpu, storage)
    result = run_ray_train(loop_cfg, datasets, cfg, storage, progress)
    log.info("training finished; evaluating the best model on the test split")
    history = _finish_model(result.checkpoint, out, kind, cfg, feature_column)
    outcome = _write_reports(out, kind, cfg, plan, data, counts, history, feature_column)
    if not cfg.keep_checkpoints and not cfg.storage:
        shutil.rmtree(out / RAY_DIR, ignore_errors=True)
    return outcome


def _finish_model(checkpoint, out: Path, kind: str, cfg, feature_column: str) -> list[dict]:
    """Copy the best model out of the last checkpoint, write bundle.json; return history."""
    from mer_ray.models.bundle import BundleInfo, write_bundle_info
    from mer_ray.train.loop import BEST_FILE, META_FILE

    with checkpoint.as_directory() as d:
        shutil.copyfile(os.path.join(d, BEST_FILE), out / "model.keras")
        meta = json.loads(Path(d, META_FILE).read_text())
    info = BundleInfo(kind=kind, classes=list(EMOTIONS), model_file="model.keras",
                      recipe="face200" if kind == "visual" else getattr(cfg, "recipe", "thesis"),
                      feature_column=None if kind == "visual" else feature_column,
                      backbone=cfg.backbone if kind == "visual" else None, model_id="")
    write_bundle_info(str(out), info)
    history = meta["history"]
    for row in history:
        row["best"] = row["epoch"] == meta["best_epoch"]
    return history


def _write_reports(out: Path, kind: str, cfg, plan: SplitPlan, data: TrainData, counts: dict,
                   history: list[dict], feature_column: str) -> TrainOutcome:
    from mer_ray.models.bundle import load_bundle_info
    from mer_ray.report.plots import save_confusion_png, save_curves_png
    from mer_ray.train.evaluate import evaluate

    rundir.write_labels(out)
    rundir.write_json(out / "config.json", {"kind": kind, **cfg.to_dict(),
                                            "split": plan.to_dict()})
    rundir.write_history_csv(history, out / "history.csv")
    save_curves_png(history, str(out / "curves.png"), title=f"{kind} training")
    test = evaluate(str(out), data, plan, feature_column)
    best = next((r for r in history if r.get("best")), history[-1] if history else {})
    metrics = {
        "kind": kind, "model_id": load_bundle_info(str(out)).model_id,
        "protocol": plan.protocol, "fold": plan.fold, "val": plan.val, "leaky": plan.leaky,
        **({"note": LEAKY_NOTE} if plan.leaky else {}),
        "split": "test", **test,
        "best_epoch": best.get("epoch"), "best_val_acc": best.get("val_acc"),
        "epochs_run": len(history), "resumed": any(r.get("attempt") for r in history),
        "counts": counts,
    }
    rundir.write_json(out / "metrics.json", metrics)
    title = (f"{kind} {plan.protocol}{'' if plan.fold is None else ' fold ' + plan.fold}"
             f"{' (LEAKY)' if plan.leaky else ''}: acc {test['accuracy']:.3f}")
    save_confusion_png(test["confusion_matrix"], EMOTIONS, str(out / "confusion.png"), title)
    return TrainOutcome(str(out), metrics, history, plan, counts)
