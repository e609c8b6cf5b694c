"""Parquet schemas of a score output directory.

Layout::

    OUT/scores/part-<shard>.parquet     one row per input (SCORES_SCHEMA), the committing table
    OUT/timeline/part-<shard>.parquet   one row per keyframe face (TIMELINE_SCHEMA), --timeline
    OUT/segments/part-<shard>.parquet   one row per (window, face track) (score/segments.py
                                        SEGMENTS_SCHEMA), with --segments
    OUT/run.json                        config, model ids, fusion weights of the last run
    OUT/summary.json                    counts per status / fusion mode, videos/s, timings
    OUT/speaker_stats.json              per-speaker feature statistics used (speaker-norm audio)
"""
from __future__ import annotations

import pyarrow as pa

from mer_ray.config import EMOTIONS
from mer_ray.data.shards import ShardStore
from mer_ray.score.segments import SEGMENTS_DIR, SEGMENTS_SCHEMA

SCORES_DIR = "scores"
TIMELINE_DIR = "timeline"
RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
SPEAKER_STATS_FILE = "speaker_stats.json"
AUDIO_INPUT = "audio_input"
"""Column with the audio model's raw input vector; filled only for a speaker-normalised audio
model, whose probabilities the finalize pass computes from it (score/speaker_pass.py)."""

NO_SIGNAL = "no_signal"
"""Score-level status: the input decoded but gave neither a face nor audio, so nothing was scored."""

PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{e}" for e in EMOTIONS)
"""The 7 fused probabilities, one column per class in EMOTIONS order."""

TIME_COLUMNS: tuple[str, ...] = tuple(f"time_{e}" for e in EMOTIONS)
"""Share of a video's labelled segment time per class (score --segments), EMOTIONS order."""

_probs = pa.list_(pa.float32())

SCORES_SCHEMA = pa.schema([
    ("path", pa.string()),
    ("video_id", pa.string()),
    ("corpus", pa.string()),
    ("label", pa.string()),                # true class when known (RAVDESS name / manifest)
    ("label_index", pa.int16()),
    ("speaker", pa.string()),
    ("actor", pa.int16()),
    ("status", pa.string()),               # extraction status (mer_ray.media.errors) or no_signal
    ("error", pa.string()),                # reason, null when scored
    ("fusion_mode", pa.string()),          # audio_visual | visual_only | audio_only | none
    ("emotion", pa.string()),              # fused label (argmax), null when not scored
    ("arousal", pa.string()),              # high | low | neutral (thesis Table 4.5)
    ("confidence", pa.float32()),          # max fused probability
    *[(c, pa.float32()) for c in PROB_COLUMNS],
    ("visual_emotion", pa.string()),       # argmax of the mean keyframe probabilities
    ("visual_probs", _probs),              # mean over keyframe faces (7), null without faces
    ("audio_emotion", pa.string()),
    ("audio_probs", _probs),               # 7, null without audio
    ("w_visual", pa.float32()),            # normalised fusion weights used
    ("w_audio", pa.float32()),
    ("keyframes", pa.int32()),
    ("faces", pa.int32()),                 # keyframes with a face (the frames the model saw)
    ("has_audio", pa.bool_()),
    ("duration_s", pa.float64()),
    ("t_decode_s", pa.float32()),          # video decode + keyframe selection
    ("t_faces_s", pa.float32()),           # face detection + crop
    ("t_audio_features_s", pa.float32()),  # audio decode + the audio model's feature vector
    ("t_visual_s", pa.float32()),          # visual model: this video's share of its batch
    ("t_audio_s", pa.float32()),           # audio model: this video's share of its batch
    ("t_fusion_s", pa.float32()),
    ("visual_model_id", pa.string()),
    ("audio_model_id", pa.string()),
    (AUDIO_INPUT, pa.list_(pa.float32())),  # raw audio vector: speaker-norm audio models only
    ("speech_fraction", pa.float32()),     # share of the audio track above the speech level
                                           # (media/voice_activity.py); null without audio.
                                           # Added last: older shards read it as null
    # the summary over time (--segments; n_tracks also without). Added at the end: older
    # shards read them as null
    ("n_tracks", pa.int32()),              # face tracks seen (--faces largest: 0 or 1)
    ("dominant_emotion_time", pa.string()),  # the emotion holding the most segment time
    *[(c, pa.float32()) for c in TIME_COLUMNS],  # share of the labelled segment time
])

TIMELINE_SCHEMA = pa.schema([
    ("path", pa.string()),
    ("video_id", pa.string()),
    ("frame_index", pa.int32()),
    ("timestamp_s", pa.float32()),
    ("has_face", pa.bool_()),
    ("box", pa.list_(pa.int32())),         # x, y, w, h in frame pixels, null without a face
    ("emotion", pa.string()),              # visual model's label for this keyframe
    ("confidence", pa.float32()),
    ("probs", _probs),                     # 7, null without a face
    ("track_id", pa.int32()),              # face track (--faces all: one row per face of the
                                           # keyframe; largest: 0), null without a face
])

SCHEMAS = {SCORES_DIR: SCORES_SCHEMA, TIMELINE_DIR: TIMELINE_SCHEMA,
           SEGMENTS_DIR: SEGMENTS_SCHEMA}


def scores_store(out: str) -> ShardStore:
    """The scores (+ timeline, segments) shard store of a score output directory."""
    return ShardStore(out, SCHEMAS, primary=SCORES_DIR)
