"""The bundled voice models: the rich audio recipe + RBF SVM on RAVDESS speech, actors 01-20.

Two bundles from the same clips: ``audio`` (raw features: works on a single clip of a speaker
never heard before) and ``audio_speaker_norm`` (each speaker's features z-scored with that
speaker's own clips first; score switches to it when every input has a known speaker with
enough clips). Before the final fit on all actors, the recipe measures both the way they will
be used: five folds by actor (config.ACTOR_FOLDS over the actors present), every fold's
model fitted on the other actors only, the SVM's hyper-parameters fixed a priori. Those pooled
held-out figures go into the model cards. The wider comparison (thesis vs rich, MLP vs SVM)
is benchmarks/audio_accuracy.py.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from mer_ray.config import ACTOR_FOLDS, EMOTIONS
from mer_ray.media.audio_recipes import audio_recipe

RECIPE = "rich"


def ravdess_shards(data_dir: str, work: Path, log: Callable[[str], None]) -> Path:
    """Preprocess ``data_dir/ravdess-speech`` into ``work/shards`` (resumes if already there)."""
    shards = work / "shards"
    cmd = [sys.executable, "-m", "mer_ray.cli", "preprocess", str(Path(data_dir) / "ravdess-speech"),
           "--out", str(shards)]
    log("$ " + " ".join(cmd[2:]))
    subprocess.run(cmd, check=True)
    return shards


def actor_folds(groups: np.ndarray) -> list[np.ndarray]:
    """Test masks of the five actor folds (ACTOR_FOLDS restricted to the actors present)."""
    actors = np.array([int(g.split(":")[1]) if g.startswith("actor:") else -1 for g in groups])
    masks = [np.isin(actors, fold) for fold in ACTOR_FOLDS]
    return [m for m in masks if m.any()]


def cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, speakers: np.ndarray,
                   speaker_norm: bool, seed: int) -> dict:
    """Pooled held-out metrics over the actor folds, plus each fold's accuracy."""
    from mer_ray.models.audio_svm import fit_svm, predict_proba
    from mer_ray.models.speaker_norm import speaker_normalize
    from mer_ray.report.metrics import chance_level, classification_metrics

    if speaker_norm:
        x = speaker_normalize(x, speakers)
    pred = np.full(len(y), -1)
    folds = []
    for test in actor_folds(groups):
        model = fit_svm(x[~test], y[~test], groups[~test], seed)
        pred[test] = predict_proba(model, x[test]).argmax(1)
        folds.append(float((pred[test] == y[test]).mean()))
    m = classification_metrics(y, pred)
    m.update(fold_accuracy=folds, chance_level=chance_level(y))
    return m


def fit_bundle(run_dir: Path, x: np.ndarray, y: np.ndarray, groups: np.ndarray,
               speakers: np.ndarray, speaker_norm: bool, seed: int) -> dict:
    """Fit on every clip and write the bundle (model.skops + bundle.json)."""
    from mer_ray.models.audio_svm import MODEL_FILE, fit_svm, save_svm
    from mer_ray.models.bundle import BundleInfo, write_bundle_info
    from mer_ray.models.speaker_norm import speaker_normalize
    from mer_ray.train.rundir import write_labels

    if speaker_norm:
        x = speaker_normalize(x, speakers)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_svm(fit_svm(x, y, groups, seed), run_dir / MODEL_FILE)
    recipe = audio_recipe(RECIPE)
    info = write_bundle_info(str(run_dir), BundleInfo(
        kind="audio", classes=list(EMOTIONS), model_file=MODEL_FILE, recipe=recipe.name,
        feature_column=recipe.column, backbone=None, model_id="", classifier="svm",
        speaker_norm=speaker_norm))
    write_labels(run_dir)
    return {"model_id": info.model_id}


def make_audio_bundles(data_dir: str, out: Path, seed: int = 0,
                       shards: str | None = None) -> dict:
    """Preprocess (unless ``shards``), cross-validate and fit both audio bundles into ``out``."""
    from mer_ray.recipes.runlog import RunLog
    from mer_ray.recipes.cards import audio_card
    from mer_ray.train.data import read_clip_rows

    log = RunLog(out / "audio" / "run_log.txt")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mer_ray_audio_") as work:
        src = Path(shards) if shards else ravdess_shards(data_dir, Path(work), log)
        rows = read_clip_rows(str(src), audio_recipe(RECIPE).column)
        keep = rows.labelled
        x, y = rows.x[keep], rows.labels[keep]
        groups, speakers = rows.groups[keep], rows.speakers[keep]
    log(f"{len(y)} labelled RAVDESS speech clips of {len(set(speakers))} actors, "
        f"{x.shape[1]} features ({RECIPE} recipe), seed {seed}")
    results = {}
    for name, sn in (("audio", False), ("audio_speaker_norm", True)):
        cv = cross_validate(x, y, groups, speakers, sn, seed)
        log(f"{name}: 5 folds by actor, pooled held-out accuracy {cv['accuracy']:.4f}, "
            f"macro F1 {cv['macro']['f1']:.4f}, per fold "
            + ", ".join(f"{a:.3f}" for a in cv["fold_accuracy"]))
        run_dir = out / name
        fitted = fit_bundle(run_dir, x, y, groups, speakers, sn, seed)
        (run_dir / "metrics.json").write_text(json.dumps(
            {"protocol": "5 folds by actor (config.ACTOR_FOLDS), pooled", **cv}, indent=2) + "\n")
        audio_card(run_dir, cv, sn, len(y), len(set(speakers)), seed)
        log(f"{name}: fitted on all {len(y)} clips -> {run_dir} ({fitted['model_id']})")
        results[name] = cv
    if (out / "audio_speaker_norm").is_dir() and (out / "audio" / "run_log.txt").is_file():
        (out / "audio_speaker_norm" / "run_log.txt").write_text(
            "see ../audio/run_log.txt (both audio bundles are made by one run)\n")
    log(f"audio bundles written in {time.perf_counter() - t0:.0f} s")
    return results
