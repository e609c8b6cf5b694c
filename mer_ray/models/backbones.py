"""The visual backbones mer_ray knows: facts only (preprocessing, ImageNet file, scoring
batch), no Keras import, so argument parsing, bundles and builders share one registry."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one keras.applications backbone and where its weights live."""

    name: str
    preprocess: str            # ImagePreprocess mode: "none" | "tf" | "caffe" | "unit"
    weights_file: str | None   # the file name keras would download (notop), None: no ImageNet
    predict_batch: int = 16    # faces per model call when scoring (EfficientNetB0 at 64 grows
                               # a CPU process by ~5 GB; small nets want big batches)


BACKBONES: dict[str, BackboneSpec] = {
    # EfficientNet rescales/normalises inside the keras.applications model itself.
    "efficientnetb0": BackboneSpec("efficientnetb0", "none", "efficientnetb0_notop.h5"),
    # MobileNetV2 has no weights for 200 px; keras falls back to the 224 px file (same kernels).
    "mobilenetv2": BackboneSpec(
        "mobilenetv2", "tf", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
    "resnet50": BackboneSpec("resnet50", "caffe",
                             "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    # The compact 48 px grey face CNN (models/face_cnn.py) with its own small head; the
    # bundled face model. Grey conversion and resizing are layers inside it.
    "compact": BackboneSpec("compact", "none", None, predict_batch=256),
    # A tiny conv stack for tests and smoke runs on 2 CPU cores; not a thesis model.
    "tiny": BackboneSpec("tiny", "unit", None),
}
"""Name -> spec, in the order ``train-visual --backbone`` lists them."""


def backbone_spec(backbone: str) -> BackboneSpec:
    """The spec of ``backbone``; ValueError listing the known ones otherwise."""
    try:
        return BACKBONES[backbone]
    except KeyError:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of "
                         f"{', '.join(BACKBONES)}") from None
