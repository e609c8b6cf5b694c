"""The score job's stages in this process, without Ray (tests, debugging one file)."""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from mer_ray.config import ScoreConfig
from mer_ray.data.extraction import extract_item
from mer_ray.score.fusion import FusionWeights
from mer_ray.score.plan import resolve_plan
from mer_ray.score.predictors import predict_audio, predict_faces
from mer_ray.score.rows import FUSED_SCHEMA, extraction_rows, fuse_row, fuse_rows, split_output
from mer_ray.score.schema import SCORES_DIR
from mer_ray.score.stages import predict_window_audio


def score_locally(cfg: ScoreConfig, rows: list[dict], extractor: Any = None, visual: Any = None,
                  audio: Any = None, chunk_s: float | None = None) -> dict[str, pa.Table]:
    """Input rows -> {"scores": ..., "timeline": ..., "segments": ...}, as the job would
    write them (the timeline table always, empty without ``cfg.timeline``; segments with
    --segments). Pass built extractor/predictors to reuse them. With --segments, videos
    longer than ``chunk_s`` (default chunks.CHUNK_S; ``float('inf')``: never) are scored in
    chunks and merged, as the job does. A speaker-normalised audio model uses the statistics
    of the rows given here."""
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.models.bundle import AudioPredictor, VisualPredictor

    plan = resolve_plan(cfg)
    if extractor is None and plan.extract.audio:
        from mer_ray.runtime import warm_numba_cache

        warm_numba_cache()          # one process at a time fills the shared JIT cache
    extractor = extractor or ClipExtractor(plan.extract)
    visual = visual or (VisualPredictor(cfg.visual) if cfg.visual is not None else None)
    audio = audio or (AudioPredictor(cfg.audio) if cfg.audio is not None else None)
    whole, chunked = _split(cfg, plan, rows, chunk_s)
    weights = FusionWeights(cfg.w_visual, cfg.w_audio)
    fused = []
    if whole or not chunked:
        table = _predict(extraction_rows(whole, [extract_item(extractor, r) for r in whole],
                                         plan.audio_column, plan.extract), visual, audio)
        fused.append(fuse_rows(table, weights, plan.model_ids, cfg.timeline))
    if chunked:
        fused.append(_fused_chunks(cfg, plan, chunked, extractor, visual, audio, weights))
    out = split_output(pa.concat_tables(fused), timeline=True, segments=plan.segments)
    if plan.speaker_norm:
        from mer_ray.score.speaker_pass import finalize_table

        out[SCORES_DIR] = finalize_table(out[SCORES_DIR], audio, weights, plan.model_ids)
    return out


def _split(cfg: ScoreConfig, plan, rows: list[dict], chunk_s: float | None
           ) -> tuple[list[dict], dict[str, list[dict]]]:
    """(rows scored whole, chunk items per long video); no chunks without --segments or
    with a speaker-normalised audio model."""
    if not plan.segments or plan.speaker_norm:
        return rows, {}
    from mer_ray.score.chunks import split_for_chunks

    return split_for_chunks(rows, cfg.extract.segment_s, cfg.extract.hop_s, chunk_s)


def _predict(table: pa.Table, visual: Any, audio: Any) -> pa.Table:
    if visual is not None:
        table = predict_faces(visual, table)
    if audio is not None:
        table = predict_window_audio(audio, predict_audio(audio, table))
    return table


def _fused_chunks(cfg: ScoreConfig, plan, chunked: dict[str, list[dict]], extractor: Any,
                  visual: Any, audio: Any, weights: FusionWeights) -> pa.Table:
    """Each long video chunk by chunk, merged: FUSED_SCHEMA rows (chunks.finalize_chunks'
    work without the store)."""
    from mer_ray.data.schema import to_table
    from mer_ray.score.chunks import chunk_extraction_rows, chunk_records, merged_row

    fused = []
    for items in chunked.values():
        records = []
        for item in items:
            table = chunk_extraction_rows([item], [extract_item(extractor, item)],
                                          plan.audio_column, plan.extract)
            records += chunk_records(_predict(table, visual, audio)).to_pylist()
        fused.append(fuse_row(merged_row(records, cfg.extract.face_mode), weights,
                              plan.model_ids, cfg.timeline))
    return to_table(fused, FUSED_SCHEMA)
