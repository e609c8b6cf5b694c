"""report/metrics.py and report/plots.py."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mer_ray.config import EMOTIONS
from mer_ray.report.metrics import chance_level, classification_metrics, confusion_matrix
from mer_ray.report.plots import save_confusion_png, save_curves_png


def test_hand_computed_two_class_example():
    # true: 0 0 1 1 ; pred: 0 1 1 1  -> class 0: tp 1, fn 1, fp 0 ; class 1: tp 2, fp 1, fn 0
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], classes=["a", "b"])
    assert m["accuracy"] == pytest.approx(0.75)
    a, b = m["per_class"]["a"], m["per_class"]["b"]
    assert (a["precision"], a["recall"], a["specificity"]) == pytest.approx((1.0, 0.5, 1.0))
    assert (b["precision"], b["recall"], b["specificity"]) == pytest.approx((2 / 3, 1.0, 0.5))
    assert a["f1"] == pytest.approx(2 * 0.5 / 1.5)
    assert m["macro"]["recall"] == pytest.approx(0.75)
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert (a["support"], b["support"]) == (2, 2)


def test_absent_classes_give_no_nan_and_json_roundtrips():
    y_true = [0, 0, 3, 3, 3]
    y_pred = [0, 3, 3, 3, 6]          # predicts class 6, which never occurs
    m = classification_metrics(y_true, y_pred)
    text = json.dumps(m, allow_nan=False)            # raises on NaN / inf
    assert json.loads(text)["n"] == 5
    assert m["per_class"][EMOTIONS[6]]["precision"] == 0.0
    assert m["per_class"][EMOTIONS[1]]["support"] == 0
    # macro over the classes present in y_true only (0 and 3)
    expected = np.mean([m["per_class"][EMOTIONS[0]]["recall"], m["per_class"][EMOTIONS[3]]["recall"]])
    assert m["macro"]["recall"] == pytest.approx(expected)
    assert np.array(m["confusion_matrix"]).sum() == 5


def test_empty_input_and_chance_level():
    m = classification_metrics([], [])
    assert m["accuracy"] == 0.0 and m["n"] == 0
    assert chance_level([]) == 0.0
    assert chance_level([1, 1, 1, 2]) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        classification_metrics([0, 1], [0])


def test_confusion_matrix_rows_are_true_class():
    cm = confusion_matrix([2, 2, 0], [1, 2, 0], 3)
    assert cm[2, 1] == 1 and cm[2, 2] == 1 and cm[0, 0] == 1 and cm.sum() == 3


def test_pngs_are_written(tmp_path):
    cm = confusion_matrix([0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5, 0], 7)
    p1 = save_confusion_png(cm, EMOTIONS, str(tmp_path / "cm.png"), "test")
    rows = [{"epoch": 0, "train_loss": 2.0, "train_acc": 0.2, "val_loss": None, "val_acc": None},
            {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.2, "val_acc": 0.4}]
    p2 = save_curves_png(rows, str(tmp_path / "curves.png"))
    for path in (p1, p2):
        data = open(path, "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
