"""Constants from the thesis and one config dataclass per job.

Everything that has a thesis default is here (the media numbers are declared in
mer_ray.media.constants and re-exported), so a reader can check them against the thesis (cited
in README) in one place. Jobs that decode media nest the one ExtractOptions
(mer_ray.media.options) as ``extract``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

# the media numbers, declared in the media layer (which imports no job config)
from mer_ray.media.constants import (AUDIO_AUG_COPIES, DETECT_WIDTH, FACE_SIZE,  # noqa: F401
                                     N_THESIS_FEATURES, REDETECT_EVERY, SAMPLE_RATE, SKIP_NO)
from mer_ray.media.options import ExtractOptions

# --- Labels ----------------------------------------------------------------------------
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
"""The 7 classes, in this order everywhere (model outputs, metrics, Parquet)."""
NUM_CLASSES = len(EMOTIONS)
EMOTION_INDEX: dict[str, int] = {name: i for i, name in enumerate(EMOTIONS)}

AROUSAL: dict[str, str] = {
    "angry": "high", "fear": "high", "happy": "high", "surprise": "high",
    "sad": "low", "disgust": "low",
    "neutral": "neutral",
}
"""Arousal group shown with the fused label (thesis Table 4.5)."""

# --- Protocols -------------------------------------------------------------------------
ACTOR_FOLDS: tuple[tuple[int, ...], ...] = (
    (2, 5, 14, 15, 16),
    (3, 6, 7, 13, 18),
    (10, 11, 12, 19, 20),
    (8, 17, 21, 23, 24),
    (1, 4, 9, 22),
)
"""Actor-independent 5 folds (Luna-Jiménez et al. 2021), the default protocol."""
PROTOCOLS = ("actor5fold", "loso", "thesis")


class ConfigMixin:
    """to_dict / to_json for every job config (written into each output directory)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[arg-type]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)


@dataclass
class RayConfig(ConfigMixin):
    """Where and how to run Ray: embedded local Ray unless an address is given."""

    address: str | None = None       # None -> $RAY_ADDRESS or a new local Ray
    num_cpus: int | None = None       # local Ray only; None -> all cores
    host: str | None = None           # local Ray only: the IP its processes listen on;
                                      # None -> $MER_RAY_HOST or 127.0.0.1 (this machine only)


@dataclass
class PreprocessConfig(ConfigMixin):
    """`mer-ray preprocess`: videos -> keyframe face crops + audio features -> Parquet."""

    data_dir: str
    out: str
    corpus: str = "auto"              # auto | ravdess | manifest | folder
    extract: ExtractOptions = field(default_factory=ExtractOptions)
    strict: bool = False              # any failed input fails the job
    videos_per_shard: int = 16        # clips per Parquet shard at most (and per resume unit)
    workers: int | None = None        # extraction actors at most; None -> the cluster's CPUs
    allow_empty: bool = False         # no inputs listed: an empty output instead of an error
    ray: RayConfig = field(default_factory=RayConfig)


@dataclass
class ScoreConfig(ConfigMixin):
    """`mer-ray score`: archive -> keyframe faces + audio features -> both models -> Alg. 3.9
    fusion -> one Parquet row per input. Resumable: re-runs score only what is missing."""

    source: str                       # folder, glob or CSV manifest
    out: str
    visual: str | None = None         # run dir / URI, "default" (bundled); None -> no visual path
    audio: str | None = None          # run dir / URI, "default" (bundled; its speaker-normalised
                                      # twin when speakers suit it); None -> no audio path
    corpus: str = "auto"
    w_visual: float = 0.5             # Alg. 3.9 image_path_weight
    w_audio: float = 0.5              # Alg. 3.9 audio_path_weight
    timeline: bool = False            # also write one row per keyframe
    gpus_per_worker: float = 0.0      # GPUs per visual model actor (0 = CPU)
    audio_gpus: float = 0.0           # GPUs per audio actor (the 100k-parameter MLP is fine on CPU)
    visual_workers: int = 1           # visual model actors (one model load each)
    audio_workers: int = 1            # audio model actors
    model_cpus: float | None = None   # CPUs reserved per model actor; None -> 0.5 (CPU) / 1 (GPU)
    extract_workers: int | None = None  # extraction actors; None -> the CPUs the models leave
    visual_batch_videos: int = 8      # videos per visual actor call (Ray Data batch_size)
    audio_batch_videos: int = 64      # videos per audio actor call (Ray Data batch_size)
    videos_per_shard: int = 64        # output rows per Parquet shard (and per resume unit)
    in_process_max: int = 64          # at most this many inputs left, and Ray would start here
                                      # for this run alone: score them without Ray
                                      # (score.in_process). 64, one default shard: up to there
                                      # Ray's start-up is most of a run on a few cores
    extract: ExtractOptions = field(default_factory=ExtractOptions)  # augmentation and paths
                                      # without a model are switched off for the run (score.plan)
    allow_empty: bool = False         # no inputs listed: an empty output instead of an error
    ray: RayConfig = field(default_factory=RayConfig)


@dataclass
class EvaluateConfig(ConfigMixin):
    """`mer-ray evaluate`: metrics.json + report.html + confusion PNGs from a score output."""

    scores: str
    out: str | None = None            # None -> <scores>/report
    labels: str = "auto"              # auto (labels in the rows) | ravdess | a manifest .csv


@dataclass
class TuneFusionConfig(ConfigMixin):
    """`mer-ray tune-fusion`: pick w_visual on a grid with labelled validation rows."""

    scores: str
    out: str | None = None            # None -> <scores>/fusion_weights.json
    labels: str = "auto"
    step: float = 0.05                # grid step for w_visual in [0, 1]; w_audio = 1 - w_visual
    speakers: tuple[str, ...] | None = None  # validation speakers only (None -> all rows)


@dataclass
class AnnotateConfig(ConfigMixin):
    """`mer-ray annotate`: one video -> the same video with face boxes and emotions drawn on it."""

    video: str
    out: str
    visual: str | None = None
    audio: str | None = None
    w_visual: float = 0.5
    w_audio: float = 0.5
    extract: ExtractOptions = field(default_factory=ExtractOptions)  # skip, max_keyframes and
                                      # detect_width are flags; augmentation is switched off


# --- Train jobs --------------------------------------------------------------------
@dataclass
class TrainCommon(ConfigMixin):
    """Settings shared by both train jobs (Ray Train, protocol, run directory)."""

    shards: str = ""                  # a preprocess (or ingest-images) output directory
    out: str = ""                     # the run directory
    protocol: str = "actor5fold"      # actor5fold | loso | thesis
    fold: str | None = "0"            # actor5fold: 0..4; loso: actor number / speaker id
    val: str = "group"                # validation: group | rows | none (see data/splits.py)
    epochs: int = 50
    batch_size: int = 16              # global batch (split over workers)
    lr: float = 1e-3                  # Adam
    workers: int = 1
    gpu: bool = False
    cpus_per_worker: float | None = None   # None: leave one CPU for Ray Data where possible
    max_failures: int = 2             # Ray Train restarts from the last checkpoint
    checkpoint_every: int = 1         # epochs between checkpoints (and progress reports)
    keep_checkpoints: bool = False    # keep the last checkpoint after success
    storage: str | None = None        # Ray Train storage (default OUT/_ray); shared path on a cluster
    seed: int = 0
    ray: RayConfig = field(default_factory=RayConfig)


@dataclass
class TrainVisualConfig(TrainCommon):
    """`mer-ray train-visual`: backbone + thesis head on face crops (thesis §3.4, Fig. 3.2)."""

    backbone: str = "efficientnetb0"  # efficientnetb0 | mobilenetv2 | resnet50 | tiny (tests)
    case: str = "frozen"              # frozen: head only; unfrozen: everything
    init: str = "imagenet"            # imagenet | none | PATH.keras (e.g. the AffectNet stage)
    weights_file: str | None = None   # ImageNet .h5 instead of the keras cache
    augment: bool = True              # Alg. 3.1 on the training stream
    class_weight: str = "none"        # none | balanced: class c weighs N / (K * n_c) in the loss


@dataclass
class TrainAudioConfig(TrainCommon):
    """`mer-ray train-audio`: an audio classifier on one recipe's clip vectors.

    ``recipe`` thesis: the 162-D features + Table 4.4 MLP (thesis §3.5), the default here so
    programmatic callers reproduce the thesis; the CLI defaults to ``rich``.
    ``feature_column`` / ``use_augmented`` / ``classifier`` left None follow the recipe
    (media/audio_recipes.py: rich has no augmented copies; its default classifier is the SVM);
    train.tasks.resolve_audio fills them in and refuses contradicting settings."""

    epochs: int = 800
    batch_size: int = 32
    checkpoint_every: int = 10        # epochs between checkpoints (an epoch takes milliseconds)
    feature_column: str | None = None  # None -> the recipe's column
    use_augmented: bool | None = None  # training rows get their augmented copies (Alg. 3.2);
                                      # None -> when the recipe stores them and the MLP trains
    recipe: str = "thesis"            # thesis | rich (media/audio_recipes.py)
    classifier: str | None = None     # mlp (Ray Train) | svm (driver); None -> the recipe's
    speaker_norm: bool = False        # z-score each speaker's clips first (models/speaker_norm.py)


@dataclass
class IngestImagesConfig(ConfigMixin):
    """`mer-ray ingest-images`: a face-image corpus (AffectNet, FER2013) -> FRAMES Parquet."""

    data_dir: str
    out: str
    layout: str = "auto"              # auto | folders | csv
    csv: str | None = None            # AffectNet-style CSV (path,label[,speaker]); auto-detected
    balance: bool = False             # down-sample every class to the smallest (seeded); off:
                                      # keep all and weight classes in training instead
    seed: int = 0
    images_per_shard: int = 512
    ray: RayConfig = field(default_factory=RayConfig)
