"""The score job's model stages on Ray Data: one model load per actor, a batch per call.

Extraction is mer_ray.data.extraction.ExtractActor (shared with preprocess); fusion is the
plain function rows.fuse_rows.
"""
from __future__ import annotations

import pyarrow as pa

from mer_ray.score.plan import check_audio_bundle
from mer_ray.score.predictors import predict_audio, predict_faces


def _prepare_process() -> None:
    """Worker env, and TF taking GPU memory as needed (several actors may share one GPU)."""
    import os

    from mer_ray.runtime import configure_process

    configure_process()
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


class VisualStage:
    """Ray Data actor: loads the visual bundle once, predicts every face of a batch of videos."""

    def __init__(self, run_dir: str):
        _prepare_process()
        from mer_ray.models.bundle import VisualPredictor

        self.predictor = VisualPredictor(run_dir)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return predict_faces(self.predictor, batch)


class AudioStage:
    """Ray Data actor: loads the audio bundle once, predicts a batch of feature vectors."""

    def __init__(self, run_dir: str):
        _prepare_process()
        from mer_ray.models.bundle import AudioPredictor

        self.predictor = AudioPredictor(run_dir)
        check_audio_bundle(self.predictor.info, run_dir, speaker_norm=True)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return predict_audio(self.predictor, batch)
