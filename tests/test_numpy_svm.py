"""The audio SVM run in numpy (models/numpy_svm.py) against scikit-learn, and what it refuses."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from mer_ray.config import EMOTIONS
from mer_ray.models import audio_svm
from mer_ray.models.bundled import bundled_dir
from mer_ray.models.numpy_svm import NumpySVM, load_numpy_svm

from support.fresh_python import printed_words


def _blobs(classes: list[int], dim: int, n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (max(classes) + 1, dim))
    y = np.repeat(np.asarray(classes), n)
    x = (centres[y] + rng.normal(0, 1, (len(y), dim))) * 10.0 ** rng.uniform(-2, 2, dim)
    return x, y


def _saved(model, tmp_path, name: str = "model.skops") -> str:
    path = tmp_path / name
    audio_svm.save_svm(model, path)
    return str(path)


def _rows_around(model: NumpySVM, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return model.mean + model.scale * 1.5 * rng.standard_normal((n, model.n_features_in_))


def test_the_bundled_svm_gives_scikit_learns_probabilities():
    path = f"{bundled_dir('audio')}/{audio_svm.MODEL_FILE}"
    fast, reference = load_numpy_svm(path), audio_svm.load_svm(path)
    assert isinstance(fast, NumpySVM) and fast.n_features_in_ == reference.n_features_in_
    x = _rows_around(fast, 300, seed=1)
    np.testing.assert_allclose(audio_svm.predict_proba(fast, x),
                               audio_svm.predict_proba(reference, x), rtol=0, atol=1e-9)


@pytest.mark.parametrize("classes", [[0, 1, 2, 3, 4, 5, 6], [0, 2, 3, 5]])
def test_a_fitted_svm_gives_scikit_learns_probabilities(tmp_path, classes):
    x, y = _blobs(classes, dim=12, seed=len(classes))
    groups = np.arange(len(y)) % 4                       # leave-speakers-out calibration
    model = audio_svm.fit_svm(x, y, groups=groups)
    fast = load_numpy_svm(_saved(model, tmp_path))
    assert fast is not None and list(fast.classes_) == classes
    probe = np.concatenate([x, _rows_around(fast, 50, seed=2), np.full((1, 12), 1e6)])
    expected = audio_svm.predict_proba(model, probe)
    np.testing.assert_allclose(audio_svm.predict_proba(fast, probe), expected, rtol=0, atol=1e-9)
    absent = [i for i in range(len(EMOTIONS)) if i not in classes]
    assert np.all(audio_svm.predict_proba(fast, probe)[:, absent] == 0)


def test_other_models_and_files_are_left_to_skops(tmp_path):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x, y = _blobs([0, 1, 2], dim=6)

    def pipe(svc=None, **calibration):
        svm = CalibratedClassifierCV(svc or SVC(), **{"method": "sigmoid", "ensemble": False,
                                                     "cv": 3, **calibration})
        return Pipeline([("scaler", StandardScaler()), ("svm", svm)]).fit(x, y)

    assert load_numpy_svm(_saved(pipe(), tmp_path, "control.skops")) is not None
    others = {"linear": pipe(SVC(kernel="linear")), "ovo": pipe(SVC(decision_function_shape="ovo")),
              "ensemble": pipe(ensemble=True), "isotonic": pipe(method="isotonic"),
              "binary": Pipeline([("scaler", StandardScaler()),
                                  ("svm", CalibratedClassifierCV(SVC(), cv=3, ensemble=False))]
                                 ).fit(x[y < 2], y[y < 2]),
              "no scaler": Pipeline([("svm", CalibratedClassifierCV(SVC(), cv=3, ensemble=False))]
                                    ).fit(x, y)}
    for name, model in others.items():
        assert load_numpy_svm(_saved(model, tmp_path, f"{name}.skops")) is None, name
    (tmp_path / "text.skops").write_text("not a zip")
    with zipfile.ZipFile(tmp_path / "empty.skops", "w") as archive:
        archive.writestr("other.json", "{}")
    assert load_numpy_svm(str(tmp_path / "text.skops")) is None
    assert load_numpy_svm(str(tmp_path / "empty.skops")) is None


def test_an_audio_actor_with_the_bundled_svm_imports_no_scikit_learn():
    code = ("import sys, numpy as np\n"
            "from mer_ray.models.bundled import bundled_dir\n"
            "from mer_ray.score.stages import AudioStage\n"
            "stage = AudioStage(bundled_dir('audio'))\n"
            "p = stage.predictor.predict(np.zeros((2, stage.predictor.n_features), np.float32))\n"
            "assert p.shape == (2, 7) and abs(float(p.sum()) - 2) < 1e-4, p\n"
            "print(type(stage.predictor.model).__name__, 'sklearn' in sys.modules, "
            "'skops' in sys.modules)\n")
    assert printed_words(code) == ["NumpySVM", "False", "False"]
