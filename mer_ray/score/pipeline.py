"""The score job: one streaming Ray Data pipeline from an archive to one Parquet row per input.

::

    from_items(inputs not scored yet)
      -> map_batches(ExtractStage, ActorPoolStrategy, CPU)     # ClipExtractor: keyframes, faces,
                                                              # audio features (no augmentation)
      -> map_batches(VisualStage, ActorPoolStrategy, GPU opt.)  # mean of keyframe probabilities
      -> map_batches(AudioStage, ActorPoolStrategy, GPU opt.)   # audio probabilities
      -> map_batches(fuse_rows)                                 # Alg. 3.9 + status + timeline
      -> write_datasink(ScoreShardSink)                         # atomic shards, scores last
    [-> speaker_pass.finalize]        # speaker-normalised audio model only: audio probabilities
                                      # with every scored clip's per-speaker statistics, re-fused

Each stage sees a bounded batch and Ray Data's streaming executor applies backpressure, so
memory does not grow with the archive. Resuming: inputs whose path is in a committed scores
shard are skipped; the models and weights must match the earlier run (``run.json``).
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

from mer_ray.config import EMOTIONS, ScoreConfig
from mer_ray.data.shards import ShardStore
from mer_ray.media import errors as st
from mer_ray.media.options import ExtractOptions
from mer_ray.score.fusion import NONE, FusionWeights, fuse
from mer_ray.score.predictors import (AUDIO_FEATURES_COL, AUDIO_PROBS_COL, FACE_PROBS_COL,
                                      FACES_COL)
from mer_ray.score.schema import (AUDIO_INPUT, NO_SIGNAL, PROB_COLUMNS, RUN_FILE, SCHEMAS,
                                  SCORES_DIR, SCORES_SCHEMA, SUMMARY_FILE, TIMELINE_DIR,
                                  TIMELINE_SCHEMA)

log = logging.getLogger(__name__)

ITEM_COLUMNS = ["path", "video_id", "corpus", "label", "label_index", "speaker", "actor"]
TIMELINE_COL = "_timeline"
THESIS_TABLE_4_7 = {"visual_s": 0.236, "audio_s": 0.039, "fusion_s": 0.453,
                    "machine": "RTX 3070 8 GB, i7-11800H (thesis Table 4.1)"}

EXTRACTED_SCHEMA = pa.schema([
    *[SCORES_SCHEMA.field(c) for c in ITEM_COLUMNS],
    SCORES_SCHEMA.field("status"), SCORES_SCHEMA.field("error"),
    SCORES_SCHEMA.field("keyframes"), SCORES_SCHEMA.field("faces"),
    SCORES_SCHEMA.field("has_audio"), SCORES_SCHEMA.field("duration_s"),
    SCORES_SCHEMA.field("t_decode_s"), SCORES_SCHEMA.field("t_faces_s"),
    SCORES_SCHEMA.field("t_audio_features_s"),
    SCORES_SCHEMA.field("t_visual_s"), SCORES_SCHEMA.field("t_audio_s"),
    (AUDIO_FEATURES_COL, pa.list_(pa.float32())),
    (FACES_COL, pa.list_(pa.binary())),              # face crops, in keyframe order
    ("_kf_index", pa.list_(pa.int32())),             # every keyframe: frame index
    ("_kf_time", pa.list_(pa.float32())),            #                 timestamp
    ("_kf_face", pa.list_(pa.int32())),              #                 position in _faces or -1
    ("_boxes", pa.list_(pa.list_(pa.int32()))),      # one box per face
])
"""What the extraction stage emits per input (the model stages add their outputs)."""

_TIMELINE_STRUCT = pa.list_(pa.struct([f for f in TIMELINE_SCHEMA if f.name not in ("path", "video_id")]))
FUSED_SCHEMA = SCORES_SCHEMA.append(pa.field(TIMELINE_COL, _TIMELINE_STRUCT))


# --------------------------------------------------------------------------------------
# Stage 1: extraction (reuses mer_ray.media.extract.ClipExtractor, the preprocess code)
# --------------------------------------------------------------------------------------
def extract_options(cfg: ScoreConfig, audio_column: str = "audio_features",
                    decode_threads: int | None = None) -> ExtractOptions:
    """Extraction settings of a score run: no augmentation, a path without a model skipped, the
    rich audio vector only when the audio model wants it (``audio_column``)."""
    return dataclasses.replace(cfg.extract, audio_aug_copies=0,
                               faces=cfg.visual is not None, audio=cfg.audio is not None,
                               rich_audio=audio_column == "audio_rich_features",
                               decode_threads=decode_threads)


def extraction_row(item: dict, result: Any, audio_column: str = "audio_features") -> dict:
    """One EXTRACTED_SCHEMA row from an input row and its ``Extraction``; the audio model's
    input is the clip's ``audio_column`` vector."""
    clip = result.clip
    face_at = {f["frame_index"]: i for i, f in enumerate(result.frames)}
    status, error = st.expected_status(clip["status"], clip["error"], item.get("modality"))
    return {
        **{k: item.get(k) for k in ITEM_COLUMNS},
        "status": status, "error": error,
        "keyframes": clip["keyframes"], "faces": clip["faces_found"],
        "has_audio": bool(clip["has_audio"]), "duration_s": clip["duration_s"],
        "t_decode_s": clip["t_decode_s"], "t_faces_s": clip["t_faces_s"],
        "t_audio_features_s": clip["t_audio_s"],
        AUDIO_FEATURES_COL: clip.get(audio_column),
        FACES_COL: [np.ascontiguousarray(f["face"], np.uint8).tobytes() for f in result.frames],
        "_kf_index": [int(i) for i, _ in result.keyframe_times],
        "_kf_time": [float(t) for _, t in result.keyframe_times],
        "_kf_face": [face_at.get(int(i), -1) for i, _ in result.keyframe_times],
        "_boxes": [[int(v) for v in f["box"]] for f in result.frames],
    }


def extract_rows(extractor: Any, items: list[dict], audio_column: str = "audio_features") -> pa.Table:
    from mer_ray.data.preprocess import extract_input
    from mer_ray.data.schema import to_table

    rows = [extraction_row(item, extract_input(extractor, item["path"]), audio_column)
            for item in items]
    return to_table(rows, EXTRACTED_SCHEMA)


class ExtractStage:
    """Ray Data actor: one ClipExtractor (Haar cascade loaded once) per actor."""

    def __init__(self, opts: ExtractOptions, audio_column: str = "audio_features"):
        from mer_ray.media.extract import ClipExtractor
        from mer_ray.runtime import configure_process, limit_cv2_threads

        configure_process()
        limit_cv2_threads()
        self.extractor = ClipExtractor(opts)
        self.audio_column = audio_column
        if opts.audio:          # librosa/numba's first call costs seconds: pay it at start-up
            from mer_ray.media.audio import thesis_features

            thesis_features(np.zeros(22_050, np.float32))

    def __call__(self, batch: pa.Table) -> pa.Table:
        return extract_rows(self.extractor, batch.to_pylist(), self.audio_column)


# --------------------------------------------------------------------------------------
# Stage 4: fusion -> final rows
# --------------------------------------------------------------------------------------
def _emotion(probs) -> str | None:
    return None if probs is None else EMOTIONS[int(np.argmax(probs))]


def fuse_row(row: dict, weights: FusionWeights, model_ids: dict[str, str | None],
             timeline: bool) -> dict:
    """Alg. 3.9 on one extracted + predicted row -> a SCORES_SCHEMA row (+ timeline list)."""
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
    })
    for name, p in zip(PROB_COLUMNS, result.probs if result.probs is not None else [None] * 7):
        out[name] = None if p is None else float(p)
    out[TIMELINE_COL] = timeline_rows(row, face_probs) if timeline else None
    out["t_fusion_s"] = time.perf_counter() - t0
    return out


def timeline_rows(row: dict, face_probs: list) -> list[dict]:
    """One entry per keyframe: box and the visual model's output where a face was found."""
    entries = []
    for index, ts, face in zip(row.get("_kf_index") or [], row.get("_kf_time") or [],
                               row.get("_kf_face") or []):
        probs = face_probs[face] if 0 <= face < len(face_probs) else None
        entries.append({"frame_index": index, "timestamp_s": ts, "has_face": face >= 0,
                        "box": row["_boxes"][face] if face >= 0 else None,
                        "emotion": _emotion(probs),
                        "confidence": None if probs is None else float(max(probs)),
                        "probs": probs})
    return entries


def fuse_rows(batch: pa.Table, weights: FusionWeights, model_ids: dict[str, str | None],
              timeline: bool) -> pa.Table:
    """A batch of predicted rows -> FUSED_SCHEMA rows (scores + nested timeline)."""
    from mer_ray.data.schema import to_table

    return to_table([fuse_row(r, weights, model_ids, timeline) for r in batch.to_pylist()],
                    FUSED_SCHEMA)


def split_output(table: pa.Table) -> dict[str, pa.Table]:
    """Fused rows -> {"scores": ..., "timeline": ...} with the final schemas."""
    from mer_ray.data.schema import to_table

    entries = [{"path": r["path"], "video_id": r["video_id"], **e}
               for r in table.select(["path", "video_id", TIMELINE_COL]).to_pylist()
               for e in (r[TIMELINE_COL] or [])]
    return {SCORES_DIR: table.select(SCORES_SCHEMA.names).cast(SCORES_SCHEMA),
            TIMELINE_DIR: to_table(entries, TIMELINE_SCHEMA)}


def score_locally(cfg: ScoreConfig, rows: list[dict], extractor: Any = None, visual: Any = None,
                  audio: Any = None) -> dict[str, pa.Table]:
    """The same stages in this process, without Ray (tests, debugging one file): input rows
    -> {"scores": ..., "timeline": ...}. Pass built extractor/predictors to reuse them. A
    speaker-normalised audio model uses the statistics of the rows given here."""
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.models.bundle import AudioPredictor, VisualPredictor
    from mer_ray.score.predictors import predict_audio, predict_faces

    column = audio_column(cfg)
    extractor = extractor or ClipExtractor(extract_options(cfg, column))
    table = extract_rows(extractor, rows, column)
    if cfg.visual is not None:
        table = predict_faces(visual or VisualPredictor(cfg.visual), table)
    if cfg.audio is not None:
        audio = audio or AudioPredictor(cfg.audio)
        table = predict_audio(audio, table)
    weights, ids = FusionWeights(cfg.w_visual, cfg.w_audio), model_ids(cfg)
    out = split_output(fuse_rows(table, weights, ids, cfg.timeline))
    if cfg.audio is not None and audio.info.speaker_norm:
        from mer_ray.score.speaker_pass import finalize_table

        out[SCORES_DIR] = finalize_table(out[SCORES_DIR], audio, weights, ids)
    return out


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------
def store_for(out: str) -> ShardStore:
    """The scores (+ timeline) shard store of a score output directory."""
    return ShardStore(out, SCHEMAS, primary=SCORES_DIR)


def shard_id_for(scores: pa.Table) -> str:
    """Shard id from the paths a scores table holds (see shards.shard_id_for)."""
    from mer_ray.data.shards import shard_id_for as for_paths

    return for_paths(scores.column("path").to_pylist())


def _make_sink(out: str, timeline: bool, rows_per_shard: int):
    from ray.data import Datasink

    class ScoreShardSink(Datasink):
        """Writes the rows of one write task as committed shards of ``rows_per_shard`` rows
        (timeline file first, scores file last)."""

        def write(self, blocks: Iterable, ctx) -> dict:
            tables = [b if isinstance(b, pa.Table) else pa.Table.from_pandas(b) for b in blocks]
            tables = [t for t in tables if t.num_rows]
            if not tables:
                return {"rows": 0, "status": {}}
            rows = pa.concat_tables(tables).cast(FUSED_SCHEMA)
            store, status = store_for(out), Counter()
            for start in range(0, rows.num_rows, rows_per_shard):
                parts = split_output(rows.slice(start, rows_per_shard))
                if not timeline:
                    parts.pop(TIMELINE_DIR)
                store.write_shard(shard_id_for(parts[SCORES_DIR]), parts)
                status.update(parts[SCORES_DIR].column("status").to_pylist())
            return {"rows": rows.num_rows, "status": dict(status)}

        @property
        def min_rows_per_write(self) -> int:
            return rows_per_shard

    return ScoreShardSink()


def bundle_infos(cfg: ScoreConfig) -> dict[str, Any]:
    """BundleInfo of each model (reads bundle.json only); ValueError if neither is given or a
    bundle is not what the score job can feed."""
    from mer_ray.models.bundle import load_bundle_info
    from mer_ray.score.predictors import check_audio_bundle

    if cfg.visual is None and cfg.audio is None:
        raise ValueError("score needs at least one model: --visual RUN_DIR and/or --audio RUN_DIR")
    infos: dict[str, Any] = {}
    for kind in ("visual", "audio"):
        run_dir = getattr(cfg, kind)
        infos[kind] = None if run_dir is None else load_bundle_info(run_dir)
        if infos[kind] is not None and infos[kind].kind != kind:
            raise ValueError(f"--{kind} {run_dir} holds a {infos[kind].kind} model")
    if infos["audio"] is not None:
        check_audio_bundle(infos["audio"], cfg.audio, speaker_norm=True)
    return infos


def model_ids(cfg: ScoreConfig) -> dict[str, str | None]:
    """model_id of each bundle (None for a path without a model)."""
    return {k: None if info is None else info.model_id for k, info in bundle_infos(cfg).items()}


def audio_column(cfg: ScoreConfig) -> str:
    """The clip column the audio model reads (its recipe's feature vector)."""
    info = bundle_infos(cfg)["audio"]
    return info.feature_column if info is not None else "audio_features"


def check_same_run(store: ShardStore, run: dict, has_rows: bool) -> None:
    """Refuse to mix rows from different models or weights in one output directory."""
    before = store.read_json(RUN_FILE)
    if not has_rows or before is None:
        return
    for key in ("model_ids", "weights", "skip", "timeline"):
        if before.get(key) != run[key]:
            raise ValueError(f"{store.out} already holds scores made with {key}={before.get(key)}; "
                             f"this run has {key}={run[key]}. Use a new --out (or delete the old one).")


# --------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------
def plan_workers(cfg: ScoreConfig, cluster_cpus: float) -> dict[str, float]:
    """CPUs per model actor, and how many extraction actors (and CPUs each) fit beside them:
    every actor must be schedulable at once, or the pool would wait forever."""
    n_models = cfg.visual_workers * (cfg.visual is not None) + cfg.audio_workers * (cfg.audio is not None)
    fair = max(0.05, (cluster_cpus - 0.5) / (2 * max(1, n_models)))   # models get <= half
    model_cpus = cfg.model_cpus if cfg.model_cpus is not None else min(
        1.0 if cfg.gpus_per_worker > 0 else 0.25, fair)
    spare = max(0.2, cluster_cpus - model_cpus * n_models - 0.3)   # 0.3: fusion + write tasks
    extract = cfg.extract_workers or max(1, math.ceil(spare - 0.05))
    return {"model_cpus": model_cpus, "extract_workers": extract,
            "extract_cpus": math.floor(1000 * min(1.0, spare / extract)) / 1000}


def _gpus(n: float) -> dict[str, float]:
    return {"num_gpus": n} if n > 0 else {}


def build_dataset(cfg: ScoreConfig, rows: list[dict], ids: dict[str, str | None]):
    """The lazy Ray Data pipeline for ``rows`` (input rows not scored yet)."""
    import ray

    plan = plan_workers(cfg, float(ray.cluster_resources().get("CPU", 1)))
    per_block = max(2, math.ceil(len(rows) / 20_000))
    n_blocks = max(1, math.ceil(len(rows) / per_block))
    pool = ray.data.ActorPoolStrategy
    ds = ray.data.from_items(rows, override_num_blocks=n_blocks)
    column = audio_column(cfg)
    ds = ds.map_batches(ExtractStage, fn_constructor_args=(extract_options(cfg, column, 1), column),
                        batch_size=1, batch_format="pyarrow", num_cpus=plan["extract_cpus"],
                        compute=pool(size=max(1, min(plan["extract_workers"], n_blocks))))
    if cfg.visual is not None:
        from mer_ray.score.predictors import VisualStage

        ds = ds.map_batches(VisualStage, fn_constructor_args=(cfg.visual,),
                            batch_size=cfg.visual_batch_videos, batch_format="pyarrow",
                            num_cpus=plan["model_cpus"], compute=pool(size=cfg.visual_workers),
                            **_gpus(cfg.gpus_per_worker))
    if cfg.audio is not None:
        from mer_ray.score.predictors import AudioStage

        ds = ds.map_batches(AudioStage, fn_constructor_args=(cfg.audio,),
                            batch_size=cfg.audio_batch_videos, batch_format="pyarrow",
                            num_cpus=plan["model_cpus"], compute=pool(size=cfg.audio_workers),
                            **_gpus(cfg.audio_gpus))
    weights = FusionWeights(cfg.w_visual, cfg.w_audio)
    return ds.map_batches(fuse_rows, fn_args=(weights, ids, cfg.timeline), batch_size=None,
                          batch_format="pyarrow", num_cpus=0.1)


def run_score(cfg: ScoreConfig) -> dict:
    """Score every input of ``cfg.source`` not yet in ``cfg.out``; returns the summary
    (also written to OUT/summary.json)."""
    from mer_ray.data.sources import list_inputs

    started = time.time()
    weights = FusionWeights(cfg.w_visual, cfg.w_audio)
    ids = model_ids(cfg)
    items = list_inputs(cfg.source, cfg.corpus)
    store = store_for(cfg.out)
    done = store.done_paths()
    run = {"model_ids": ids, "weights": weights.normalized().to_dict(), "skip": cfg.extract.skip,
           "timeline": cfg.timeline, "config": cfg.to_dict()}
    check_same_run(store, run, has_rows=bool(done))
    store.write_json(RUN_FILE, run)
    todo = [it.to_row() for it in items if it.path not in done]
    log.info("%d inputs: %d already scored, %d to score", len(items), len(items) - len(todo), len(todo))
    if todo:
        from mer_ray.runtime import init_ray
        from mer_ray.score.progress import ProgressLogger

        init_ray(cfg.ray)
        ds = build_dataset(cfg, todo, ids)
        with ProgressLogger(store, SCORES_DIR, total=len(done) + len(todo), already=len(done)):
            ds.write_datasink(_make_sink(cfg.out, cfg.timeline, cfg.videos_per_shard),
                              ray_remote_args={"num_cpus": 0})
    speaker_norm = None
    info = bundle_infos(cfg)["audio"]
    if info is not None and info.speaker_norm:       # every clip is in: the second pass
        from mer_ray.score.speaker_pass import finalize

        speaker_norm = finalize(store, cfg.audio, weights, ids)
        store.write_json(RUN_FILE, {**run, "speaker_norm": speaker_norm})
    return summarize(store, cfg, listed=len(items), scored=len(todo),
                     seconds=time.time() - started, speaker_norm=speaker_norm)


def _mean(values: list) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(float(np.mean(vals)), 4) if vals else None


def summarize(store: ShardStore, cfg: ScoreConfig, listed: int, scored: int, seconds: float,
              speaker_norm: dict | None = None) -> dict:
    """Counts and timings over everything committed so far; written to OUT/summary.json
    (with the finalize pass's ``speaker_norm`` report when there was one)."""
    cols = store.read(SCORES_DIR, columns=[
        "status", "fusion_mode", "emotion", "t_decode_s", "t_faces_s", "t_audio_features_s",
        "t_visual_s", "t_audio_s", "t_fusion_s"]).to_pydict()
    per_video = {k: _mean(cols[k]) for k in ("t_decode_s", "t_faces_s", "t_audio_features_s",
                                             "t_visual_s", "t_audio_s", "t_fusion_s")}
    summary = {
        "out": cfg.out, "inputs_listed": listed, "rows": len(cols["status"]),
        "status": dict(sorted(Counter(cols["status"]).items())),
        "fusion_mode": dict(sorted(Counter(cols["fusion_mode"]).items())),
        "emotion": dict(sorted(Counter(e for e in cols["emotion"] if e).items())),
        "this_run": {"scored": scored, "seconds": round(seconds, 2),
                     "videos_per_s": round(scored / seconds, 3) if scored and seconds > 0 else None},
        "mean_seconds_per_video": per_video,
        "thesis_table_4_7": THESIS_TABLE_4_7,
    }
    if speaker_norm is not None:
        summary["speaker_norm"] = speaker_norm
    store.write_json(SUMMARY_FILE, summary)
    return summary
