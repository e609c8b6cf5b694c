"""Image augmentation, thesis Alg. 3.1, as TensorFlow ops on a batch (training stream only).

Each step is drawn independently per image with probability ``p`` (0.5): horizontal flip;
shift up to +-10 % of width/height; rotation in [-10, 10] degrees; zoom by a factor in
[0.9, 1.0] (as Keras' ImageDataGenerator: sampling coordinates scaled by the factor, i.e. the
face is magnified up to 1/0.9). The chosen steps are composed into one affine map per image
and applied with a single bilinear warp (edges filled with the nearest pixel).
"""
from __future__ import annotations

import math

import tensorflow as tf


def augment_batch(images: tf.Tensor, *, p: float = 0.5, max_shift: float = 0.1,
                  max_rotate_deg: float = 10.0, zoom_range: tuple[float, float] = (0.9, 1.0),
                  flip: bool = True, seed: int | None = None) -> tf.Tensor:
    """(N, H, W, C) images (any dtype, 0..255) -> float32 augmented images, same shape."""
    images = tf.convert_to_tensor(images)
    x = tf.cast(images, tf.float32)
    shape = tf.shape(x)
    n, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    gen = tf.random.Generator.from_seed(seed) if seed is not None else tf.random.get_global_generator()

    def gate(values, neutral):
        use = gen.uniform([n]) < p
        return tf.where(use, values, tf.fill([n], neutral))

    sign = gate(-tf.ones([n]), 1.0) if flip else tf.ones([n])
    tx = gate(gen.uniform([n], -max_shift, max_shift) * w, 0.0)
    ty = gate(gen.uniform([n], -max_shift, max_shift) * h, 0.0)
    theta = gate(gen.uniform([n], -max_rotate_deg, max_rotate_deg) * (math.pi / 180.0), 0.0)
    zoom = gate(gen.uniform([n], zoom_range[0], zoom_range[1]), 1.0)
    transforms = _inverse_maps(sign, tx, ty, theta, zoom, h, w)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=shape[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="NEAREST")
    return out


def _inverse_maps(sign, tx, ty, theta, zoom, h, w) -> tf.Tensor:
    """Per-image 8-vectors mapping an output pixel (x, y) to the input pixel it samples:
    in = c + zoom * R(theta) * F * (out - c) - shift, with F the optional x-flip."""
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    cos, sin = tf.cos(theta), tf.sin(theta)
    a0, a1 = zoom * cos * sign, -zoom * sin
    b0, b1 = zoom * sin * sign, zoom * cos
    a2 = cx - a0 * cx - a1 * cy - tx
    b2 = cy - b0 * cx - b1 * cy - ty
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
