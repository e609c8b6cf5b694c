"""The audio MLP in numpy gives Keras's probabilities, and only for models it can run."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mer_ray.config import EMOTIONS
from mer_ray.models.numpy_mlp import load_numpy_mlp


def _save(model, path) -> str:
    model.save(path)
    return str(path)


@pytest.mark.parametrize("dim, standardised", [(162, True), (162, False), (400, True)])
def test_numpy_forward_pass_equals_keras(tmp_path, dim, standardised):
    import keras

    from mer_ray.models.audio_mlp import build_audio_mlp

    rng = np.random.default_rng(dim)
    keras.utils.set_random_seed(dim)
    stats = ((rng.normal(size=dim).astype(np.float32), rng.uniform(0.1, 4, dim).astype(np.float32))
             if standardised else (None, None))
    model = build_audio_mlp(dim, *stats)
    for layer in model.layers:                      # non-zero biases, as after training
        if isinstance(layer, keras.layers.Dense):
            layer.bias.assign(rng.normal(scale=0.1, size=layer.bias.shape).astype(np.float32))
    mlp = load_numpy_mlp(_save(model, tmp_path / "m.keras"))
    assert mlp is not None and mlp.input_dim == dim
    x = rng.normal(scale=3, size=(33, dim)).astype(np.float32)
    expected = np.asarray(model(x, training=False))
    got = mlp.predict(x)
    assert got.dtype == np.float32 and got.shape == (33, len(EMOTIONS))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert np.argmax(got, 1).tolist() == np.argmax(expected, 1).tolist()


def test_other_models_are_left_to_keras(tmp_path):
    import keras

    inputs = keras.Input((8,))
    x = keras.layers.Dense(4, activation="gelu")(inputs)          # an activation it lacks
    gelu = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x))
    inputs = keras.Input((8,))
    x = keras.layers.BatchNormalization()(keras.layers.Dense(4)(inputs))   # a layer it lacks
    batchnorm = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x))
    assert load_numpy_mlp(_save(gelu, tmp_path / "gelu.keras")) is None
    assert load_numpy_mlp(_save(batchnorm, tmp_path / "bn.keras")) is None
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    assert load_numpy_mlp(str(tmp_path / "broken.keras")) is None


def test_an_mlp_audio_bundle_scores_without_tensorflow(tiny_bundles):
    """The audio actor's process: AudioPredictor on the thesis MLP bundle imports no TF."""
    code = ("import sys, numpy as np; from mer_ray.models.bundle import AudioPredictor; "
            f"p = AudioPredictor({tiny_bundles['audio']!r}); "
            "out = p.predict(np.zeros((2, p.n_features), np.float32)); "
            "assert out.shape == (2, 7) and abs(out.sum() - 2) < 1e-4, out; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
