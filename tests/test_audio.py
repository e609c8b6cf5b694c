"""Audio decoding (PyAV + soxr), the 162 thesis features and augmentation."""
from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from mer_ray.media import audio, errors

SR = 22_050


def _ffmpeg(*args: str) -> None:
    subprocess.run([audio.ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args], check=True)


def _ffmpeg_pipe(path: Path) -> np.ndarray:
    """The reference: the ffmpeg CLI pipe decode_audio used before (mono f32 at 22.05 kHz,
    channels averaged, soxr resampling)."""
    out = subprocess.run(
        [audio.ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
         "-vn", "-af", f"aresample=resampler=soxr:osr={SR}:ochl=mono:rematrix_maxval=1",
         "-ac", "1", "-ar", str(SR), "-f", "f32le", "pipe:1"],
        capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<f4")


def _two_tones(path: Path, *codec: str) -> Path:
    """1.3 s of 48 kHz stereo, 440 Hz left and 660 Hz right."""
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1.3",
            "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000:duration=1.3",
            "-filter_complex", "[0][1]amerge=inputs=2", *codec, str(path))
    return path


def _assert_matches_cli(path: Path) -> audio.AudioTrack:
    track = audio.decode_audio(str(path))
    ref = _ffmpeg_pipe(path)
    assert abs(len(track.samples) - len(ref)) <= 1
    n = min(len(ref), len(track.samples))
    assert np.max(np.abs(ref)) > 0.05
    np.testing.assert_allclose(track.samples[:n], ref[:n], atol=1e-4)
    return track


@pytest.fixture(scope="session")
def real_track(real_video: Path) -> audio.AudioTrack:
    return audio.decode_audio(str(real_video))


@pytest.fixture(scope="session")
def speech_wav(shared_data: Path) -> Path:
    return shared_data / "ravdess-speech" / "Actor_01" / "03-01-02-01-01-02-01.wav"


@pytest.fixture(scope="session")
def clip_2s(real_track: audio.AudioTrack) -> np.ndarray:
    return real_track.samples[: 2 * SR]


# --- decoding ---------------------------------------------------------------------------

def test_decode_real_video(real_track: audio.AudioTrack) -> None:
    y = real_track.samples
    assert y.dtype == np.float32 and y.ndim == 1 and y.flags.writeable
    assert real_track.sample_rate == SR
    assert abs(len(y) - 4.0 * SR) < 0.05 * SR          # 4.0 s AAC, 44.1 kHz mono
    assert real_track.source_seconds == pytest.approx(4.0, abs=0.05)
    assert not real_track.truncated
    assert 0 < np.sqrt(np.mean(y ** 2)) and np.max(np.abs(y)) <= 1.5


def test_decode_stereo_48k_wav_downmixes_like_librosa(speech_wav: Path) -> None:
    import librosa

    track = audio.decode_audio(str(speech_wav))
    assert abs(track.seconds - track.source_seconds) < 0.01
    ref, _ = librosa.load(str(speech_wav), sr=SR)      # mean of channels, soxr resampling
    n = min(len(ref), len(track.samples))
    assert abs(len(ref) - len(track.samples)) <= 2
    assert np.max(np.abs(ref)) > 0.01
    np.testing.assert_allclose(track.samples[:n], ref[:n], atol=1e-4)


def test_decode_matches_ffmpeg_cli_on_real_video(real_video: Path) -> None:
    """Same samples as an `ffmpeg` CLI pipe, including its cut of the AAC padding: the clip
    decodes 173 x 1024 samples but the stream states 176576 (4.004 s at 44.1 kHz)."""
    track = _assert_matches_cli(real_video)
    assert len(track.samples) == round(176_576 / 2)


def test_decode_matches_ffmpeg_cli_on_stereo_48k_aac(tmp_path: Path) -> None:
    mp4 = _two_tones(tmp_path / "tones.mp4", "-c:a", "aac", "-ar", "48000")
    track = _assert_matches_cli(mp4)
    assert abs(track.seconds - 1.3) < 1.5 / SR
    spectrum = np.abs(np.fft.rfft(track.samples))
    hz = np.fft.rfftfreq(len(track.samples), 1 / SR)
    for tone in (440, 660):                             # both channels are in the mix
        band = np.abs(hz - tone) < 5
        assert spectrum[band].max() > 0.3 * spectrum.max()


def test_decode_packed_s16_stereo_wav(tmp_path: Path) -> None:
    """Interleaved 16-bit stereo: channels de-interleaved, scaled by 1/32768 and averaged."""
    rng = np.random.default_rng(0)
    pcm = rng.integers(-20_000, 20_000, size=(SR // 2, 2), dtype=np.int16)
    path = tmp_path / "packed.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(SR)                              # native rate: no resampling
        w.writeframes(pcm.tobytes())                    # row-major: L R L R ...
    track = audio.decode_audio(str(path))
    want = pcm.astype(np.float32).mean(axis=1) / 32768
    np.testing.assert_allclose(track.samples, want, atol=1e-7)
    wav48 = _two_tones(tmp_path / "tones.wav", "-c:a", "pcm_s16le")
    ref = _assert_matches_cli(wav48)
    import librosa

    np.testing.assert_allclose(ref.samples, librosa.load(str(wav48), sr=SR)[0], atol=1e-4)


def test_corrupt_packet_mid_stream_is_skipped(tmp_path: Path) -> None:
    mp3 = _two_tones(tmp_path / "tones.mp3", "-c:a", "libmp3lame")
    data = bytearray(mp3.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 400] = np.random.default_rng(1).integers(0, 256, 400, np.uint8).tobytes()
    mp3.write_bytes(bytes(data))
    track = audio.decode_audio(str(mp3))
    assert track.seconds > 1.0
    assert abs(len(track.samples) - len(_ffmpeg_pipe(mp3))) <= 1


def test_decode_other_format_keeps_pitch(tmp_path: Path) -> None:
    ogg = tmp_path / "tone.ogg"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.5",
            "-ac", "2", "-c:a", "libvorbis", str(ogg))
    track = audio.decode_audio(str(ogg))
    assert abs(track.seconds - 0.5) < 0.03
    spectrum = np.abs(np.fft.rfft(track.samples))
    peak_hz = np.argmax(spectrum) * SR / len(track.samples)
    assert abs(peak_hz - 440) < 5


def test_max_seconds_cuts_and_flags(real_video: Path) -> None:
    cut = audio.decode_audio(str(real_video), max_seconds=1.0)
    assert len(cut.samples) == SR and cut.truncated
    whole = audio.decode_audio(str(real_video), max_seconds=10.0)
    assert not whole.truncated and len(whole.samples) > 3.9 * SR
    np.testing.assert_allclose(cut.samples[: SR // 2], whole.samples[: SR // 2], atol=1e-6)


def _status(path: Path) -> str:
    with pytest.raises(errors.MediaError) as info:
        audio.decode_audio(str(path))
    assert str(info.value)
    return info.value.status


def test_video_without_audio_is_no_audio(tmp_path: Path) -> None:
    video = tmp_path / "silent_film.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "1", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", str(video))
    assert _status(video) == errors.NO_AUDIO


def test_broken_inputs_get_failed_statuses(tmp_path: Path, real_video: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(real_video.read_bytes()[:30_000])
    assert _status(text) == errors.NOT_MEDIA
    assert _status(empty) == errors.EMPTY_FILE
    assert _status(tmp_path / "missing.mp4") == errors.UNREADABLE
    assert _status(cut) == errors.TRUNCATED


def test_thesis_style_baseline_is_3db_quieter_for_mono(real_video: Path,
                                                      real_track: audio.AudioTrack) -> None:
    """MoviePy reads audio as stereo (mono -> both channels at 1/sqrt 2) and librosa.load
    averages them: the thesis's path attenuates mono tracks by 3 dB, ours does not."""
    y, sr = audio.thesis_style_audio(str(real_video))
    assert sr == SR and abs(len(y) - len(real_track.samples)) < 0.01 * SR
    n = min(len(y), len(real_track.samples))
    np.testing.assert_allclose(y[:n], real_track.samples[:n] * np.sqrt(0.5), atol=1e-3)


# --- thesis features --------------------------------------------------------------------

def test_feature_names() -> None:
    names = audio.THESIS_FEATURE_NAMES
    assert len(names) == len(set(names)) == 162
    assert names[0] == "zcr" and names[1] == "chroma_0" and names[13] == "mfcc_0"
    assert names[33] == "rms" and names[34] == "mel_0" and names[-1] == "mel_127"


def test_thesis_features_match_direct_librosa(clip_2s: np.ndarray) -> None:
    """Each block equals the thesis's (Kaggle) recipe computed directly on the same signal."""
    import librosa

    y = clip_2s
    got = audio.thesis_features(y, SR)
    assert got.shape == (162,) and got.dtype == np.float32
    blocks = {
        "zcr": np.mean(librosa.feature.zero_crossing_rate(y=y).T, axis=0),
        "chroma": np.mean(librosa.feature.chroma_stft(S=np.abs(librosa.stft(y)), sr=SR).T,
                          axis=0),
        "mfcc": np.mean(librosa.feature.mfcc(y=y, sr=SR).T, axis=0),
        "rms": np.mean(librosa.feature.rms(y=y).T, axis=0),
        "mel": np.mean(librosa.feature.melspectrogram(y=y, sr=SR).T, axis=0),
    }
    start = 0
    for name, want in blocks.items():
        part = got[start: start + len(want)]
        np.testing.assert_allclose(part, want, rtol=1e-4, atol=1e-6, err_msg=name)
        start += len(want)
    assert start == 162


@pytest.mark.parametrize("seconds", [0.0, 0.05, 1.0])
def test_thesis_features_finite_on_silence_and_short_input(seconds: float) -> None:
    silence = np.zeros(int(seconds * SR), dtype=np.float32)
    assert np.isfinite(audio.thesis_features(silence, SR)).all()
    rng = np.random.default_rng(0)
    short = (0.1 * rng.standard_normal(max(1, int(seconds * SR)))).astype(np.float32)
    feats = audio.thesis_features(short, SR)
    assert feats.shape == (162,) and np.isfinite(feats).all()


def test_thesis_features_reject_stereo() -> None:
    with pytest.raises(ValueError):
        audio.thesis_features(np.zeros((2, 1000), dtype=np.float32), SR)


# --- augmentation -----------------------------------------------------------------------

def test_augmented_features_deterministic_per_seed(clip_2s: np.ndarray) -> None:
    y = clip_2s[:SR]
    a = audio.augmented_features(y, SR, copies=3, seed=7)
    b = audio.augmented_features(y, SR, copies=3, seed=7)
    c = audio.augmented_features(y, SR, copies=3, seed=8)
    assert a.shape == (3, 162) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    original = audio.thesis_features(y, SR)
    assert sum(not np.allclose(row, original) for row in a) >= 1
    assert audio.augmented_features(y, SR, copies=0, seed=7).shape == (0, 162)


def test_augment_audio_changes_signal_within_thesis_ranges(clip_2s: np.ndarray) -> None:
    y = clip_2s[:SR]
    lengths, changed = set(), 0
    for seed in range(12):
        out = audio.augment_audio(y, SR, np.random.default_rng(seed))
        assert out.dtype == np.float32 and out.ndim == 1 and np.isfinite(out).all()
        # time stretch rate in [0.8, 1.2] -> length in [len/1.2, len/0.8]
        assert len(y) / 1.2 - 2 <= len(out) <= len(y) / 0.8 + 2
        lengths.add(len(out))
        changed += len(out) != len(y) or not np.allclose(out, y)
    assert len(lengths) > 2 and changed >= 8
    np.testing.assert_array_equal(audio.augment_audio(y, SR, np.random.default_rng(3)),
                                  audio.augment_audio(y, SR, np.random.default_rng(3)))


class _ScriptedRng:
    """Stands in for np.random.Generator: fixed coin flips and a fixed uniform draw."""

    def __init__(self, flips: list[float], uniform: float):
        self.flips, self.value = list(flips), uniform
        self._normal = np.random.default_rng(0)

    def random(self) -> float:
        return self.flips.pop(0)

    def uniform(self, low: float, high: float) -> float:
        assert low <= self.value <= high
        return self.value

    def normal(self, loc: float, scale: float, size: tuple[int, ...]) -> np.ndarray:
        return self._normal.normal(loc, scale, size)


def test_each_augmentation_step(clip_2s: np.ndarray) -> None:
    y = clip_2s[:SR]
    noisy = audio.augment_audio(y, SR, _ScriptedRng([0.1, 0.9, 0.9], 1.0))
    assert len(noisy) == len(y)
    assert np.std(noisy - y) == pytest.approx(0.035 * np.max(np.abs(y)), rel=0.05)
    slow = audio.augment_audio(y, SR, _ScriptedRng([0.9, 0.1, 0.9], 0.8))
    assert abs(len(slow) - len(y) / 0.8) <= 2
    shifted = audio.augment_audio(y, SR, _ScriptedRng([0.9, 0.9, 0.1], 1.0))
    assert len(shifted) == len(y) and not np.allclose(shifted, y, atol=1e-3)
    same = audio.augment_audio(y, SR, _ScriptedRng([0.9, 0.9, 0.9], 1.0))
    np.testing.assert_array_equal(same, y)


# --- speech check (voice_activity) -------------------------------------------------------

def _extract(path: Path) -> dict:
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.media.options import ExtractOptions

    opts = ExtractOptions(faces=False, audio_aug_copies=0, rich_audio=False)
    return ClipExtractor(opts).extract(str(path)).clip


def test_speech_mask_energy_floor_and_relative_level() -> None:
    from mer_ray.media.voice_activity import has_speech, speech_fraction, speech_mask

    rng = np.random.default_rng(0)
    talk = np.zeros(2 * SR, np.float32)
    talk[SR // 2: SR] = rng.normal(0, 0.2, SR // 2)                  # 0.5 s of "voice"
    talk[SR: SR + SR // 2] = rng.normal(0, 0.2 * 10 ** (-40 / 20), SR // 2)  # 40 dB down: a pause
    mask = speech_mask(talk, SR)
    assert mask.dtype == bool and len(mask) == int(np.ceil(2 / 0.03))
    assert speech_fraction(talk, SR) == pytest.approx(0.25, abs=0.03) and has_speech(talk, SR)
    assert speech_fraction(np.zeros(3 * SR), SR) == 0.0 and not has_speech(np.zeros(3 * SR), SR)
    hiss = rng.normal(0, 10 ** (-70 / 20), 3 * SR)                  # under the absolute floor
    assert not has_speech(hiss, SR)
    assert not has_speech(np.full(3 * SR, 0.5, np.float32), SR)       # a DC offset is no energy
    assert not has_speech(rng.normal(0, 0.3, SR // 100), SR)          # 10 ms: too short
    assert speech_fraction(np.zeros(0), SR) == 0.0 and speech_mask(np.zeros(0), SR).size == 0


def test_silent_track_and_short_silent_wav_get_no_audio_vector(tmp_path: Path) -> None:
    from mer_ray.media.audio_recipes import RECIPE_COLUMNS
    from mer_ray.sample import ClipSpec, SampleConfig, clip_frames, write_clip
    from mer_ray.sample.mux import write_wav

    cfg = SampleConfig(seconds=1.0, fps=10.0, width=160, height=120)
    film = write_clip(tmp_path / "silent.mp4", clip_frames(ClipSpec("happy", 1, 0, 1, 1, 1), cfg),
                      np.zeros(cfg.audio_rate, np.float32), cfg.fps, cfg.audio_rate)
    blip = write_wav(tmp_path / "blip.wav", np.zeros(SR // 100, np.float32), SR)   # 10 ms
    for path, status in ((film, errors.OK), (blip, errors.AUDIO_ONLY)):
        clip = _extract(path)
        assert clip["status"] == status and clip["has_audio"], clip["error"]
        assert all(clip[c] is None for c in RECIPE_COLUMNS), path.name
        assert clip["speech_fraction"] == 0.0 and "no audio vote" in clip["error"]


def test_silence_casts_no_audio_vote(tmp_path: Path) -> None:
    """Through the score rows: a silent wav gets no audio probabilities and no label."""
    from types import SimpleNamespace

    from mer_ray.media.extract import ClipExtractor
    from mer_ray.media.options import ExtractOptions
    from mer_ray.sample.mux import write_wav
    from mer_ray.score.fusion import FusionWeights
    from mer_ray.score.predictors import predict_audio
    from mer_ray.score.rows import extraction_rows, fuse_row

    class Voice:                    # an audio model that would call everything 'angry'
        info = SimpleNamespace(speaker_norm=False)

        def predict(self, x):
            return np.tile(np.eye(7, dtype=np.float32)[0], (len(x), 1))

    path = write_wav(tmp_path / "quiet.wav", np.zeros(2 * SR, np.float32), SR)
    extraction = ClipExtractor(ExtractOptions(faces=False, audio_aug_copies=0,
                                              rich_audio=False)).extract(str(path))
    table = predict_audio(Voice(), extraction_rows([{"path": str(path)}], [extraction],
                                                   "audio_features"))
    row = fuse_row(table.to_pylist()[0], FusionWeights(), {"audio": "audio:x:0"}, False)
    assert row["status"] == "no_signal" and row["emotion"] is None
    assert row["audio_probs"] is None and row["confidence"] is None
    assert row["speech_fraction"] == 0.0


@pytest.mark.real_data
def test_real_speech_keeps_its_audio_vector(speech_wav: Path) -> None:
    clip = _extract(speech_wav)
    assert clip["status"] == errors.AUDIO_ONLY and clip["error"] is None
    assert clip["audio_features"] is not None and len(clip["audio_features"]) == 162
    assert 0.1 < clip["speech_fraction"] < 1.0
