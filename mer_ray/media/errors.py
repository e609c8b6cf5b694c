"""Status vocabulary for inputs, and the exception media functions raise.

Every input gets exactly one status. ``FAILED_STATUSES`` yield nothing usable; the others
yield at least one modality.
"""
from __future__ import annotations

# usable
OK = "ok"                      # every modality the input should have was extracted
NO_FACE = "no_face"            # decoded, but no keyframe had a face (audio may be usable)
NO_AUDIO = "no_audio"          # video without an audio track (faces may be usable)
AUDIO_ONLY = "audio_only"      # input has no video stream (audio file, RAVDESS modality 03)
VIDEO_ONLY = "video_only"      # RAVDESS modality 02: no audio expected
# not processed on purpose
DROPPED = "dropped"            # e.g. RAVDESS calm: no project class (counted, not an error)
# failed
EMPTY_FILE = "empty_file"
UNREADABLE = "unreadable"      # missing path, no permission
NOT_MEDIA = "not_media"        # not a video/audio container (e.g. a text file named .mp4)
TRUNCATED = "truncated"        # a container that cannot be opened or yields no frame
PARTIAL = "partial"            # decoding stopped early (damaged or cut file): what decoded is
                               # kept in the row, but it is not scored or trained on as whole
TOO_LARGE = "too_large"        # larger than the configured limit
ERROR = "error"                # anything unexpected; the message says what

USABLE_STATUSES = frozenset({OK, NO_FACE, NO_AUDIO, AUDIO_ONLY, VIDEO_ONLY})
FAILED_STATUSES = frozenset({EMPTY_FILE, UNREADABLE, NOT_MEDIA, TRUNCATED, PARTIAL, TOO_LARGE,
                             ERROR})
ALL_STATUSES = USABLE_STATUSES | FAILED_STATUSES | {DROPPED}


def expected_status(status: str, error: str | None, modality: str | None) -> tuple[str, str | None]:
    """(status, error) of an extraction given what the input's name says it holds: a RAVDESS
    modality-02 (``video-only``) file has no audio track by design, so NO_AUDIO -> VIDEO_ONLY
    (no error). Preprocess and score both apply it."""
    if modality == "video-only" and status == NO_AUDIO:
        return VIDEO_ONLY, None
    return status, error


class MediaError(Exception):
    """A media function could not read an input; ``status`` is one of FAILED_STATUSES
    (or NO_AUDIO for a missing audio track), ``str(err)`` the human reason."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"MediaError({self.status!r}, {self.reason!r})"
