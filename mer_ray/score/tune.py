"""`tune-fusion`: choose Alg. 3.9's path weights on labelled validation rows.

A grid over ``w_visual`` in [0, 1] (``w_audio = 1 - w_visual``) on the rows that have both
modalities; the best accuracy wins, ties go to the higher macro-F1, then to the weight
closest to the thesis's 0.5. The result is a JSON file that ``score --fusion-weights`` reads.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mer_ray.config import NUM_CLASSES, TuneFusionConfig
from mer_ray.score.fusion import FusionWeights, fuse_arrays

WEIGHTS_FILE = "fusion_weights.json"


def weight_grid(step: float) -> np.ndarray:
    """w_visual values 0, step, ..., 1 (1 included)."""
    if not 0 < step <= 1:
        raise ValueError(f"grid step must be in (0, 1], got {step}")
    n = int(round(1 / step))
    return np.round(np.linspace(0.0, 1.0, n + 1), 6)


def _macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, labels=list(range(NUM_CLASSES)), average="macro",
                          zero_division=0))


def sweep(visual: np.ndarray, audio: np.ndarray, y: np.ndarray, grid: np.ndarray) -> list[dict]:
    """Accuracy and macro-F1 of the fused argmax for each ``w_visual`` in ``grid``."""
    rows = []
    for w in grid:
        weights = FusionWeights(float(w), float(1 - w))
        pred = fuse_arrays(visual, audio, weights).argmax(axis=1)
        rows.append({"w_visual": float(w), "w_audio": float(round(1 - w, 6)),
                     "accuracy": float(np.mean(pred == y)), "macro_f1": _macro_f1(y, pred)})
    return rows


def pick(rows: list[dict]) -> dict:
    """Best grid row: accuracy, then macro-F1, then closeness to 0.5."""
    return max(rows, key=lambda r: (round(r["accuracy"], 9), round(r["macro_f1"], 9),
                                    -abs(r["w_visual"] - 0.5)))


def tune_fusion(cfg: TuneFusionConfig) -> dict:
    """Run the sweep on ``cfg.scores`` and write the chosen weights; returns what was written."""
    from mer_ray.score.results import attach_labels, labelled, probs_matrix, read_scores

    df = labelled(attach_labels(read_scores(cfg.scores), cfg.labels))
    if cfg.speakers:
        df = df[df["speaker"].isin(set(cfg.speakers))].reset_index(drop=True)
    both = df[df["visual_probs"].notna() & df["audio_probs"].notna()].reset_index(drop=True)
    if both.empty:
        raise ValueError(f"{cfg.scores}: no labelled rows with both a visual and an audio "
                         f"prediction (labelled rows: {len(df)}); nothing to tune on")
    visual, audio = probs_matrix(both["visual_probs"]), probs_matrix(both["audio_probs"])
    y = both["label_index"].to_numpy(dtype=np.int64)
    rows = sweep(visual, audio, y, weight_grid(cfg.step))
    best = pick(rows)
    thesis = min(rows, key=lambda r: abs(r["w_visual"] - 0.5))
    result = {
        "weights": {"visual": best["w_visual"], "audio": best["w_audio"]},
        "accuracy": best["accuracy"], "macro_f1": best["macro_f1"],
        "thesis_weights": {"visual": 0.5, "audio": 0.5, "accuracy": thesis["accuracy"],
                           "macro_f1": thesis["macro_f1"]},
        "n_rows": int(len(both)), "scores": cfg.scores, "labels": cfg.labels,
        "speakers": list(cfg.speakers) if cfg.speakers else None, "grid": rows,
    }
    out = Path(cfg.out) if cfg.out else Path(cfg.scores) / WEIGHTS_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    result["path"] = str(out)
    return result
