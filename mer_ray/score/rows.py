"""The score job's rows: what extraction emits per input, and fused score / timeline /
segment rows.

Columns starting with '_' travel between stages only; ``split_output`` keeps the final ones.
With ``--segments`` the extraction row also carries the windows of the video and the audio
recipe's vector per window (computed in the extraction actor, which has the decoded track);
the audio stage predicts them, and fusion turns them into segment rows (score/segments.py).
"""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from mer_ray.config import EMOTIONS
from mer_ray.data.schema import to_table
from mer_ray.media import errors as st
from mer_ray.media.crop_codec import encode_crop
from mer_ray.media.extract import Extraction
from mer_ray.media.options import ExtractOptions
from mer_ray.score.fusion import NONE, FusionWeights, fuse
from mer_ray.score.predictors import (AUDIO_FEATURES_COL, AUDIO_PROBS_COL, FACE_PROBS_COL,
                                      FACES_COL)
from mer_ray.score.schema import (AUDIO_INPUT, NO_SIGNAL, PROB_COLUMNS, SCORES_DIR,
                                  SCORES_SCHEMA, TIME_COLUMNS, TIMELINE_DIR, TIMELINE_SCHEMA)
from mer_ray.score.segments import (SEGMENTS_DIR, SEGMENTS_SCHEMA, segment_rows,
                                    segments_table, summarize_over_time)

SCORED_ITEM_COLUMNS = ["path", "video_id", "corpus", "label", "label_index", "speaker", "actor"]
"""The input row's columns a scores row keeps."""
TIMELINE_COL = "_timeline"
SEGMENTS_COL = "_segments"
WINDOWS_COL = "_windows"               # list<list<float64>>: [start_s, end_s] per window
WINDOW_FEATURES_COL = "_win_audio"     # list<list<float32>>: recipe vector per window (null:
                                       # no audio vote); dropped by the audio stage
WINDOW_PROBS_COL = "_win_audio_probs"  # list<list<float32>>: audio model output per window
WINDOW_SPEECH_COL = "_win_speech"      # list<float32>: speech fraction per window
_VECTORS = pa.list_(pa.list_(pa.float32()))

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
    ("_kf_face", pa.list_(pa.int32())),              #                 first face in _faces or -1
    ("_boxes", pa.list_(pa.list_(pa.int32()))),      # one box per face
    ("_face_kf", pa.list_(pa.int32())),              # per face: keyframe position
    ("_face_track", pa.list_(pa.int32())),           #           face track id
    (WINDOWS_COL, pa.list_(pa.list_(pa.float64()))),  # --segments only (else null)
    (WINDOW_FEATURES_COL, _VECTORS),
    (WINDOW_SPEECH_COL, pa.list_(pa.float32())),
])
"""What the extraction stage emits per input (the model stages add their outputs)."""



def _nested(schema: pa.Schema) -> pa.DataType:
    return pa.list_(pa.struct([f for f in schema if f.name not in ("path", "video_id")]))


FUSED_SCHEMA = SCORES_SCHEMA.append(pa.field(TIMELINE_COL, _nested(TIMELINE_SCHEMA))) \
    .append(pa.field(SEGMENTS_COL, _nested(SEGMENTS_SCHEMA)))


def extraction_row(item: dict, result: Extraction, audio_column: str,
                   opts: ExtractOptions | None = None) -> dict:
    """One EXTRACTED_SCHEMA row from an input row and its ``Extraction``; the audio model's
    input is the clip's ``audio_column`` vector. With ``opts.segment_s``, also the video's
    windows and each window's ``audio_column`` vector and speech fraction."""
    clip = result.clip
    windows = _window_columns(result, audio_column, opts)    # first: it adds to t_audio_s
    face_at: dict[int, int] = {}
    for i, f in enumerate(result.frames):
        face_at.setdefault(int(f["frame_index"]), i)
    return {
        **{k: item.get(k) for k in SCORED_ITEM_COLUMNS},
        "status": clip["status"], "error": clip["error"],
        "keyframes": clip["keyframes"], "faces": clip["faces_found"],
        "has_audio": bool(clip["has_audio"]), "duration_s": clip["duration_s"],
        "speech_fraction": clip.get("speech_fraction"),
        "t_decode_s": clip["t_decode_s"], "t_faces_s": clip["t_faces_s"],
        "t_audio_features_s": clip["t_audio_s"],
        AUDIO_FEATURES_COL: clip.get(audio_column),
        FACES_COL: [encode_crop(f["face"]) for f in result.frames],
        "_kf_index": [int(i) for i, _ in result.keyframe_times],
        "_kf_time": [float(t) for _, t in result.keyframe_times],
        "_kf_face": [face_at.get(int(i), -1) for i, _ in result.keyframe_times],
        "_boxes": [[int(v) for v in f["box"]] for f in result.frames],
        "_face_kf": [int(f.get("keyframe", k)) for k, f in enumerate(result.frames)],
        "_face_track": [int(f.get("track_id", 0)) for f in result.frames],
        **windows,
    }


def _window_columns(result: Extraction, audio_column: str, opts: ExtractOptions | None) -> dict:
    """The --segments columns of an extraction row: windows, per-window audio vectors and
    speech fractions (measured against the whole track's speech level); {} without segments
    or for a failed input. Adds the featurizing time to ``t_audio_features_s``."""
    from mer_ray.score.windows import segment_windows

    clip = result.clip
    if opts is None or opts.segment_s is None or clip["status"] in st.FAILED_STATUSES \
            or not clip["duration_s"]:
        return {}
    windows = segment_windows(clip["duration_s"], opts.segment_s, opts.hop_s)
    out = {WINDOWS_COL: [list(w) for w in windows]}
    if result.audio is None:
        return out
    from mer_ray.media.audio_recipes import recipe_for_column
    from mer_ray.media.voice_activity import FRAME_S, speech_mask
    from mer_ray.score.segments import window_audio_features

    t0 = time.perf_counter()
    recipe = recipe_for_column(audio_column)
    features, fractions = window_audio_features(
        result.audio, result.audio_rate, windows, recipe.features,
        speech_mask=speech_mask(result.audio, result.audio_rate), frame_s=FRAME_S)
    result.audio = None                       # the samples go no further than this actor
    out[WINDOW_FEATURES_COL] = [None if f is None else f.tolist() for f in features]
    out[WINDOW_SPEECH_COL] = fractions
    clip["t_audio_s"] = (clip.get("t_audio_s") or 0.0) + time.perf_counter() - t0
    return out


def extraction_rows(items: list[dict], results: list[Extraction], audio_column: str,
                    opts: ExtractOptions | None = None) -> pa.Table:
    """EXTRACTED_SCHEMA rows of input rows and their extractions (ExtractActor's ``to_rows``);
    ``opts``: the run's extraction options (their segment settings)."""
    return to_table([extraction_row(item, result, audio_column, opts)
                     for item, result in zip(items, results)], EXTRACTED_SCHEMA)


def _emotion(probs) -> str | None:
    return None if probs is None else EMOTIONS[int(np.argmax(probs))]


def fuse_row(row: dict, weights: FusionWeights, model_ids: dict[str, str | None],
             timeline: bool) -> dict:
    """Alg. 3.9 on one extracted + predicted row -> a SCORES_SCHEMA row (+ timeline list, and
    the segment rows and their summary over time when the row has windows)."""
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
        "n_tracks": len(set(row.get("_face_track") or [])),
    })
    for name, p in zip(PROB_COLUMNS, result.probs if result.probs is not None else [None] * 7):
        out[name] = None if p is None else float(p)
    out[TIMELINE_COL] = timeline_rows(row, face_probs) if timeline else None
    segments = None if failed else video_segments(row, face_probs, weights)
    out[SEGMENTS_COL] = segments
    out.update(_over_time(segments))
    out["t_fusion_s"] = time.perf_counter() - t0
    return out


def video_segments(row: dict, face_probs: list, weights: FusionWeights) -> list[dict] | None:
    """The segment rows (score/segments.py) of one predicted row; None without windows."""
    if row.get(WINDOWS_COL) is None:
        return None
    windows = [(float(a), float(b)) for a, b in row[WINDOWS_COL]]
    kf_time = row.get("_kf_time") or []
    face_kf = row.get("_face_kf") or []
    scored = face_probs if len(face_probs) == len(face_kf) else []    # no visual model: none
    n = len(windows)
    audio = row.get(WINDOW_PROBS_COL) or [None] * n
    speech = row.get(WINDOW_SPEECH_COL) or [None] * n
    return segment_rows(
        row["video_id"], windows, [kf_time[k] for k in face_kf[:len(scored)]],
        np.asarray(scored, np.float64).reshape(-1, len(EMOTIONS)),
        [None if a is None else np.asarray(a, np.float64) for a in audio], speech,
        track_ids=(row.get("_face_track") or [])[:len(scored)], weights=weights,
        path=row["path"])


def _over_time(segments: list[dict] | None) -> dict:
    """The per-video summary columns of its segment rows (all null without segments)."""
    if segments is None:
        return {"dominant_emotion_time": None, **dict.fromkeys(TIME_COLUMNS)}
    summary = summarize_over_time(segments)
    return {"dominant_emotion_time": summary["dominant_emotion"],
            **{c: summary["time_share"][e] for c, e in zip(TIME_COLUMNS, EMOTIONS)}}


def _faces_by_keyframe(row: dict) -> dict[int, list[int]]:
    """Keyframe position -> positions of its faces in the row's face lists."""
    face_kf = row.get("_face_kf")
    if face_kf is None:                 # a row with at most one face per keyframe
        return {k: [f] for k, f in enumerate(row.get("_kf_face") or []) if f >= 0}
    out: dict[int, list[int]] = {}
    for i, k in enumerate(face_kf):
        out.setdefault(k, []).append(i)
    return out


def timeline_rows(row: dict, face_probs: list) -> list[dict]:
    """One entry per keyframe face (one per keyframe without a face): box, track and the
    visual model's output."""
    entries = []
    faces = _faces_by_keyframe(row)
    tracks = row.get("_face_track") or []
    for k, (index, ts) in enumerate(zip(row.get("_kf_index") or [], row.get("_kf_time") or [])):
        for face in faces.get(k) or [-1]:
            probs = face_probs[face] if 0 <= face < len(face_probs) else None
            entries.append({"frame_index": index, "timestamp_s": ts, "has_face": face >= 0,
                            "box": row["_boxes"][face] if face >= 0 else None,
                            "emotion": _emotion(probs),
                            "confidence": None if probs is None else float(max(probs)),
                            "probs": probs,
                            "track_id": (tracks[face] if 0 <= face < len(tracks) else 0)
                            if face >= 0 else None})
    return entries


def fuse_rows(batch: pa.Table, weights: FusionWeights, model_ids: dict[str, str | None],
              timeline: bool) -> pa.Table:
    """A batch of predicted rows -> FUSED_SCHEMA rows (scores + nested timeline, segments)."""
    return to_table([fuse_row(r, weights, model_ids, timeline) for r in batch.to_pylist()],
                    FUSED_SCHEMA)


def _flatten(table: pa.Table, column: str) -> list[dict]:
    return [{"path": r["path"], "video_id": r["video_id"], **e}
            for r in table.select(["path", "video_id", column]).to_pylist()
            for e in (r[column] or [])]


def split_output(table: pa.Table, timeline: bool = True,
                 segments: bool = False) -> dict[str, pa.Table]:
    """Fused rows -> {"scores": ..., "timeline": ..., "segments": ...} with the final schemas
    (the timeline table only with ``timeline``, the segments table only with ``segments``)."""
    out = {SCORES_DIR: table.select(SCORES_SCHEMA.names).cast(SCORES_SCHEMA)}
    if timeline:
        out[TIMELINE_DIR] = to_table(_flatten(table, TIMELINE_COL), TIMELINE_SCHEMA)
    if segments:
        out[SEGMENTS_DIR] = segments_table(_flatten(table, SEGMENTS_COL))
    return out
