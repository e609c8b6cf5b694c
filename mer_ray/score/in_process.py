"""Small archives scored without Ray: the score job's stages in this process.

Starting embedded Ray costs a small run more than its videos do: on 2 cores the head, the
worker processes and one model load per actor take ~15 s, against ~0.1 s of work per short
video. So when no cluster is named (--address, $RAY_ADDRESS) and no GPU is asked for, and at
most ``--in-process-max`` inputs are left, the run uses the same stages without Ray:

    inputs -> ExtractActor in a pool of extraction processes   (started before a model loads)
           -> VisualStage, AudioStage in this process          (loading while the pool works)
           -> fuse_rows -> split_output -> ShardStore.write_shard, a shard at a time

Rows, shards (names from their paths), status rows and resume are the job's; only the
scheduler differs. An extraction process that dies (a decoder crash) fails the pool, and
the caller scores what is left on Ray.
"""
from __future__ import annotations

import collections
import functools
import logging
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import pyarrow as pa

from mer_ray.config import ScoreConfig
from mer_ray.data.extraction import ExtractActor
from mer_ray.data.shards import ShardStore, shard_id_for
from mer_ray.data.sources import ITEM_COLUMNS
from mer_ray.score.fusion import FusionWeights
from mer_ray.score.plan import ScorePlan
from mer_ray.score.rows import extraction_rows, fuse_rows, split_output
from mer_ray.score.schema import SCORES_DIR

log = logging.getLogger(__name__)

AHEAD_SHARDS = 2
"""Inputs handed to the pool ahead of the shard being predicted, in shards: extraction keeps
running while a shard is predicted and written, and memory stays a few shards' worth."""


def runs_in_process(cfg: ScoreConfig, to_score: int) -> bool:
    """Whether a run with ``to_score`` inputs left is scored here (see the module docstring)."""
    if not 0 < to_score <= cfg.in_process_max:
        return False
    if cfg.ray.address or os.environ.get("RAY_ADDRESS"):
        return False
    return cfg.gpus_per_worker <= 0 and cfg.audio_gpus <= 0


def extraction_processes(cfg: ScoreConfig, to_score: int) -> int:
    """Extraction processes for ``to_score`` inputs: --extract-workers, else one per CPU
    (--num-cpus or this machine's); 1 extracts in this process itself."""
    cpus = cfg.ray.num_cpus or os.cpu_count() or 1
    return max(1, min(cfg.extract_workers or cpus, to_score))


def describe_in_process(cfg: ScoreConfig, to_score: int) -> str:
    """The dry run's plan for a run scored here."""
    n = extraction_processes(cfg, to_score)
    where = f"{n} extraction processes" if n > 1 else "extraction in this process"
    return (f"without Ray ({to_score} inputs, at most --in-process-max {cfg.in_process_max}): "
            f"{where}, the models in this process")


def score_in_process(cfg: ScoreConfig, plan: ScorePlan, store: ShardStore, todo: pa.Table,
                     already: int) -> None:
    """Score the input rows ``todo`` into ``store``, a committed shard per --videos-per-shard
    inputs, with the score job's progress line (``already``: rows committed before). The
    models see --visual-batch videos per call, as they arrive from the pool."""
    from mer_ray.score.progress import ProgressLogger

    items = todo.select(ITEM_COLUMNS).to_pylist()
    to_rows = functools.partial(extraction_rows, audio_column=plan.audio_column, opts=plan.extract)
    shard, batch = max(1, cfg.videos_per_shard), max(1, cfg.visual_batch_videos)
    weights = FusionWeights(cfg.w_visual, cfg.w_audio)
    with _Extraction(plan, to_rows, extraction_processes(cfg, len(items))) as extraction:
        rows = extraction.rows(items, ahead=AHEAD_SHARDS * shard)   # the pool starts here
        with ProgressLogger(store, SCORES_DIR, total=already + len(items), already=already):
            stages = _model_stages(cfg)
            for start in range(0, len(items), shard):
                predicted = [_predict(pa.concat_tables([next(rows) for _ in range(k)]), stages)
                             for k in _batch_sizes(min(shard, len(items) - start), batch)]
                fused = fuse_rows(pa.concat_tables(predicted), weights, plan.model_ids,
                                  cfg.timeline)
                parts = split_output(fused, timeline=cfg.timeline, segments=plan.segments)
                store.write_shard(shard_id_for(fused.column("path").to_pylist()), parts)


def _batch_sizes(n: int, batch: int) -> list[int]:
    """``n`` videos as model calls of ``batch`` videos, the last one shorter."""
    return [batch] * (n // batch) + [n % batch] * (n % batch > 0)


def _model_stages(cfg: ScoreConfig) -> list:
    """The run's model stages: the Ray pipeline's own VisualStage / AudioStage, built here."""
    from mer_ray.score.stages import AudioStage, VisualStage

    return ([VisualStage(cfg.visual)] if cfg.visual is not None else []) + (
        [AudioStage(cfg.audio)] if cfg.audio is not None else [])


def _predict(table: pa.Table, stages: list) -> pa.Table:
    for stage in stages:
        table = stage(table)
    return table


# ------------------------------------------------------------------------------ extraction
_ACTOR: ExtractActor | None = None
"""The ExtractActor of an extraction process: built by the parent before forking (its imports,
the face detector and the audio features' compiled code then load once for every process),
or by _start_process where processes are spawned."""


def _start_process(plan_extract, to_rows) -> None:
    """Pool initializer: one BLAS thread (a process per CPU already), Ctrl-C left to the
    parent (which stops the pool), and the extractor where it was not inherited."""
    global _ACTOR
    from threadpoolctl import threadpool_limits

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(1)
    if _ACTOR is None:
        _ACTOR = ExtractActor(plan_extract, to_rows, warm_up_audio=True)


def _default_cv2_threads() -> None:
    """OpenCV's own thread count again in this process (ExtractActor set it to one)."""
    import cv2

    cv2.setNumThreads(-1)


def _start_method() -> str:
    """"fork" on Linux while this process runs no Ray worker, else "spawn": a forked copy of
    Ray's core worker crashes the child when Ray objects it inherited are released there (a
    notebook or test that called ray.init before a small run)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return "spawn"
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _extract(item: dict) -> pa.Table:
    return _ACTOR.rows([item])


class _Extraction:
    """Extraction rows of input items, in order: from a pool of ``processes`` extraction
    processes, or from an ExtractActor in this process when ``processes`` is 1."""

    def __init__(self, plan: ScorePlan, to_rows, processes: int):
        self.plan, self.to_rows, self.processes = plan, to_rows, processes
        self.pool: ProcessPoolExecutor | None = None
        self.actor: ExtractActor | None = None

    def __enter__(self) -> "_Extraction":
        global _ACTOR
        import multiprocessing

        fork = _start_method() == "fork"
        if self.processes == 1 or fork:
            self.actor = ExtractActor(self.plan.extract, self.to_rows, warm_up_audio=True)
        if self.processes > 1:
            _ACTOR = self.actor
            context = multiprocessing.get_context(_start_method())
            self.pool = ProcessPoolExecutor(self.processes, context, initializer=_start_process,
                                            initargs=(self.plan.extract, self.to_rows))
        return self

    def __exit__(self, *exc) -> None:
        global _ACTOR
        _ACTOR = None
        if self.pool is not None:
            self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)

    def rows(self, items: list[dict], ahead: int) -> Iterator[pa.Table]:
        """One extraction table per item. With a pool, the first ``ahead`` items are handed
        out at once: the processes start then, before this process loads a model."""
        if self.pool is None:
            return (self.actor.rows([item]) for item in items)
        queue: collections.deque[Future] = collections.deque(
            self.pool.submit(_extract, item) for item in items[:ahead])
        _default_cv2_threads()              # the models here may use every core
        return self._from_pool(queue, iter(items[ahead:]))

    def _from_pool(self, queue: collections.deque, rest: Iterator[dict]) -> Iterator[pa.Table]:
        while queue:
            table = queue.popleft().result()
            item = next(rest, None)
            if item is not None:
                queue.append(self.pool.submit(_extract, item))
            yield table
