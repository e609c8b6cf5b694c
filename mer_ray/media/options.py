"""What to extract from one input, and the limits that keep memory bounded.

``ExtractOptions`` is declared once here; each job config nests it (``cfg.extract``) and the
``preprocess`` / ``score`` / ``annotate`` flags are generated from its fields
(mer_ray/commands/extract_args.py). A field is a command-line flag when its metadata has
``help``; ``flag`` overrides the name derived from the field (``--max-keyframes``), and a bool
field defaulting to True becomes a ``--no-...`` switch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mer_ray.media.constants import AUDIO_AUG_COPIES, DETECT_WIDTH, REDETECT_EVERY, SKIP_NO


FACE_MODES = ("largest", "all")
"""How many faces of a keyframe are cropped: the largest, or every one (up to max_faces)."""


@dataclass
class ExtractOptions:
    """Extraction settings shared by every job that decodes media."""

    skip: int = field(default=SKIP_NO, metadata={
        "help": "keep every SKIP-th frame (10 is the thesis's value)"})
    max_keyframes: int = field(default=512, metadata={
        "help": "keyframes per video at most (per 60 s chunk of a long video with --segments); "
                "longer videos get a larger stride so memory stays bounded"})
    max_audio_s: float = field(default=600.0, metadata={
        "help": "decode at most this many seconds of audio"})
    detect_width: int | None = field(default=DETECT_WIDTH, metadata={
        "help": "face detection runs on a grey frame scaled to this width (0 = full frame)"})
    redetect_every: int = field(default=REDETECT_EVERY, metadata={
        "help": "full-frame face search every N keyframes, in between a search near the last "
                "face (1 = full search on every keyframe, the thesis way)"})
    audio_aug_copies: int = field(default=AUDIO_AUG_COPIES, metadata={
        "flag": "--aug-copies",
        "help": "augmented copies of each clip's audio feature vector (noise, time stretch, "
                "pitch shift: thesis Alg. 3.2); 2 triples the training data"})
    rich_audio: bool = field(default=True, metadata={
        "flag": "--no-rich-audio",
        "help": "skip the rich-recipe audio vector (thesis features only)"})
    max_file_mb: float = field(default=4096.0, metadata={
        "help": "larger files get status too_large, not decoded"})
    seed: int = field(default=0, metadata={
        "help": "seed of the audio augmentation (with each input's name)"})
    face_mode: str = "largest"          # largest: one face per keyframe; all: up to max_faces,
                                        # linked into tracks (media/tracks.py)
    max_faces: int = 4                  # faces per keyframe at most with face_mode "all"
    segment_s: float | None = None      # score --segments: window seconds (audio features per
                                        # window, the whole audio track decoded); None: off
    hop_s: float | None = None          # start-to-start seconds of windows; None: segment_s
    faces: bool = True                  # keyframes' face crops (score: only with a visual model)
    audio: bool = True                  # the audio track's features (score: only with an audio model)
    audio_columns: tuple[str, ...] | None = None  # only these recipes' vectors (score: its
                                        # model's); None: every recipe rich_audio allows
    decode_threads: int | None = None   # FFmpeg decoder threads; 1 in Ray workers

    def __post_init__(self) -> None:
        if self.detect_width == 0:      # the flag's "0 = full frame"
            self.detect_width = None
        if self.face_mode not in FACE_MODES:
            raise ValueError(f"face mode must be one of {', '.join(FACE_MODES)}, "
                             f"got {self.face_mode!r}")
