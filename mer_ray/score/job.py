"""The score job: one streaming Ray Data pipeline from an archive to one Parquet row per input.

::

    input blocks (inputs not scored yet)
      -> map_batches(ExtractActor, CPU actors)          # keyframes, faces, the audio model's
                                                        # vector (data/extraction.py)
      -> map_batches(VisualStage, actors, GPU opt.)     # probabilities per face
      -> map_batches(AudioStage, actors, GPU opt.)      # audio probabilities (+ per window)
      -> map_batches(fuse_rows)                         # Alg. 3.9 + status + timeline
                                                        # (+ segment rows, --segments)
      -> write_datasink(ShardSink)                      # atomic shards, scores last
    [-> speaker_pass.finalize]        # speaker-normalised audio model only: audio probabilities
                                      # with every scored clip's per-speaker statistics, re-fused

With ``--segments``, a video longer than chunks.CHUNK_S runs as chunk items (time ranges) in a
second pipeline of the same stages, whose last map keeps per-chunk records (no crops, no
samples) in OUT/chunks/; ``chunks.finalize_chunks`` then merges each video whose chunks are
all committed into its one scores row and its segment / timeline rows.

Each stage sees a bounded batch and Ray Data's streaming executor applies backpressure, so
memory does not grow with the archive. Resuming: inputs whose path is in a committed scores
shard are skipped; the models and weights must match the earlier run (``run.json``).
"""
from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING

import pyarrow as pa

from mer_ray.config import ScoreConfig
from mer_ray.data.bookkeeping import Stock
from mer_ray.data.shards import ShardStore
from mer_ray.data.sources import ITEM_COLUMNS
from mer_ray.score.fusion import FusionWeights
from mer_ray.score.in_process import runs_in_process
from mer_ray.score.plan import ScorePlan, plan_workers, resolve_models, resolve_plan
from mer_ray.score.rows import FUSED_SCHEMA, extraction_rows, fuse_rows, split_output
from mer_ray.score.schema import RUN_FILE, SCORES_DIR, scores_store
from mer_ray.score.summary import summarize_scores

if TYPE_CHECKING:
    from ray.data import DataContext

log = logging.getLogger(__name__)

RESUME_KEYS = ("model_ids", "weights", "skip", "timeline", "segments", "faces", "chunk_s")
"""run.json entries an output directory's earlier rows must share with a new run (a key
missing from an older run.json reads as None, today's default for segments and faces; a
missing ``chunk_s`` of a segments run reads as LEGACY_CHUNK_S)."""
LEGACY_CHUNK_S = 60.0
"""The chunk length of segments runs whose run.json predates its ``chunk_s`` entry."""


def segment_settings(cfg: ScoreConfig) -> tuple[dict | None, dict | None]:
    """run.json's ``segments`` and ``faces`` entries: None for the defaults (no segments, the
    largest face), so outputs written before these options resume under the defaults."""
    opts = cfg.extract
    segments = (None if opts.segment_s is None else
                {"window_s": opts.segment_s, "hop_s": opts.hop_s or opts.segment_s})
    faces = None if opts.face_mode == "largest" else {"mode": opts.face_mode,
                                                      "max_faces": opts.max_faces}
    return segments, faces


def run_record(cfg: ScoreConfig, plan: ScorePlan) -> dict:
    """What run.json says about a run (RESUME_KEYS and the whole config)."""
    weights = FusionWeights(cfg.w_visual, cfg.w_audio)
    segments, faces = segment_settings(cfg)
    return {"model_ids": plan.model_ids, "weights": weights.normalized().to_dict(),
            "skip": cfg.extract.skip, "timeline": cfg.timeline, "segments": segments,
            "faces": faces, "chunk_s": _chunk_s(segments), "config": cfg.to_dict()}


def _chunk_s(segments: dict | None) -> float | None:
    """Seconds per chunk item of a segments run (committed chunks are only valid for it)."""
    from mer_ray.score.chunks import CHUNK_S

    return None if segments is None else CHUNK_S


def _resumed(before: dict, key: str):
    """``before[key]``, or what an older run.json without the key meant."""
    if key == "chunk_s" and key not in before:
        return None if before.get("segments") is None else LEGACY_CHUNK_S
    return before.get(key)


def check_same_run(store: ShardStore, run: dict, has_rows: bool) -> None:
    """Refuse to mix rows from different models, weights or segment settings in one output
    directory."""
    before = store.read_json(RUN_FILE)
    if not has_rows or before is None:
        return
    for key in RESUME_KEYS:
        if _resumed(before, key) != run.get(key):
            raise ValueError(f"{store.out} already holds scores made with {key}={_resumed(before, key)}; "
                             f"this run has {key}={run.get(key)}. Use a new --out (or delete the "
                             "old one).")


def _gpus(n: float) -> dict[str, float]:
    return {"num_gpus": n} if n > 0 else {}


def model_batches(cfg: ScoreConfig) -> tuple[int, int]:
    """Videos per visual and audio model call: the flags, at most one shard's worth. A model
    stage holds rows until it has a whole batch, so a batch larger than a shard would keep
    finished rows from the sink (no shard committed until that many videos are done, or the
    archive's end): capped, a shard commits as soon as its videos are through."""
    cap = max(1, cfg.videos_per_shard)
    batches = min(cfg.visual_batch_videos, cap), min(cfg.audio_batch_videos, cap)
    if batches != (cfg.visual_batch_videos, cfg.audio_batch_videos):
        log.debug("model batches capped at --videos-per-shard %d (visual %d, audio %d)",
                  cap, *batches)
    return batches


FUSE_TASKS = 2
"""Fusion tasks at once (milliseconds per batch). They ask for no CPU, like the write tasks
(shard_sink.WRITE_TASKS): at 0.1 CPU each and unbounded, the CPUs the extraction actors free
at their end became ~17 concurrent tasks, a worker process each; bounded but still asking
for CPU, Ray Data gave them no CPU budget while the actors held it and the run stalled."""


def limit_buffer(context: DataContext, nbytes: int) -> None:
    """Cap the object store memory a Ray Data pipeline may fill (plan.BUFFER_PER_CPU): upstream
    stages wait instead of queueing an archive's worth of crops. ``context`` is the dataset's
    own DataContext (a copy taken when it was created), so training or a notebook's datasets
    later in the same process keep Ray Data's defaults."""
    options = context.execution_options
    options.resource_limits = options.resource_limits.copy(object_store_memory=nbytes)


def build_dataset(cfg: ScoreConfig, plan: ScorePlan, rows: pa.Table, chunked: bool = False):
    """The lazy Ray Data pipeline for ``rows`` (input rows not scored yet; ``chunked``: chunk
    items of long videos, ending in chunk records instead of fused rows)."""
    import ray

    from mer_ray.data.bookkeeping import block_count, input_dataset
    from mer_ray.data.extraction import ExtractActor
    from mer_ray.score.chunks import chunk_extraction_rows, chunk_records
    from mer_ray.score.stages import AudioStage, VisualStage

    resources = ray.cluster_resources()
    workers = plan_workers(cfg, float(resources.get("CPU", 1)), resources.get("memory"))
    memory = workers.memory
    n_blocks = block_count(rows.num_rows)
    pool = ray.data.ActorPoolStrategy
    to_rows = functools.partial(chunk_extraction_rows if chunked else extraction_rows,
                                audio_column=plan.audio_column, opts=plan.extract)
    weights = FusionWeights(cfg.w_visual, cfg.w_audio)
    visual_batch, audio_batch = model_batches(cfg)
    if chunked:            # a chunk is up to a minute of faces: one per visual call keeps the
        visual_batch = 1   # actor's memory that of one short video's (60-min / 1-min: 1.02x)
    ds = input_dataset(rows, n_blocks, columns=None if chunked else ITEM_COLUMNS)
    limit_buffer(ds.context, workers.buffer)       # every stage below shares this context
    ds = ds.map_batches(ExtractActor, fn_constructor_args=(plan.extract, to_rows, True),
                        batch_size=1, batch_format="pyarrow", num_cpus=workers.extract_cpus,
                        memory=memory["extract"],
                        compute=pool(size=max(1, min(workers.extract_workers, n_blocks))))
    if cfg.visual is not None:
        gpu = cfg.gpus_per_worker > 0
        ds = ds.map_batches(VisualStage, fn_constructor_args=(cfg.visual, gpu),
                            batch_size=visual_batch, batch_format="pyarrow",
                            num_cpus=workers.model_cpus, memory=memory["visual"],
                            compute=pool(size=cfg.visual_workers), **_gpus(cfg.gpus_per_worker))
    if cfg.audio is not None:
        ds = ds.map_batches(AudioStage, fn_constructor_args=(cfg.audio,),
                            batch_size=audio_batch, batch_format="pyarrow",
                            num_cpus=workers.model_cpus, memory=memory["audio"],
                            compute=pool(size=cfg.audio_workers), **_gpus(cfg.audio_gpus))
    last = ray.data.TaskPoolStrategy(size=FUSE_TASKS)
    if chunked:
        return ds.map_batches(chunk_records, batch_size=None, batch_format="pyarrow",
                              num_cpus=0, compute=last)
    return ds.map_batches(fuse_rows, fn_args=(weights, plan.model_ids, cfg.timeline),
                          batch_size=None, batch_format="pyarrow", num_cpus=0, compute=last)


def run_score(cfg: ScoreConfig) -> dict:
    """Score every input of ``cfg.source`` not yet in ``cfg.out``; returns the summary
    (also written to OUT/summary.json). Holds the output directory's lock throughout."""
    from mer_ray.data.bookkeeping import speakers
    from mer_ray.data.out_lock import OutLock
    from mer_ray.data.sources import list_inputs_table

    started = time.time()
    listed = list_inputs_table(cfg.source, cfg.corpus)
    if not listed.num_rows and not cfg.allow_empty:
        from mer_ray.data.preprocess import no_inputs_message

        raise ValueError(no_inputs_message(cfg.source))
    cfg = resolve_models(cfg, speakers(listed))
    plan = resolve_plan(cfg)
    with OutLock(cfg.out):
        return _score_locked(cfg, plan, listed, started)


def begin_run(cfg: ScoreConfig, plan: ScorePlan, listed: pa.Table) -> tuple[ShardStore, Stock, dict]:
    """The start of a run into ``cfg.out`` (its lock held): the store, ``listed`` (INPUT_SCHEMA
    rows) against the committed rows, and run.json (written once it matches the earlier rows)."""
    from mer_ray.data.bookkeeping import take_stock

    store = scores_store(cfg.out)
    stock = take_stock(listed, store)
    run = run_record(cfg, plan)
    check_same_run(store, run, has_rows=stock.committed > 0)
    store.write_json(RUN_FILE, run)
    return store, stock, run


def _score_locked(cfg: ScoreConfig, plan: ScorePlan, listed: pa.Table, started: float) -> dict:
    """run_score's work once the output directory is ours."""
    weights = FusionWeights(cfg.w_visual, cfg.w_audio)
    store, stock, run = begin_run(cfg, plan, listed)
    log.info("%d inputs: %d already scored, %d to score", listed.num_rows, stock.done,
             stock.todo.num_rows)
    whole, chunk_items = _chunk_work(cfg, plan, stock.todo)
    already = stock.committed
    if runs_in_process(cfg, whole.num_rows):
        left = _score_here(cfg, plan, store, whole, already)
        already, whole = already + whole.num_rows - left.num_rows, left
    if whole.num_rows:
        _run_pipeline(cfg, plan, store, whole, already)
    if chunk_items:
        _run_chunk_pipeline(cfg, plan, chunk_items)
    on_ray = bool(whole.num_rows or chunk_items)
    if plan.segments:
        from mer_ray.score.chunks import finalize_chunks

        finalize_chunks(cfg.out, weights, plan.model_ids, cfg.timeline, cfg.extract.face_mode,
                        store.done_paths())
    speaker_norm = None
    if plan.speaker_norm:                           # every clip is in: the second pass
        from mer_ray.score.speaker_pass import finalize

        speaker_norm = finalize(store, cfg.audio, weights, plan.model_ids)
        store.write_json(RUN_FILE, {**run, "speaker_norm": speaker_norm})
    return summarize_scores(store, cfg, listed=listed.num_rows, scored=stock.todo.num_rows,
                            seconds=time.time() - started, speaker_norm=speaker_norm,
                            listed_paths=listed.column("path"), on_ray=on_ray)


def _score_here(cfg: ScoreConfig, plan: ScorePlan, store: ShardStore, todo: pa.Table,
                already: int) -> pa.Table:
    """``todo`` scored in this process (score.in_process); returns the rows left for Ray:
    none, or those not committed when an extraction process died."""
    from concurrent.futures.process import BrokenProcessPool

    from mer_ray.data.bookkeeping import take_stock
    from mer_ray.score import in_process

    try:
        in_process.score_in_process(cfg, plan, store, todo, already)
        return todo.slice(0, 0)
    except BrokenProcessPool as err:
        left = take_stock(todo, store).todo
        log.warning("an extraction process died (%s); scoring the %d inputs left on Ray",
                    err, left.num_rows)
        return left


def _chunk_work(cfg: ScoreConfig, plan: ScorePlan, todo: pa.Table) -> tuple[pa.Table, list[dict]]:
    """(input rows scored whole, chunk items not committed yet): long videos are chunked with
    --segments, unless the audio model is speaker-normalised (its finalize needs clip rows).
    Only then are the rows left read one by one (each file's length is probed)."""
    if not plan.segments or plan.speaker_norm or not todo.num_rows:
        return todo, []
    import pyarrow.compute as pc

    from mer_ray.score import chunks

    _, per_video = chunks.split_for_chunks(todo.select(ITEM_COLUMNS).to_pylist(),
                                           cfg.extract.segment_s, cfg.extract.hop_s, chunks.CHUNK_S)
    if not per_video:
        return todo, []
    whole = todo.filter(pc.invert(pc.is_in(todo.column("path"),
                                           value_set=pa.array(list(per_video), pa.string()))))
    done = chunks.chunks_store(cfg.out).done_paths()
    items = [it for items in per_video.values() for it in items
             if chunks.chunk_key(it["path"], it[chunks.CHUNK_COL]) not in done]
    log.info("%d long videos in %d chunks (%d already committed)", len(per_video),
             sum(map(len, per_video.values())), sum(map(len, per_video.values())) - len(items))
    return whole, items


def _run_chunk_pipeline(cfg: ScoreConfig, plan: ScorePlan, items: list[dict]) -> None:
    """The chunk items through the stages into OUT/chunks/ (chunks.chunk_schema), with a
    progress line counted in chunks (``scored 12/60 chunks``)."""
    from mer_ray.console import ShardProgress
    from mer_ray.data.shard_sink import ShardSink, one_line_errors, write_shards
    from mer_ray.runtime import init_ray
    from mer_ray.score.chunks import CHUNKS_DIR, chunk_schema, chunks_store

    init_ray(cfg.ray)
    store = chunks_store(cfg.out)
    sink = ShardSink(functools.partial(chunks_store, cfg.out), lambda t: {CHUNKS_DIR: t},
                     chunk_schema(), rows_per_shard=cfg.videos_per_shard)
    with ShardProgress.of_new_rows(store, CHUNKS_DIR, len(items), "scored", unit="chunks"), \
            one_line_errors():
        write_shards(build_dataset(cfg, plan, pa.Table.from_pylist(items), chunked=True), sink)


def _run_pipeline(cfg: ScoreConfig, plan: ScorePlan, store: ShardStore, todo: pa.Table,
                  already: int) -> None:
    from mer_ray.data.shard_sink import ShardSink, one_line_errors, write_shards
    from mer_ray.runtime import init_ray
    from mer_ray.score.progress import ProgressLogger

    init_ray(cfg.ray)
    sink = ShardSink(functools.partial(scores_store, cfg.out),
                     functools.partial(split_output, timeline=cfg.timeline,
                                       segments=plan.segments), FUSED_SCHEMA,
                     rows_per_shard=cfg.videos_per_shard)
    with ProgressLogger(store, SCORES_DIR, total=already + todo.num_rows, already=already), \
            one_line_errors():
        write_shards(build_dataset(cfg, plan, todo), sink)
