"""Per-speaker z-scoring of audio feature vectors (`train-audio --speaker-norm`).

Every clip's vector is standardised with the mean and standard deviation of *its own
speaker's* clips, before the classifier's global scaler, at training and at scoring time.
It removes what is constant about a voice (pitch range, timbre, loudness, microphone) so the
classifier sees how a clip differs from that speaker's usual voice. Labels are never used:
the statistics come from the speaker's clips only (all of them, whatever their emotion).

Caveat, plainly: this helps only when a speaker has *many, emotionally varied* clips (then
the speaker's mean is close to a neutral reference). With a few clips, or with mostly neutral
ones, the speaker's mean *is* the emotion, so normalising removes the very signal to be
recognised (a speaker with one clip becomes an all-zero vector). It is therefore off by
default. Scoring a speaker-normalised model needs the speaker ids of the scored clips and
the statistics of every scored clip of each speaker (``SpeakerStats`` accumulates them over
batches; ``speaker_normalize`` does both steps for one array).

Speaker ids: ``speaker_keys(actor, speaker)``: ``actor:<n>`` for a RAVDESS actor, else
``speaker:<id>`` from a manifest, else the single pooled group ``UNKNOWN_SPEAKER`` (clips of
unknown speakers are normalised together, i.e. with statistics of the whole unknown set).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mer_ray.labels import speaker_id

UNKNOWN_SPEAKER = "<unknown>"
MIN_VARIANCE = 1e-12          # features (near) constant for a speaker are centred, not scaled


def speaker_key(actor, speaker) -> str:
    """The speaker id of one clip (see module doc): labels.speaker_id, or UNKNOWN_SPEAKER."""
    return speaker_id(actor, speaker) or UNKNOWN_SPEAKER


def speaker_keys(actor: Sequence, speaker: Sequence) -> np.ndarray:
    """speaker_key over two columns (object array)."""
    return np.array([speaker_key(a, s) for a, s in zip(actor, speaker)], dtype=object)


def _as_keys(speakers: Sequence | None, n: int) -> np.ndarray:
    if speakers is None:
        return np.full(n, UNKNOWN_SPEAKER, dtype=object)
    keys = np.array([UNKNOWN_SPEAKER if s is None or s != s or str(s) == "" else str(s)
                     for s in speakers], dtype=object)
    if len(keys) != n:
        raise ValueError(f"{len(keys)} speaker ids for {n} feature rows")
    return keys


class SpeakerStats:
    """Running per-speaker count / mean / sum of squared deviations (Chan et al. merge), so the
    statistics of a large scored set can be accumulated batch by batch."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.mean: dict[str, np.ndarray] = {}
        self.m2: dict[str, np.ndarray] = {}

    def update(self, features: np.ndarray, speakers: Sequence | None) -> SpeakerStats:
        """Add rows (N, D) whose speaker ids are ``speakers`` (None: all unknown)."""
        x = _check(features)
        keys = _as_keys(speakers, len(x))
        for key in np.unique(keys) if len(keys) else []:
            rows = x[keys == key]
            n_b, mean_b = len(rows), rows.mean(axis=0)
            m2_b = ((rows - mean_b) ** 2).sum(axis=0)
            n_a = self.count.get(key, 0)
            if n_a == 0:
                self.count[key], self.mean[key], self.m2[key] = n_b, mean_b, m2_b
                continue
            n = n_a + n_b
            delta = mean_b - self.mean[key]
            self.mean[key] = self.mean[key] + delta * n_b / n
            self.m2[key] = self.m2[key] + m2_b + delta ** 2 * n_a * n_b / n
            self.count[key] = n
        return self

    def std(self, key: str) -> np.ndarray:
        var = self.m2[key] / self.count[key]
        return np.sqrt(np.where(var < MIN_VARIANCE, 1.0, var))

    def normalize(self, features: np.ndarray, speakers: Sequence | None) -> np.ndarray:
        """(x - mean_speaker) / std_speaker per row, float32. ValueError for a speaker without
        statistics."""
        x = _check(features)
        keys = _as_keys(speakers, len(x))
        out = np.empty_like(x)
        for key in np.unique(keys) if len(keys) else []:
            if key not in self.count:
                raise ValueError(f"no speaker statistics for {key!r}: update() with that "
                                 f"speaker's clips first")
            mask = keys == key
            out[mask] = (x[mask] - self.mean[key]) / self.std(key)
        return out.astype(np.float32)

    def to_dict(self) -> dict:
        """JSON-serialisable form (lists of floats)."""
        return {k: {"count": self.count[k], "mean": self.mean[k].tolist(),
                    "m2": self.m2[k].tolist()} for k in sorted(self.count)}

    @classmethod
    def from_dict(cls, data: dict) -> SpeakerStats:
        stats = cls()
        for key, v in data.items():
            stats.count[key] = int(v["count"])
            stats.mean[key] = np.asarray(v["mean"], np.float64)
            stats.m2[key] = np.asarray(v["m2"], np.float64)
        return stats


def _check(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got {x.shape}")
    return x


def speaker_normalize(features: np.ndarray, speakers: Sequence | None) -> np.ndarray:
    """Z-score each row with the statistics of all rows of its speaker *in this array*
    (``speakers``: ids per row, e.g. from speaker_keys; None / missing -> one unknown group).
    Pass every clip of a speaker in one call, or use SpeakerStats across batches."""
    return SpeakerStats().update(features, speakers).normalize(features, speakers)
