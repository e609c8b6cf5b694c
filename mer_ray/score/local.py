"""The score job's stages in this process, without Ray (tests, debugging one file)."""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from mer_ray.config import ScoreConfig
from mer_ray.data.extraction import extract_item
from mer_ray.score.fusion import FusionWeights
from mer_ray.score.plan import resolve_plan
from mer_ray.score.predictors import predict_audio, predict_faces
from mer_ray.score.rows import extraction_rows, fuse_rows, split_output
from mer_ray.score.schema import SCORES_DIR
from mer_ray.score.stages import predict_window_audio


def score_locally(cfg: ScoreConfig, rows: list[dict], extractor: Any = None, visual: Any = None,
                  audio: Any = None) -> dict[str, pa.Table]:
    """Input rows -> {"scores": ..., "timeline": ..., "segments": ...}, as the job would
    write them (the timeline table always, empty without ``cfg.timeline``; segments with
    --segments). Pass built
    extractor/predictors to reuse them. A speaker-normalised audio model uses the statistics
    of the rows given here."""
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.models.bundle import AudioPredictor, VisualPredictor

    plan = resolve_plan(cfg)
    if extractor is None and plan.extract.audio:
        from mer_ray.runtime import warm_numba_cache

        warm_numba_cache()          # one process at a time fills the shared JIT cache
    extractor = extractor or ClipExtractor(plan.extract)
    table = extraction_rows(rows, [extract_item(extractor, row) for row in rows],
                            plan.audio_column, plan.extract)
    if cfg.visual is not None:
        table = predict_faces(visual or VisualPredictor(cfg.visual), table)
    if cfg.audio is not None:
        audio = audio or AudioPredictor(cfg.audio)
        table = predict_window_audio(audio, predict_audio(audio, table))
    weights = FusionWeights(cfg.w_visual, cfg.w_audio)
    out = split_output(fuse_rows(table, weights, plan.model_ids, cfg.timeline),
                       segments=plan.segments)
    if plan.speaker_norm:
        from mer_ray.score.speaker_pass import finalize_table

        out[SCORES_DIR] = finalize_table(out[SCORES_DIR], audio, weights, plan.model_ids)
    return out
