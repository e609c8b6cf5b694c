"""Decision-level fusion (thesis Alg. 3.9), pure NumPy.

``p = w_v * mean(frame probabilities) + w_a * audio probabilities``; label = argmax(p).
The weights are normalised to sum to 1 (the thesis default 0.5/0.5 already does), so ``p``
is a distribution and its maximum is a confidence; the argmax is unchanged by the scaling.

Missing modalities: no face in any keyframe -> audio alone; no audio -> faces alone;
neither -> no label (mode ``none``). ``fusion_mode`` says which case applied.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_ray.config import AROUSAL, EMOTIONS, NUM_CLASSES

AUDIO_VISUAL = "audio_visual"
VISUAL_ONLY = "visual_only"
AUDIO_ONLY = "audio_only"
NONE = "none"
FUSION_MODES = (AUDIO_VISUAL, VISUAL_ONLY, AUDIO_ONLY, NONE)


@dataclass(frozen=True)
class FusionWeights:
    """Path weights of Alg. 3.9 (thesis: image_path_weight = audio_path_weight = 0.5)."""

    visual: float = 0.5
    audio: float = 0.5

    def __post_init__(self) -> None:
        if self.visual < 0 or self.audio < 0 or not np.isfinite([self.visual, self.audio]).all():
            raise ValueError(f"fusion weights must be finite and >= 0, got {self.visual}, {self.audio}")
        if self.visual + self.audio <= 0:
            raise ValueError("fusion weights must not both be 0")

    def normalized(self) -> FusionWeights:
        total = self.visual + self.audio
        return FusionWeights(self.visual / total, self.audio / total)

    def to_dict(self) -> dict[str, float]:
        return {"visual": self.visual, "audio": self.audio}

    @classmethod
    def parse(cls, text: str | None) -> FusionWeights:
        """``"0.5,0.5"`` (visual,audio), or a JSON file written by tune-fusion; None -> default."""
        if text is None or text == "":
            return cls()
        if Path(text).is_file():
            data = json.loads(Path(text).read_text())
            data = data.get("weights", data)
            return cls(float(data["visual"]), float(data["audio"]))
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 2:
            raise ValueError(f"--fusion-weights wants 'w_visual,w_audio' or a JSON file, got {text!r}")
        return cls(float(parts[0]), float(parts[1]))


@dataclass
class FusionResult:
    """The fused decision for one video."""

    mode: str
    probs: np.ndarray | None          # (7,) fused distribution, None when mode == none
    visual_probs: np.ndarray | None   # (7,) mean over keyframes with a face
    audio_probs: np.ndarray | None    # (7,)

    @property
    def label_index(self) -> int | None:
        return None if self.probs is None else int(np.argmax(self.probs))

    @property
    def emotion(self) -> str | None:
        i = self.label_index
        return None if i is None else EMOTIONS[i]

    @property
    def arousal(self) -> str | None:
        e = self.emotion
        return None if e is None else AROUSAL[e]

    @property
    def confidence(self) -> float | None:
        return None if self.probs is None else float(np.max(self.probs))


def _as_probs(x, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim or arr.shape[-1] != NUM_CLASSES:
        raise ValueError(f"{name} must have shape {'(N, 7)' if ndim == 2 else '(7,)'}, got {arr.shape}")
    return arr


def mean_frame_probs(frame_probs) -> np.ndarray | None:
    """Mean of per-keyframe probabilities (N, 7) -> (7,); None when there are no frames."""
    if frame_probs is None or len(frame_probs) == 0:
        return None
    return _as_probs(frame_probs, "frame_probs", 2).mean(axis=0)


def fuse(frame_probs, audio_probs, weights: FusionWeights = FusionWeights()) -> FusionResult:
    """Alg. 3.9 for one video. ``frame_probs``: (N, 7) per keyframe face, or None / empty;
    ``audio_probs``: (7,) or None."""
    visual = mean_frame_probs(frame_probs)
    audio = None if audio_probs is None else _as_probs(audio_probs, "audio_probs", 1)
    if visual is not None and audio is not None:
        w = weights.normalized()
        return FusionResult(AUDIO_VISUAL, w.visual * visual + w.audio * audio, visual, audio)
    if visual is not None:
        return FusionResult(VISUAL_ONLY, visual.copy(), visual, None)
    if audio is not None:
        return FusionResult(AUDIO_ONLY, audio.copy(), None, audio)
    return FusionResult(NONE, None, None, None)


def fuse_arrays(visual: np.ndarray, audio: np.ndarray, weights: FusionWeights) -> np.ndarray:
    """Vectorised Alg. 3.9 over many videos: (M, 7) mean visual + (M, 7) audio -> (M, 7).
    Rows with NaN in one modality use the other alone (same rule as :func:`fuse`)."""
    visual = np.asarray(visual, dtype=np.float64)
    audio = np.asarray(audio, dtype=np.float64)
    w = weights.normalized()
    out = w.visual * visual + w.audio * audio
    v_missing = np.isnan(visual).any(axis=1)
    a_missing = np.isnan(audio).any(axis=1)
    out[v_missing & ~a_missing] = audio[v_missing & ~a_missing]
    out[a_missing & ~v_missing] = visual[a_missing & ~v_missing]
    return out
