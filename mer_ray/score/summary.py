"""summary.json of a score output: counts and timings over every committed row."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from mer_ray.config import ScoreConfig
from mer_ray.data.bookkeeping import paths_not_listed
from mer_ray.data.shards import ShardStore
from mer_ray.score.schema import SCORES_DIR, SUMMARY_FILE

THESIS_TABLE_4_7 = {"visual_s": 0.236, "audio_s": 0.039, "fusion_s": 0.453,
                    "machine": "RTX 3070 8 GB, i7-11800H (thesis Table 4.1)"}
TIMINGS = ("t_decode_s", "t_faces_s", "t_audio_features_s", "t_visual_s", "t_audio_s",
           "t_fusion_s")


def _mean(values: pa.ChunkedArray) -> float | None:
    mean = pc.mean(values.cast(pa.float64())).as_py()      # nulls skipped; None when all are
    return None if mean is None else round(float(mean), 4)


def _counts(values: pa.ChunkedArray) -> dict[str, int]:
    """{value: rows}, sorted by value, nulls left out (columnar: a million rows stay cheap)."""
    pairs = pc.value_counts(values.drop_null()).to_pylist()
    return dict(sorted((p["values"], p["counts"]) for p in pairs))


def summarize_scores(store: ShardStore, cfg: ScoreConfig, listed: int, scored: int,
                     seconds: float, speaker_norm: dict | None = None,
                     listed_paths: pa.Array | pa.ChunkedArray | set[str] | None = None,
                     on_ray: bool | None = None) -> dict:
    """Counts and timings over everything committed so far; written to OUT/summary.json
    (with the finalize pass's ``speaker_norm`` report when there was one). With
    ``listed_paths`` (this run's inputs) it also counts committed rows whose input is no
    longer listed (deleted or moved since): kept, not deleted, but said. ``on_ray``: whether
    this run's inputs went through Ray (False: scored in this process, score.in_process)."""
    cols = store.read(SCORES_DIR, columns=["path", "status", "fusion_mode", "emotion",
                                           *TIMINGS])
    emotion = cols.column("emotion")
    summary = {
        "out": cfg.out, "inputs_listed": listed, "rows": cols.num_rows,
        "rows_without_input": (None if listed_paths is None
                               else paths_not_listed(cols.column("path"), listed_paths)),
        "status": _counts(cols.column("status")),
        "fusion_mode": _counts(cols.column("fusion_mode")),
        "emotion": _counts(emotion.filter(pc.not_equal(emotion, ""))),
        "this_run": {"scored": scored, "seconds": round(seconds, 2),
                     "videos_per_s": round(scored / seconds, 3) if scored and seconds > 0 else None,
                     "on_ray": on_ray},
        "mean_seconds_per_video": {k: _mean(cols.column(k)) for k in TIMINGS},
        "thesis_table_4_7": THESIS_TABLE_4_7,
    }
    if cfg.extract.segment_s is not None:
        from mer_ray.score.segments import SEGMENTS_DIR

        summary["segments"] = store.read(SEGMENTS_DIR, columns=["path"]).num_rows
    if store.quarantined or store.damaged:
        summary["damaged_shards"] = {"moved_to": list(store.quarantined),
                                     "skipped": sorted(store.damaged)}
    if speaker_norm is not None:
        summary["speaker_norm"] = speaker_norm
    store.write_json(SUMMARY_FILE, summary)
    return summary
