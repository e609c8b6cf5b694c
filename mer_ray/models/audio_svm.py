"""RBF SVM for audio vectors: scikit-learn, saved with skops (no pickle). No Ray here.

The saved object is one Pipeline: StandardScaler (fitted on the training rows only) ->
CalibratedClassifierCV(SVC(rbf), sigmoid, ensemble=False): the SVC is fitted on all training
rows and its decision values are mapped to probabilities by per-class sigmoids fitted on
out-of-fold decision values (scikit-learn 1.9 deprecates SVC(probability=True) for this).
The calibration folds leave whole speakers out when every fold still sees every class, so the
probabilities are calibrated for unseen voices; otherwise stratified folds over clips.

C and gamma are fixed a priori (C=10, gamma="scale" = 1 / (D * var) on standardised input),
not tuned on any benchmark. Loading refuses any type outside TRUSTED_TYPES (skops' own
trusted defaults plus the two calibration internals below).
"""
from __future__ import annotations

import os

import numpy as np

from mer_ray.config import NUM_CLASSES

MODEL_FILE = "model.skops"
SVM_C = 10.0
SVM_GAMMA = "scale"
MAX_CALIBRATION_FOLDS = 5
TRUSTED_TYPES = ["sklearn.calibration._CalibratedClassifier",
                 "sklearn.calibration._SigmoidCalibration"]
"""Types skops does not trust by default that an audio SVM bundle may contain."""


def build_svm(cv, seed: int = 0):
    """The unfitted Pipeline (scaler -> calibrated RBF SVC); ``cv``: calibration folds."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    svc = SVC(C=SVM_C, kernel="rbf", gamma=SVM_GAMMA, random_state=seed)
    return Pipeline([("scaler", StandardScaler()),
                     ("svm", CalibratedClassifierCV(svc, method="sigmoid", cv=cv,
                                                    ensemble=False))])


def calibration_folds(y: np.ndarray, groups: np.ndarray | None = None, seed: int = 0):
    """Index splits for the calibration: leave-speakers-out (GroupKFold) when there are >= 3
    groups and every training part holds every class, else StratifiedKFold over clips.
    ValueError when a class has fewer than 2 training clips."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"the SVM needs at least 2 classes in the training rows, got {classes}")
    if counts.min() < 2:
        rare = [int(c) for c, n in zip(classes, counts) if n < 2]
        raise ValueError(f"the SVM's probability calibration needs >= 2 training clips per "
                         f"class; class index {rare} has 1")
    x_dummy = np.zeros((len(y), 1))
    if groups is not None and len(set(groups)) >= 3:
        k = min(MAX_CALIBRATION_FOLDS, len(set(groups)))
        splits = list(GroupKFold(k).split(x_dummy, y, groups))
        if all(len(np.unique(y[train])) == len(classes) for train, _ in splits):
            return splits
    k = min(MAX_CALIBRATION_FOLDS, int(counts.min()))
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(x_dummy, y))


def fit_svm(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, seed: int = 0):
    """Fit the Pipeline on training rows ``x`` (N, D) and label indices ``y``."""
    y = np.asarray(y, np.int64)
    model = build_svm(calibration_folds(y, groups, seed), seed)
    return model.fit(np.asarray(x, np.float64), y)


def predict_proba(model, x: np.ndarray) -> np.ndarray:
    """(N, 7) float32 probabilities in EMOTIONS order (0 for classes absent from training)."""
    x = np.asarray(x, np.float64)
    out = np.zeros((len(x), NUM_CLASSES), np.float32)
    if len(x):
        out[:, np.asarray(model.classes_, int)] = model.predict_proba(x)
    return out


def save_svm(model, path: str | os.PathLike) -> None:
    """skops.io.dump (no pickle)."""
    import skops.io as sio

    sio.dump(model, path)


def load_svm(path: str | os.PathLike):
    """skops.io.load with TRUSTED_TYPES only; ValueError naming any other type in the file."""
    import skops.io as sio

    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ValueError(f"{path}: refusing to load types outside the trusted list: {untrusted}")
    return sio.load(path, trusted=TRUSTED_TYPES)
