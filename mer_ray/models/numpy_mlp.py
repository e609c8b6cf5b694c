"""A Keras MLP bundle run in numpy: Input -> [Normalization] -> Dense / Dropout ... -> Dense.

The audio MLPs (models/audio_mlp.py, any recipe) are such chains. Read straight from the
``.keras`` file (a zip of config.json and model.weights.h5), the audio actor of a score job
needs neither Keras nor TensorFlow: about 0.3 GB less memory per actor and seconds less
start-up, for ~100k multiply-adds per clip. Anything else (another layer, activation, dtype or
weight layout) gives None from :func:`load_numpy_mlp`, and the caller loads the model with
Keras instead. No Ray here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_ray.models.keras_file import LayerKeys, float32_layer, layer_vars, open_keras

EPSILON = 1e-7
"""keras.config.epsilon(): Normalization's floor on the standard deviation."""


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0.0), "linear": lambda z: z,
               "softmax": _softmax}


@dataclass
class NumpyMLP:
    """The forward pass: ``(x - mean) / max(sqrt(var), eps)``, then each Dense layer."""

    mean: np.ndarray | None
    std: np.ndarray | None
    layers: list[tuple[np.ndarray, np.ndarray | None, str]]   # (kernel, bias, activation)

    @property
    def input_dim(self) -> int:
        return int(self.layers[0][0].shape[0])

    def predict(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, np.float32)
        if self.mean is not None:
            h = (h - self.mean) / self.std
        for kernel, bias, activation in self.layers:
            h = h @ kernel
            if bias is not None:
                h = h + bias
            h = ACTIVATIONS[activation](h)
        return h.astype(np.float32, copy=False)


def load_numpy_mlp(path: str) -> NumpyMLP | None:
    """The model at ``path`` (a local .keras file) as a NumpyMLP, or None when it is not a
    plain float32 chain of Input, Normalization, Dense and Dropout layers."""
    with open_keras(path) as (config, h5):
        if config is None:
            return None
        layers = (config.get("config") or {}).get("layers")
        if config.get("class_name") not in ("Functional", "Sequential") or not layers:
            return None
        return _chain(layers, h5)


def _chain(layers: list[dict], h5) -> NumpyMLP | None:
    keys = LayerKeys()
    mean = std = None
    dense: list[tuple[np.ndarray, np.ndarray | None, str]] = []
    for layer in layers:
        cls, cfg = layer.get("class_name"), layer.get("config") or {}
        key = keys.next(cls)
        if not float32_layer(cfg):
            return None
        if cls in ("InputLayer", "Dropout"):
            continue
        if cls == "Normalization":
            if dense or mean is not None or cfg.get("invert") or cfg.get("axis") not in ([-1], -1):
                return None
            values = layer_vars(h5, key)
            m, v = ((cfg["mean"], cfg["variance"]) if cfg.get("mean") is not None
                    else (values[0], values[1]) if len(values) >= 2 else (None, None))
            if m is None:
                return None
            mean = np.asarray(m, np.float32).reshape(-1)
            std = np.maximum(np.sqrt(np.asarray(v, np.float32).reshape(-1)), EPSILON)
            continue
        if cls != "Dense" or cfg.get("activation") not in ACTIVATIONS:
            return None
        values = layer_vars(h5, key)
        use_bias = cfg.get("use_bias", True)
        if len(values) != (2 if use_bias else 1):
            return None
        kernel = np.asarray(values[0], np.float32)
        bias = np.asarray(values[1], np.float32) if use_bias else None
        if kernel.ndim != 2 or kernel.shape[1] != cfg.get("units") or (
                bias is not None and bias.shape != (kernel.shape[1],)) or (
                dense and dense[-1][0].shape[1] != kernel.shape[0]):
            return None
        dense.append((kernel, bias, cfg["activation"]))
    if not dense or (mean is not None and mean.shape != (dense[0][0].shape[0],)):
        return None
    return NumpyMLP(mean, std, dense)
