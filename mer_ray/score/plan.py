"""What a score run is made of, resolved once on the driver: its bundles, and its workers.

``resolve_plan`` reads each model's bundle.json once and checks the score job can feed it;
``plan_workers`` sizes the actor pools so every actor is schedulable at once.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from mer_ray.config import ScoreConfig
from mer_ray.media.audio_recipes import AUDIO_RECIPES, THESIS_COLUMN, recipe_for_column
from mer_ray.media.options import ExtractOptions
from mer_ray.models.bundle import BundleInfo, load_bundle_info


@dataclass(frozen=True)
class ScorePlan:
    """The bundles of one score run and what follows from them."""

    visual: BundleInfo | None
    audio: BundleInfo | None
    extract: ExtractOptions          # the run's extraction (no augmentation, unused paths off)

    @property
    def model_ids(self) -> dict[str, str | None]:
        """model_id of each bundle (None for a path without a model)."""
        return {kind: None if info is None else info.model_id
                for kind, info in (("visual", self.visual), ("audio", self.audio))}

    @property
    def audio_column(self) -> str:
        """The clips column the audio model reads (its recipe's vector)."""
        return self.audio.feature_column if self.audio is not None else THESIS_COLUMN

    @property
    def segments(self) -> bool:
        """--segments: segment rows per (window, face track) are written."""
        return self.extract.segment_s is not None

    @property
    def speaker_norm(self) -> bool:
        """The audio model z-scores per speaker: the finalize pass predicts its outputs."""
        return self.audio is not None and self.audio.speaker_norm


def check_audio_bundle(info: BundleInfo, run_dir: str, speaker_norm: bool = False) -> None:
    """The score job feeds a recipe's feature vector clip by clip; say so if a bundle needs more.
    ``speaker_norm``: the caller can z-score per speaker (the score job's finalize pass);
    one-video callers (annotate) cannot."""
    if recipe_for_column(info.feature_column or "") is None:
        columns = sorted(r.column for r in AUDIO_RECIPES.values())
        raise ValueError(f"{run_dir}: audio model wants column '{info.feature_column}', which the "
                         f"score job cannot compute (it can: {columns})")
    if getattr(info, "speaker_norm", False) and not speaker_norm:
        raise ValueError(f"{run_dir}: this audio model z-scores features per speaker, which needs "
                         "every clip of a speaker; one video is not enough (score the speaker's "
                         "clips with `mer-ray score`, or train without --speaker-norm)")


def run_extract_options(base: ExtractOptions, faces: bool, audio_column: str | None) -> ExtractOptions:
    """``base`` for scoring: no augmented copies, faces only for a visual model, audio only for
    an audio model (``audio_column`` None: none), and only the vector that model reads."""
    return dataclasses.replace(base, audio_aug_copies=0, faces=faces,
                               audio=audio_column is not None,
                               audio_columns=None if audio_column is None else (audio_column,))


def resolve_models(cfg: ScoreConfig, speakers: list[str | None]) -> ScoreConfig:
    """``cfg`` with ``default`` model values replaced by the bundled run dirs. The default voice
    model is the speaker-normalised one when ``speakers`` (one per input to score, None where
    unknown) suit it (models.bundled.speaker_norm_suits) and no segments are asked for (a
    window's audio is scored on its own, without per-speaker statistics)."""
    from mer_ray.models.bundled import DEFAULT, bundled_dir, resolve_model, speaker_norm_suits

    visual = resolve_model(cfg.visual, "visual") if cfg.visual == DEFAULT else cfg.visual
    audio = cfg.audio
    if audio == DEFAULT:
        norm = cfg.extract.segment_s is None and speaker_norm_suits(speakers)
        audio = bundled_dir("audio_speaker_norm" if norm else "audio")
    return dataclasses.replace(cfg, visual=visual, audio=audio)


def resolve_plan(cfg: ScoreConfig) -> ScorePlan:
    """Read the bundles of ``cfg`` (bundle.json only); ValueError if neither model is given or
    a bundle is not what the score job can feed."""
    if cfg.visual is None and cfg.audio is None:
        raise ValueError("score needs at least one model: --visual RUN_DIR and/or --audio RUN_DIR")
    infos: dict[str, BundleInfo | None] = {}
    for kind in ("visual", "audio"):
        run_dir = getattr(cfg, kind)
        infos[kind] = None if run_dir is None else load_bundle_info(run_dir)
        if infos[kind] is not None and infos[kind].kind != kind:
            raise ValueError(f"--{kind} {run_dir} holds a {infos[kind].kind} model")
    if infos["audio"] is not None:
        check_audio_bundle(infos["audio"], cfg.audio, speaker_norm=True)
        if infos["audio"].speaker_norm and cfg.extract.segment_s is not None:
            raise ValueError(f"--audio {cfg.audio}: this audio model z-scores features per "
                             "speaker, which --segments cannot do for single windows; use an "
                             "audio model trained without --speaker-norm (e.g. the default)")
    column = infos["audio"].feature_column if infos["audio"] is not None else None
    return ScorePlan(infos["visual"], infos["audio"],
                     run_extract_options(cfg.extract, faces=cfg.visual is not None,
                                         audio_column=column))


GIB = 1024 ** 3
ACTOR_MEMORY = {"extract": 0.7 * GIB, "visual": 1.0 * GIB, "audio": 0.6 * GIB}
"""Bytes one actor of each stage holds at its peak, as measured and rounded up: extraction
0.65 GiB and audio 0.50 GiB with a model that runs in Keras (an SVM, or an MLP run in numpy,
holds 0.14-0.23 GiB; BENCHMARKS.md, score sections: PSS per stage at the run's peak);
visual 0.78 GiB with EfficientNetB0 in Keras (one process after its first batches, the model
called as a traced graph: models.bundle._Predictor._call) and 0.20 GiB with the bundled CNN,
which runs in OpenCV (models/opencv_cnn.py). Declared to Ray (``memory=``), so it places
actors by memory as well as CPUs and does not pack more onto a node than it holds."""


BUFFER_PER_CPU = 128 * 1024 ** 2
"""Object-store bytes per cluster CPU the score pipeline may hold between its stages. Ray
Data's default (half the object store: 3.5 GiB on a 24 GiB machine) would let extraction
queue tens of thousands of videos (~135 KB each: JPEG crops and features) ahead of a slower
model stage, so memory would follow the archive; capped, extraction waits instead. 256 MiB
on 2 CPUs is ~1,900 short videos."""
MIN_BUFFER = 256 * 1024 ** 2


def pipeline_buffer(cluster_cpus: float) -> int:
    """Bytes of the score pipeline's object-store budget on a cluster of ``cluster_cpus``."""
    return int(max(MIN_BUFFER, BUFFER_PER_CPU * cluster_cpus))


@dataclass(frozen=True)
class Workers:
    """CPUs per model actor, the extraction actors (and CPUs each) that fit beside them, the
    memory each kind of actor declares (bytes) and the pipeline's object-store budget."""

    model_cpus: float
    extract_workers: int
    extract_cpus: float
    memory: dict[str, int] = dataclasses.field(default_factory=dict)
    buffer: int = MIN_BUFFER


def plan_workers(cfg: ScoreConfig, cluster_cpus: float,
                 cluster_memory: float | None = None) -> Workers:
    """Every actor must be schedulable at once, or the pool would wait forever: by CPUs, and
    by memory, where the declared memory of all actors is scaled down to fit 90 % of
    ``cluster_memory`` (Ray's ``memory`` resource, bytes; None: declared unscaled)."""
    n_models = cfg.visual_workers * (cfg.visual is not None) + cfg.audio_workers * (cfg.audio is not None)
    fair = max(0.05, (cluster_cpus - 0.5) / (2 * max(1, n_models)))   # models get <= half
    model_cpus = cfg.model_cpus if cfg.model_cpus is not None else min(
        1.0 if cfg.gpus_per_worker > 0 else 0.25, fair)
    spare = max(0.2, cluster_cpus - model_cpus * n_models - 0.3)   # 0.3: headroom (Ray Data)
    extract = cfg.extract_workers or max(1, math.ceil(spare - 0.05))
    counts = {"extract": extract, "visual": cfg.visual_workers * (cfg.visual is not None),
              "audio": cfg.audio_workers * (cfg.audio is not None)}
    return Workers(model_cpus=model_cpus, extract_workers=extract,
                   extract_cpus=math.floor(1000 * min(1.0, spare / extract)) / 1000,
                   memory=actor_memory(counts, cluster_memory),
                   buffer=pipeline_buffer(cluster_cpus))


def actor_memory(counts: dict[str, int], cluster_memory: float | None) -> dict[str, int]:
    """ACTOR_MEMORY for the stages with actors, scaled so ``counts`` of them fit 90 % of
    ``cluster_memory`` (declaring less than an actor uses only costs Ray's foresight; declaring
    more than there is would leave an actor waiting forever)."""
    need = sum(ACTOR_MEMORY[k] * n for k, n in counts.items())
    scale = 1.0 if not cluster_memory or need <= 0.9 * cluster_memory else 0.9 * cluster_memory / need
    return {k: int(ACTOR_MEMORY[k] * scale) for k, n in counts.items() if n}


def item_speakers(items: list) -> list[str | None]:
    """Speaker id of each listed input with a project class (None where unknown), for
    :func:`resolve_models`; ``data.bookkeeping.speakers`` is the same for a listing table."""
    from mer_ray.models.speaker_norm import UNKNOWN_SPEAKER, speaker_key

    keys = (speaker_key(it.actor, it.speaker) for it in items if it.drop_reason is None)
    return [None if k == UNKNOWN_SPEAKER else k for k in keys]
