"""Audio track decoding (in-process, PyAV + soxr), the thesis's 162 features (Alg. 3.7) and
its augmentation (Alg. 3.2).

Decoding reads the first audio stream with PyAV: no subprocess, no temp files, no MoviePy,
memory bounded by ``max_seconds``. Channels are averaged and the whole signal resampled with
soxr (HQ), as ``librosa.load`` does (for a wav the samples match librosa.load's). The samples
equal those of an ffmpeg CLI pipe (``aresample=resampler=soxr``, mono, f32le), including its
cut of an MP4's AAC padding at the stream's stated end. :func:`decode_audio_range` decodes one
stretch (a seek) with the same samples as that stretch of the whole decode (long videos).

The thesis's path (MoviePy writes a 16-bit wav, librosa.load reads it; kept below as
:func:`thesis_style_audio` for benchmarks) differs in two ways for a video's mono track:
MoviePy reads audio as stereo (mono copied to both channels at 1/sqrt 2), so its signal is
3 dB quieter, and 16-bit quantisation adds zero crossings in near-silence. Models must be
trained and scored on the same path; the pipeline uses :func:`decode_audio` for both.
"""
from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mer_ray.media.constants import N_THESIS_FEATURES, SAMPLE_RATE
from mer_ray.media import errors
from mer_ray.media.video import check_file

# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------


@dataclass
class AudioTrack:
    """Decoded mono audio. ``truncated``: cut at ``max_seconds``; ``source_seconds``: the
    container's stated duration (None when the file does not state one); ``stated_seconds``:
    the audio stream's own exact duration where the container records one (MP4 / MOV), else
    None. ``stopped_early``: decoding ended below STOPPED_EARLY_FRACTION of
    ``stated_seconds`` without reaching ``max_seconds`` (a damaged or cut file)."""

    samples: np.ndarray          # float32, 1-D, mono
    sample_rate: int
    truncated: bool
    source_seconds: float | None
    stated_seconds: float | None = None
    stopped_early: bool = False

    @property
    def seconds(self) -> float:
        return len(self.samples) / float(self.sample_rate)


# First bytes of common containers: a file that starts like media but cannot be opened is
# treated as truncated/corrupt, anything else as not media.
_MAGIC = (b"RIFF", b"OggS", b"fLaC", b"ID3", b"\x1a\x45\xdf\xa3", b"FLV", b"FORM", b"caff",
          b"#!AMR", b"\x00\x00\x01\xba", b"\x30\x26\xb2\x75", b".snd")
STOPPED_EARLY_FRACTION = 0.9  # decoded < 90 % of the stream's stated duration -> stopped_early
TRUNCATION_SLACK_S = 0.05     # decoded audio this much past max_seconds is codec padding
READ_AHEAD_S = 0.25           # decoded past max_seconds, so a longer source is detected
# integer sample formats -> float, as ffmpeg converts them (s16 / 32768, u8 centred)
_INT_SCALE = {"u8": (128.0, 1 / 128), "s16": (0.0, 1 / 2 ** 15), "s32": (0.0, 1 / 2 ** 31),
              "s64": (0.0, 1 / 2 ** 63)}


def ffmpeg_exe() -> str:
    """Path of the imageio-ffmpeg binary (there is no ffmpeg on PATH); tests and
    :mod:`mer_ray.sample` use it, decoding does not."""
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


def _reason(exc: Exception) -> str:
    """An av error's text without the repeated file name."""
    return getattr(exc, "strerror", None) or str(exc)


def _open(path: str):  # -> av.container.InputContainer
    import av

    try:
        # skip_frame: probing does not decode video frames (2-3x cheaper for an H.264 mp4)
        return av.open(path, metadata_errors="ignore", options={"skip_frame": "all"})
    except av.FFmpegError as exc:
        if _looks_like_media(path):
            raise errors.MediaError(errors.TRUNCATED, f"media container cannot be opened: "
                                    f"{path}: {_reason(exc)}") from None
        raise errors.MediaError(errors.NOT_MEDIA,
                                f"not an audio/video file: {path}: {_reason(exc)}") from None


def _frame_mono(frame) -> np.ndarray:  # frame: av.AudioFrame
    """One decoded frame as mono float32: channels averaged (packed or planar, any format)."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T            # (1, n*ch) interleaved -> (ch, n)
    kind = frame.format.name.rstrip("p")
    if kind in _INT_SCALE:
        offset, scale = _INT_SCALE[kind]
        data = (data.astype(np.float64) - offset) * scale
    data = data.astype(np.float32, copy=False)
    return data[0] if channels == 1 else data.mean(axis=0, dtype=np.float32)


class _Trim:
    """In an MP4/MOV, keeps the samples whose time lies in [stream start, start + stated
    duration), as the ffmpeg CLI does (AAC decodes whole 1024-sample frames past the stated
    end). Other containers keep every sample: Matroska, Ogg and MP3 mark the padding for the
    decoder themselves, and MPEG-TS/PS, ASF or raw streams state only an estimated duration.
    Decoded frames carry pts in the stream's time base; frames without one continue from the
    previous frame."""

    def __init__(self, container, stream, rate: int):
        self.tb = float(stream.time_base) if stream.time_base else 1.0 / rate
        self.start = (stream.start_time or 0) * self.tb
        stated = (container.format.name.startswith("mov") and stream.duration is not None
                  and stream.duration > 0)
        self.end = math.ceil(stream.duration * self.tb * rate - 1e-6) if stated else None
        self.rate = rate
        self.pos = 0                                  # next sample index, from the start

    def __call__(self, frame, mono: np.ndarray) -> np.ndarray:
        if self.end is None:
            return mono
        if frame.pts is not None:
            self.pos = round((frame.pts * self.tb - self.start) * self.rate)
        lo = max(0, -self.pos)
        hi = min(len(mono), self.end - self.pos)
        self.pos += len(mono)
        return mono[lo:hi] if lo or hi < len(mono) else mono


def _decode_native(container, stream, path: str, max_native: int | None) -> list[np.ndarray]:
    """Mono chunks at the stream's rate, stopping once ``max_native`` samples are in hand.
    Corrupt packets are skipped (as the ffmpeg CLI does); a demux error ends the stream, and
    is TRUNCATED if no audio was decoded before it."""
    import av

    trim, chunks, have = _Trim(container, stream, stream.rate), [], 0
    packets = container.demux(stream)
    while max_native is None or have < max_native:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as exc:
            if have:
                break                                 # keep what was decoded
            raise errors.MediaError(errors.TRUNCATED, f"audio stream cannot be read: "
                                    f"{path}: {_reason(exc)}") from None
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue                                  # a corrupt packet: skip it, go on
        for frame in frames:
            mono = trim(frame, _frame_mono(frame))
            if mono.size:
                chunks.append(mono)
                have += mono.size
    return chunks


def _source_seconds(container, stream) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / 1e6
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def decode_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE,
                 max_seconds: float | None = None) -> AudioTrack:
    """Decode the first audio stream of ``path`` to mono float32 at ``sample_rate``.

    Audio beyond ``max_seconds`` is not decoded; the track is cut there and ``truncated`` is
    set when more than 50 ms was dropped. Raises MediaError: NO_AUDIO (no audio stream),
    EMPTY_FILE, UNREADABLE (missing/unreadable path), NOT_MEDIA (no container FFmpeg knows and
    no media signature), TRUNCATED (a media file that cannot be opened, or whose audio decodes
    to 0 samples), ERROR (any other decoding failure).
    """
    import av
    import soxr

    path = os.fspath(path)
    check_file(path)              # unreadable / empty_file, as for video
    container = _open(path)
    try:
        stream, native = _audio_stream(container, path)
        max_native = (None if max_seconds is None
                      else int(math.ceil((max_seconds + READ_AHEAD_S) * native)))
        chunks = _decode_native(container, stream, path, max_native)
        source_seconds = _source_seconds(container, stream)
        stated = _stated_seconds(container, stream)
    except av.FFmpegError as exc:
        raise errors.MediaError(errors.ERROR,
                                f"audio decoding failed: {path}: {_reason(exc)}") from None
    finally:
        container.close()
    if not chunks:
        raise errors.MediaError(errors.TRUNCATED, f"audio stream decoded to 0 samples: {path}")
    y = np.concatenate(chunks)
    if max_native is not None:
        y = y[:max_native]                            # as ffmpeg -t: the same resampling edge
    if native != sample_rate:
        y = soxr.resample(y, native, sample_rate, quality="HQ")
    samples = y.astype(np.float32, copy=False)        # concatenate/soxr: a fresh array
    truncated = False
    if max_seconds is not None:
        limit = int(round(max_seconds * sample_rate))
        if samples.size > limit:
            # a few ms over (codec padding) is cut silently; more is reported as truncated
            truncated = samples.size - limit > TRUNCATION_SLACK_S * sample_rate
            samples = samples[:limit].copy()
    decoded_s = samples.size / sample_rate
    short = stated is not None and decoded_s < STOPPED_EARLY_FRACTION * stated
    capped = max_seconds is not None and decoded_s >= max_seconds - TRUNCATION_SLACK_S
    return AudioTrack(samples=samples, sample_rate=sample_rate, truncated=truncated,
                      source_seconds=source_seconds, stated_seconds=stated,
                      stopped_early=short and not capped)


def _audio_stream(container, path: str) -> tuple:
    """The first audio stream of an open container and its native sample rate."""
    if not container.streams.audio:
        raise errors.MediaError(errors.NO_AUDIO, f"no audio stream in {path}")
    stream = container.streams.audio[0]
    native = stream.rate or stream.codec_context.sample_rate
    if not native:
        raise errors.MediaError(errors.ERROR, f"audio stream has no sample rate: {path}")
    return stream, native


RANGE_PREROLL_S = 0.5         # decode_audio_range: decoded before the range and dropped
                              # (a codec restarts cold after a seek: AAC's first frames)
RANGE_EDGE_S = 0.25           # ... and resampled either side of it (soxr's filter edges)


def decode_audio_range(path: str | os.PathLike, start_s: float, end_s: float,
                       sample_rate: int = SAMPLE_RATE) -> AudioTrack:
    """The samples ``[round(start_s * sample_rate), round(end_s * sample_rate))`` of what
    :func:`decode_audio` gives for the whole track (fewer at its end), decoding only that
    range: a seek, a cold-codec pre-roll that is dropped, and a resampled stretch that starts
    on a sample both rates share, so the kept samples match the whole-file decode. For long
    videos scored chunk by chunk. Raises MediaError as decode_audio does."""
    import av

    path = os.fspath(path)
    check_file(path)
    container = _open(path)
    try:
        stream, native = _audio_stream(container, path)
        lo, hi = _native_span(start_s, end_s, native, sample_rate)
        y = _decode_span(container, stream, native, lo, hi)
        source_seconds, stated = _source_seconds(container, stream), _stated_seconds(container, stream)
    except av.FFmpegError as exc:
        raise errors.MediaError(errors.ERROR,
                                f"audio decoding failed: {path}: {_reason(exc)}") from None
    finally:
        container.close()
    samples = _resampled_range(y, lo, native, sample_rate, start_s, end_s)
    return AudioTrack(samples=samples, sample_rate=sample_rate, truncated=False,
                      source_seconds=source_seconds, stated_seconds=stated)


def _native_span(start_s: float, end_s: float, native: int, rate: int) -> tuple[int, int]:
    """Native sample range to decode for ``[start_s, end_s)``: widened by RANGE_EDGE_S, its
    start on a multiple of ``native / gcd`` (a sample that is also one at ``rate``)."""
    step = native // math.gcd(native, rate)
    lo = max(0, math.floor((start_s - RANGE_EDGE_S) * native / step) * step)
    hi = math.ceil((end_s + RANGE_EDGE_S) * native)
    return lo, hi


def _decode_span(container, stream, native: int, lo: int, hi: int) -> np.ndarray:
    """Native mono samples ``[lo, hi)`` of the track (placed by frame pts, as :class:`_Trim`
    does; shorter at the track's end), after seeking to RANGE_PREROLL_S before ``lo``."""
    trim = _Trim(container, stream, native)
    tb = trim.tb
    seek_s = lo / native - RANGE_PREROLL_S
    if seek_s > 0:
        container.seek(int((trim.start + seek_s) / tb), stream=stream, backward=True)
    out = np.zeros(hi - lo, np.float32)
    filled, pos = 0, None
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except Exception:  # noqa: BLE001 - a corrupt packet: skip it, as decode_audio does
            continue
        for frame in frames:
            mono = _frame_mono(frame)
            if frame.pts is not None:
                pos = round((frame.pts * tb - trim.start) * native)
            elif pos is None:
                pos = 0
            if trim.end is not None:
                mono = mono[:max(0, trim.end - pos)]
            a, b = max(pos, lo), min(pos + len(mono), hi)
            if b > a:
                out[a - lo:b - lo] = mono[a - pos:b - pos]
                filled = max(filled, b - lo)
            pos += len(mono)
            if pos >= hi:
                return out
    return out[:filled]


def _resampled_range(y: np.ndarray, lo: int, native: int, rate: int, start_s: float,
                     end_s: float) -> np.ndarray:
    """``y`` (native samples from ``lo``) at ``rate``, cut to ``[start_s, end_s)`` on the
    whole track's sample grid."""
    import soxr

    offset = lo * rate // native
    if native != rate and y.size:
        y = soxr.resample(y, native, rate, quality="HQ")
    a = max(0, round(start_s * rate) - offset)
    b = max(a, round(end_s * rate) - offset)
    return np.ascontiguousarray(y[a:b], np.float32)


def _stated_seconds(container, stream) -> float | None:
    """The audio stream's exact duration in an MP4 / MOV (its sample table), else None: other
    containers state an estimate (MP3 bit rate) or derive it from the file size (WAV)."""
    if container.format.name.startswith("mov") and stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


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
