"""An audio SVM bundle run in numpy: StandardScaler -> calibrated RBF SVC, as models/audio_svm.py
builds it, read straight from its skops file.

A skops file is a zip of ``schema.json`` (the object tree) and ``.npy`` arrays. This module reads
that tree for exactly the Pipeline ``build_svm`` makes (scaler, then CalibratedClassifierCV with
one sigmoid-calibrated SVC, ``ensemble=False``) and computes scikit-learn's ``predict_proba``:
the RBF kernel against the support vectors, libsvm's one-vs-one decision values, scikit-learn's
one-vs-rest transform of them, a sigmoid per class, normalised. Importing scikit-learn and skops
is ~2.5 s of a score process's start (their import, skops' trusted-type scan); this needs numpy
only. Anything else in the file (another estimator, kernel, calibration, a node type or array
kind this reader does not know) gives None from :func:`load_numpy_svm`, and the caller loads it
with skops instead. Arrays are read with ``allow_pickle=False``. No Ray here.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

import numpy as np

OBJECTS = {"sklearn.pipeline.Pipeline", "sklearn.preprocessing._data.StandardScaler",
           "sklearn.calibration.CalibratedClassifierCV",
           "sklearn.calibration._CalibratedClassifier",
           "sklearn.calibration._SigmoidCalibration", "sklearn.svm._classes.SVC"}
"""The classes whose attributes are read; any other object in the file: not this model."""


class _NotThisModel(Exception):
    """The file holds something this reader does not compute."""


@dataclass
class NumpySVM:
    """The fitted Pipeline's numbers, with ``predict_proba`` and the attributes audio_svm reads."""

    mean: np.ndarray                 # (D,) StandardScaler
    scale: np.ndarray                # (D,)
    support_vectors: np.ndarray      # (S, D), grouped by class
    dual_coef: np.ndarray            # (C - 1, S), libsvm's layout
    intercept: np.ndarray            # (C * (C - 1) / 2,) one per class pair
    n_support: np.ndarray            # (C,) support vectors per class
    gamma: float
    svc_classes: np.ndarray          # (C,) the SVC's labels
    sigmoid: np.ndarray              # (C, 2) a, b of each class's calibration
    classes_: np.ndarray             # the calibrated classifier's labels

    @property
    def n_features_in_(self) -> int:
        return int(self.mean.shape[0])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(N, len(classes_)) float64, as the Pipeline's predict_proba."""
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        sv = self.support_vectors
        sq = (z * z).sum(1)[:, None] + (sv * sv).sum(1)[None, :] - 2.0 * z @ sv.T
        return self._calibrated(self._ovr(self._ovo(np.exp(-self.gamma * sq))))

    def _ovo(self, kernel: np.ndarray) -> np.ndarray:
        """libsvm's decision value of every class pair (i < j, in order)."""
        starts = np.concatenate([[0], np.cumsum(self.n_support)[:-1]])
        rows = [slice(int(s), int(s + n)) for s, n in zip(starts, self.n_support)]
        n = len(self.n_support)
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        return np.stack([kernel[:, rows[i]] @ self.dual_coef[j - 1, rows[i]]
                         + kernel[:, rows[j]] @ self.dual_coef[i, rows[j]] + self.intercept[p]
                         for p, (i, j) in enumerate(pairs)], axis=1)

    def _ovr(self, dec: np.ndarray) -> np.ndarray:
        """scikit-learn's one-vs-rest decision function from the pairs: votes, ties broken by
        the summed confidences mapped into (-1/3, 1/3)."""
        n = len(self.n_support)
        votes, conf = np.zeros((len(dec), n)), np.zeros((len(dec), n))
        k = 0
        for i in range(n):
            for j in range(i + 1, n):
                conf[:, i] += dec[:, k]
                conf[:, j] -= dec[:, k]
                votes[dec[:, k] >= 0, i] += 1
                votes[dec[:, k] < 0, j] += 1
                k += 1
        return votes + conf / (3 * (np.abs(conf) + 1))

    def _calibrated(self, scores: np.ndarray) -> np.ndarray:
        proba = np.zeros((len(scores), len(self.classes_)))
        columns = np.searchsorted(self.classes_, self.svc_classes)
        a, b = self.sigmoid[:, 0], self.sigmoid[:, 1]
        with np.errstate(over="ignore"):               # exp -> inf: probability 0
            proba[:, columns] = 1.0 / (1.0 + np.exp(a * scores + b))
        total = proba.sum(1, keepdims=True)
        proba = np.divide(proba, total, out=np.full_like(proba, 1 / len(self.classes_)),
                          where=total != 0)
        proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba


def load_numpy_svm(path: str) -> NumpySVM | None:
    """The model of an audio SVM bundle's skops file, or None where it is not build_svm's
    Pipeline (or not a skops file this reader knows)."""
    try:
        with zipfile.ZipFile(path) as archive:
            tree = _decode(json.loads(archive.read("schema.json")), archive)
        return _from_tree(tree)
    except (_NotThisModel, KeyError, TypeError, ValueError, IndexError, zipfile.BadZipFile):
        return None


def _decode(node: dict, archive: zipfile.ZipFile):
    """A skops node as plain Python: objects as dicts of their attributes (+ ``__class__``)."""
    loader = node.get("__loader__")
    content = node.get("content")
    if loader == "JsonNode":
        return json.loads(content) if node.get("is_json") else content
    if loader == "NdArrayNode" and node.get("type") == "numpy":
        return np.load(io.BytesIO(archive.read(node["file"])), allow_pickle=False)
    if loader in ("ListNode", "TupleNode"):
        return [_decode(item, archive) for item in content]
    if loader == "DictNode":
        return {key: _decode(value, archive) for key, value in content.items()}
    if loader == "ObjectNode":
        name = f"{node['__module__']}.{node['__class__']}"
        if name not in OBJECTS:
            raise _NotThisModel(name)
        return {"__class__": node["__class__"], **_decode(content, archive)}
    raise _NotThisModel(str(loader))


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise _NotThisModel(what)


def _from_tree(pipe: dict) -> NumpySVM:
    _expect(pipe["__class__"] == "Pipeline" and len(pipe["steps"]) == 2, "two-step Pipeline")
    scaler, calibrated = pipe["steps"][0][1], pipe["steps"][1][1]
    _expect(scaler["__class__"] == "StandardScaler" and scaler["with_mean"] is True
            and scaler["with_std"] is True, "StandardScaler")
    _expect(calibrated["__class__"] == "CalibratedClassifierCV"
            and calibrated["method"] == "sigmoid"
            and len(calibrated["calibrated_classifiers_"]) == 1, "one sigmoid calibration")
    inner = calibrated["calibrated_classifiers_"][0]
    svc = inner["estimator"]
    n_support = np.asarray(svc["_n_support"], np.int64)
    _expect(svc["__class__"] == "SVC" and svc["kernel"] == "rbf" and not svc["_sparse"]
            and svc["decision_function_shape"] == "ovr" and not svc["break_ties"]
            and len(n_support) > 2 and inner["method"] == "sigmoid"
            and len(inner["calibrators"]) == len(n_support), "a multi-class RBF SVC")
    sigmoid = np.array([[float(c["a_"]), float(c["b_"])] for c in inner["calibrators"]])
    model = NumpySVM(mean=_f64(scaler["mean_"]), scale=_f64(scaler["scale_"]),
                     support_vectors=_f64(svc["support_vectors_"]),
                     dual_coef=_f64(svc["_dual_coef_"]), intercept=_f64(svc["_intercept_"]),
                     n_support=n_support, gamma=float(svc["_gamma"]),
                     svc_classes=np.asarray(svc["classes_"]), sigmoid=sigmoid,
                     classes_=np.asarray(inner["classes"]))
    n, d = len(n_support), model.n_features_in_
    _expect(model.support_vectors.shape == (int(n_support.sum()), d)
            and model.dual_coef.shape == (n - 1, int(n_support.sum()))
            and model.intercept.shape == (n * (n - 1) // 2,) and model.scale.shape == (d,)
            and np.array_equal(np.sort(model.classes_), model.classes_)
            and np.array_equal(model.classes_, np.asarray(calibrated["classes_"]))
            and np.isin(model.svc_classes, model.classes_).all(), "consistent arrays")
    return model


def _f64(value) -> np.ndarray:
    return np.asarray(value, np.float64)
