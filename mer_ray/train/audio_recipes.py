"""`train_audio(cfg)` and the clip readers under the names the benchmarks import.

Training itself is runner.train for every recipe and classifier (tasks.py); the recipe facts
live in media/audio_recipes.py and speaker normalisation in models/speaker_norm.py.
"""
from __future__ import annotations

from mer_ray.config import TrainAudioConfig
from mer_ray.train.data import ClipRows, read_clip_rows, speaker_stats  # noqa: F401
from mer_ray.train.options import format_outcome  # noqa: F401
from mer_ray.train.runner import TrainOutcome, train


def train_audio(cfg: TrainAudioConfig, progress: bool = False) -> TrainOutcome:
    """runner.train for an audio config (recipe, classifier, speaker_norm all honoured)."""
    return train(cfg, progress=progress)
