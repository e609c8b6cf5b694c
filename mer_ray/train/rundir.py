"""Writing a run directory: model.keras, bundle.json, labels.json, config.json, history.csv,
metrics.json, confusion.png, curves.png. A run directory given as a URI is written locally
first and uploaded when training has finished (train_to_uri)."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from mer_ray.config import AROUSAL, EMOTIONS

RAY_DIR = "_ray"          # Ray Train checkpoints below a run directory

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


def train_to_uri(train_fn: Callable, cfg, **kwargs):
    """``train_fn(cfg, **kwargs)`` with ``cfg.out`` a URI: train into a local temp dir, then
    upload the run directory to ``cfg.out`` with bundle.json last (a run dir without it is an
    unfinished upload). Ray Train checkpoints go to ``cfg.storage`` or ``OUT/_ray`` (deleted
    after success unless ``keep_checkpoints``). Returns the outcome with ``run_dir`` = the URI."""
    from mer_ray.models.bundle import BUNDLE_FILE
    from mer_ray.storage import delete_dir, join, upload_dir

    storage = cfg.storage or join(cfg.out, RAY_DIR)
    with tempfile.TemporaryDirectory(prefix="mer-ray-run-") as tmp:
        local = os.path.join(tmp, "run")
        outcome = train_fn(dataclasses.replace(cfg, out=local, storage=storage), **kwargs)
        config = Path(local, "config.json")
        if config.is_file():     # record what the user asked for, not the temp dir
            write_json(config, {**json.loads(config.read_text()), "out": cfg.out,
                                "storage": cfg.storage})
        upload_dir(local, cfg.out, last=BUNDLE_FILE)
    if not cfg.storage and not cfg.keep_checkpoints:
        delete_dir(storage)
    outcome.run_dir = cfg.out
    return outcome
