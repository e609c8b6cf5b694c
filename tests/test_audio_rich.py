"""The rich audio recipe: layout, edge cases and what its numbers mean."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mer_ray.media import audio, audio_rich as rich

SR = 22_050


@pytest.fixture(scope="session")
def speech(real_video: Path) -> np.ndarray:
    return audio.decode_audio(str(real_video)).samples


@pytest.fixture(scope="session")
def speech_features(speech: np.ndarray) -> np.ndarray:
    return rich.rich_features(speech, SR)


def _get(vec: np.ndarray, name: str) -> float:
    return float(vec[rich.RICH_FEATURE_NAMES.index(name)])


def test_layout_is_fixed_and_documented() -> None:
    names = rich.RICH_FEATURE_NAMES
    n_frame = len(rich.FRAME_FEATURE_NAMES)
    assert n_frame == 3 * 40 + 12 + 7 + 6
    assert len(names) == len(set(names)) == rich.N_RICH_FEATURES == 5 * n_frame + 10
    assert names[0] == "mean:mfcc_0" and names[n_frame] == "std:mfcc_0"
    assert names[4 * n_frame] == "p90:mfcc_0" and names[n_frame - 1] == "mean:flatness"
    assert names[-len(rich.PROSODY_NAMES):] == rich.PROSODY_NAMES
    assert str(rich.N_RICH_FEATURES) in rich.__doc__


def test_speech_vector(speech_features: np.ndarray, speech: np.ndarray) -> None:
    v = speech_features
    assert v.shape == (rich.N_RICH_FEATURES,) and v.dtype == np.float32
    assert np.isfinite(v).all()
    # trimming removes the clip's leading/trailing silence, but not the speech
    assert 1.0 < _get(v, "duration_s") < len(speech) / SR
    assert 0.2 < _get(v, "voiced_fraction") <= _get(v, "loud_fraction") <= 1.0
    # adult voice: median F0 between 80 and 400 Hz
    f0_hz = rich.F0_REF_HZ * 2 ** (_get(v, "f0_p50") / 12)
    assert 80 < f0_hz < 400
    assert _get(v, "p10:log_rms") <= _get(v, "p50:log_rms") <= _get(v, "p90:log_rms")


def test_trim_is_librosas_trim(speech: np.ndarray) -> None:
    """trim_silence writes out librosa.effects.trim (without importing scikit-learn)."""
    import librosa

    rng = np.random.default_rng(0)
    pad = np.zeros(SR // 2, dtype=np.float32)
    quiet = (1e-4 * rng.standard_normal(SR)).astype(np.float32)
    cases = {"speech": speech, "padded": np.concatenate([pad, speech[:SR], pad]),
             "quiet edges": np.concatenate([quiet, speech[:SR], quiet]),
             "one click": np.concatenate([pad, [0.5], pad]).astype(np.float32)}
    for name, y in cases.items():
        expected, _ = librosa.effects.trim(y, top_db=rich.TRIM_TOP_DB,
                                           frame_length=rich.FRAME_LENGTH, hop_length=rich.HOP)
        expected = expected if len(expected) >= rich.HOP else y
        np.testing.assert_array_equal(rich.trim_silence(y), expected, err_msg=name)
    assert len(rich.trim_silence(cases["padded"])) < len(cases["padded"]) - SR // 2
    silent = np.zeros(SR, dtype=np.float32)
    assert len(rich.trim_silence(silent)) == SR          # nothing loud: the whole clip


def test_silence_padding_is_trimmed(speech: np.ndarray, speech_features: np.ndarray) -> None:
    pad = np.zeros(SR, dtype=np.float32)
    padded = rich.rich_features(np.concatenate([pad, speech, pad]), SR)
    assert _get(padded, "duration_s") == pytest.approx(_get(speech_features, "duration_s"),
                                                       abs=0.03)
    assert _get(padded, "mean:mfcc_1") == pytest.approx(_get(speech_features, "mean:mfcc_1"),
                                                        rel=0.05, abs=0.5)


def test_louder_signal_shifts_log_rms_by_6db(speech: np.ndarray,
                                             speech_features: np.ndarray) -> None:
    louder = rich.rich_features(2.0 * speech, SR)
    shift = _get(louder, "mean:log_rms") - _get(speech_features, "mean:log_rms")
    assert shift == pytest.approx(20 * np.log10(2), abs=0.05)
    assert _get(louder, "f0_p50") == pytest.approx(_get(speech_features, "f0_p50"), abs=0.1)


def test_pitch_of_a_tone_and_of_noise() -> None:
    t = np.arange(SR) / SR
    tone = rich.rich_features((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), SR)
    assert _get(tone, "f0_p50") == pytest.approx(12 * np.log2(200 / rich.F0_REF_HZ), abs=0.3)
    assert _get(tone, "f0_std") < 0.2 and _get(tone, "voiced_fraction") > 0.9
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    assert _get(rich.rich_features(noise, SR), "voiced_fraction") < 0.2


def test_pool_is_stat_major() -> None:
    frames = np.arange(20, dtype=float).reshape(2, 10)
    pooled = rich.pool(frames)
    want = np.concatenate([frames.mean(1), frames.std(1),
                           *np.percentile(frames, [10, 50, 90], axis=1)])
    np.testing.assert_allclose(pooled, want)


@pytest.mark.parametrize("case", ["silence", "empty", "0.2s", "60s"])
def test_finite_on_edge_cases(case: str, speech: np.ndarray) -> None:
    signal = {
        "silence": np.zeros(4 * SR, dtype=np.float32),
        "empty": np.zeros(0, dtype=np.float32),
        "0.2s": speech[SR: SR + SR // 5],
        "60s": np.tile(speech, 15)[: 60 * SR],
    }[case]
    v = rich.rich_features(signal, SR)
    assert v.shape == (rich.N_RICH_FEATURES,) and np.isfinite(v).all()
    if case == "silence":
        assert _get(v, "loud_fraction") == 0 and _get(v, "f0_mean") == 0
        assert _get(v, "duration_s") == pytest.approx(4.0)   # nothing left: whole clip kept
    if case == "60s":
        assert 50 < _get(v, "duration_s") <= 60
