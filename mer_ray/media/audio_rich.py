"""The "rich" audio recipe: utterance statistics of frame features plus prosody.

Vector layout (``RICH_FEATURE_NAMES``, ``N_RICH_FEATURES`` = 735, float32):

* 145 frame features -- MFCC 0-39 (DCT of a 128-band log-mel), their delta and delta-delta,
  chroma (12), spectral contrast (7: 6 octave bands from 200 Hz + valley), ZCR, log-RMS (dB),
  spectral centroid, bandwidth, 85 % roll-off (Hz) and flatness -- each pooled over the
  trimmed clip with 5 statistics, stat-major: all ``mean:*``, then ``std:*``, ``p10:*``,
  ``p50:*``, ``p90:*`` (names like ``"p90:mfcc_d_3"``): 725 numbers;
* 10 prosody numbers: ``f0_mean, f0_std, f0_p10, f0_p50, f0_p90, f0_range`` (p90 - p10),
  ``f0_delta_abs`` (mean |dF0| between consecutive voiced frames, semitones per second),
  ``loud_fraction``, ``voiced_fraction`` and ``duration_s`` (after trimming). F0 is in
  semitones re 55 Hz; the F0 numbers are 0 when no frame is voiced.

Why: the thesis vector (162 numbers) is the clip mean of ZCR, chroma, 20 MFCCs, RMS and the
mel spectrogram. This recipe keeps the spectral envelope (40 MFCCs) and adds how it moves
(deltas), how it spreads over the utterance (std and percentiles, not only the mean) and the
prosody (pitch, loudness, voicing) that a mean spectrum leaves out. Pooled statistics give a
fixed-length vector for any clip length.

Signal and frames: the same 22,050 Hz mono signal as the thesis features, so the preprocess
job decodes once. One complex STFT (n_fft 1024, Hann window 512, hop 256, centred) feeds every
spectral feature; padding the window to 1024 points gives every one of the 128 mel filters at
least 2 bins. ZCR, RMS and YIN use the same hop (frames line up) with a 1024-sample frame, more
than two periods of the 65 Hz F0 floor. Chroma uses tuning 0 (speech has no tuning to estimate).

Trimming: ``librosa.effects.trim`` at 30 dB below the peak; if that leaves less than one hop,
the whole clip is kept. Loud frames: RMS within 30 dB of the loudest frame and above -60 dBFS
(silence has none). Voiced frames: loud, and YIN aperiodicity (min of the cumulative mean
normalised difference) below 0.5. F0: ``librosa.yin`` (65-500 Hz) over voiced frames; yin
plus this gate rather than ``pyin``, which finds voicing itself but costs about 20 times as
much per clip.
"""
from __future__ import annotations

import numpy as np

from mer_ray.media.constants import SAMPLE_RATE
from mer_ray.media.audio import as_mono, quiet_librosa

N_FFT = 1024
WIN_LENGTH = 512
HOP = 256
FRAME_LENGTH = 1024          # ZCR, RMS, YIN
N_MELS = 128
N_MFCC = 40
TRIM_TOP_DB = 30.0
LOUD_DB = 30.0               # loud frame: within this many dB of the loudest frame
SILENCE_DBFS = -60.0         # ... and louder than this
APERIODIC_MAX = 0.5          # voiced frame: loud, and YIN aperiodicity below this
F0_MIN, F0_MAX = 65.0, 500.0
F0_REF_HZ = 55.0             # semitone reference
DB_FLOOR = 1e-5              # RMS floor for log-RMS (-100 dBFS)

STATS = ("mean", "std", "p10", "p50", "p90")
FRAME_FEATURE_NAMES: list[str] = (
    [f"mfcc_{i}" for i in range(N_MFCC)] + [f"mfcc_d_{i}" for i in range(N_MFCC)]
    + [f"mfcc_dd_{i}" for i in range(N_MFCC)] + [f"chroma_{i}" for i in range(12)]
    + [f"contrast_{i}" for i in range(7)]
    + ["zcr", "log_rms", "centroid", "bandwidth", "rolloff", "flatness"]
)
PROSODY_NAMES: list[str] = ["f0_mean", "f0_std", "f0_p10", "f0_p50", "f0_p90", "f0_range",
                            "f0_delta_abs", "loud_fraction", "voiced_fraction", "duration_s"]
RICH_FEATURE_NAMES: list[str] = (
    [f"{s}:{f}" for s in STATS for f in FRAME_FEATURE_NAMES] + PROSODY_NAMES
)
N_RICH_FEATURES = len(RICH_FEATURE_NAMES)   # 145 * 5 + 10 = 735


def trim_silence(y: np.ndarray) -> np.ndarray:
    """Leading/trailing silence removed (frames 30 dB below the loudest); the whole clip if
    that empties it. ``librosa.effects.trim``'s rule for mono samples, written out: importing
    librosa.effects imports scikit-learn (librosa.decompose), ~1 s of every worker's start."""
    import librosa

    rms = librosa.feature.rms(y=y, frame_length=FRAME_LENGTH, hop_length=HOP)[0]
    loud = np.flatnonzero(librosa.amplitude_to_db(rms, ref=np.max, top_db=None) > -TRIM_TOP_DB)
    if not loud.size:
        return y
    trimmed = y[loud[0] * HOP:min(len(y), (loud[-1] + 1) * HOP)]
    return trimmed if len(trimmed) >= HOP else y


def _deltas(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Delta and delta-delta over time; the window shrinks for clips of under 9 frames."""
    import librosa

    n = m.shape[1]
    if n < 3:
        return np.zeros_like(m), np.zeros_like(m)
    width = min(9, n if n % 2 else n - 1)
    return (librosa.feature.delta(m, width=width, order=1),
            librosa.feature.delta(m, width=width, order=2))


def frame_features(y: np.ndarray, sr: int) -> np.ndarray:
    """The 145 per-frame features of ``FRAME_FEATURE_NAMES``, shape (145, n_frames)."""
    import librosa

    mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, win_length=WIN_LENGTH))
    power = mag ** 2
    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr,
                                                                 n_mels=N_MELS))
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)
    d1, d2 = _deltas(mfcc)
    rms = librosa.feature.rms(y=y, frame_length=FRAME_LENGTH, hop_length=HOP)
    rows = [
        mfcc, d1, d2,
        librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0),
        librosa.feature.spectral_contrast(S=mag, sr=sr),
        librosa.feature.zero_crossing_rate(y, frame_length=FRAME_LENGTH, hop_length=HOP),
        20.0 * np.log10(np.maximum(rms, DB_FLOOR)),
        librosa.feature.spectral_centroid(S=mag, sr=sr),
        librosa.feature.spectral_bandwidth(S=mag, sr=sr),
        librosa.feature.spectral_rolloff(S=mag, sr=sr),
        librosa.feature.spectral_flatness(S=mag),
    ]
    n = min(r.shape[1] for r in rows)
    return np.concatenate([r[:, :n] for r in rows], axis=0)


def pool(frames: np.ndarray) -> np.ndarray:
    """Stat-major pooling of (features, frames): mean, std, p10, p50, p90."""
    p10, p50, p90 = np.percentile(frames, [10, 50, 90], axis=1)
    return np.concatenate([frames.mean(axis=1), frames.std(axis=1), p10, p50, p90])


def aperiodicity(y: np.ndarray, sr: int) -> np.ndarray:
    """Per frame, the minimum of YIN's cumulative mean normalised difference over the
    65-500 Hz lag range (librosa.yin's formula and framing): near 0 periodic, near 1 noise."""
    import librosa

    frames = librosa.util.frame(np.pad(y, FRAME_LENGTH // 2), frame_length=FRAME_LENGTH,
                                hop_length=HOP)
    min_p = int(np.floor(sr / F0_MAX))
    max_p = min(int(np.ceil(sr / F0_MIN)), FRAME_LENGTH - 1)
    acf = librosa.autocorrelate(frames, max_size=max_p + 1, axis=0)
    energy = np.cumsum(frames ** 2, axis=0)
    diff = 2.0 * (acf[:1] - acf[1:max_p + 1]) - energy[:max_p]        # lags 1..max_p
    mean = np.cumsum(diff, axis=0) / np.arange(1, max_p + 1)[:, None]
    cmnd = diff[min_p - 1:] / (mean[min_p - 1:] + np.finfo(np.float32).tiny)
    return cmnd.min(axis=0)


def prosody(y: np.ndarray, sr: int, log_rms_db: np.ndarray) -> np.ndarray:
    """The ``PROSODY_NAMES`` numbers of an (already trimmed) clip."""
    import librosa

    f0 = librosa.yin(y, fmin=F0_MIN, fmax=F0_MAX, sr=sr, frame_length=FRAME_LENGTH,
                     hop_length=HOP)
    aper = aperiodicity(y, sr)
    n = min(len(f0), len(aper), len(log_rms_db))
    f0, aper, db = f0[:n], aper[:n], log_rms_db[:n]
    loud = (db >= db.max() - LOUD_DB) & (db > SILENCE_DBFS)
    voiced = loud & (aper < APERIODIC_MAX)
    duration = len(y) / float(sr)
    tail = [loud.mean(), voiced.mean(), duration]
    if not voiced.any():
        return np.array([0.0] * 7 + tail)
    st = 12.0 * np.log2(np.maximum(f0[voiced], 1.0) / F0_REF_HZ)
    p10, p50, p90 = np.percentile(st, [10, 50, 90])
    consecutive = np.diff(np.flatnonzero(voiced)) == 1
    steps = np.abs(np.diff(st))[consecutive]
    delta = float(steps.mean()) * sr / HOP if steps.size else 0.0
    return np.array([st.mean(), st.std(), p10, p50, p90, p90 - p10, delta] + tail)


def rich_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The 735-D rich vector of a mono clip (order: ``RICH_FEATURE_NAMES``), float32, finite
    for any input including silence and clips of a few ms."""
    y = trim_silence(as_mono(y))
    with quiet_librosa():
        frames = frame_features(y, sr)
        out = np.concatenate([pool(frames), prosody(y, sr, frames[FRAME_FEATURE_NAMES.index(
            "log_rms")])])
    return out.astype(np.float32)
