"""Classification metrics as plain JSON-serialisable dicts (no NaN: 0.0 where undefined)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mer_ray.config import EMOTIONS


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                           classes: Sequence[str] = EMOTIONS) -> dict:
    """Accuracy, per-class and macro precision / recall / specificity / F1, support and the
    confusion matrix (nested lists, rows = true). Labels are indices into ``classes``.

    Macro averages are over the classes present in ``y_true`` (classes with no support would
    otherwise count as 0); per-class values of absent classes are reported as 0.0.
    """
    y_true = np.asarray(y_true, int)
    y_pred = np.asarray(y_pred, int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    k = len(classes)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    total = int(cm.sum())
    fp = predicted - tp
    fn = support - tp
    tn = total - tp - fp - fn
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    specificity = _ratio(tn, tn + fp)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = support > 0
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]),
               "specificity": float(specificity[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        for i, name in enumerate(classes)
    }

    def macro(values: np.ndarray) -> float:
        return float(values[present].mean()) if present.any() else 0.0

    return {
        "n": total,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro": {"precision": macro(precision), "recall": macro(recall),
                  "specificity": macro(specificity), "f1": macro(f1)},
        "per_class": per_class,
        "classes": list(classes),
        "confusion_matrix": cm.tolist(),
    }


def chance_level(y_true: Sequence[int]) -> float:
    """Accuracy of always predicting the most frequent true class (0.0 for no rows)."""
    y = np.asarray(y_true, int)
    if y.size == 0:
        return 0.0
    return float(np.bincount(y).max() / y.size)
