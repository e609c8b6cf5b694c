"""Long videos as time-range work items (``score --segments``), so that memory does not grow
with a video's length and one long file does not hold up the job.

* Plan: a video longer than ``CHUNK_S`` is cut into chunks whose boundaries lie on the hop
  grid, so each window (``windows.segment_windows``) is owned by exactly one chunk, the one
  holding its start. A chunk decodes the keyframes in ``[start_s, end_s)`` (each keyframe
  once) and the audio of ``[start_s, decode_end_s)``: its stretch plus the overhang of its
  last windows (``media.audio.decode_audio_range``: the whole decode's samples).
* Chunk: the recipe's vector of every window, the level of each 30 ms audio frame it owns,
  its keyframes' faces; the model stages predict them; :func:`chunk_records` keeps no crops
  and no samples (OUT/chunks/, keyed ``path#chunkNNNNN``, so a resumed run redoes only the
  chunks not committed).
* Merge (:func:`finalize_chunks`, :func:`merged_row`): once all chunks of a video are in,
  speech is judged over the whole track's frame levels exactly as the whole-file path does,
  and ``rows.fuse_row`` builds the one scores row and the segment and timeline rows. The
  segment rows equal the whole-file path's. The video's own audio vote is the mean of its
  voiced windows' (the whole file, no ``max_audio_s`` cut).

Face tracks (``--faces all``): each chunk links its own faces (media.tracks), and the merge
links them again over the whole video's keyframes (``tracks.relink`` on every face's box and
keyframe: boxes only, a few per keyframe), so a face that stays in view across a chunk
boundary keeps its id, and ids are 0, 1, ... in order of first appearance, as a whole-file
run gives them (unless, at a chunk's first keyframes, a face was detected twice and the chunk
kept the other of the two boxes). A chunk's own ids go no further than its record. With the
largest-face tracker each chunk starts with a full-frame search, so at a chunk's first
keyframes the box can differ slightly from a whole-file run's (a search near the last face);
with ``redetect_every=1`` the two are the same. Speaker-normalised audio models are scored whole.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mer_ray.data.schema import to_table
from mer_ray.media import errors as st
from mer_ray.media.constants import SAMPLE_RATE
from mer_ray.media.extract import Extraction
from mer_ray.media.options import ExtractOptions
from mer_ray.media.tracks import relink
from mer_ray.media.voice_activity import ABS_FLOOR_DBFS, FRAME_S, LOUD_PERCENTILE, REL_DB
from mer_ray.score.windows import Window, segment_windows

CHUNK_S = 60.0
"""Seconds of video per work item at most (whole hops; one hop if the hop is longer)."""


@dataclass(frozen=True)
class Chunk:
    """One work item of a long video: chunk ``index`` owns windows ``first_window`` ..
    ``first_window + len(windows) - 1`` and the keyframes in ``[start_s, end_s)``; it decodes
    ``[start_s, decode_end_s)``."""

    index: int
    start_s: float
    end_s: float
    decode_end_s: float
    first_window: int
    windows: tuple[Window, ...]


def hops_per_chunk(window_s: float, hop_s: float | None, chunk_s: float = CHUNK_S) -> int:
    """Windows per chunk: the whole hops that fit in ``chunk_s``, at least one."""
    hop = window_s if hop_s is None else hop_s
    if not (math.isfinite(chunk_s) and chunk_s > 0):
        raise ValueError(f"chunk length must be a positive number of seconds, got {chunk_s!r}")
    return max(1, math.floor(round(chunk_s * 1000) / round(hop * 1000)))


def plan_chunks(duration_s: float, window_s: float, hop_s: float | None = None,
                chunk_s: float = CHUNK_S) -> list[Chunk]:
    """The chunks of a ``duration_s`` video scored with ``--segments window_s --hop hop_s``:
    one chunk (the whole video) when it is no longer than ``chunk_s``; none for a zero-length
    video. Their windows, in order, are exactly ``segment_windows(duration_s, ...)``."""
    windows = segment_windows(duration_s, window_s, hop_s)
    if not windows:
        return []
    duration = round(duration_s * 1000) / 1000
    if duration <= chunk_s:
        return [Chunk(0, 0.0, duration, duration, 0, tuple(windows))]
    per = hops_per_chunk(window_s, hop_s, chunk_s)
    chunks = []
    for index, first in enumerate(range(0, len(windows), per)):
        owned = tuple(windows[first:first + per])
        nxt = first + per
        end = windows[nxt][0] if nxt < len(windows) else duration
        chunks.append(Chunk(index, owned[0][0], end, max(end, max(w[1] for w in owned)),
                            first, owned))
    return chunks


# --- work items ---------------------------------------------------------------------------
CHUNKS_DIR = "chunks"
"""Folder of a score output holding committed chunk results (CHUNK_SCHEMA), merged per video
into the scores / segments / timeline tables by :func:`finalize_chunks`."""
CHUNK_COL = "_chunk"
N_CHUNKS_COL = "_n_chunks"
VIDEO_PATH_COL = "video_path"          # the input's path; ``path`` is the chunk's key
LEVELS_COL = "_levels"                 # level of each owned 30 ms audio frame
LEVEL_FROM_COL = "_level_from"         # index of the first of them in the whole track
HAS_SAMPLES_COL = "_win_has_samples"   # per window: any audio sample inside it
SPAN_WINDOWS = "_span_windows"         # a chunk item's windows: [start_s, end_s] each
AUDIO_TAIL_S = 10.0
"""The last chunk decodes audio this far past the video's end (a longer track is cut)."""


def chunk_key(path: str, index: int) -> str:
    """The chunks table's ``path``: one per chunk (shard ids and resume are keyed on it)."""
    return f"{path}#chunk{index:05d}"


def _frame_step(rate: int = SAMPLE_RATE) -> int:
    return max(1, int(round(FRAME_S * rate)))     # as voice_activity.frame_levels


def chunk_item(row: dict, chunk: Chunk, n_chunks: int, duration_s: float) -> dict:
    """The work item (input row + span columns) of one chunk of ``row``'s video."""
    step, rate = _frame_step(), SAMPLE_RATE
    last = chunk.index == n_chunks - 1
    frames_end = math.ceil(round(chunk.end_s * rate) / step) * step / rate
    audio_end = (max(chunk.decode_end_s, duration_s) + AUDIO_TAIL_S if last
                 else max(chunk.decode_end_s, frames_end))
    return {**row, "_span_start_s": chunk.start_s, "_span_end_s": chunk.end_s,
            "_span_audio_start_s": chunk.start_s, "_span_audio_end_s": audio_end,
            CHUNK_COL: chunk.index, N_CHUNKS_COL: n_chunks,
            SPAN_WINDOWS: [list(w) for w in chunk.windows]}


def split_for_chunks(rows: list[dict], window_s: float, hop_s: float | None,
                     chunk_s: float | None = None) -> tuple[list[dict], dict[str, list[dict]]]:
    """Input rows -> (rows scored whole, {path: chunk items} of videos longer than
    ``chunk_s`` (default CHUNK_S)). Remote inputs and files whose length the header does not
    tell are scored whole."""
    from mer_ray.media.video import probe_duration
    from mer_ray.storage import is_uri

    chunk_s = CHUNK_S if chunk_s is None else chunk_s
    whole, chunked = [], {}
    for row in rows:
        duration = None if is_uri(row["path"]) else probe_duration(row["path"])
        chunks = plan_chunks(duration, window_s, hop_s, chunk_s) if duration else []
        if len(chunks) < 2:
            whole.append(row)
        else:
            chunked[row["path"]] = [chunk_item(row, c, len(chunks), duration) for c in chunks]
    return whole, chunked


# --- one chunk: extraction row, committed record ----------------------------------------------
def chunk_extraction_rows(items: list[dict], results: list[Extraction], audio_column: str,
                          opts: ExtractOptions | None = None) -> pa.Table:
    """ExtractActor's ``to_rows`` for chunk items: EXTRACTED_SCHEMA rows (no clip vector) with
    the chunk's windows and the audio recipe's vector of every window that has samples (the
    merge decides which have speech enough to vote), plus the levels of its audio frames."""
    from mer_ray.score.rows import EXTRACTED_SCHEMA, extraction_row

    rows = []
    for item, result in zip(items, results):
        audio = _chunk_audio_columns(item, result, audio_column)   # first: adds to t_audio_s
        row = extraction_row(item, result, audio_column)
        row.update(audio)
        row.update({k: item[k] for k in (CHUNK_COL, N_CHUNKS_COL, SPAN_WINDOWS)})
        rows.append(row)
    return to_table(rows, _with(EXTRACTED_SCHEMA, CHUNK_EXTRA_FIELDS))


def _with(schema: pa.Schema, fields: list[pa.Field]) -> pa.Schema:
    for f in fields:
        schema = schema.append(f)
    return schema


CHUNK_EXTRA_FIELDS = [
    pa.field(CHUNK_COL, pa.int32()), pa.field(N_CHUNKS_COL, pa.int32()),
    pa.field(SPAN_WINDOWS, pa.list_(pa.list_(pa.float64()))),
    pa.field(LEVELS_COL, pa.list_(pa.float32())), pa.field(LEVEL_FROM_COL, pa.int64()),
    pa.field(HAS_SAMPLES_COL, pa.list_(pa.bool_())),
]


def _chunk_audio_columns(item: dict, result: Extraction, audio_column: str) -> dict:
    """Windows, per-window vectors and frame levels of one chunk's decoded audio."""
    from mer_ray.media.audio_recipes import recipe_for_column
    from mer_ray.media.voice_activity import frame_levels
    from mer_ray.score.rows import WINDOW_FEATURES_COL, WINDOWS_COL

    windows = [(float(a), float(b)) for a, b in item[SPAN_WINDOWS]]
    out: dict = {WINDOWS_COL: [list(w) for w in windows]}
    y, sr = result.audio, result.audio_rate
    if y is None or result.clip["status"] in st.FAILED_STATUSES:
        return out
    t0 = time.perf_counter()
    offset = round(float(item["_span_audio_start_s"]) * sr)
    featurize = recipe_for_column(audio_column).features
    features, has = [], []
    for start, end in windows:
        samples = y[max(0, round(start * sr) - offset):max(0, round(end * sr) - offset)]
        has.append(bool(samples.size))
        features.append(np.asarray(featurize(samples, sr), np.float32).tolist()
                        if samples.size else None)
    step = _frame_step(sr)
    last = item[CHUNK_COL] == item[N_CHUNKS_COL] - 1
    first = -(-round(float(item["_span_start_s"]) * sr) // step)
    stop = (offset + len(y) if last else round(float(item["_span_end_s"]) * sr))
    stop = -(-stop // step)
    levels = frame_levels(y[first * step - offset:stop * step - offset], sr)
    result.audio = None                       # the samples go no further than this actor
    result.clip["t_audio_s"] = (result.clip.get("t_audio_s") or 0.0) + time.perf_counter() - t0
    return {**out, WINDOW_FEATURES_COL: features, HAS_SAMPLES_COL: has,
            LEVELS_COL: levels.tolist(), LEVEL_FROM_COL: first}


def chunk_schema() -> pa.Schema:
    """What the chunks table holds per chunk: the predicted row without crops or vectors."""
    from mer_ray.score.predictors import FACE_PROBS_COL, FACE_PROBS_TYPE
    from mer_ray.score.rows import EXTRACTED_SCHEMA, WINDOW_PROBS_COL

    keep = [f for f in EXTRACTED_SCHEMA if not f.name.startswith("_") or f.name in (
        "_kf_index", "_kf_time", "_kf_face", "_boxes", "_face_kf", "_face_track", "_windows")]
    schema = pa.schema([pa.field(VIDEO_PATH_COL, pa.string()), *keep,
                        pa.field(FACE_PROBS_COL, FACE_PROBS_TYPE),
                        pa.field(WINDOW_PROBS_COL, pa.list_(pa.list_(pa.float32())))])
    return _with(schema, [f for f in CHUNK_EXTRA_FIELDS if f.name != SPAN_WINDOWS])


def chunk_records(batch: pa.Table) -> pa.Table:
    """Predicted chunk rows -> chunks-table rows (``path``: the chunk's key)."""
    rows = batch.to_pylist()
    for row in rows:
        row[VIDEO_PATH_COL] = row["path"]
        row["path"] = chunk_key(row["path"], row[CHUNK_COL])
    return to_table(rows, chunk_schema())


def chunks_store(out: str):
    """The chunks table of a score output directory (its own shard store)."""
    from mer_ray.data.shards import ShardStore

    return ShardStore(out, {CHUNKS_DIR: chunk_schema()}, primary=CHUNKS_DIR)


# --- merging a video's chunks ---------------------------------------------------------------
def _speech_mask(levels: np.ndarray) -> np.ndarray:
    """voice_activity.speech_mask from the frame levels of the whole track."""
    if levels.size == 0:
        return np.zeros(0, bool)
    loud = float(np.percentile(levels, LOUD_PERCENTILE))
    return levels > max(10 ** (ABS_FLOOR_DBFS / 20), loud * 10 ** (-REL_DB / 20))


def _window_speech(windows: list[Window], has: list[bool], mask: np.ndarray) -> list:
    """Speech fraction per window, read from the whole track's mask as the whole-file path
    reads it (segments.window_audio_features); None for a window without samples."""
    out = []
    for (start, end), any_samples in zip(windows, has):
        lo = int(start / FRAME_S)
        frames = mask[lo:max(lo + 1, int(np.ceil(end / FRAME_S)))]
        out.append(float(frames.mean()) if any_samples and frames.size else None)
    return out


def _status(rows: list[dict]) -> tuple[str, str | None]:
    """A video's status from its chunks': the first failed chunk's (its error says where),
    else ok if any chunk is, else the first chunk's."""
    for r in rows:
        if r["status"] in st.FAILED_STATUSES:
            return r["status"], f"chunk {r[CHUNK_COL]} of {r[N_CHUNKS_COL]}: {r['error']}"
    if any(r["status"] == st.OK for r in rows):
        return st.OK, None
    return rows[0]["status"], rows[0]["error"]


def _sum(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(sum(vals)) if vals else None


def merged_row(rows: list[dict], face_mode: str = "largest") -> dict:
    """One video's chunk records (any order) -> the predicted row ``rows.fuse_row`` reads, as
    the whole-file path would have built it: keyframes, faces and windows in order, speech
    judged over the whole track's levels, the audio vote of each window with enough speech;
    the video's own audio vote is the mean of those windows' (the whole file, uncut)."""
    from mer_ray.score.predictors import AUDIO_PROBS_COL, FACE_PROBS_COL
    from mer_ray.score.rows import (SCORED_ITEM_COLUMNS, WINDOW_PROBS_COL, WINDOW_SPEECH_COL,
                                    WINDOWS_COL)
    from mer_ray.score.segments import MIN_SPEECH_FRACTION

    rows = sorted(rows, key=lambda r: r[CHUNK_COL])
    out = {k: rows[0].get(k) for k in SCORED_ITEM_COLUMNS}
    out["path"] = rows[0][VIDEO_PATH_COL]
    out.update(_merged_keyframes(rows, face_mode))
    windows = [tuple(w) for r in rows for w in (r[WINDOWS_COL] or [])]
    has = [h for r in rows for h in (r[HAS_SAMPLES_COL] or [False] * len(r[WINDOWS_COL] or []))]
    levels = np.asarray([v for r in rows for v in (r[LEVELS_COL] or [])], np.float32)
    mask = _speech_mask(levels)
    speech = _window_speech(windows, has, mask)
    probs = [p for r in rows for p in (r.get(WINDOW_PROBS_COL) or [None] * len(r[WINDOWS_COL]))]
    votes = [p if f is not None and f >= MIN_SPEECH_FRACTION else None
             for p, f in zip(probs, speech)]
    voted = [np.asarray(v, np.float64) for v in votes if v is not None]
    status, error = _status(rows)
    out.update({
        "status": status, "error": error, "keyframes": sum(r["keyframes"] or 0 for r in rows),
        "faces": sum(r["faces"] or 0 for r in rows), "duration_s": rows[0]["duration_s"],
        "has_audio": any(r["has_audio"] for r in rows),
        "speech_fraction": float(mask.mean()) if mask.size else None,
        **{k: _sum(rows, k) for k in ("t_decode_s", "t_faces_s", "t_audio_features_s",
                                      "t_visual_s", "t_audio_s")},
        WINDOWS_COL: [list(w) for w in windows], WINDOW_SPEECH_COL: speech,
        WINDOW_PROBS_COL: votes,
        AUDIO_PROBS_COL: np.mean(voted, axis=0).tolist() if voted else None,
        FACE_PROBS_COL: ([p for r in rows for p in r[FACE_PROBS_COL]]
                         if all(r.get(FACE_PROBS_COL) is not None for r in rows) else None),
    })
    return out


def _merged_keyframes(rows: list[dict], face_mode: str) -> dict:
    """The keyframe and face columns of a video's chunks, positions renumbered across them;
    --faces all: the track ids of one linking pass over the whole video."""
    out = {k: [] for k in ("_kf_index", "_kf_time", "_kf_face", "_boxes", "_face_kf",
                           "_face_track")}
    for r in rows:
        kf_off, face_off = len(out["_kf_index"]), len(out["_boxes"])
        out["_kf_index"] += r["_kf_index"] or []
        out["_kf_time"] += r["_kf_time"] or []
        out["_kf_face"] += [f + face_off if f >= 0 else -1 for f in r["_kf_face"] or []]
        out["_boxes"] += r["_boxes"] or []
        out["_face_kf"] += [k + kf_off for k in r["_face_kf"] or []]
        out["_face_track"] += r["_face_track"] or []
    if face_mode == "all":
        out["_face_track"] = relink(out["_boxes"], out["_face_kf"], out["_kf_time"])
    return out


def finalize_chunks(out: str, weights, model_ids: dict, timeline: bool, face_mode: str,
                    done_paths: set[str]) -> int:
    """Merge every video whose chunks are all committed and which has no scores row yet into
    its scores / segments / timeline rows, one shard per video (written scores last, so a
    killed finalize is redone by the next run). Returns the number of videos merged."""
    import pyarrow.compute as pc

    from mer_ray.data.shards import shard_id_for
    from mer_ray.score.rows import FUSED_SCHEMA, fuse_row, split_output
    from mer_ray.score.schema import scores_store

    store = chunks_store(out)
    keys = store.read(CHUNKS_DIR, columns=[VIDEO_PATH_COL, CHUNK_COL, N_CHUNKS_COL]).to_pylist()
    seen: dict[str, set[int]] = {}
    total: dict[str, int] = {}
    for k in keys:
        seen.setdefault(k[VIDEO_PATH_COL], set()).add(k[CHUNK_COL])
        total[k[VIDEO_PATH_COL]] = k[N_CHUNKS_COL]
    ready = sorted(p for p, got in seen.items() if p not in done_paths and len(got) == total[p])
    if not ready:
        return 0
    table = store.read(CHUNKS_DIR)
    scores = scores_store(out)
    for path in ready:
        rows = table.filter(pc.equal(table[VIDEO_PATH_COL], path)).to_pylist()
        unique = {r[CHUNK_COL]: r for r in rows}          # a chunk committed twice: once
        fused = fuse_row(merged_row(list(unique.values()), face_mode), weights, model_ids,
                         timeline)
        parts = split_output(to_table([fused], FUSED_SCHEMA), timeline=timeline, segments=True)
        scores.write_shard(shard_id_for([path]), parts)
    return len(ready)
