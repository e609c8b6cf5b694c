"""A visual bundle on a labelled folder of face images: metrics.json, confusion.png, predictions.

The images are read in batches at the crop size every visual model takes (200x200 RGB), the
way ingest-images prepares and stores them (encoded: media/crop_codec.py), so the figures are
those of the model as score runs it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from mer_ray.config import EMOTIONS, EMOTION_INDEX, FACE_SIZE


def evaluate_images(images_dir: str, run_dir: str, out: str, batch: int = 512) -> dict:
    """Score every labelled image under ``images_dir`` with the visual bundle ``run_dir``;
    write ``out``/metrics.json, confusion.png, predictions.parquet; return the metrics."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mer_ray.data.image_folders import list_labelled_images, load_faces
    from mer_ray.media.crop_codec import as_stored
    from mer_ray.models.bundle import VisualPredictor
    from mer_ray.report.metrics import chance_level, classification_metrics
    from mer_ray.report.plots import save_confusion_png

    rows, skipped = list_labelled_images(images_dir)
    if not rows:
        raise ValueError(f"{images_dir}: no images under class folders named after the 7 "
                         f"classes ({', '.join(EMOTIONS)}, or anger/fearful/... )")
    predictor = VisualPredictor(run_dir)
    t0 = time.perf_counter()
    paths, labels, probs = [], [], []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        faces, ok = load_faces([r["path"] for r in chunk], FACE_SIZE)
        probs.append(predictor.predict(as_stored(faces)))
        kept = [r for r, good in zip(chunk, ok) if good]
        paths += [r["path"] for r in kept]
        labels += [EMOTION_INDEX[r["label"]] for r in kept]
        if not ok.all():
            skipped["unreadable image"] += int((~ok).sum())
    seconds = time.perf_counter() - t0
    p = np.concatenate(probs)
    y = np.asarray(labels, np.int64)
    metrics = classification_metrics(y, p.argmax(1))
    metrics.update(chance_level=chance_level(y), skipped=dict(skipped), images_dir=images_dir,
                   model=predictor.info.model_id, seconds=round(seconds, 2),
                   images_per_s=round(len(y) / seconds, 1) if seconds else None)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    save_confusion_png(metrics["confusion_matrix"], EMOTIONS, str(out_dir / "confusion.png"),
                       title=f"{Path(images_dir).name}: accuracy {metrics['accuracy']:.3f}")
    pq.write_table(pa.table({
        "path": paths, "label": [EMOTIONS[i] for i in y],
        "predicted": [EMOTIONS[i] for i in p.argmax(1)],
        "confidence": p.max(1).astype(np.float32),
        "probs": pa.array(list(p.astype(np.float32)), pa.list_(pa.float32(), len(EMOTIONS))),
    }), out_dir / "predictions.parquet")
    return metrics
