"""The score job's model stages on Ray Data: one model load per actor, a batch per call.

Extraction is mer_ray.data.extraction.ExtractActor (shared with preprocess); fusion is the
plain function rows.fuse_rows.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from mer_ray.score.plan import check_audio_bundle
from mer_ray.score.predictors import predict_audio, predict_faces
from mer_ray.score.rows import WINDOW_FEATURES_COL, WINDOW_PROBS_COL
from mer_ray.score.segments import predict_windows


def _prepare_process() -> None:
    """Worker env, and TF taking GPU memory as needed (several actors may share one GPU)."""
    import os

    from mer_ray.runtime import configure_process

    configure_process()
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


class VisualStage:
    """Ray Data actor: loads the visual bundle once, predicts every face of a batch of videos.
    ``gpu``: the actor was given a GPU, so the model runs in Keras (TensorFlow uses the GPU)
    even where OpenCV could run it on the CPU."""

    def __init__(self, run_dir: str, gpu: bool = False):
        _prepare_process()
        from mer_ray.models.bundle import VisualPredictor

        self.predictor = VisualPredictor(run_dir, engine="keras" if gpu else "auto")

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
        return predict_window_audio(self.predictor, predict_audio(self.predictor, batch))


def predict_window_audio(predictor, batch: pa.Table) -> pa.Table:
    """--segments: the audio model's probabilities of every window vector of ``batch`` (one
    predict call for the batch) as WINDOW_PROBS_COL; WINDOW_FEATURES_COL dropped. A batch
    without window vectors is returned as it is."""
    if WINDOW_FEATURES_COL not in batch.column_names:
        return batch
    per_row = batch.column(WINDOW_FEATURES_COL).to_pylist()
    flat = [None if f is None else np.asarray(f, np.float32)
            for row in per_row for f in (row or [])]
    probs = iter(predict_windows(flat, predictor.predict))
    out = [None if row is None else [None if (p := next(probs)) is None else p.tolist()
                                     for _ in row] for row in per_row]
    table = batch.drop_columns([WINDOW_FEATURES_COL])
    return table.append_column(WINDOW_PROBS_COL, pa.array(out, pa.list_(pa.list_(pa.float32()))))
