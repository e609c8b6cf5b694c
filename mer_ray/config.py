"""Constants from the thesis and one config dataclass per job.

Everything that has a thesis default lives here, so a reader can check the numbers
against SPEC.md in one place.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

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

# --- Media -----------------------------------------------------------------------------
SKIP_NO = 10                 # one keyframe every 10 frames (thesis Alg. 3.4)
FACE_SIZE = 200              # face crops are FACE_SIZE x FACE_SIZE x 3 RGB uint8
SAMPLE_RATE = 22_050         # librosa's default rate, used by the thesis features
N_THESIS_FEATURES = 162      # ZCR 1 + chroma 12 + MFCC 20 + RMS 1 + mel 128
AUDIO_AUG_COPIES = 2         # augmented copies per clip: training data triples (Alg. 3.2)

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


@dataclass
class PreprocessConfig(ConfigMixin):
    """`mer-ray preprocess`: videos -> keyframe face crops + audio features -> Parquet."""

    data_dir: str
    out: str
    corpus: str = "auto"              # auto | ravdess | manifest | folder
    skip: int = SKIP_NO
    max_keyframes: int = 512          # per video; long videos get a larger stride (bounded memory)
    max_audio_s: float = 600.0        # audio beyond this is not decoded (bounded memory)
    detect_width: int = 480           # Haar runs on a grey frame downscaled to this width
    audio_aug_copies: int = AUDIO_AUG_COPIES
    seed: int = 0
    strict: bool = False              # any failed input fails the job
    max_file_mb: float = 4096.0       # larger files get status too_large, not decoded
    videos_per_shard: int = 16        # clips per Parquet shard (and per resume unit)
    ray: RayConfig = field(default_factory=RayConfig)
