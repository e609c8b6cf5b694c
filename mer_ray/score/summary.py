"""summary.json of a score output: counts and timings over every committed row."""
from __future__ import annotations

from collections import Counter

import numpy as np

from mer_ray.config import ScoreConfig
from mer_ray.data.shards import ShardStore
from mer_ray.score.schema import SCORES_DIR, SUMMARY_FILE

THESIS_TABLE_4_7 = {"visual_s": 0.236, "audio_s": 0.039, "fusion_s": 0.453,
                    "machine": "RTX 3070 8 GB, i7-11800H (thesis Table 4.1)"}
TIMINGS = ("t_decode_s", "t_faces_s", "t_audio_features_s", "t_visual_s", "t_audio_s",
           "t_fusion_s")


def _mean(values: list) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(float(np.mean(vals)), 4) if vals else None


def summarize_scores(store: ShardStore, cfg: ScoreConfig, listed: int, scored: int,
                     seconds: float, speaker_norm: dict | None = None,
                     listed_paths: set[str] | None = None) -> dict:
    """Counts and timings over everything committed so far; written to OUT/summary.json
    (with the finalize pass's ``speaker_norm`` report when there was one). With
    ``listed_paths`` (this run's inputs) it also counts committed rows whose input is no
    longer listed (deleted or moved since): kept, not deleted, but said."""
    cols = store.read(SCORES_DIR, columns=["path", "status", "fusion_mode", "emotion",
                                           *TIMINGS]).to_pydict()
    summary = {
        "out": cfg.out, "inputs_listed": listed, "rows": len(cols["status"]),
        "rows_without_input": (None if listed_paths is None
                               else len(set(cols["path"]) - listed_paths)),
        "status": dict(sorted(Counter(cols["status"]).items())),
        "fusion_mode": dict(sorted(Counter(cols["fusion_mode"]).items())),
        "emotion": dict(sorted(Counter(e for e in cols["emotion"] if e).items())),
        "this_run": {"scored": scored, "seconds": round(seconds, 2),
                     "videos_per_s": round(scored / seconds, 3) if scored and seconds > 0 else None},
        "mean_seconds_per_video": {k: _mean(cols[k]) for k in TIMINGS},
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
