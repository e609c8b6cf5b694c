"""Writing a run directory: model.keras, bundle.json, labels.json, config.json, history.csv,
metrics.json, confusion.png, curves.png."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from mer_ray.config import AROUSAL, EMOTIONS

HISTORY_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "train_samples",
                  "train_s", "epoch_s", "attempt"]


def write_json(path: str | Path, data) -> str:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    return str(path)


def write_labels(run_dir: str | Path) -> str:
    return write_json(Path(run_dir) / "labels.json",
                      {"classes": list(EMOTIONS),
                       "index": {c: i for i, c in enumerate(EMOTIONS)},
                       "arousal": {c: AROUSAL[c] for c in EMOTIONS}})


def write_history_csv(rows: list[dict], path: str | Path) -> str:
    """One row per epoch; empty cells where a value is missing (e.g. no validation)."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in HISTORY_FIELDS})
    return str(path)


def read_history_csv(path: str | Path) -> list[dict]:
    """history.csv back as dicts with numbers (None for empty cells)."""
    def num(value: str):
        if value == "":
            return None
        return int(value) if value.lstrip("-").isdigit() else float(value)

    with open(path, newline="") as fh:
        return [{k: num(v) for k, v in row.items()} for row in csv.DictReader(fh)]
