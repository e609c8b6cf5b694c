"""RAVDESS file-name parsing, label helpers and the speaker id of a clip.

RAVDESS names are ``MM-VV-EE-II-SS-RR-AA.ext`` (seven two-digit fields); anything after
the seventh field (e.g. ``_1``) is ignored. Calm (02) has no project class.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from mer_ray.config import AROUSAL, EMOTIONS

RAVDESS_EMOTIONS: dict[int, str | None] = {
    1: "neutral", 2: None, 3: "happy", 4: "sad", 5: "angry", 6: "fear", 7: "disgust", 8: "surprise",
}
"""RAVDESS emotion code -> project class; calm (2) -> None (dropped)."""
EMOTION_CODES: dict[str, int] = {v: k for k, v in RAVDESS_EMOTIONS.items() if v is not None}
MODALITIES = {1: "audio-video", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}

_RAVDESS_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class RavdessName:
    """The seven fields of a RAVDESS file name."""

    modality: int
    vocal_channel: int
    emotion_code: int
    intensity: int
    statement: int
    repetition: int
    actor: int

    @property
    def emotion(self) -> str | None:
        """Project class, or None for calm (dropped)."""
        return RAVDESS_EMOTIONS[self.emotion_code]

    @property
    def modality_name(self) -> str:
        return MODALITIES[self.modality]

    @property
    def has_video(self) -> bool:
        return self.modality in (1, 2)

    @property
    def has_audio(self) -> bool:
        return self.modality in (1, 3)


def parse_ravdess_name(path: str | PurePath) -> RavdessName | None:
    """Parse a RAVDESS name from a path; None if the name does not follow the scheme."""
    m = _RAVDESS_RE.match(PurePath(str(path)).name)
    if not m:
        return None
    fields = [int(g) for g in m.groups()]
    name = RavdessName(*fields)
    if (name.modality not in MODALITIES or name.vocal_channel not in VOCAL_CHANNELS
            or name.emotion_code not in RAVDESS_EMOTIONS or not 1 <= name.actor <= 99):
        return None
    return name


def ravdess_filename(emotion: str, actor: int, *, statement: int = 1, repetition: int = 1,
                     intensity: int = 1, modality: int = 1, vocal_channel: int = 1,
                     ext: str = ".mp4") -> str:
    """Build a RAVDESS-style file name (used by the sample generator)."""
    code = EMOTION_CODES[emotion]
    if emotion == "neutral":
        intensity = 1  # neutral has no strong intensity in RAVDESS
    parts = (modality, vocal_channel, code, intensity, statement, repetition, actor)
    return "-".join(f"{p:02d}" for p in parts) + ext


def emotion_index(emotion: str) -> int:
    """Index of a project class in EMOTIONS; ValueError with the valid names otherwise."""
    try:
        return EMOTIONS.index(emotion)
    except ValueError:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(EMOTIONS)}") from None


def arousal_of(emotion: str) -> str:
    """Arousal group of a project class (thesis Table 4.5)."""
    return AROUSAL[emotion]


def speaker_id(actor, speaker) -> str | None:
    """Who speaks in a clip: ``actor:<n>`` for a RAVDESS actor, else ``speaker:<id>`` from a
    manifest, else None (unknown). Protocol groups (data.splits) and speaker normalisation
    (models.speaker_norm) both name speakers this way."""
    if actor is not None and actor == actor:   # not None / NaN
        return f"actor:{int(actor)}"
    if speaker is not None and speaker == speaker and str(speaker) != "":
        return f"speaker:{speaker}"
    return None


def normalize_label(label: str) -> str | None:
    """Map free-text manifest labels (e.g. 'Fearful', 'surprised', 'calm') to a project class."""
    key = label.strip().lower()
    aliases = {"anger": "angry", "fearful": "fear", "afraid": "fear", "surprised": "surprise",
               "happiness": "happy", "sadness": "sad", "disgusted": "disgust", "calm": None}
    key = aliases.get(key, key)
    if key is None:
        return None
    emotion_index(key)
    return key
