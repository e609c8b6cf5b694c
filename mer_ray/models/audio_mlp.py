"""Audio MLP (thesis Table 4.4) with its standardisation stored inside the model. No Ray here.

162 -> [Normalization] -> Dense 256 -> Dropout -> Dense 128 -> Dropout -> Dense 128 -> Dense 64
-> Dense 32 -> Dense 7 softmax, ReLU hidden activations (thesis §3.5), dropout 0.2.
Dense parameter counts: 41,728 / 32,896 / 16,512 / 8,256 / 2,080 / 231.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

from mer_ray.config import N_THESIS_FEATURES, NUM_CLASSES

HIDDEN = (256, 128, 128, 64, 32)
DROPOUT_AFTER = (0, 1)          # dropout follows the first two dense layers
MIN_VARIANCE = 1e-8             # constant features are left unscaled, not divided by ~0


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) per feature of the given (training) rows; constant features get var 1."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"need a non-empty (N, D) array of training features, got {x.shape}")
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    var = np.where(var < MIN_VARIANCE, 1.0, var)
    return mean.astype(np.float32), var.astype(np.float32)


def build_audio_mlp(input_dim: int = N_THESIS_FEATURES, mean: np.ndarray | None = None,
                    variance: np.ndarray | None = None, dropout: float = 0.2) -> keras.Model:
    """The Table 4.4 MLP; ``mean``/``variance`` (from training rows) become a Normalization
    layer at its input, so the saved model takes raw features."""
    if mean is None:
        mean, variance = np.zeros(input_dim, np.float32), np.ones(input_dim, np.float32)
    inputs = keras.Input((input_dim,), name="features")
    x = layers.Normalization(mean=np.asarray(mean, np.float32),
                             variance=np.asarray(variance, np.float32), name="standardise")(inputs)
    for i, units in enumerate(HIDDEN):
        x = layers.Dense(units, activation="relu", name=f"dense_{i + 1}")(x)
        if i in DROPOUT_AFTER:
            x = layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="audio_mlp")


def dense_param_counts(model: keras.Model) -> list[int]:
    """Parameter counts of the Dense layers, in order (for checking Table 4.4)."""
    return [layer.count_params() for layer in model.layers if isinstance(layer, layers.Dense)]
