"""What differs between the training jobs, behind one small interface (runner.train drives it).

A task names its rows (``source``: face frames or clip vectors), fits its model into the run
directory (Ray Train in epochs, or in-process), says how to describe it in bundle.json and
metrics.json, and how the saved bundle predicts a batch for evaluation. ``task_for(cfg)``
picks the task and refuses settings it cannot honour with a ValueError.

- VisualTask: backbone + thesis head on face crops, Ray Train (optionally class-weighted).
- AudioMLPTask: the Table 4.4 MLP on one recipe's clip vectors, Ray Train.
- AudioSVMTask: the RBF SVM on one recipe's clip vectors, fitted once on the driver.
Both audio tasks z-score each speaker's clips first when ``speaker_norm`` is set.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from mer_ray.config import EMOTIONS, NUM_CLASSES, TrainAudioConfig, TrainVisualConfig
from mer_ray.data.splits import TRAIN, SplitPlan
from mer_ray.media.audio_recipes import audio_recipe, recipe_for_column
from mer_ray.models.bundle import BundleInfo
from mer_ray.models.speaker_norm import SpeakerStats
from mer_ray.train import raytrain
from mer_ray.train.data import Clips, Frames, TrainData, clips_source, iter_split_local, \
    speaker_stats
from mer_ray.train.evaluate import BatchPredictor
from mer_ray.train.loop import TrainHooks

log = logging.getLogger(__name__)

CLASS_WEIGHTS = ("none", "balanced")
RAY_TRAIN_ONLY = ("epochs", "batch_size", "lr", "workers", "gpu", "cpus_per_worker",
                  "max_failures", "checkpoint_every")
"""TrainCommon fields that only a Ray Train fit reads."""


@dataclass
class FitResult:
    """What a task's fit produced besides the model file."""

    history: list[dict] = field(default_factory=list)   # one row per epoch (none: no epochs)
    metrics: dict = field(default_factory=dict)         # extra metrics.json entries


class Task(Protocol):
    """The training spine's view of one job."""

    cfg: TrainVisualConfig | TrainAudioConfig   # resolved: every field has its final value
    kind: str               # bundle / metrics kind: "visual" | "audio"
    title: str              # first words of the confusion-matrix title
    in_epochs: bool         # fitted in epochs (history.csv, curves.png) or in one step
    per_video: bool         # rows are frames: also report per-video metrics
    augmented: bool         # training rows get their augmented copies

    def source(self) -> Frames | Clips:
        """The rows this task trains on (called once, before the split is planned)."""

    def fit(self, data: TrainData, plan: SplitPlan, out: Path, progress: bool,
            hooks: TrainHooks | None) -> FitResult:
        """Write the fitted model file into ``out``."""

    def bundle_info(self) -> BundleInfo:
        """bundle.json for that model file (model_id is set when it is written)."""

    def describe(self) -> dict:
        """Entries metrics.json gets after model_id (e.g. recipe, classifier)."""

    def predictor(self, run_dir: str) -> BatchPredictor:
        """The saved bundle as a batch -> probabilities function, fed as scoring feeds it."""

    def cleanup(self, out: Path) -> None:
        """Remove what fitting left behind once the run directory is complete."""


def task_for(cfg: TrainVisualConfig | TrainAudioConfig) -> Task:
    """The task for a config (resolved first); ValueError for settings it cannot honour."""
    if isinstance(cfg, TrainVisualConfig):
        return VisualTask(cfg)
    if isinstance(cfg, TrainAudioConfig):
        cfg = resolve_audio(cfg)
        return AUDIO_TASKS[cfg.classifier](cfg)
    raise TypeError(f"no training task for {type(cfg).__name__}")


def resolve_audio(cfg: TrainAudioConfig) -> TrainAudioConfig:
    """``cfg`` with feature_column, use_augmented and classifier filled in from its recipe
    (AudioRecipe); ValueError for settings that contradict the recipe or the classifier."""
    recipe = audio_recipe(cfg.recipe)
    column = cfg.feature_column or recipe.column
    owner = recipe_for_column(column)
    if owner is not None and owner.name != recipe.name:
        raise ValueError(f"recipe {recipe.name} reads '{recipe.column}', not '{column}'")
    classifier = cfg.classifier or recipe.default_classifier
    if classifier not in AUDIO_CLASSIFIERS:
        raise ValueError(f"unknown audio classifier {classifier!r}; expected one of "
                         f"{', '.join(AUDIO_CLASSIFIERS)}")
    has_copies = recipe.aug_column is not None and column == recipe.column
    augmented = cfg.use_augmented
    if augmented is None:
        augmented = has_copies and classifier == "mlp"
    elif augmented and not has_copies:
        raise ValueError(f"recipe {recipe.name} has no augmented copies of '{column}' "
                         f"(use_augmented=False)")
    elif augmented and classifier == "svm":
        raise ValueError("the svm trains on the original clips only (use_augmented=False, "
                         "or classifier mlp)")
    return dataclasses.replace(cfg, feature_column=column, classifier=classifier,
                               use_augmented=augmented)


def balanced_class_weights(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """weight_c = N / (K * n_c) over the given (training) labels: N rows, K classes present,
    n_c rows of class c; classes without rows get 0 (no row of theirs is ever weighted)."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


class _RayTrainTask:
    """A Keras model fitted in epochs on Ray Train (raytrain.fit)."""

    in_epochs = True
    augmented = False

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def loop_spec(self, data: TrainData, plan: SplitPlan) -> raytrain.LoopSpec:
        raise NotImplementedError

    def fit(self, data: TrainData, plan: SplitPlan, out: Path, progress: bool,
            hooks: TrainHooks | None) -> FitResult:
        spec = self.loop_spec(data, plan)
        return FitResult(raytrain.fit(self.cfg, spec, data, plan, out, progress, hooks))

    def cleanup(self, out: Path) -> None:
        raytrain.remove_checkpoints(self.cfg, out)


class VisualTask(_RayTrainTask):
    """Backbone + thesis head on face crops (thesis §3.4)."""

    kind = title = "visual"
    per_video = True

    def __init__(self, cfg: TrainVisualConfig) -> None:
        if cfg.class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"unknown class_weight {cfg.class_weight!r}; expected one of "
                             f"{', '.join(CLASS_WEIGHTS)}")
        super().__init__(cfg)

    def source(self) -> Frames:
        return Frames()

    def loop_spec(self, data: TrainData, plan: SplitPlan) -> raytrain.LoopSpec:
        from mer_ray.models.visual import imagenet_weights_path, init_visual_model
        from mer_ray.storage import is_uri

        cfg = self.cfg
        init, weights = cfg.init, cfg.weights_file
        if init == "imagenet":    # resolved here: workers may have another $KERAS_HOME / cwd
            weights = os.path.abspath(imagenet_weights_path(cfg.backbone, weights))
        elif init != "none" and not is_uri(init):       # URIs are fetched on each worker
            init = os.path.abspath(init)
        key = {"backbone": cfg.backbone, "case": cfg.case, "init": init, "weights_file": weights}
        class_weights = (balanced_class_weights(data.labels_of(TRAIN)).tolist()
                         if cfg.class_weight == "balanced" else None)
        return raytrain.LoopSpec(
            functools.partial(init_visual_model, cfg.backbone, cfg.case, init, weights), key,
            "uint8", augment=cfg.augment, class_weights=class_weights)

    def bundle_info(self) -> BundleInfo:
        return BundleInfo(kind="visual", classes=list(EMOTIONS), model_file=raytrain.MODEL_FILE,
                          recipe="face200", feature_column=None, backbone=self.cfg.backbone,
                          model_id="")

    def describe(self) -> dict:
        return {}

    def predictor(self, run_dir: str) -> BatchPredictor:
        from mer_ray.models.bundle import VisualPredictor

        model = VisualPredictor(run_dir)
        return lambda batch: model.predict(batch["x"])


class _AudioTask:
    """Shared by both audio classifiers: one recipe's clip vectors, optionally z-scored per
    speaker with statistics over every usable clip (labels never read)."""

    kind = "audio"
    per_video = False
    stats: SpeakerStats | None = None

    def source(self) -> Clips:
        """The recipe's clips; with speaker_norm the statistics are read here (and kept for
        evaluating the bundle with the same ones)."""
        cfg = self.cfg
        self.stats = speaker_stats(cfg.shards, cfg.feature_column) if cfg.speaker_norm else None
        return clips_source(cfg.feature_column, self.stats)

    def bundle_info(self) -> BundleInfo:
        return BundleInfo(kind="audio", classes=list(EMOTIONS), model_file=self.model_file,
                          recipe=self.cfg.recipe, feature_column=self.cfg.feature_column,
                          backbone=None, model_id="", classifier=self.cfg.classifier,
                          speaker_norm=self.cfg.speaker_norm)

    def describe(self) -> dict:
        return {"recipe": self.cfg.recipe, "classifier": self.cfg.classifier,
                "speaker_norm": self.cfg.speaker_norm}

    def predictor(self, run_dir: str) -> BatchPredictor:
        """Raw vectors in, as when scoring; a speaker-normalised bundle uses the statistics
        the model was trained with."""
        from mer_ray.models.bundle import AudioPredictor

        model, stats = AudioPredictor(run_dir), self.stats
        return lambda batch: model.predict(batch["x"], speakers=batch["speaker"], stats=stats)


class AudioMLPTask(_AudioTask, _RayTrainTask):
    """The Table 4.4 MLP on Ray Train; its standardisation (training rows only, after speaker
    normalisation) is stored in the model."""

    title = "audio"
    model_file = raytrain.MODEL_FILE

    def __init__(self, cfg: TrainAudioConfig) -> None:
        super().__init__(cfg)
        self.augmented = bool(cfg.use_augmented)

    def loop_spec(self, data: TrainData, plan: SplitPlan) -> raytrain.LoopSpec:
        from mer_ray.models.audio_mlp import build_audio_mlp, standardisation

        x = np.concatenate([b["x"] for b in iter_split_local(
            data, plan, TRAIN, augmented=self.augmented, batch_rows=4096)])
        mean, var = standardisation(x)
        dim = int(x.shape[1])
        return raytrain.LoopSpec(functools.partial(build_audio_mlp, dim, mean, var),
                                 {"input_dim": dim}, "float32", augmented=self.augmented,
                                 cache=True)


class AudioSVMTask(_AudioTask):
    """The RBF SVM (models/audio_svm.py), fitted in-process on the driver on the training
    split's original clips. Validation rows are only reported (C and gamma are fixed)."""

    in_epochs = False
    augmented = False

    def __init__(self, cfg: TrainAudioConfig) -> None:
        from mer_ray.models.audio_svm import MODEL_FILE

        ignored = [f.name for f in dataclasses.fields(TrainAudioConfig)
                   if f.name in RAY_TRAIN_ONLY and getattr(cfg, f.name) != f.default]
        if ignored:
            log.warning("classifier svm is fitted once on the driver: %s apply to the mlp "
                        "only and are not used", ", ".join(ignored))
        self.cfg, self.model_file = cfg, MODEL_FILE
        self.title = f"audio {cfg.recipe} SVM"

    def fit(self, data: TrainData, plan: SplitPlan, out: Path, progress: bool,
            hooks: TrainHooks | None) -> FitResult:
        from mer_ray.models.audio_svm import fit_svm, save_svm

        if hooks is not None and hooks.on_epoch_start is not None:
            raise ValueError("the svm has no epochs: on_epoch_start hooks apply to Ray Train "
                             "tasks only")
        batches = list(iter_split_local(data, plan, TRAIN, batch_rows=4096))
        x, y, groups = (np.concatenate([b[k] for b in batches]) for k in ("x", "y", "group"))
        t0 = time.perf_counter()
        model = fit_svm(x, y, groups, self.cfg.seed)
        fit_s = time.perf_counter() - t0
        save_svm(model, out / self.model_file)
        return FitResult([], {"fit_s": fit_s})

    def cleanup(self, out: Path) -> None:
        """Nothing to remove: the svm writes no checkpoints."""


AUDIO_TASKS: dict[str, type] = {"mlp": AudioMLPTask, "svm": AudioSVMTask}
"""Audio classifier name -> its task."""
AUDIO_CLASSIFIERS = tuple(AUDIO_TASKS)
