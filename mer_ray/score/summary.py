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
                     seconds: float, speaker_norm: dict | None = None) -> dict:
    """Counts and timings over everything committed so far; written to OUT/summary.json
    (with the finalize pass's ``speaker_norm`` report when there was one)."""
    cols = store.read(SCORES_DIR, columns=["status", "fusion_mode", "emotion", *TIMINGS]).to_pydict()
    summary = {
        "out": cfg.out, "inputs_listed": listed, "rows": len(cols["status"]),
        "status": dict(sorted(Counter(cols["status"]).items())),
        "fusion_mode": dict(sorted(Counter(cols["fusion_mode"]).items())),
        "emotion": dict(sorted(Counter(e for e in cols["emotion"] if e).items())),
        "this_run": {"scored": scored, "seconds": round(seconds, 2),
                     "videos_per_s": round(scored / seconds, 3) if scored and seconds > 0 else None},
        "mean_seconds_per_video": {k: _mean(cols[k]) for k in TIMINGS},
        "thesis_table_4_7": THESIS_TABLE_4_7,
    }
    if speaker_norm is not None:
        summary["speaker_norm"] = speaker_norm
    store.write_json(SUMMARY_FILE, summary)
    return summary
