"""What the sample set contains: its config, the clips (RAVDESS names) and each actor's traits.

Actors are taken from ACTOR_ORDER: its first five cover all five folds of
config.ACTOR_FOLDS (so any ``actors >= 5`` set supports the actor-independent protocol) and
it alternates male (odd) / female (even).
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from mer_ray.config import EMOTIONS
from mer_ray.labels import ravdess_filename

ACTOR_ORDER: tuple[int, ...] = (1, 2, 3, 10, 17, 4, 5, 6, 11, 8, 9, 14, 7, 12, 21, 22, 15, 13,
                                19, 24, 16, 18, 23, 20)
"""Actors in the order the generator uses them; first five = one per ACTOR_FOLDS fold."""

BAD_ACTOR = 24
BAD_REPETITION = 9       # bad inputs use repetition 09, which make_sample never reaches


@dataclass
class SampleConfig:
    """`mer-ray make-sample`: how many clips, how long, how large."""

    actors: int = 8
    clips_per_emotion: int = 2
    seconds: float = 2.0
    width: int = 480
    height: int = 360
    fps: float = 30.0
    seed: int = 0
    audio_rate: int = 44100
    workers: int | None = None       # parallel clips (threads driving ffmpeg); None = CPU count

    def validate(self) -> None:
        if not 1 <= self.actors <= len(ACTOR_ORDER):
            raise ValueError(f"actors must be 1..{len(ACTOR_ORDER)}, got {self.actors}")
        if self.clips_per_emotion < 1 or self.clips_per_emotion > 4 * (BAD_REPETITION - 1):
            raise ValueError(f"clips_per_emotion must be 1..{4 * (BAD_REPETITION - 1)}")
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 64:
            raise ValueError(f"size must be even and >= 64 px, got {self.width}x{self.height}")
        if self.seconds <= 0 or self.fps <= 0 or self.audio_rate < 8000:
            raise ValueError("seconds and fps must be > 0 and audio_rate >= 8000")


@dataclass(frozen=True)
class ClipSpec:
    """One clip to generate: its label, actor and RAVDESS name fields."""

    emotion: str
    actor: int
    clip: int                 # 0-based index within (actor, emotion)
    statement: int
    repetition: int
    intensity: int

    @property
    def name(self) -> str:
        return ravdess_filename(self.emotion, self.actor, statement=self.statement,
                                repetition=self.repetition, intensity=self.intensity)


def clip_specs(cfg: SampleConfig) -> list[ClipSpec]:
    """Every clip of the set: actors x 7 emotions x clips_per_emotion, names all distinct."""
    specs = []
    for actor in ACTOR_ORDER[:cfg.actors]:
        for emotion in EMOTIONS:
            for j in range(cfg.clips_per_emotion):
                statement, k = j % 2 + 1, j // 2
                if emotion == "neutral":          # RAVDESS neutral has no strong intensity
                    intensity, repetition = 1, k + 1
                else:
                    intensity, repetition = k % 2 + 1, k // 2 + 1
                specs.append(ClipSpec(emotion, actor, j, statement, repetition, intensity))
    return specs


def n_frames(cfg: SampleConfig) -> int:
    return max(1, round(cfg.seconds * cfg.fps))


@dataclass(frozen=True)
class ActorTraits:
    """Per-actor appearance and voice."""

    face_frac: float           # Haar face-box height / frame height
    centre: tuple[float, float]
    mirror: bool
    skin: tuple[float, float, float]
    brightness: float
    background: tuple[float, float, float]
    tilt_deg: float
    f0: float
    formant_scale: float
    loudness: float


def actor_traits(actor: int, seed: int) -> ActorTraits:
    rng = np.random.default_rng([seed, actor, 0xAC])
    male = actor % 2 == 1
    return ActorTraits(
        face_frac=float(rng.uniform(0.27, 0.38)),
        centre=(float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.45, 0.55))),
        mirror=bool(rng.integers(2)),
        skin=tuple(float(g) for g in rng.uniform(0.92, 1.08, 3)),
        brightness=float(rng.uniform(0.88, 1.1)),
        background=background_colour(rng),
        tilt_deg=float(rng.uniform(-2.0, 2.0)),
        f0=float(rng.uniform(105, 135) if male else rng.uniform(185, 235)),
        formant_scale=float(rng.uniform(0.95, 1.03) if male else rng.uniform(1.1, 1.18)),
        loudness=float(rng.uniform(0.85, 1.0)),
    )


def background_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A random hue at a random saturation and value (RGB 0..1)."""
    return colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.15, 0.8), rng.uniform(0.25, 0.9))
