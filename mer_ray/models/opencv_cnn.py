"""A compact face-CNN bundle run by OpenCV's DNN module instead of TensorFlow.

The bundled face model (models/face_cnn.py) is ``FacePreprocess`` (grey, area resize to
48x48, /255), then a chain of Conv2D (odd square kernel, stride 1, same padding) +
BatchNormalization + ReLU, 2x2 max pooling, global average pooling and Dense layers. Such a
chain is written here, in memory, as a Darknet network (cfg text + weights, each batch norm
folded into its convolution) and run by ``cv2.dnn``. OpenCV is already loaded for
extraction, so a visual actor with this model imports no TensorFlow: seconds less start-up,
about half a GiB less memory per actor, and on 2 CPU cores more images/s than Keras
(BENCHMARKS.md). Anything else (another layer, activation, stride, dtype or an odd size at a
pooling) gives None from :func:`load_opencv_cnn`, and the caller loads the model with Keras.
No Ray here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_ray.media.constants import GREY_WEIGHTS
from mer_ray.models.keras_file import LayerKeys, float32_layer, layer_vars, open_keras

GREY = np.asarray(GREY_WEIGHTS, np.float32)
DARKNET_HEADER = np.array([0, 2, 0], np.int32).tobytes() + np.zeros(1, np.uint64).tobytes()
"""Darknet weights header: version 0.2.0, then 'images seen' as a 64-bit count."""


@dataclass
class OpenCVCNN:
    """The network (cv2.dnn.Net) and what feeds it: 0..255 RGB faces -> ``size`` x ``size``
    grey in [0, 1], NCHW."""

    net: object
    size: int
    batch: int = 64

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) 0..255 RGB -> (N, classes) float32 probabilities."""
        out = [self._forward(faces[s:s + self.batch]) for s in range(0, len(faces), self.batch)]
        return np.concatenate(out).astype(np.float32, copy=False)

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        self.net.setInput(grey_inputs(faces, self.size))
        return self.net.forward().reshape(len(faces), -1)


def grey_inputs(faces: np.ndarray, size: int) -> np.ndarray:
    """FacePreprocess in numpy + OpenCV: BT.601 grey, area resize, /255; (N, 1, size, size)."""
    import cv2

    grey = np.asarray(faces, np.float32) @ GREY
    if grey.shape[1:] != (size, size):
        grey = np.stack([cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA) for g in grey])
    return (grey / np.float32(255.0))[:, None]


def load_opencv_cnn(path: str) -> OpenCVCNN | None:
    """The model at ``path`` (a local .keras file) as an OpenCVCNN, or None when it is not a
    FacePreprocess + plain conv chain as described in this module's docstring."""
    with open_keras(path) as (config, h5):
        if config is None:
            return None
        layers = (config.get("config") or {}).get("layers") or []
        if config.get("class_name") != "Functional" or [
                layer.get("class_name") for layer in layers] != ["InputLayer", "FacePreprocess",
                                                                 "Functional"]:
            return None
        size = (layers[1].get("config") or {}).get("size")
        darknet = _darknet((layers[2].get("config") or {}).get("layers") or [], h5, size)
    if darknet is None:
        return None
    import cv2

    cfg, blob = darknet
    try:
        net = cv2.dnn.readNetFromDarknet(np.frombuffer(cfg.encode(), np.uint8),
                                         np.frombuffer(blob, np.uint8))
    except cv2.error:
        return None
    return OpenCVCNN(net, int(size))


@dataclass
class _Conv:
    kernel: np.ndarray                 # (k, k, in, out)
    bias: np.ndarray
    activation: str = "linear"
    normalised: bool = False


def _darknet(layers: list[dict], h5, size) -> tuple[str, bytes] | None:
    """(cfg text, weights bytes) of the core chain, or None where it is not one."""
    if not isinstance(size, int) or not layers or layers[0].get("class_name") != "InputLayer":
        return None
    if (layers[0].get("config") or {}).get("batch_shape") != [None, size, size, 1]:
        return None
    cfg = ["[net]", f"width={size}", f"height={size}", "channels=1", ""]
    blobs: list[bytes] = [DARKNET_HEADER]
    keys = LayerKeys("layers/functional/layers")      # the core is the top model's one Functional
    side, channels, conv, flat = size, 1, None, False
    for layer in layers[1:]:
        cls, lc = layer.get("class_name"), layer.get("config") or {}
        key = keys.next(cls)
        if not float32_layer(lc):
            return None
        if cls == "BatchNormalization" and conv is not None and not conv.normalised \
                and conv.activation == "linear":
            if not _fold_batch_norm(conv, lc, layer_vars(h5, key)):
                return None
            continue
        if cls == "ReLU" and conv is not None and conv.activation == "linear" and (
                lc.get("max_value") is None and not lc.get("negative_slope")
                and not lc.get("threshold")):
            conv.activation = "relu"
            continue
        if cls == "Dropout":
            continue
        if conv is not None:                   # the convolution is complete: write it
            _write_conv(conv, cfg, blobs)
            conv = None
        if cls == "Conv2D" and not flat:
            conv = _conv(lc, layer_vars(h5, key), channels)
            if conv is None:
                return None
            channels = conv.kernel.shape[-1]
        elif cls == "MaxPooling2D" and not flat:
            pool = lc.get("pool_size")
            if pool != [2, 2] or lc.get("strides") not in ([2, 2], None) or \
                    lc.get("padding") != "valid" or side % 2:
                return None
            cfg += ["[maxpool]", "size=2", "stride=2", ""]
            side //= 2
        elif cls == "GlobalAveragePooling2D" and not flat and not lc.get("keepdims"):
            cfg += ["[avgpool]", ""]
            flat = True
        elif cls == "Dense" and flat:
            dense = _dense(lc, layer_vars(h5, key), channels)
            if dense is None:
                return None
            kernel, bias, activation = dense
            cfg += ["[connected]", f"output={kernel.shape[1]}", "activation=linear", ""]
            blobs += [bias.tobytes(), np.ascontiguousarray(kernel.T).tobytes()]
            channels = kernel.shape[1]
            if activation == "softmax":
                cfg += ["[softmax]", "groups=1", ""]
                return ("\n".join(cfg), b"".join(blobs)) if layer is layers[-1] else None
        else:
            return None
    return None                                # no softmax Dense at the end


def _conv(lc: dict, values: list[np.ndarray], channels: int) -> _Conv | None:
    k = lc.get("kernel_size") or [0, 0]
    if (k[0] != k[1] or k[0] % 2 == 0 or lc.get("strides") != [1, 1]
            or lc.get("padding") != "same" or lc.get("dilation_rate", [1, 1]) != [1, 1]
            or lc.get("groups", 1) != 1 or lc.get("data_format", "channels_last") != "channels_last"
            or lc.get("activation") not in ("linear", "relu")):
        return None
    use_bias = lc.get("use_bias", True)
    if len(values) != (2 if use_bias else 1):
        return None
    kernel = np.asarray(values[0], np.float32)
    if kernel.shape != (k[0], k[0], channels, lc.get("filters")):
        return None
    bias = (np.asarray(values[1], np.float32) if use_bias
            else np.zeros(kernel.shape[-1], np.float32))
    return _Conv(kernel, bias, lc["activation"])


def _fold_batch_norm(conv: _Conv, lc: dict, values: list[np.ndarray]) -> bool:
    """Fold a BatchNormalization into the convolution before it (False: not foldable)."""
    if lc.get("axis") not in (-1, 3, [-1], [3]):
        return False
    scale, center = lc.get("scale", True), lc.get("center", True)
    if len(values) != 2 + scale + center:
        return False
    values = [np.asarray(v, np.float32) for v in values]
    gamma = values.pop(0) if scale else np.ones_like(values[-1])
    beta = values.pop(0) if center else np.zeros_like(values[-1])
    mean, var = values
    factor = gamma / np.sqrt(var + np.float32(lc.get("epsilon", 1e-3)))
    conv.kernel = (conv.kernel * factor).astype(np.float32)
    conv.bias = ((conv.bias - mean) * factor + beta).astype(np.float32)
    conv.normalised = True
    return True


def _write_conv(conv: _Conv, cfg: list[str], blobs: list[bytes]) -> None:
    k, _, _, filters = conv.kernel.shape
    cfg += ["[convolutional]", "batch_normalize=0", f"filters={filters}", f"size={k}",
            "stride=1", "pad=1", f"activation={conv.activation}", ""]
    blobs += [conv.bias.tobytes(), np.ascontiguousarray(conv.kernel.transpose(3, 2, 0, 1)).tobytes()]


def _dense(lc: dict, values: list[np.ndarray], inputs: int):
    activation = lc.get("activation")
    use_bias = lc.get("use_bias", True)
    if activation not in ("linear", "softmax") or len(values) != (2 if use_bias else 1):
        return None
    kernel = np.asarray(values[0], np.float32)
    if kernel.shape != (inputs, lc.get("units")):
        return None
    bias = np.asarray(values[1], np.float32) if use_bias else np.zeros(kernel.shape[1], np.float32)
    return kernel, bias, activation
