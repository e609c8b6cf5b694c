"""Test-split evaluation of a saved bundle (driver side; the split is streamed from the Parquet
files with pyarrow, original rows only)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from mer_ray.data.splits import TEST, SplitPlan
from mer_ray.report.metrics import chance_level, classification_metrics
from mer_ray.train.data import TrainData, iter_split_local


def predict_split(run_dir: str, data: TrainData, plan: SplitPlan, split: str = TEST,
                  feature_column: str = "audio_features"):
    """(y_true, probs, video_ids) of one split, predicted by the bundle in ``run_dir``
    (original rows only: never augmented copies)."""
    from mer_ray.models.bundle import AudioPredictor, VisualPredictor

    predictor = VisualPredictor(run_dir) if data.kind == "visual" else AudioPredictor(run_dir)
    ys, probs, ids = [], [], []
    for batch in iter_split_local(data, plan, split, feature_column=feature_column):
        ys.append(batch["y"])
        probs.append(predictor.predict(batch["x"]))
        ids.append(batch["video_id"])
    if not ys:
        return np.zeros(0, int), np.zeros((0, 7), np.float32), np.zeros(0, object)
    return np.concatenate(ys), np.concatenate(probs), np.concatenate(ids)


def video_level(y_true: np.ndarray, probs: np.ndarray, video_ids: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Mean frame probabilities per video -> (y_true, y_pred) per video (fusion's visual side)."""
    sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(probs.shape[1]))
    labels: dict[str, int] = {}
    for y, p, v in zip(y_true, probs, video_ids):
        sums[v] += p
        labels[v] = int(y)
    keys = sorted(sums)
    return (np.array([labels[k] for k in keys], int),
            np.array([int(np.argmax(sums[k])) for k in keys], int))


def evaluate(run_dir: str, data: TrainData, plan: SplitPlan,
             feature_column: str = "audio_features") -> dict:
    """Test metrics (classification_metrics) + chance level, and per-video metrics for visual."""
    y_true, probs, ids = predict_split(run_dir, data, plan, TEST, feature_column)
    y_pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
    out = classification_metrics(y_true, y_pred)
    out["chance_level"] = chance_level(y_true)
    if data.kind == "visual" and len(y_true):
        vy, vp = video_level(y_true, probs, ids)
        video = classification_metrics(vy, vp)
        out["video_level"] = {"accuracy": video["accuracy"], "n": video["n"],
                              "macro_f1": video["macro"]["f1"],
                              "chance_level": chance_level(vy)}
    return out
