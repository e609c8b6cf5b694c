"""The custom Keras layers inside mer_ray's saved models. Importing this module registers them,
which ``keras.saving.load_model`` needs before it can read a ``.keras`` file that holds one."""
from __future__ import annotations

import keras
from keras import layers

from mer_ray.media.constants import GREY_WEIGHTS


@keras.saving.register_keras_serializable(package="mer_ray")
class ImagePreprocess(layers.Layer):
    """A backbone's ``preprocess_input`` as a serialisable layer (input: 0..255 RGB).

    Modes: ``none`` (identity, EfficientNet), ``tf`` (x/127.5 - 1, MobileNetV2),
    ``caffe`` (RGB->BGR minus ImageNet means, ResNet50), ``unit`` (x/255).
    """

    MEANS_BGR = (103.939, 116.779, 123.68)

    def __init__(self, mode: str = "none", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("none", "tf", "caffe", "unit"):
            raise ValueError(f"unknown preprocess mode {mode!r}")
        self.mode = mode

    def call(self, x):
        x = keras.ops.cast(x, "float32")
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            x = keras.ops.flip(x, axis=-1)
            return x - keras.ops.convert_to_tensor(self.MEANS_BGR, dtype="float32")
        if self.mode == "unit":
            return x / 255.0
        return x

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="mer_ray")
class FacePreprocess(layers.Layer):
    """0..255 RGB faces of any size -> ``size`` x ``size`` x 1 grey in [0, 1] (area resize)."""

    def __init__(self, size: int = 48, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x):
        x = keras.ops.cast(x, "float32")
        if x.shape[-1] == 3:
            w = keras.ops.convert_to_tensor(GREY_WEIGHTS, dtype="float32")
            x = keras.ops.sum(x * w, axis=-1, keepdims=True)
        if x.shape[1] != self.size or x.shape[2] != self.size:
            x = keras.ops.image.resize(x, (self.size, self.size), interpolation="area")
        return x / 255.0

    def get_config(self):
        return {**super().get_config(), "size": self.size}
