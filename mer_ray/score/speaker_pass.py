"""The score job's second pass for speaker-normalised audio models (`train-audio --speaker-norm`).

Such a model z-scores each clip's audio vector with the statistics of *all* scored clips of its
speaker, which a one-pass stream cannot know before the last clip. So the score job runs:

1. the streaming pass, where the audio stage predicts nothing and keeps each clip's raw vector in
   the row (column ``audio_input``); fusion leaves those rows pending (``fusion_mode`` none, the
   extraction status kept, never ``no_signal``);
2. :func:`finalize`, after the stream (and after every resumed run): pass A reads
   ``audio_input``, ``actor``, ``speaker`` and ``status`` shard by shard and accumulates
   ``SpeakerStats`` (labels are never read); pass B rewrites each shard holding audio vectors
   with the audio probabilities under those statistics and Alg. 3.9 fusion redone by the same
   ``fuse_row`` as the stream. Each shard is written to a temporary file and moved over the old
   one, so a killed finalize leaves every shard complete (old or new) and the next run redoes it.

The statistics used go to ``OUT/speaker_stats.json``; when a later run finds the same statistics
there (no new clip), only shards with pending rows are rewritten. The raw vectors stay in the
rows, so clips added later re-normalise their speakers' earlier clips too.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from mer_ray.data.schema import to_table
from mer_ray.data.shards import PART_PREFIX, ShardStore
from mer_ray.media.errors import USABLE_STATUSES
from mer_ray.models.speaker_norm import SpeakerStats, speaker_keys
from mer_ray.score.fusion import FusionWeights
from mer_ray.score.predictors import AUDIO_PROBS_COL, FACE_PROBS_COL
from mer_ray.score.rows import fuse_row
from mer_ray.score.schema import AUDIO_INPUT, SCORES_DIR, SCORES_SCHEMA, SPEAKER_STATS_FILE

log = logging.getLogger(__name__)

MIN_CLIPS = 8
"""Fewer clips than this for a speaker: warn (their mean is a poor neutral reference)."""

STATS_COLUMNS = [AUDIO_INPUT, "actor", "speaker", "status"]   # all pass A reads: no labels


def audio_rows(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row indices, (n, D) float32 raw vectors, speaker keys) of the rows with a usable status
    and an ``audio_input`` vector."""
    usable = pc.and_(pc.is_valid(table[AUDIO_INPUT]),
                     pc.is_in(table["status"], value_set=pa.array(sorted(USABLE_STATUSES))))
    idx = np.flatnonzero(pc.fill_null(usable, False).to_numpy(zero_copy_only=False))
    if len(idx) == 0:
        return idx, np.zeros((0, 0), np.float32), np.array([], dtype=object)
    vectors = table[AUDIO_INPUT].take(idx).combine_chunks()
    dims = set(pc.list_value_length(vectors).to_pylist())
    if len(dims) != 1:
        raise ValueError(f"'{AUDIO_INPUT}' vectors have different lengths {sorted(dims)}")
    x = np.asarray(vectors.flatten().to_numpy(zero_copy_only=False), np.float32)
    rows = table.select(["actor", "speaker"]).take(idx)
    keys = speaker_keys(rows["actor"].to_pylist(), rows["speaker"].to_pylist())
    return idx, x.reshape(len(idx), dims.pop()), keys


def rescore(table: pa.Table, predictor, stats: SpeakerStats, weights: FusionWeights,
            ids: dict[str, str | None]) -> pa.Table:
    """``table`` (SCORES_SCHEMA rows) with audio probabilities predicted under ``stats`` and
    fusion redone for every row with an audio vector; other rows unchanged."""
    idx, x, keys = audio_rows(table)
    if len(idx) == 0:
        return table
    t0 = time.perf_counter()
    probs = np.asarray(predictor.predict(x, speakers=keys, stats=stats), np.float32)
    per_clip = (time.perf_counter() - t0) / len(idx)
    rows = table.to_pylist()
    for j, i in enumerate(idx):
        row = rows[i]
        visual = row["visual_probs"]       # the mean over faces: fusing it alone is the same
        row.update({FACE_PROBS_COL: [] if visual is None else [visual],
                    AUDIO_PROBS_COL: probs[j].tolist(), "t_audio_s": per_clip})
        rows[i] = fuse_row(row, weights, ids, timeline=False)
    return to_table(rows, SCORES_SCHEMA)


def finalize_table(table: pa.Table, predictor, weights: FusionWeights,
                   ids: dict[str, str | None]) -> pa.Table:
    """:func:`rescore` with the statistics of the rows of ``table`` alone (score_locally)."""
    _, x, keys = audio_rows(table)
    stats = SpeakerStats().update(x, keys) if len(x) else SpeakerStats()
    return rescore(table, predictor, stats, weights, ids)


def _shards(store: ShardStore) -> list[tuple[str, str]]:
    """(shard id, scores file) of every committed shard, in a fixed order."""
    return [(i, f"{store.dir(SCORES_DIR)}/{PART_PREFIX}{i}.parquet")
            for i in sorted(store.committed_ids())]


def _read(store: ShardStore, path: str, columns: Sequence[str] | None = None) -> pa.Table:
    dataset = pads.dataset([path], schema=SCORES_SCHEMA, format="parquet", filesystem=store.fs)
    return dataset.to_table(columns=list(columns) if columns else None)


def accumulate_stats(store: ShardStore) -> SpeakerStats:
    """Pass A: per-speaker statistics over every committed row with an audio vector, read
    column-wise shard by shard (labels are never read)."""
    stats = SpeakerStats()
    for _, path in _shards(store):
        _, x, keys = audio_rows(_read(store, path, STATS_COLUMNS))
        if len(x):
            stats.update(x, keys)
    return stats


def _same_stats(saved: dict | None, stats: SpeakerStats, model_id: str) -> bool:
    if not saved or saved.get("audio_model_id") != model_id:
        return False
    old = SpeakerStats.from_dict(saved.get("stats", {}))
    return old.count == stats.count and all(
        np.array_equal(old.mean[k], stats.mean[k]) and np.array_equal(old.m2[k], stats.m2[k])
        for k in stats.count)


def _pending(table: pa.Table) -> bool:
    """A row with an audio vector but no audio probabilities yet."""
    idx, _, _ = audio_rows(table)
    return bool(len(idx)) and table["audio_probs"].take(idx).null_count > 0


def finalize(store: ShardStore, audio_run_dir: str, weights: FusionWeights,
             ids: dict[str, str | None]) -> dict:
    """Pass A then pass B over the committed shards of ``store`` (see the module doc); writes
    OUT/speaker_stats.json and returns what run.json / summary.json record."""
    from mer_ray.models.bundle import AudioPredictor

    predictor = AudioPredictor(audio_run_dir)
    store.clean()                                   # temporaries of a killed finalize
    stats = accumulate_stats(store)
    same = _same_stats(store.read_json(SPEAKER_STATS_FILE), stats, predictor.info.model_id)
    rewritten = 0
    for shard_id, path in _shards(store):
        table = _read(store, path)
        if same and not _pending(table):
            continue
        new = rescore(table, predictor, stats, weights, ids)
        if new is not table:
            store.write_shard(shard_id, {SCORES_DIR: new})
            rewritten += 1
    counts = {k: int(n) for k, n in sorted(stats.count.items())}
    few = [k for k, n in counts.items() if n < MIN_CLIPS]
    if few:
        log.warning("speaker normalisation: %d of %d speakers have fewer than %d clips (%s%s); "
                    "their mean is a poor neutral reference, so their audio predictions are "
                    "unreliable", len(few), len(counts), MIN_CLIPS, ", ".join(few[:10]),
                    ", ..." if len(few) > 10 else "")
    store.write_json(SPEAKER_STATS_FILE, {"audio_model_id": predictor.info.model_id,
                                          "clips_per_speaker": counts, "stats": stats.to_dict()})
    log.info("speaker normalisation: %d clips of %d speakers, %d shard(s) rewritten",
             sum(counts.values()), len(counts), rewritten)
    return {"applied": True, "stats_file": SPEAKER_STATS_FILE, "clips": sum(counts.values()),
            "speakers": len(counts), "clips_per_speaker": counts, "min_clips_advised": MIN_CLIPS,
            "speakers_with_few_clips": few, "shards_rewritten": rewritten}
