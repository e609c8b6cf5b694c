"""`evaluate`: metrics of a score output against true labels -> metrics.json, PNGs, report.html
(the page also lists every input, failures, keyframe timelines and faces; report/html.py).

Sections: the fused decision (Alg. 3.9) on every scored row, each path alone on the rows it
could score, and all three on the rows that had both modalities (a like-for-like comparison).
Rows that could not be scored (failed inputs, ``no_signal``) are not in the metrics; each
section's ``coverage`` says which share of the labelled rows it covers.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from mer_ray.config import EMOTION_INDEX, EMOTIONS, EvaluateConfig
from mer_ray.score.fusion import AUDIO_VISUAL

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"
PICTURES = ("fused", "visual", "audio")   # sections drawn as confusion PNGs
THESIS_FIGURES = {"fused": 0.99, "visual": 0.98, "audio": 0.69,
                  "note": "thesis, RAVDESS, random 80/20 frame split (not actor-independent)"}


def _argmax_labels(column: pd.Series) -> np.ndarray:
    from mer_ray.score.results import probs_matrix

    return probs_matrix(column).argmax(axis=1)


def fused_pred(rows: pd.DataFrame) -> np.ndarray:
    return np.array([EMOTION_INDEX[e] for e in rows["emotion"]], int)


def section_rows(df: pd.DataFrame) -> dict[str, tuple[str, pd.DataFrame, np.ndarray]]:
    """name -> (title, rows, predicted class indices) for each evaluated section."""
    fused = df[df["emotion"].notna()]
    visual = df[df["visual_probs"].notna()]
    audio = df[df["audio_probs"].notna()]
    both = df[df["fusion_mode"] == AUDIO_VISUAL]
    return {
        "fused": ("Fused decision (Alg. 3.9), every scored video", fused, fused_pred(fused)),
        "visual": ("Visual path: mean of keyframe probabilities", visual,
                   _argmax_labels(visual["visual_probs"])),
        "audio": ("Audio path: the audio model alone", audio, _argmax_labels(audio["audio_probs"])),
        "both_fused": ("Videos with both modalities: fused", both, fused_pred(both)),
        "both_visual": ("Videos with both modalities: visual alone", both,
                        _argmax_labels(both["visual_probs"])),
        "both_audio": ("Videos with both modalities: audio alone", both,
                       _argmax_labels(both["audio_probs"])),
    }


def compute_metrics(df: pd.DataFrame) -> dict:
    """All sections' metrics for labelled rows ``df`` (see :mod:`mer_ray.report.metrics`)."""
    from mer_ray.report.metrics import chance_level, classification_metrics

    n_labelled = len(df)
    sections = {}
    for name, (title, rows, pred) in section_rows(df).items():
        y = rows["label_index"].to_numpy(dtype=np.int64)
        m = classification_metrics(y, pred, EMOTIONS)
        m.update(title=title, coverage=len(rows) / n_labelled if n_labelled else 0.0,
                 chance=chance_level(y))
        sections[name] = m
    return sections


def _first(values: pd.Series):
    vals = values.dropna().unique().tolist()
    return vals[0] if len(vals) == 1 else (vals or None)


def read_timeline(scores_dir: str) -> pd.DataFrame:
    """The keyframe rows of a score output (empty without ``score --timeline``)."""
    from mer_ray.score.schema import TIMELINE_DIR, scores_store

    return scores_store(scores_dir).read(TIMELINE_DIR).to_pandas()


def run_metadata(scores_dir: str, timeline: pd.DataFrame) -> dict:
    """When and with which mer_ray the report was made, and whether the run kept a timeline."""
    from datetime import datetime, timezone

    from mer_ray import __version__
    from mer_ray.score.schema import RUN_FILE, scores_store

    run = scores_store(scores_dir).read_json(RUN_FILE) or {}
    return {"generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "mer_ray_version": __version__,
            "timeline": bool(run.get("timeline")) or len(timeline) > 0}


def _save_confusion(metrics: dict, out: Path) -> dict[str, str]:
    """confusion_<section>.png for the sections in PICTURES; section -> file name."""
    from mer_ray.report.plots import save_confusion_png

    images = {}
    for name, m in metrics["sections"].items():
        if m["n"] and name in PICTURES:
            images[name] = f"confusion_{name}.png"
            save_confusion_png(m["confusion_matrix"], EMOTIONS, str(out / images[name]),
                               f"{m['title']} (n={m['n']}, acc={m['accuracy']:.3f})")
    return images


def evaluate(cfg: EvaluateConfig) -> dict:
    """Write metrics.json, confusion PNGs and report.html; returns the metrics dict."""
    from mer_ray.report.html import ReportInputs, render_evaluation
    from mer_ray.score.results import attach_labels, labelled, read_scores

    all_rows = attach_labels(read_scores(cfg.scores), cfg.labels)
    timeline = read_timeline(cfg.scores)
    df = labelled(all_rows)
    out = Path(cfg.out) if cfg.out else Path(cfg.scores) / "report"
    out.mkdir(parents=True, exist_ok=True)
    metrics = {
        "scores": cfg.scores, "labels": cfg.labels, "rows": len(all_rows), "labelled": len(df),
        "skipped_shards": list(all_rows.attrs.get("skipped_shards", [])),
        "run": run_metadata(cfg.scores, timeline),
        "status": dict(sorted(Counter(all_rows["status"]).items())),
        "fusion_mode": dict(sorted(Counter(all_rows["fusion_mode"]).items())),
        "emotion": dict(sorted(Counter(all_rows["emotion"].dropna()).items())),
        "weights": {"visual": _first(all_rows["w_visual"]), "audio": _first(all_rows["w_audio"])},
        "models": {"visual": _first(all_rows["visual_model_id"]),
                   "audio": _first(all_rows["audio_model_id"])},
        "speakers": sorted(s for s in df["speaker"].dropna().unique()),
        "thesis": THESIS_FIGURES,
        "sections": compute_metrics(df) if len(df) else {},
    }
    metrics["images"] = _save_confusion(metrics, out)
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=_json_default))
    page = render_evaluation(metrics, ReportInputs(all_rows, timeline, str(out)))
    (out / REPORT_FILE).write_text(page, encoding="utf-8")
    metrics["report"] = str(out / REPORT_FILE)
    return metrics


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
