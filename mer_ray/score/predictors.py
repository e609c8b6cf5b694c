"""Batched prediction over score rows (the model stages' work, also used without Ray).

Each function takes a pyarrow batch of per-video rows and returns it with its model's outputs
added and its bulky input dropped (face crops after the visual stage, feature vectors after
the audio stage), so nothing large travels further down the pipeline than it must.
The per-video model time is the video's share of its batch's ``predict`` time.
"""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from mer_ray.config import FACE_SIZE, NUM_CLASSES
from mer_ray.media.crop_codec import RAW, crop_format, decode_crops

FACES_COL = "_faces"                 # list<binary>: encoded 200x200 RGB crops, one per face
FACE_PROBS_COL = "_face_probs"       # list<list<float32>>: visual model output per face
AUDIO_FEATURES_COL = "_audio_input"   # list<float32>: the audio model's input vector (its recipe)
AUDIO_PROBS_COL = "_audio_probs"     # list<float32>: audio model output, null without audio
                                     # (and until the finalize pass for speaker-norm models)

FACE_CHUNK = 256                     # faces decoded per predictor call: ~31 MB uint8,
                                     # ~123 MB as float32

PROBS_TYPE = pa.list_(pa.float32())
FACE_PROBS_TYPE = pa.list_(PROBS_TYPE)


def face_crops(column: pa.ChunkedArray | pa.Array):
    """(``crops(start, stop)``: the crops in that range as (n, 200, 200, 3) uint8 RGB, faces
    per row) of a list<binary> column, so a caller decodes a slice at a time: a batch of
    chunk items holds thousands of crops, half a gigabyte decoded at once."""
    lists = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    counts = [int(n) if n is not None else 0 for n in lists.value_lengths().to_pylist()]
    flat = lists.flatten()
    if len(flat) == 0:
        return (lambda start, stop: np.zeros((0, FACE_SIZE, FACE_SIZE, 3), np.uint8)), counts
    if flat.null_count:
        raise ValueError(f"{flat.null_count} face crop(s) are null")
    blobs, data = _blob_views(flat)
    if data is not None and all(crop_format(b) == RAW for b in blobs):
        raw = data.reshape(-1, FACE_SIZE, FACE_SIZE, 3)
        return (lambda start, stop: raw[start:stop]), counts
    return (lambda start, stop: decode_crops(blobs[start:stop])), counts


def _blob_views(flat: pa.Array) -> tuple[list, np.ndarray | None]:
    """(each value of a binary array as a numpy view of its buffer, the values' contiguous
    bytes); python bytes and None for other binary types."""
    if not pa.types.is_binary(flat.type):
        return flat.to_pylist(), None
    offsets = np.frombuffer(flat.buffers()[1], np.int32)[flat.offset:flat.offset + len(flat) + 1]
    data = np.frombuffer(flat.buffers()[2], np.uint8)[offsets[0]:offsets[-1]]
    starts = offsets - offsets[0]
    return [data[a:b] for a, b in zip(starts[:-1], starts[1:])], data


def split_by_counts(probs: np.ndarray, counts: list[int]) -> list[list[list[float]]]:
    """(N, 7) rows -> one list of per-face probability rows per video."""
    out, start = [], 0
    for n in counts:
        out.append(probs[start:start + n].tolist())
        start += n
    return out


def predict_faces(predictor, batch: pa.Table) -> pa.Table:
    """Add FACE_PROBS_COL and t_visual_s to ``batch``, drop FACES_COL."""
    crops, counts = face_crops(batch.column(FACES_COL))
    t0 = time.perf_counter()
    n = sum(counts)
    probs = np.zeros((n, NUM_CLASSES), np.float32)
    for start in range(0, n, FACE_CHUNK):        # bounds the decoded crops and their float32
        probs[start:start + FACE_CHUNK] = predictor.predict(crops(start, start + FACE_CHUNK))
    seconds = time.perf_counter() - t0
    total = max(1, sum(counts))
    per_video = split_by_counts(np.asarray(probs, np.float32), counts)
    t_visual = [seconds * n / total if n else None for n in counts]
    out = batch.drop_columns([FACES_COL])
    out = out.append_column(FACE_PROBS_COL, pa.array(per_video, FACE_PROBS_TYPE))
    return _set_column(out, "t_visual_s", pa.array(t_visual, pa.float32()))


def predict_audio(predictor, batch: pa.Table) -> pa.Table:
    """Add AUDIO_PROBS_COL and t_audio_s to ``batch``, drop AUDIO_FEATURES_COL. A
    speaker-normalised model cannot predict yet (see :func:`defer_audio`)."""
    if getattr(predictor.info, "speaker_norm", False):
        return defer_audio(batch)
    features = batch.column(AUDIO_FEATURES_COL).to_pylist()
    rows = [i for i, f in enumerate(features) if f is not None]
    probs: list = [None] * len(features)
    t_audio: list = [None] * len(features)
    if rows:
        x = np.asarray([features[i] for i in rows], np.float32)
        t0 = time.perf_counter()
        out = np.asarray(predictor.predict(x), np.float32)
        seconds = time.perf_counter() - t0
        for j, i in enumerate(rows):
            probs[i] = out[j].tolist()
            t_audio[i] = seconds / len(rows)
    table = batch.drop_columns([AUDIO_FEATURES_COL])
    table = table.append_column(AUDIO_PROBS_COL, pa.array(probs, PROBS_TYPE))
    return _set_column(table, "t_audio_s", pa.array(t_audio, pa.float32()))


def defer_audio(batch: pa.Table) -> pa.Table:
    """Speaker-normalised audio model: keep each row's raw vector as AUDIO_INPUT, probabilities
    null; score/speaker_pass.py predicts them once every clip of each speaker is scored."""
    from mer_ray.score.schema import AUDIO_INPUT

    features = batch.column(AUDIO_FEATURES_COL)
    table = batch.drop_columns([AUDIO_FEATURES_COL])
    table = _set_column(table, AUDIO_INPUT, features.cast(PROBS_TYPE))
    table = table.append_column(AUDIO_PROBS_COL, pa.nulls(len(table), PROBS_TYPE))
    return _set_column(table, "t_audio_s", pa.nulls(len(table), pa.float32()))


def _set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)
