"""The preprocess job on Ray Data: inputs -> ClipExtractor actors -> atomic Parquet shards.

Pipeline (streaming; one input block = one actor call = one shard)::

    from_arrow(inputs not done yet, cut into blocks of at most ``videos_per_shard``)
      -> map_batches(ExtractUDF, ActorPoolStrategy, batch_size=None)   # CPU actors
      -> write_datasink(ClipShardSink)    # clips + frames tables, tmp file + rename, clips last

Blocks shrink towards the end of the job (guided self-scheduling), so the last actor to finish
is not left with a full shard while the others idle.

Resuming: inputs whose path is already in a committed clips shard are skipped.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from typing import Any, Iterable

import numpy as np
import pyarrow as pa

from mer_ray.config import PreprocessConfig
from mer_ray.data.schema import (CLIPS_DIR, CLIPS_SCHEMA, FRAMES_DIR, FRAMES_SCHEMA, SUMMARY_FILE,
                                 to_table)
from mer_ray.data.shards import ShardStore, new_shard_id, shard_id_for
from mer_ray.data.sources import InputItem, list_inputs
from mer_ray.media import errors as st
from mer_ray.media.options import ExtractOptions

log = logging.getLogger(__name__)

ITEM_COLUMNS = ["path", "video_id", "corpus", "label", "label_index", "speaker", "actor",
                "modality", "vocal_channel", "intensity", "statement", "repetition"]
FRAME_KEYS = ["video_id", "path", "label", "label_index", "speaker", "actor"]
FRAMES_COLUMN = "_frames"
_FRAME_STRUCT = pa.list_(pa.struct([("frame_index", pa.int32()), ("timestamp_s", pa.float32()),
                                    ("face", pa.binary()), ("box", pa.list_(pa.int32()))]))
UDF_SCHEMA = CLIPS_SCHEMA.append(pa.field(FRAMES_COLUMN, _FRAME_STRUCT))


def store_for(out: str) -> ShardStore:
    """The clips + frames shard store of a preprocess output directory."""
    return ShardStore(out, {CLIPS_DIR: CLIPS_SCHEMA, FRAMES_DIR: FRAMES_SCHEMA}, primary=CLIPS_DIR)


def extract_input(extractor: Any, path: str) -> Any:
    """``extractor.extract(path)``; a URI is first copied to a local temp file (deleted after).
    The size limit is checked on the remote listing before downloading (status too_large), and
    a missing or unreadable object gets status unreadable, as a local file would."""
    from mer_ray.media.extract import failed_extraction
    from mer_ray.storage import TooLargeError, is_uri, local_copy

    if not is_uri(path):
        return extractor.extract(path)
    max_mb = getattr(getattr(extractor, "opts", None), "max_file_mb", None)
    limit = None if max_mb is None else int(max_mb * 2**20)
    try:
        with local_copy(path, max_bytes=limit) as local:
            result = extractor.extract(local, name=path)
    except TooLargeError as err:
        return failed_extraction(st.TOO_LARGE, f"file is {err.size / 2**20:.1f} MiB, over the "
                                               f"{max_mb:g} MiB limit: {path}")
    except FileNotFoundError:
        return failed_extraction(st.UNREADABLE, f"no such file: {path}")
    except OSError as err:
        return failed_extraction(st.UNREADABLE, f"cannot read {path}: {err}")
    except Exception as err:  # noqa: BLE001 - one bad input must never kill a job
        return failed_extraction(st.ERROR, f"{type(err).__name__}: {err}")
    if result.clip.get("error"):
        result.clip["error"] = result.clip["error"].replace(local, path)
    return result


def extract_rows(extractor: Any, items: list[dict]) -> pa.Table:
    """Run ``extractor`` over input rows -> one UDF row per input (frames nested)."""
    rows = []
    for item in items:
        result = extract_input(extractor, item["path"])
        frames = [{"frame_index": f["frame_index"], "timestamp_s": f["timestamp_s"],
                   "face": np.ascontiguousarray(f["face"], dtype=np.uint8).tobytes(),
                   "box": [int(v) for v in f["box"]]} for f in result.frames]
        clip = dict(result.clip)
        clip["status"], clip["error"] = st.expected_status(clip["status"], clip["error"],
                                                           item.get("modality"))
        rows.append({**{k: item.get(k) for k in ITEM_COLUMNS}, **clip, FRAMES_COLUMN: frames})
    return to_table(rows, UDF_SCHEMA)


class ExtractUDF:
    """Ray Data actor: one ClipExtractor (face detector loaded once) per actor."""

    def __init__(self, opts: ExtractOptions):
        from mer_ray.media.extract import ClipExtractor
        from mer_ray.runtime import configure_process, limit_cv2_threads

        configure_process()
        limit_cv2_threads()
        self.extractor = ClipExtractor(dataclasses.replace(opts, decode_threads=1))

    def __call__(self, batch: pa.Table) -> pa.Table:
        return extract_rows(self.extractor, batch.to_pylist())


def split_tables(table: pa.Table) -> dict[str, pa.Table]:
    """A block of UDF rows -> {"clips": ..., "frames": ...} tables with the final schemas."""
    rows = table.to_pylist()
    frames = [{**{k: row[k] for k in FRAME_KEYS}, **frame}
              for row in rows for frame in (row.get(FRAMES_COLUMN) or [])]
    clips = table.drop_columns([FRAMES_COLUMN]) if FRAMES_COLUMN in table.column_names else table
    return {CLIPS_DIR: clips.select(CLIPS_SCHEMA.names).cast(CLIPS_SCHEMA),
            FRAMES_DIR: to_table(frames, FRAMES_SCHEMA)}


def _make_sink(out: str):
    from ray.data import Datasink

    class ClipShardSink(Datasink):
        """Writes each incoming block as one committed shard (frames first, clips last)."""

        def __init__(self, out: str):
            self.out = out

        def write(self, blocks: Iterable, ctx) -> list[dict]:
            store, written = store_for(self.out), []
            for block in blocks:
                table = block if isinstance(block, pa.Table) else pa.Table.from_pandas(block)
                if table.num_rows == 0:
                    continue
                tables = split_tables(table)
                store.write_shard(shard_id_for(tables[CLIPS_DIR].column("path").to_pylist()), tables)
                counts = Counter(tables[CLIPS_DIR].column("status").to_pylist())
                written.append({"clips": tables[CLIPS_DIR].num_rows,
                                "frames": tables[FRAMES_DIR].num_rows, "status": dict(counts)})
            return written

    return ClipShardSink(out)


def dropped_rows(items: list[InputItem]) -> pa.Table:
    """Clips rows for inputs skipped on purpose (e.g. RAVDESS calm): counted, not processed."""
    rows = [{**it.to_row(), "status": st.DROPPED, "error": it.drop_reason, "has_audio": False,
             "audio_truncated": False, "frames_decoded": 0, "keyframes": 0, "faces_found": 0,
             "no_face_frames": 0} for it in items]
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


def input_blocks(rows: list[dict], sizes: list[int]) -> list[pa.Table]:
    """``rows`` cut into consecutive tables of ``sizes`` rows (one schema for all)."""
    table = pa.Table.from_pylist(rows)
    starts = np.cumsum([0, *sizes[:-1]])
    return [table.slice(int(start), size) for start, size in zip(starts, sizes)]


def run_preprocess(cfg: PreprocessConfig) -> dict:
    """Run the whole job; returns the summary (also written to OUT/summary.json)."""
    import ray

    from mer_ray.runtime import init_ray

    started = time.time()
    items = list_inputs(cfg.data_dir, cfg.corpus)
    store = store_for(cfg.out)
    done = store.done_paths()
    todo = [it for it in items if it.path not in done]
    drop = [it for it in todo if it.drop_reason]
    work = [it for it in todo if not it.drop_reason]
    log.info("%d inputs: %d already done, %d to process, %d dropped (no project class)",
             len(items), len(items) - len(todo), len(work), len(drop))
    if drop:
        store.write_shard(new_shard_id(), {CLIPS_DIR: dropped_rows(drop),
                                           FRAMES_DIR: FRAMES_SCHEMA.empty_table()})
    if work:
        init_ray(cfg.ray)
        n_actors = cfg.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        sizes = block_sizes(len(work), n_actors, cfg.videos_per_shard)
        log.info("%d extraction actor(s) at most; %d shards of %d down to %d videos",
                 n_actors, len(sizes), sizes[0], sizes[-1])
        ds = ray.data.from_arrow(input_blocks([it.to_row() for it in work], sizes))
        # every actor starts at once (no scale-up ramp); all of them were there at start
        pool = ray.data.ActorPoolStrategy(min_size=min(n_actors, len(sizes)), max_size=n_actors)
        ds = ds.map_batches(ExtractUDF, fn_constructor_args=(cfg.extract,),
                            batch_size=None, batch_format="pyarrow", compute=pool, num_cpus=1)
        # num_cpus=0: with every CPU held by an extraction actor, a write task that asks for
        # any CPU waits until extraction ends; at 0 the shards are written as blocks arrive
        ds.write_datasink(_make_sink(cfg.out), ray_remote_args={"num_cpus": 0})
    summary = summarize(store, cfg, processed=len(work), seconds=time.time() - started)
    return summary


def summarize(store: ShardStore, cfg: PreprocessConfig, processed: int, seconds: float) -> dict:
    """Counts over everything committed so far, written atomically to OUT/summary.json."""
    clips = store.read(CLIPS_DIR, columns=["status", "faces_found", "keyframes", "label",
                                           "t_decode_s", "t_faces_s", "t_audio_s", "t_total_s"])
    cols = clips.to_pydict()
    failed = [s for s in cols["status"] if s in st.FAILED_STATUSES]
    summary = {
        "out": cfg.out,
        "inputs": clips.num_rows,
        "status": dict(sorted(Counter(cols["status"]).items())),
        "labels": dict(sorted(Counter(l for l in cols["label"] if l).items())),
        "failed": len(failed),
        "keyframes": int(sum(v or 0 for v in cols["keyframes"])),
        "face_crops": int(sum(v or 0 for v in cols["faces_found"])),
        "this_run": {"processed": processed, "seconds": round(seconds, 2),
                     "videos_per_s": round(processed / seconds, 3) if seconds > 0 else None},
        "cpu_seconds": {k: round(float(sum(v or 0 for v in cols[k])), 2)
                        for k in ("t_decode_s", "t_faces_s", "t_audio_s", "t_total_s")},
        "config": cfg.to_dict(),
    }
    store.write_json(SUMMARY_FILE, summary)
    return summary
