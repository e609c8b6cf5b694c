"""The compact face CNN: a small VGG-style network on 48x48 grey faces, for CPU-friendly scoring.

Why this shape: FER2013-style faces are 48x48 grey, so the network works at that size; four
stages of two 3x3 conv + batch-norm + ReLU (24-48-96-192 channels, 0.66 M parameters) train at
about 350 images/s on 2 CPU cores and score far faster than an ImageNet backbone at 200 px.
The full model still takes the 200x200x3 RGB crops the rest of mer_ray makes: ``FacePreprocess``
(grey, area resize, scale to [0, 1]) is its first layer, so a caller cannot feed it wrongly.
No Ray here.
"""
from __future__ import annotations

import keras
from keras import layers

from mer_ray.config import FACE_SIZE, NUM_CLASSES
from mer_ray.models.layers import GREY_WEIGHTS, FacePreprocess  # noqa: F401  (re-exported)

FACE_INPUT = 48                   # the network's own input: 48x48 grey
WIDTHS = (24, 48, 96, 192)        # channels per stage
CORE_LAYER = "backbone"


def build_core(widths: tuple[int, ...] = WIDTHS, dropout: float = 0.4,
               size: int = FACE_INPUT) -> keras.Model:
    """The CNN on ``size`` x ``size`` x 1 grey in [0, 1] -> 7 softmax probabilities."""
    inputs = keras.Input((size, size, 1), name="grey")
    x = inputs
    for stage, channels in enumerate(widths):
        for conv in range(2):
            x = layers.Conv2D(channels, 3, padding="same", use_bias=False,
                              name=f"conv{stage + 1}_{conv + 1}")(x)
            x = layers.BatchNormalization(name=f"bn{stage + 1}_{conv + 1}")(x)
            x = layers.ReLU(name=f"relu{stage + 1}_{conv + 1}")(x)
        if stage < len(widths) - 1:
            x = layers.MaxPooling2D(name=f"pool{stage + 1}")(x)
            x = layers.Dropout(dropout / 4, name=f"drop{stage + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name=CORE_LAYER)


def build_compact_model(core: keras.Model | None = None) -> keras.Model:
    """The full model: 200x200x3 RGB 0..255 -> FacePreprocess -> core -> (N, 7)."""
    core = core or build_core()
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 3), name="image")
    x = FacePreprocess(core.input_shape[1], name="preprocess")(inputs)
    return keras.Model(inputs, core(x), name="visual_compact")


def augmenter(seed: int = 0) -> keras.Sequential:
    """Training-time augmentation on 48x48 grey: flips, small rotations and shifts, zoom (mostly
    in, so a tight Haar-box crop looks familiar), brightness and contrast."""
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.04, fill_mode="reflect", seed=seed + 1),
        layers.RandomZoom((-0.25, 0.1), fill_mode="reflect", seed=seed + 2),
        layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed + 3),
        layers.RandomContrast(0.3, seed=seed + 4),
        layers.RandomBrightness(0.15, value_range=(0.0, 1.0), seed=seed + 5),
    ], name="augment")
