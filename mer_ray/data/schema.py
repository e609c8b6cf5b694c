"""The Parquet schemas, in one place.

Layout of a preprocess output directory::

    OUT/clips/part-<shard>.parquet    one row per input file (CLIPS_SCHEMA)
    OUT/frames/part-<shard>.parquet   one row per keyframe face crop (FRAMES_SCHEMA)
    OUT/summary.json                  counts per status, timings, config

A shard is committed by renaming its clips file into place *after* its frames file:
a frames shard without a clips shard of the same name is an orphan from a killed run and is
deleted on resume. Files whose names start with '.' or '_' are in-progress temporaries and
are ignored by pyarrow readers.
"""
from __future__ import annotations

import pyarrow as pa

from mer_ray.media.crop_codec import FACE_NBYTES, FACE_SHAPE  # noqa: F401 - re-exported

CLIPS_DIR = "clips"
FRAMES_DIR = "frames"
SUMMARY_FILE = "summary.json"

CLIPS_SCHEMA = pa.schema([
    ("path", pa.string()),                 # absolute path or URI, as listed
    ("video_id", pa.string()),             # stable id: sha1 of the path relative to the input root
    ("corpus", pa.string()),               # ravdess | manifest | folder
    ("label", pa.string()),                # project class or null (unlabeled / dropped)
    ("label_index", pa.int16()),           # index in EMOTIONS or null
    ("speaker", pa.string()),              # actor / speaker id as text, or null
    ("actor", pa.int16()),                 # RAVDESS actor number, or null
    ("modality", pa.string()),             # audio-video | video-only | audio-only | unknown
    ("vocal_channel", pa.string()),        # speech | song | null
    ("intensity", pa.int8()),
    ("statement", pa.int8()),
    ("repetition", pa.int8()),
    ("duration_s", pa.float64()),
    ("fps", pa.float64()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("frames_decoded", pa.int32()),        # frames the decoder produced (non-reference ones skipped)
    ("skip_used", pa.int32()),             # keyframe stride actually used
    ("keyframes", pa.int32()),
    ("faces_found", pa.int32()),
    ("no_face_frames", pa.int32()),        # keyframes where no face was found
    ("has_audio", pa.bool_()),
    ("audio_seconds", pa.float64()),
    ("audio_truncated", pa.bool_()),       # audio longer than max_audio_s was cut
    ("audio_features", pa.list_(pa.float32())),                  # 162-D thesis vector
    ("audio_aug_features", pa.list_(pa.list_(pa.float32()))),    # K augmented 162-D vectors;
                                                                  # aug index = position + 1
    ("audio_rich_features", pa.list_(pa.float32())),             # rich recipe vector
                                                                  # (mer_ray.media.audio_rich)
    ("status", pa.string()),               # see mer_ray.media.errors
    ("error", pa.string()),                # human-readable reason, null when ok
    ("t_decode_s", pa.float32()),
    ("t_faces_s", pa.float32()),
    ("t_audio_s", pa.float32()),
    ("t_total_s", pa.float32()),
])

FRAMES_SCHEMA = pa.schema([
    ("video_id", pa.string()),
    ("path", pa.string()),
    ("label", pa.string()),
    ("label_index", pa.int16()),
    ("speaker", pa.string()),
    ("actor", pa.int16()),
    ("frame_index", pa.int32()),           # index of the frame in the video
    ("timestamp_s", pa.float32()),
    ("face", pa.binary()),                 # 200x200 RGB crop, encoded (media/crop_codec.py;
                                           # older shards: FACE_NBYTES of raw RGB, still read)
    ("box", pa.list_(pa.int32())),         # x, y, w, h in original frame pixels
])


def empty_table(schema: pa.Schema) -> pa.Table:
    """A zero-row table with the given schema."""
    return schema.empty_table()


def to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) -> table with exactly ``schema``; missing keys become null."""
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)
