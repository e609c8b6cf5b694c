"""`train_svm(cfg)`: an audio run with the RBF SVM, for callers that ask for it by name.

The fit itself is tasks.AudioSVMTask: in-process on the driver (no Ray), same split protocols
and run directory contract as the Ray Train jobs: model.skops, bundle.json (recipe,
feature_column, classifier "svm", speaker_norm), labels.json, config.json, metrics.json,
confusion.png; no history.csv / curves.png (an SVM has no epochs).
"""
from __future__ import annotations

import dataclasses

from mer_ray.config import TrainAudioConfig
from mer_ray.train.runner import TrainOutcome, train


def train_svm(cfg: TrainAudioConfig) -> TrainOutcome:
    """runner.train with ``classifier="svm"``."""
    return train(dataclasses.replace(cfg, classifier="svm"))
