"""The preprocess job on Ray Data: inputs -> ClipExtractor actors -> atomic Parquet shards.

Pipeline (streaming; one input block = one actor call = one shard)::

    from_arrow(inputs not done yet, cut into blocks of at most ``videos_per_shard``)
      -> map_batches(ExtractActor, ActorPoolStrategy, batch_size=None)   # CPU actors
      -> write_datasink(ShardSink)        # clips + frames tables, tmp file + rename, clips last

Blocks shrink towards the end of the job (guided self-scheduling), so the last actor to finish
is not left with a full shard while the others idle.

Resuming: inputs whose path is already in a committed clips shard are skipped (an anti-join
of the listing's path column against the committed one: data/bookkeeping.py).
``dry_run_preprocess`` does only that bookkeeping and the plan, and says how much is left.
"""
from __future__ import annotations

import functools
import logging
import math
import time
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mer_ray.config import PreprocessConfig
from mer_ray.data.bookkeeping import (format_dry_run, input_rows, list_and_check, paths_not_listed,
                                      planned_cpus, stock_counts, take_stock)
from mer_ray.data.schema import (CLIPS_DIR, CLIPS_SCHEMA, FRAMES_DIR, FRAMES_SCHEMA, SUMMARY_FILE,
                                 to_table)
from mer_ray.data.shards import ShardStore, new_shard_id
from mer_ray.data.sources import ITEM_COLUMNS, list_inputs_table
from mer_ray.media import errors as st
from mer_ray.media.crop_codec import encode_crop
from mer_ray.media.extract import Extraction

log = logging.getLogger(__name__)

FRAME_KEYS = ["video_id", "path", "label", "label_index", "speaker", "actor"]
FRAMES_COLUMN = "_frames"
_FRAME_STRUCT = pa.list_(pa.struct([("frame_index", pa.int32()), ("timestamp_s", pa.float32()),
                                    ("face", pa.binary()), ("box", pa.list_(pa.int32()))]))
UDF_SCHEMA = CLIPS_SCHEMA.append(pa.field(FRAMES_COLUMN, _FRAME_STRUCT))


def clips_store(out: str) -> ShardStore:
    """The clips + frames shard store of a preprocess output directory."""
    return ShardStore(out, {CLIPS_DIR: CLIPS_SCHEMA, FRAMES_DIR: FRAMES_SCHEMA}, primary=CLIPS_DIR)


store_for = clips_store     # the name tests/test_job_submit.py imports


def clip_rows(items: list[dict], results: list[Extraction]) -> pa.Table:
    """Input rows and their extractions -> one UDF_SCHEMA row each (frames nested), the
    ExtractActor's ``to_rows`` for this job."""
    rows = []
    for item, result in zip(items, results):
        frames = [{"frame_index": f["frame_index"], "timestamp_s": f["timestamp_s"],
                   "face": encode_crop(f["face"]),
                   "box": [int(v) for v in f["box"]]} for f in result.frames]
        rows.append({**{k: item.get(k) for k in ITEM_COLUMNS}, **result.clip, FRAMES_COLUMN: frames})
    return to_table(rows, UDF_SCHEMA)


def split_tables(table: pa.Table) -> dict[str, pa.Table]:
    """A block of UDF rows -> {"clips": ..., "frames": ...} tables with the final schemas."""
    rows = table.to_pylist()
    frames = [{**{k: row[k] for k in FRAME_KEYS}, **frame}
              for row in rows for frame in (row.get(FRAMES_COLUMN) or [])]
    clips = table.drop_columns([FRAMES_COLUMN]) if FRAMES_COLUMN in table.column_names else table
    return {CLIPS_DIR: clips.select(CLIPS_SCHEMA.names).cast(CLIPS_SCHEMA),
            FRAMES_DIR: to_table(frames, FRAMES_SCHEMA)}


def dropped_rows(inputs: pa.Table) -> pa.Table:
    """Clips rows for inputs skipped on purpose (``drop_reason`` set, e.g. RAVDESS calm):
    counted, not processed."""
    rows = [{**row, "status": st.DROPPED, "error": row["drop_reason"], "has_audio": False,
             "audio_truncated": False, "frames_decoded": 0, "keyframes": 0, "faces_found": 0,
             "no_face_frames": 0} for row in inputs.to_pylist()]
    return to_table(rows, CLIPS_SCHEMA)


def block_sizes(n_videos: int, n_actors: int, max_per_shard: int) -> list[int]:
    """Inputs per block (= per shard), in order: each block is about the remaining work over
    twice the actors, at most ``max_per_shard`` and at least a quarter of the first block, so
    every actor gets several blocks on small jobs and the last ones are short."""
    first = max(1, min(max_per_shard, math.ceil(n_videos / (4 * n_actors))))
    floor = max(1, math.ceil(first / 4))
    sizes, left = [], n_videos
    while left > 0:
        size = min(left, max(floor, min(first, math.ceil(left / (2 * n_actors)))))
        sizes.append(size)
        left -= size
    return sizes


def input_blocks(rows: pa.Table | list[dict], sizes: list[int]) -> list[pa.Table]:
    """``rows`` (a table or dicts) cut into consecutive tables of ``sizes`` rows (one schema)."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows)
    starts = np.cumsum([0, *sizes[:-1]])
    return [table.slice(int(start), size) for start, size in zip(starts, sizes)]


def no_inputs_message(source: str) -> str:
    """Why a job refuses a source that lists no inputs (preprocess and score)."""
    return (f"no inputs in {source}: no video or audio files (by extension) and no manifest "
            "rows; pass --allow-empty to write an empty output anyway")


def run_preprocess(cfg: PreprocessConfig) -> dict:
    """Run the whole job; returns the summary (also written to OUT/summary.json). Holds the
    output directory's lock throughout."""
    from mer_ray.data.out_lock import OutLock

    started = time.time()
    listed = list_inputs_table(cfg.data_dir, cfg.corpus)
    if not listed.num_rows and not cfg.allow_empty:
        raise ValueError(no_inputs_message(cfg.data_dir))
    with OutLock(cfg.out):                  # one writer; clean-up only while it is ours
        return _preprocess_locked(cfg, listed, started)


def dry_run_preprocess(cfg: PreprocessConfig) -> dict:
    """What ``run_preprocess`` would do, without doing it: the inputs listed, those already
    done, those left and the actor plan. Starts no Ray, takes no lock, creates and changes
    nothing (damaged shards are skipped, not moved)."""
    stock = list_and_check(cfg.data_dir, cfg.corpus, clips_store(cfg.out), writer=False)
    if not stock.listed.num_rows and not cfg.allow_empty:
        raise ValueError(no_inputs_message(cfg.data_dir))
    work = stock.todo.num_rows - stock.dropped
    cpus, note = planned_cpus(cfg.ray)
    n_actors = cfg.workers or max(1, int(cpus))
    sizes = block_sizes(work, n_actors, cfg.videos_per_shard) if work else []
    actors = min(n_actors, len(sizes))
    plan = (f"{actors} extraction actor{'s' * (actors != 1)} x 1 CPU, {len(sizes):,} shards of "
            f"{sizes[0]} down to {sizes[-1]} inputs" if sizes else "nothing to extract")
    return {**stock_counts(stock), "plan": plan, "plan_note": note, "extract_workers": actors,
            "shards": len(sizes), "cpus": cpus}


def format_preprocess_dry_run(report: dict) -> str:
    """The line ``preprocess --dry-run`` prints."""
    return format_dry_run(report, "process")


def _preprocess_locked(cfg: PreprocessConfig, listed: pa.Table, started: float) -> dict:
    """run_preprocess's work once the output directory is ours."""
    store = clips_store(cfg.out)
    stock = take_stock(listed, store)
    has_class = pc.is_null(stock.todo.column("drop_reason"))
    drop, work = stock.todo.filter(pc.invert(has_class)), stock.todo.filter(has_class)
    log.info("%d inputs: %d already done, %d to process, %d dropped (no project class)",
             listed.num_rows, stock.done, work.num_rows, drop.num_rows)
    if drop.num_rows:
        store.write_shard(new_shard_id(), {CLIPS_DIR: dropped_rows(drop),
                                           FRAMES_DIR: FRAMES_SCHEMA.empty_table()})
    if work.num_rows:
        _extract(cfg, store, work, already=stock.committed + drop.num_rows)
    return summarize_clips(store, cfg, processed=work.num_rows, seconds=time.time() - started,
                           listed_paths=listed.column("path"))


def _extract(cfg: PreprocessConfig, store: ShardStore, work: pa.Table, already: int) -> None:
    """Run the extraction pipeline over ``work`` (input rows with a project class); the
    progress line counts from ``already``, the rows committed before it (the paths take_stock
    found, and this run's dropped rows), not from the shard files at its start: a killed
    run's shard landing late may hold an input this run redoes, under the same shard name."""
    import ray

    from mer_ray.console import ShardProgress
    from mer_ray.data.extraction import ExtractActor
    from mer_ray.data.shard_sink import ShardSink, one_line_errors, write_shards
    from mer_ray.runtime import init_ray

    init_ray(cfg.ray)
    n_actors = cfg.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    sizes = block_sizes(work.num_rows, n_actors, cfg.videos_per_shard)
    log.debug("%d extraction actor(s) at most; %d shards of %d down to %d videos",
              n_actors, len(sizes), sizes[0], sizes[-1])
    ds = ray.data.from_arrow(input_blocks(input_rows(work), sizes))
    # every actor starts at once (no scale-up ramp); all of them were there at start
    pool = ray.data.ActorPoolStrategy(min_size=min(n_actors, len(sizes)), max_size=n_actors)
    ds = ds.map_batches(ExtractActor, fn_constructor_args=(cfg.extract, clip_rows),
                        batch_size=None, batch_format="pyarrow", compute=pool, num_cpus=1)
    # one block = one shard, written as blocks arrive (shard_sink.write_shards)
    sink = ShardSink(functools.partial(clips_store, cfg.out), split_tables, UDF_SCHEMA)
    with ShardProgress(store, CLIPS_DIR, total=already + work.num_rows, already=already,
                       verb="preprocessed"), \
            one_line_errors():
        write_shards(ds, sink)


def summarize_clips(store: ShardStore, cfg: PreprocessConfig, processed: int, seconds: float,
                    listed_paths: pa.Array | pa.ChunkedArray | set[str] | None = None) -> dict:
    """Counts over everything committed so far, written atomically to OUT/summary.json; with
    ``listed_paths``, also how many committed rows no longer have a listed input. Counted in
    arrow (no Python object per row)."""
    clips = store.read(CLIPS_DIR, columns=["path", "status", "faces_found", "keyframes", "label",
                                           "t_decode_s", "t_faces_s", "t_audio_s", "t_total_s"])
    labels = clips.column("label").filter(pc.invert(pc.or_kleene(
        pc.is_null(clips.column("label")), pc.equal(clips.column("label"), ""))))
    summary = {
        "out": cfg.out,
        "inputs": clips.num_rows,
        "status": _value_counts(clips.column("status")),
        "labels": _value_counts(labels),
        "failed": _count(pc.is_in(clips.column("status"),
                                  value_set=pa.array(sorted(st.FAILED_STATUSES), pa.string()))),
        "rows_without_input": (None if listed_paths is None
                               else paths_not_listed(clips.column("path"), listed_paths)),
        "keyframes": int(pc.sum(clips.column("keyframes")).as_py() or 0),
        "face_crops": int(pc.sum(clips.column("faces_found")).as_py() or 0),
        "this_run": {"processed": processed, "seconds": round(seconds, 2),
                     "videos_per_s": round(processed / seconds, 3) if seconds > 0 else None},
        "cpu_seconds": {k: round(float(pc.sum(clips.column(k).cast(pa.float64())).as_py() or 0), 2)
                        for k in ("t_decode_s", "t_faces_s", "t_audio_s", "t_total_s")},
        "config": cfg.to_dict(),
    }
    store.write_json(SUMMARY_FILE, summary)
    return summary


def _count(mask) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _value_counts(column: pa.ChunkedArray | pa.Array) -> dict:
    """{value: rows}, sorted by value (nulls counted under None, as Counter would)."""
    counts = pc.value_counts(column).to_pylist()
    return dict(sorted(((c["values"], c["counts"]) for c in counts),
                       key=lambda kv: (kv[0] is None, kv[0] or "")))


