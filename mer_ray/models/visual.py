"""Visual model (thesis Fig. 3.2): ImageNet backbone + the thesis head, preprocessing inside.

The model takes 0..255 RGB images (any float or uint8 dtype) of FACE_SIZE x FACE_SIZE x 3 and
applies its backbone's own ``preprocess_input`` as the first layer, so inference cannot forget it.
No Ray here.
"""
from __future__ import annotations

import os
from pathlib import Path

import keras
from keras import layers

from mer_ray.config import FACE_SIZE, NUM_CLASSES
from mer_ray.models.backbones import BACKBONES, BackboneSpec, backbone_spec  # noqa: F401
from mer_ray.models.face_cnn import build_compact_model, build_core
from mer_ray.models.layers import ImagePreprocess  # noqa: F401  (re-exported)

CASES = ("frozen", "unfrozen")
BACKBONE_LAYER = "backbone"


def keras_home() -> Path:
    """$KERAS_HOME or ~/.keras (where keras caches downloaded weights)."""
    return Path(os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras"))


DOWNLOAD_TIMEOUT_S = 120.0


def imagenet_weights_path(backbone: str, weights_file: str | None = None,
                          download: bool = True) -> str:
    """The local ImageNet weights file for ``backbone``: ``weights_file`` when given, else the
    Keras cache (``$KERAS_HOME/models/``), else Keras's own download into that cache.

    Raises FileNotFoundError naming the expected file when none of these gives one."""
    spec = backbone_spec(backbone)
    if spec.weights_file is None:
        raise ValueError(f"backbone {backbone!r} has no ImageNet weights: use --init none")
    if weights_file:
        if not os.path.isfile(weights_file):
            raise FileNotFoundError(f"--weights-file {weights_file} does not exist")
        return weights_file
    path = keras_home() / "models" / spec.weights_file
    if path.is_file():
        return str(path)
    reason = "downloads are off" if not download else download_imagenet_weights(backbone)
    if path.is_file():
        return str(path)
    raise FileNotFoundError(
        f"ImageNet weights for {backbone} are not in the Keras cache ({path}) and could not be "
        f"downloaded ({reason}): copy {spec.weights_file} there, pass --weights-file PATH, "
        f"or use --init none")


def download_imagenet_weights(backbone: str, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> str:
    """Let Keras fetch ``backbone``'s ImageNet weights into its cache, as keras.applications
    does; returns "ok" or why it failed (no network, a proxy, a time-out)."""
    import logging
    import socket

    logging.getLogger(__name__).info("downloading ImageNet weights for %s into %s", backbone,
                                     keras_home() / "models")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        build_backbone(backbone, weights="imagenet")
        return "ok"
    except Exception as err:  # noqa: BLE001 - any failure of the fetch is reported the same way
        return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
    finally:
        socket.setdefaulttimeout(previous)


def build_backbone(backbone: str, weights: str | None = None) -> keras.Model:
    """A headless backbone for 200x200x3 inputs; ``weights`` is None, a local .h5 path or
    "imagenet" (Keras's cache, then its download)."""
    shape = (FACE_SIZE, FACE_SIZE, 3)
    if backbone == "efficientnetb0":
        model = keras.applications.EfficientNetB0(include_top=False, weights=weights,
                                                  input_shape=shape)
    elif backbone == "mobilenetv2":
        model = keras.applications.MobileNetV2(include_top=False, weights=weights,
                                               input_shape=shape)
    elif backbone == "resnet50":
        model = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=shape)
    elif backbone == "tiny":
        model = _tiny_backbone(shape)
    else:
        backbone_spec(backbone)
        raise AssertionError(backbone)
    model.name = BACKBONE_LAYER
    return model


def _tiny_backbone(shape: tuple[int, int, int]) -> keras.Model:
    inputs = keras.Input(shape)
    x = layers.AveragePooling2D(4)(inputs)
    x = layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    return keras.Model(inputs, x)


def build_visual_model(backbone: str = "efficientnetb0", case: str = "frozen",
                       weights: str | None = None, dropout: float = 0.2) -> keras.Model:
    """Backbone + GAP -> Dropout -> Dense 2048 relu -> Dropout -> Dense 1024 relu -> Dropout
    -> Dense 7 softmax (thesis Fig. 3.2); ``case`` frozen trains the head only. ``compact``
    is the face CNN of models/face_cnn.py with its own head instead."""
    spec = backbone_spec(backbone)
    if backbone == "compact":
        if weights is not None:
            raise ValueError("backbone 'compact' has no ImageNet weights: use --init none")
        return set_case(build_compact_model(build_core(dropout=max(dropout, 0.4))), case)
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 3), name="image")
    x = ImagePreprocess(spec.preprocess, name="preprocess")(inputs)
    base = build_backbone(backbone, weights)
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout_1")(x)
    x = layers.Dense(2048, activation="relu", name="dense_2048")(x)
    x = layers.Dropout(dropout, name="dropout_2")(x)
    x = layers.Dense(1024, activation="relu", name="dense_1024")(x)
    x = layers.Dropout(dropout, name="dropout_3")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="emotion")(x)
    model = keras.Model(inputs, outputs, name=f"visual_{backbone}")
    set_case(model, case)
    return model


def set_case(model: keras.Model, case: str) -> keras.Model:
    """Freeze (``frozen``) or unfreeze (``unfrozen``) the backbone of a visual model."""
    if case not in CASES:
        raise ValueError(f"unknown case {case!r}; expected one of {', '.join(CASES)}")
    model.get_layer(BACKBONE_LAYER).trainable = case == "unfrozen"
    return model


def backbone_of(model: keras.Model) -> str:
    """The backbone name a model was built with (from its name ``visual_<backbone>``)."""
    name = model.name.removeprefix("visual_")
    backbone_spec(name)
    return name


def init_visual_model(backbone: str, case: str, init: str = "imagenet",
                      weights_file: str | None = None) -> keras.Model:
    """Build per ``--init``: ``imagenet`` (local weights), ``none`` (random), or a ``.keras``
    path from an earlier run (e.g. the AffectNet stage), re-frozen per ``case``."""
    if init == "none":
        return build_visual_model(backbone, case, weights=None)
    if init == "imagenet":
        return build_visual_model(backbone, case, weights=imagenet_weights_path(backbone,
                                                                                weights_file))
    path = _model_path(init)
    model = keras.saving.load_model(path, compile=False)
    if backbone_of(model) != backbone:
        raise ValueError(f"{path} holds a {backbone_of(model)} model, not {backbone}")
    return set_case(model, case)


def _model_path(init: str) -> str:
    """The local .keras file of ``--init``: a file or run dir, local or a URI (fetched into
    this node's cache, storage.fetch_dir)."""
    from mer_ray.storage import cache_root, fetch_dir, is_uri, parent

    if is_uri(init):
        if init.endswith(".keras"):
            name = init.rsplit("/", 1)[-1].split("?")[0]
            local = fetch_dir(parent(init), cache_root("init"), want=lambda f: f.base_name == name)
            init = os.path.join(local, name)
        else:
            from mer_ray.models.bundle import local_bundle_dir

            init = local_bundle_dir(init)
    path = Path(init)
    if path.is_dir():
        path = path / "model.keras"
    if path.suffix != ".keras" or not path.is_file():
        raise FileNotFoundError(
            f"--init {init!r}: expected imagenet, none, or an existing .keras file / run dir")
    return str(path)
