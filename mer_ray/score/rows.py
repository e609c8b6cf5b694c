"""The score job's rows: what extraction emits per input, and fused score / timeline rows.

Columns starting with '_' travel between stages only; ``split_output`` keeps the final ones.
"""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from mer_ray.config import EMOTIONS
from mer_ray.data.schema import to_table
from mer_ray.media import errors as st
from mer_ray.media.extract import Extraction
from mer_ray.score.fusion import NONE, FusionWeights, fuse
from mer_ray.score.predictors import (AUDIO_FEATURES_COL, AUDIO_PROBS_COL, FACE_PROBS_COL,
                                      FACES_COL)
from mer_ray.score.schema import (AUDIO_INPUT, NO_SIGNAL, PROB_COLUMNS, SCORES_DIR,
                                  SCORES_SCHEMA, TIMELINE_DIR, TIMELINE_SCHEMA)

SCORED_ITEM_COLUMNS = ["path", "video_id", "corpus", "label", "label_index", "speaker", "actor"]
"""The input row's columns a scores row keeps."""
TIMELINE_COL = "_timeline"

EXTRACTED_SCHEMA = pa.schema([
    *[SCORES_SCHEMA.field(c) for c in SCORED_ITEM_COLUMNS],
    SCORES_SCHEMA.field("status"), SCORES_SCHEMA.field("error"),
    SCORES_SCHEMA.field("keyframes"), SCORES_SCHEMA.field("faces"),
    SCORES_SCHEMA.field("has_audio"), SCORES_SCHEMA.field("duration_s"),
    SCORES_SCHEMA.field("speech_fraction"),
    SCORES_SCHEMA.field("t_decode_s"), SCORES_SCHEMA.field("t_faces_s"),
    SCORES_SCHEMA.field("t_audio_features_s"),
    SCORES_SCHEMA.field("t_visual_s"), SCORES_SCHEMA.field("t_audio_s"),
    (AUDIO_FEATURES_COL, pa.list_(pa.float32())),
    (FACES_COL, pa.list_(pa.binary())),              # face crops, in keyframe order
    ("_kf_index", pa.list_(pa.int32())),             # every keyframe: frame index
    ("_kf_time", pa.list_(pa.float32())),            #                 timestamp
    ("_kf_face", pa.list_(pa.int32())),              #                 position in _faces or -1
    ("_boxes", pa.list_(pa.list_(pa.int32()))),      # one box per face
])
"""What the extraction stage emits per input (the model stages add their outputs)."""

_TIMELINE_STRUCT = pa.list_(pa.struct([f for f in TIMELINE_SCHEMA if f.name not in ("path", "video_id")]))
FUSED_SCHEMA = SCORES_SCHEMA.append(pa.field(TIMELINE_COL, _TIMELINE_STRUCT))


def extraction_row(item: dict, result: Extraction, audio_column: str) -> dict:
    """One EXTRACTED_SCHEMA row from an input row and its ``Extraction``; the audio model's
    input is the clip's ``audio_column`` vector."""
    clip = result.clip
    face_at = {f["frame_index"]: i for i, f in enumerate(result.frames)}
    return {
        **{k: item.get(k) for k in SCORED_ITEM_COLUMNS},
        "status": clip["status"], "error": clip["error"],
        "keyframes": clip["keyframes"], "faces": clip["faces_found"],
        "has_audio": bool(clip["has_audio"]), "duration_s": clip["duration_s"],
        "speech_fraction": clip.get("speech_fraction"),
        "t_decode_s": clip["t_decode_s"], "t_faces_s": clip["t_faces_s"],
        "t_audio_features_s": clip["t_audio_s"],
        AUDIO_FEATURES_COL: clip.get(audio_column),
        FACES_COL: [np.ascontiguousarray(f["face"], np.uint8).tobytes() for f in result.frames],
        "_kf_index": [int(i) for i, _ in result.keyframe_times],
        "_kf_time": [float(t) for _, t in result.keyframe_times],
        "_kf_face": [face_at.get(int(i), -1) for i, _ in result.keyframe_times],
        "_boxes": [[int(v) for v in f["box"]] for f in result.frames],
    }


def extraction_rows(items: list[dict], results: list[Extraction], audio_column: str) -> pa.Table:
    """EXTRACTED_SCHEMA rows of input rows and their extractions (ExtractActor's ``to_rows``)."""
    return to_table([extraction_row(item, result, audio_column)
                     for item, result in zip(items, results)], EXTRACTED_SCHEMA)


def _emotion(probs) -> str | None:
    return None if probs is None else EMOTIONS[int(np.argmax(probs))]


def fuse_row(row: dict, weights: FusionWeights, model_ids: dict[str, str | None],
             timeline: bool) -> dict:
    """Alg. 3.9 on one extracted + predicted row -> a SCORES_SCHEMA row (+ timeline list)."""
    t0 = time.perf_counter()
    face_probs = row.get(FACE_PROBS_COL) or []
    audio_probs = row.get(AUDIO_PROBS_COL)
    failed = row["status"] in st.FAILED_STATUSES
    result = fuse(None if failed else face_probs, None if failed else audio_probs, weights)
    status, error = row["status"], row["error"]
    audio_pending = row.get(AUDIO_INPUT) is not None    # speaker-norm: finalize predicts it
    if not failed and result.mode == NONE and not audio_pending:
        status = NO_SIGNAL
        error = error or "nothing to score: no face in any keyframe and no audio features"
    w = weights.normalized()
    out = {k: row.get(k) for k in SCORES_SCHEMA.names if k in row}
    out.update({
        "status": status, "error": error, "fusion_mode": result.mode,
        "emotion": result.emotion, "arousal": result.arousal, "confidence": result.confidence,
        "visual_probs": None if result.visual_probs is None else result.visual_probs.tolist(),
        "visual_emotion": _emotion(result.visual_probs),
        "audio_probs": None if result.audio_probs is None else result.audio_probs.tolist(),
        "audio_emotion": _emotion(result.audio_probs),
        "w_visual": w.visual, "w_audio": w.audio,
        "visual_model_id": model_ids.get("visual"), "audio_model_id": model_ids.get("audio"),
    })
    for name, p in zip(PROB_COLUMNS, result.probs if result.probs is not None else [None] * 7):
        out[name] = None if p is None else float(p)
    out[TIMELINE_COL] = timeline_rows(row, face_probs) if timeline else None
    out["t_fusion_s"] = time.perf_counter() - t0
    return out


def timeline_rows(row: dict, face_probs: list) -> list[dict]:
    """One entry per keyframe: box and the visual model's output where a face was found."""
    entries = []
    for index, ts, face in zip(row.get("_kf_index") or [], row.get("_kf_time") or [],
                               row.get("_kf_face") or []):
        probs = face_probs[face] if 0 <= face < len(face_probs) else None
        entries.append({"frame_index": index, "timestamp_s": ts, "has_face": face >= 0,
                        "box": row["_boxes"][face] if face >= 0 else None,
                        "emotion": _emotion(probs),
                        "confidence": None if probs is None else float(max(probs)),
                        "probs": probs})
    return entries


def fuse_rows(batch: pa.Table, weights: FusionWeights, model_ids: dict[str, str | None],
              timeline: bool) -> pa.Table:
    """A batch of predicted rows -> FUSED_SCHEMA rows (scores + nested timeline)."""
    return to_table([fuse_row(r, weights, model_ids, timeline) for r in batch.to_pylist()],
                    FUSED_SCHEMA)


def split_output(table: pa.Table, timeline: bool = True) -> dict[str, pa.Table]:
    """Fused rows -> {"scores": ..., "timeline": ...} with the final schemas (without the
    timeline table when ``timeline`` is False)."""
    scores = table.select(SCORES_SCHEMA.names).cast(SCORES_SCHEMA)
    if not timeline:
        return {SCORES_DIR: scores}
    entries = [{"path": r["path"], "video_id": r["video_id"], **e}
               for r in table.select(["path", "video_id", TIMELINE_COL]).to_pylist()
               for e in (r[TIMELINE_COL] or [])]
    return {SCORES_DIR: scores, TIMELINE_DIR: to_table(entries, TIMELINE_SCHEMA)}
