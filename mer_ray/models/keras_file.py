"""Reading a ``.keras`` file without Keras: its config and weights, as the numpy and OpenCV
runners of small models need them (models/numpy_mlp.py, models/opencv_cnn.py).

A ``.keras`` file is a zip of config.json and model.weights.h5; in the weights file, a layer's
variables sit under ``layers/<key>/vars/<i>``, where the key is the snake-case name of the
layer's class, numbered by the layers of that class before it (conv2d, conv2d_1, ...). No Ray.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from contextlib import contextmanager

import numpy as np


@contextmanager
def open_keras(path: str):
    """(config dict, open h5py File of the weights) of a local .keras file; (None, None) when
    it is not one."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        yield None, None
        return
    import h5py

    with h5py.File(io.BytesIO(weights), "r") as h5:
        yield config, h5


def keras_snake(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: Conv2D -> conv2d, BatchNormalization ->
    batch_normalization, InputLayer -> input_layer."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class LayerKeys:
    """Weight-file keys of a model's layers, in config order."""

    def __init__(self, prefix: str = "layers"):
        self.prefix, self.seen = prefix, {}

    def next(self, class_name: str) -> str:
        base = keras_snake(class_name or "")
        n = self.seen.get(base, 0)
        self.seen[base] = n + 1
        return f"{self.prefix}/{base if n == 0 else f'{base}_{n}'}"


def layer_vars(h5, key: str) -> list[np.ndarray]:
    """The variables stored under ``key`` (from LayerKeys), in order; [] for none."""
    group = h5.get(f"{key}/vars")
    if group is None:
        return []
    return [np.asarray(group[str(i)]) for i in range(len(group))]


def float32_layer(config: dict) -> bool:
    """The layer computes in float32 (its dtype policy)."""
    dtype = config.get("dtype", "float32")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    return dtype in (None, "float32")
