"""Split evaluation of a saved bundle (driver side; the split is streamed from the Parquet
files with pyarrow, original rows only, fed to the model as scoring feeds it)."""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

import numpy as np

from mer_ray.data.splits import TEST, SplitPlan
from mer_ray.report.metrics import chance_level, classification_metrics
from mer_ray.train.data import TrainData, iter_split_local

BatchPredictor = Callable[[dict], np.ndarray]
"""One {"x", "y", "video_id", ...} batch -> (N, 7) probabilities."""


def predict_split(predict: BatchPredictor, data: TrainData, plan: SplitPlan,
                  split: str = TEST) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, probs, video_ids) of one split (original rows only: never augmented copies;
    raw features: a speaker-normalised bundle normalises them itself)."""
    ys, probs, ids = [], [], []
    for batch in iter_split_local(data, plan, split, raw=True):
        ys.append(batch["y"])
        probs.append(predict(batch))
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


def evaluate(predict: BatchPredictor, data: TrainData, plan: SplitPlan, split: str = TEST,
             per_video: bool = False) -> dict:
    """Metrics of one split (classification_metrics) + chance level; ``per_video`` adds the
    metrics of the mean prediction per video (rows are frames of videos)."""
    y_true, probs, ids = predict_split(predict, data, plan, split)
    y_pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
    out = classification_metrics(y_true, y_pred)
    out["chance_level"] = chance_level(y_true)
    if per_video and len(y_true):
        vy, vp = video_level(y_true, probs, ids)
        video = classification_metrics(vy, vp)
        out["video_level"] = {"accuracy": video["accuracy"], "n": video["n"],
                              "macro_f1": video["macro"]["f1"],
                              "chance_level": chance_level(vy)}
    return out
