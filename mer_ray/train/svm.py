"""`train-audio --classifier svm`: the RBF SVM fitted in-process on the driver (no Ray).

Same split protocols and run directory contract as the Ray Train jobs: model.skops,
bundle.json (recipe, feature_column, classifier "svm", speaker_norm), labels.json,
config.json, metrics.json, confusion.png. There is no history.csv / curves.png: an SVM has no
epochs. Training uses the ``train`` split only; ``val`` rows (if the protocol makes any) are
only reported (C and gamma are fixed), test rows only evaluated. Evaluation goes through
AudioPredictor on the saved bundle, i.e. what scoring does.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mer_ray.config import EMOTIONS, TrainAudioConfig
from mer_ray.data.splits import TEST, TRAIN, VAL, make_plan
from mer_ray.train import rundir
from mer_ray.train.audio_recipes import ClipRows, read_clip_rows, speaker_stats
from mer_ray.train.data import TrainData

LEAKY_NOTE = ("thesis protocol: random split over rows; clips of the same actor are on both "
              "sides, so this accuracy is optimistic (leaky), not actor-independent")


def train_svm(cfg: TrainAudioConfig):
    """Fit, save, evaluate; returns runner.TrainOutcome (history empty)."""
    from mer_ray.models.audio_svm import MODEL_FILE, fit_svm, save_svm
    from mer_ray.models.bundle import BundleInfo, write_bundle_info
    from mer_ray.train.runner import TrainOutcome

    t0 = time.perf_counter()
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows = read_clip_rows(cfg.shards, cfg.feature_column)
    lab = rows.labelled
    plan = make_plan(rows.groups[lab].tolist(), cfg.protocol, cfg.fold, cfg.val, cfg.seed)
    split = np.full(len(rows.labels), None, dtype=object)
    split[lab] = plan.assign(rows.groups[lab], rows.video_ids[lab])
    counts = TrainData("audio", [], split[lab], rows.labels[lab], rows.groups[lab],
                       np.zeros(int(lab.sum()), np.int64)).summary()
    for name in (TRAIN, TEST):
        if counts[name]["rows"] == 0:
            raise ValueError(f"the {name} split is empty ({plan.protocol} fold {plan.fold})")
    stats = speaker_stats(rows) if cfg.speaker_norm else None
    x = stats.normalize(rows.x, rows.speakers) if stats else rows.x
    train = split == TRAIN
    t_fit = time.perf_counter()
    model = fit_svm(x[train], rows.labels[train], rows.groups[train], cfg.seed)
    fit_s = time.perf_counter() - t_fit
    save_svm(model, out / MODEL_FILE)
    info = write_bundle_info(str(out), BundleInfo(
        kind="audio", classes=list(EMOTIONS), model_file=MODEL_FILE, recipe=cfg.recipe,
        feature_column=cfg.feature_column, backbone=None, model_id="", classifier="svm",
        speaker_norm=cfg.speaker_norm))
    test = _evaluate(str(out), rows, split, TEST, stats)
    val = _evaluate(str(out), rows, split, VAL, stats) if counts[VAL]["rows"] else None
    metrics = {
        "kind": "audio", "model_id": info.model_id, "recipe": cfg.recipe, "classifier": "svm",
        "speaker_norm": cfg.speaker_norm, "protocol": plan.protocol, "fold": plan.fold,
        "val": plan.val, "leaky": plan.leaky, **({"note": LEAKY_NOTE} if plan.leaky else {}),
        "split": "test", **test, "val_accuracy": val["accuracy"] if val else None,
        "best_epoch": None, "best_val_acc": None, "epochs_run": 0, "resumed": False,
        "fit_s": fit_s, "total_s": time.perf_counter() - t0, "counts": counts,
    }
    _write_run_files(out, cfg, plan, metrics)
    return TrainOutcome(str(out), metrics, [], plan, counts)


def _evaluate(run_dir: str, rows: ClipRows, split: np.ndarray, name: str, stats) -> dict:
    """Metrics of one split predicted by the saved bundle (raw features in, as when scoring)."""
    from mer_ray.models.bundle import AudioPredictor
    from mer_ray.report.metrics import chance_level, classification_metrics

    mask = split == name
    probs = AudioPredictor(run_dir).predict(rows.x[mask], speakers=rows.speakers[mask],
                                            stats=stats)
    y = rows.labels[mask]
    result = classification_metrics(y, probs.argmax(axis=1))
    result["chance_level"] = chance_level(y)
    return result


def _write_run_files(out: Path, cfg: TrainAudioConfig, plan, metrics: dict) -> None:
    from mer_ray.report.plots import save_confusion_png

    rundir.write_labels(out)
    rundir.write_json(out / "config.json", {"kind": "audio", **cfg.to_dict(),
                                            "split": plan.to_dict()})
    rundir.write_json(out / "metrics.json", metrics)
    fold = "" if plan.fold is None else f" fold {plan.fold}"
    title = (f"audio {cfg.recipe} SVM {plan.protocol}{fold}{' (LEAKY)' if plan.leaky else ''}: "
             f"acc {metrics['accuracy']:.3f}")
    save_confusion_png(metrics["confusion_matrix"], EMOTIONS, str(out / "confusion.png"), title)
