"""Audio track decoding (ffmpeg pipe), the thesis's 162 features (Alg. 3.7) and its
augmentation (Alg. 3.2).

Decoding runs the imageio-ffmpeg binary and reads mono float32 PCM from its stdout: no temp
files, no MoviePy, memory bounded by ``max_seconds``. Channels are averaged and resampled with
soxr, as ``librosa.load`` does (for a wav the samples are identical to librosa.load's).

The thesis's path (MoviePy writes a 16-bit wav, librosa.load reads it; kept below as
:func:`thesis_style_audio` for benchmarks) differs in two ways for a video's mono track:
MoviePy reads audio as stereo (mono copied to both channels at 1/sqrt 2), so its signal is
3 dB quieter, and 16-bit quantisation adds zero crossings in near-silence. Models must be
trained and scored on the same path; the pipeline uses :func:`decode_audio` for both.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mer_ray.config import N_THESIS_FEATURES, SAMPLE_RATE
from mer_ray.media import errors

# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------


@dataclass
class AudioTrack:
    """Decoded mono audio. ``truncated``: cut at ``max_seconds``; ``source_seconds``: the
    container's stated duration (None when ffmpeg does not report one)."""

    samples: np.ndarray          # float32, 1-D, mono
    sample_rate: int
    truncated: bool
    source_seconds: float | None

    @property
    def seconds(self) -> float:
        return len(self.samples) / float(self.sample_rate)


_DURATION = re.compile(r"Duration:\s*(\d+):(\d\d):(\d\d(?:\.\d+)?)")
_NO_STREAM = ("matches no streams", "does not contain any stream")
_NOT_OPENED = ("Invalid data found when processing input", "moov atom not found",
               "Error opening input")
# First bytes of common containers: a file that starts like media but cannot be opened is
# treated as truncated/corrupt, anything else as not media.
_MAGIC = (b"RIFF", b"OggS", b"fLaC", b"ID3", b"\x1a\x45\xdf\xa3", b"FLV", b"FORM", b"caff",
          b"#!AMR", b"\x00\x00\x01\xba", b"\x30\x26\xb2\x75", b".snd")
TRUNCATION_SLACK_S = 0.05     # decoded audio this much past max_seconds is codec padding


def ffmpeg_exe() -> str:
    """Path of the imageio-ffmpeg binary (there is no ffmpeg on PATH)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _looks_like_media(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return True
    if head[:1] == b"\x47" or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xf1",
                                          b"\xff\xf9"):
        return True        # MPEG-TS sync byte, MP3 / ADTS frame sync
    return head.startswith(_MAGIC)


def _check_path(path: str) -> None:
    if not os.path.exists(path):
        raise errors.MediaError(errors.UNREADABLE, f"no such file: {path}")
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise errors.MediaError(errors.UNREADABLE, f"not a readable file: {path}")
    if os.path.getsize(path) == 0:
        raise errors.MediaError(errors.EMPTY_FILE, f"zero-byte file: {path}")


def _ffmpeg_cmd(path: str, sample_rate: int, max_seconds: float | None) -> list[str]:
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-v", "info",
           "-i", path, "-map", "0:a:0", "-vn", "-sn", "-dn",
           "-af", f"aresample=resampler=soxr:osr={sample_rate}:ochl=mono:rematrix_maxval=1",
           "-ac", "1", "-ar", str(sample_rate)]
    if max_seconds is not None:
        # decode a little more than asked, so a longer source is detected and cut exactly
        cmd += ["-t", f"{max_seconds + 0.25:.3f}"]
    return cmd + ["-f", "f32le", "pipe:1"]


def _tail(stderr: str, lines: int = 3) -> str:
    kept = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return " | ".join(kept[-lines:])


def _classify_failure(path: str, stderr: str) -> errors.MediaError:
    if any(s in stderr for s in _NO_STREAM):
        return errors.MediaError(errors.NO_AUDIO, f"no audio stream in {path}")
    if any(s in stderr for s in _NOT_OPENED):
        if _looks_like_media(path):
            return errors.MediaError(errors.TRUNCATED,
                                     f"media container cannot be opened: {_tail(stderr)}")
        return errors.MediaError(errors.NOT_MEDIA, f"not an audio/video file: {_tail(stderr)}")
    return errors.MediaError(errors.ERROR, f"ffmpeg failed: {_tail(stderr)}")


def _source_seconds(stderr: str) -> float | None:
    m = _DURATION.search(stderr)
    if not m:
        return None
    h, mnt, s = m.groups()
    return int(h) * 3600 + int(mnt) * 60 + float(s)


def decode_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE,
                 max_seconds: float | None = None, timeout: float = 300.0) -> AudioTrack:
    """Decode the first audio stream of ``path`` to mono float32 at ``sample_rate``.

    Audio beyond ``max_seconds`` is not decoded; the track is cut there and ``truncated`` is
    set when more than 50 ms was dropped. Raises MediaError: NO_AUDIO (no audio stream),
    EMPTY_FILE, UNREADABLE (missing/unreadable path), NOT_MEDIA (no container ffmpeg knows and
    no media signature), TRUNCATED (a media file that cannot be opened, or whose audio decodes
    to 0 samples), ERROR (any other ffmpeg failure, or ``timeout`` seconds exceeded).
    """
    path = os.fspath(path)
    _check_path(path)
    try:
        proc = subprocess.run(_ffmpeg_cmd(path, sample_rate, max_seconds), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise errors.MediaError(errors.ERROR,
                                f"ffmpeg timed out after {timeout:g} s: {path}") from None
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise _classify_failure(path, stderr)
    samples = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)  # writable copy
    if samples.size == 0:
        raise errors.MediaError(errors.TRUNCATED,
                                f"audio stream decoded to 0 samples: {_tail(stderr)}")
    truncated = False
    if max_seconds is not None:
        limit = int(round(max_seconds * sample_rate))
        if samples.size > limit:
            # a few ms over (codec padding) is cut silently; more is reported as truncated
            truncated = samples.size - limit > TRUNCATION_SLACK_S * sample_rate
            samples = samples[:limit].copy()
    return AudioTrack(samples=samples, sample_rate=sample_rate, truncated=truncated,
                      source_seconds=_source_seconds(stderr))


# --------------------------------------------------------------------------------------
# Thesis features (Alg. 3.7)
# --------------------------------------------------------------------------------------

THESIS_FEATURE_NAMES: list[str] = (
    ["zcr"] + [f"chroma_{i}" for i in range(12)] + [f"mfcc_{i}" for i in range(20)]
    + ["rms"] + [f"mel_{i}" for i in range(128)]
)
assert len(THESIS_FEATURE_NAMES) == N_THESIS_FEATURES

MIN_SAMPLES = 1
"""Shorter input (i.e. empty) is zero-padded to one sample, so every call yields 162 finite
numbers. librosa pads each frame itself (center=True), so a clip of any positive length, even
a few ms, is computed exactly as the direct librosa calls would compute it."""


def thesis_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The 162 thesis features of a mono signal: time means of ZCR (1), chroma_stft on |STFT|
    (12), MFCC (20), RMS (1), mel spectrogram (128), in that order; float32.

    Numerically the thesis's (Kaggle) recipe, but the STFT is computed once: the mel spectrogram
    is ``melspectrogram(S=|STFT|**2)`` and the MFCC ``mfcc(S=power_to_db(mel))``, exactly what the
    direct calls compute internally. ZCR and RMS stay time-domain, as in the recipe.
    """
    import librosa

    y = as_mono(y)
    with quiet_librosa():
        stft = np.abs(librosa.stft(y))
        zcr = librosa.feature.zero_crossing_rate(y=y)
        chroma = librosa.feature.chroma_stft(S=stft, sr=sr)
        mel = librosa.feature.melspectrogram(S=stft ** 2, sr=sr)
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), sr=sr)
        rms = librosa.feature.rms(y=y)
    out = np.concatenate([m.mean(axis=1) for m in (zcr, chroma, mfcc, rms, mel)])
    return out.astype(np.float32)


@contextlib.contextmanager
def quiet_librosa() -> Iterator[None]:
    """Silence librosa's expected warnings on short or silent clips (n_fft longer than the
    signal, tuning estimated from no peaks); other warnings still show."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Trying to estimate tuning",
                                category=UserWarning)
        yield


def as_mono(y: np.ndarray) -> np.ndarray:
    """``y`` as a 1-D float32 array of at least MIN_SAMPLES samples (ValueError if not 1-D)."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected a 1-D mono signal, got shape {y.shape}")
    if y.size < MIN_SAMPLES:
        y = np.zeros(MIN_SAMPLES, dtype=np.float32)
    return y


# --------------------------------------------------------------------------------------
# Augmentation (Alg. 3.2)
# --------------------------------------------------------------------------------------

NOISE_FRACTION = 0.035       # noise std as a fraction of max |y|
STRETCH_RANGE = (0.8, 1.2)
PITCH_RANGE = (-1.0, 1.0)    # semitones


def augment_audio(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Alg. 3.2: each step independently with probability 0.5 -- Gaussian noise with std
    3.5 % of max |y|, time stretch by a rate in [0.8, 1.2], pitch shift by [-1, 1] semitones.
    As in the thesis, no step may fire (probability 1/8), returning the signal unchanged."""
    import librosa

    y = as_mono(y).copy()
    if rng.random() < 0.5:
        amp = NOISE_FRACTION * float(np.max(np.abs(y)))
        y = y + rng.normal(0.0, 1.0, size=y.shape).astype(np.float32) * np.float32(amp)
    with quiet_librosa():
        if rng.random() < 0.5:
            y = librosa.effects.time_stretch(y, rate=float(rng.uniform(*STRETCH_RANGE)))
        if rng.random() < 0.5:
            y = librosa.effects.pitch_shift(y, sr=sr, n_steps=float(rng.uniform(*PITCH_RANGE)))
    return y.astype(np.float32)


def augmented_features(y: np.ndarray, sr: int, copies: int, seed: int) -> np.ndarray:
    """``copies`` augmented thesis vectors of one clip, shape (copies, 162) float32;
    the same (y, seed) always gives the same rows."""
    rng = np.random.default_rng(seed)
    rows = [thesis_features(augment_audio(y, sr, rng), sr) for _ in range(copies)]
    if not rows:
        return np.zeros((0, N_THESIS_FEATURES), dtype=np.float32)
    return np.stack(rows).astype(np.float32)


# --------------------------------------------------------------------------------------
# Baseline: the thesis's own extraction path, for benchmarks only (slow, temp files)
# --------------------------------------------------------------------------------------


def thesis_style_audio(path: str, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """As the thesis did: MoviePy writes the clip's audio to a wav, librosa.load reads it.
    Returns (y, sr). Baseline for benchmarks; the pipeline uses :func:`decode_audio`."""
    import tempfile

    import librosa
    from moviepy import VideoFileClip

    with tempfile.TemporaryDirectory(prefix="mer_ray_audio_") as tmp:
        wav = os.path.join(tmp, "audio.wav")
        clip = VideoFileClip(os.fspath(path))
        try:
            if clip.audio is None:
                raise errors.MediaError(errors.NO_AUDIO, f"no audio stream in {path}")
            clip.audio.write_audiofile(wav, logger=None)
        finally:
            clip.close()
        y, sr_out = librosa.load(wav, sr=sr)
    return y, int(sr_out)
