"""The compact face CNN run by OpenCV gives Keras's probabilities, only for models it can run,
and a visual actor with it imports no TensorFlow."""
from __future__ import annotations

import numpy as np
import pytest

from mer_ray.config import EMOTIONS
from mer_ray.models.bundled import bundled_dir
from mer_ray.models.opencv_cnn import load_opencv_cnn

from support.fresh_python import printed_words


def _faces(n: int, seed: int = 0, size: int = 200) -> np.ndarray:
    """Smooth random RGB faces (blurred noise: the resize is not all the model sees)."""
    import cv2

    rng = np.random.default_rng(seed)
    return np.stack([cv2.GaussianBlur(f, (9, 9), 3)
                     for f in rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)])


def _compact(tmp_path, widths=(4, 8, 8, 16), seed: int = 0, **core_kw) -> tuple:
    """A compact model with random weights and batch-norm statistics, as after training."""
    import keras

    from mer_ray.models.face_cnn import build_compact_model, build_core

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_compact_model(build_core(widths, **core_kw))
    for layer in model.get_layer("backbone").layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 2.0, c).astype(np.float32))
            layer.beta.assign(rng.normal(0, 0.3, c).astype(np.float32))
            layer.moving_mean.assign(rng.normal(0, 0.2, c).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.05, 1.5, c).astype(np.float32))
    path = tmp_path / "m.keras"
    model.save(path)
    return model, str(path)


@pytest.mark.parametrize("widths, size", [((4, 8, 8, 16), 48), ((6, 12), 32)])
def test_opencv_forward_pass_equals_keras(tmp_path, widths, size):
    model, path = _compact(tmp_path, widths, size=size)
    cnn = load_opencv_cnn(path)
    assert cnn is not None and cnn.size == size
    faces = _faces(70)                                  # > one OpenCV batch of 64
    expected = np.asarray(model(faces.astype(np.float32), training=False))
    got = cnn.predict(faces)
    assert got.dtype == np.float32 and got.shape == (70, len(EMOTIONS))
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=2e-5)
    assert np.argmax(got, 1).tolist() == np.argmax(expected, 1).tolist()


def test_the_bundled_face_model_runs_in_opencv_as_in_keras():
    from mer_ray.models.bundle import VisualPredictor

    fast = VisualPredictor(bundled_dir("visual"))
    slow = VisualPredictor(bundled_dir("visual"), engine="keras")
    assert (fast.engine, slow.engine) == ("opencv", "keras")
    assert fast.info.model_id == slow.info.model_id
    faces = _faces(40, seed=3)
    np.testing.assert_allclose(fast.predict(faces), slow.predict(faces), rtol=1e-3, atol=5e-5)
    assert fast.predict(faces[:0]).shape == (0, len(EMOTIONS))
    with pytest.raises(ValueError, match="engine must be one of"):
        VisualPredictor(bundled_dir("visual"), engine="onnx")


def _core(side: int, *middle) -> object:
    """grey side x side -> Conv2D(4, 3, same) -> ``middle`` layers -> GAP -> softmax Dense."""
    import keras

    inputs = keras.Input((side, side, 1), name="grey")
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    for layer in middle:
        x = layer(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x), name="backbone")


def test_other_models_go_to_keras(tmp_path, tiny_bundles):
    import keras

    from mer_ray.models.bundle import VisualPredictor
    from mer_ray.models.face_cnn import build_compact_model

    assert VisualPredictor(tiny_bundles["visual"]).engine == "keras"   # another architecture
    assert load_opencv_cnn(str(tmp_path / "missing.keras")) is None
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    assert load_opencv_cnn(str(tmp_path / "broken.keras")) is None
    plain = _core(48, keras.layers.ReLU(), keras.layers.MaxPooling2D())
    build_compact_model(plain).save(tmp_path / "plain.keras")
    assert load_opencv_cnn(str(tmp_path / "plain.keras")) is not None      # the control
    others = {"strided": _core(48, keras.layers.Conv2D(4, 3, strides=2, padding="same")),
              "elu": _core(48, keras.layers.Activation("elu")),
              "odd_pool": _core(45, keras.layers.MaxPooling2D()),          # 45 -> 22.5
              "avg_pool": _core(48, keras.layers.AveragePooling2D(2))}
    for name, core in others.items():
        build_compact_model(core).save(tmp_path / f"{name}.keras")
        assert load_opencv_cnn(str(tmp_path / f"{name}.keras")) is None, name


def test_a_visual_actor_with_the_bundled_model_imports_no_tensorflow():
    code = ("import sys, numpy as np\n"
            "from mer_ray.models.bundled import bundled_dir\n"
            "from mer_ray.score.stages import VisualStage\n"
            "stage = VisualStage(bundled_dir('visual'))\n"
            "p = stage.predictor.predict(np.full((3, 200, 200, 3), 128, np.uint8))\n"
            "assert p.shape == (3, 7) and abs(float(p.sum()) - 3) < 1e-4, p\n"
            "print(stage.predictor.engine, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    assert printed_words(code) == ["opencv", "False", "False"]


def test_a_visual_actor_given_a_gpu_runs_keras():
    from mer_ray.score.stages import VisualStage

    assert VisualStage(bundled_dir("visual"), gpu=True).predictor.engine == "keras"
