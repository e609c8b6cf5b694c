from pathlib import Path

import pytest

from mer_ray.config import AROUSAL, EMOTIONS
from mer_ray.labels import (arousal_of, emotion_index, normalize_label, parse_ravdess_name,
                            ravdess_filename)


def test_class_order_is_spec_order():
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert set(AROUSAL) == set(EMOTIONS)


def test_parse_all_seven_fields_and_ignore_suffix():
    name = parse_ravdess_name(Path("x/Actor_01/01-01-07-02-02-01-01_1.mp4"))
    assert name is not None
    assert (name.modality, name.vocal_channel, name.emotion_code, name.intensity,
            name.statement, name.repetition, name.actor) == (1, 1, 7, 2, 2, 1, 1)
    assert name.emotion == "disgust" and name.modality_name == "audio-video"
    assert name.has_video and name.has_audio


@pytest.mark.parametrize("code,emotion", [(1, "neutral"), (2, None), (3, "happy"), (4, "sad"),
                                          (5, "angry"), (6, "fear"), (7, "disgust"), (8, "surprise")])
def test_emotion_codes(code, emotion):
    assert parse_ravdess_name(f"01-01-{code:02d}-01-01-01-12.mp4").emotion == emotion


def test_modalities():
    video_only = parse_ravdess_name("02-01-03-01-01-01-05.mp4")
    audio_only = parse_ravdess_name("03-01-03-01-01-01-05.wav")
    assert video_only.has_video and not video_only.has_audio
    assert audio_only.has_audio and not audio_only.has_video


@pytest.mark.parametrize("bad", ["clip.mp4", "01-01-09-01-01-01-01.mp4", "04-01-01-01-01-01-01.mp4",
                                 "01-03-01-01-01-01-01.mp4", "1-1-1-1-1-1-1.mp4"])
def test_non_ravdess_names_are_rejected(bad):
    assert parse_ravdess_name(bad) is None


def test_filename_roundtrip():
    for emotion in EMOTIONS:
        name = parse_ravdess_name(ravdess_filename(emotion, actor=7, statement=2, intensity=2))
        assert name.emotion == emotion and name.actor == 7 and name.statement == 2
        assert name.intensity == (1 if emotion == "neutral" else 2)


def test_label_helpers():
    assert emotion_index("fear") == 2
    with pytest.raises(ValueError, match="unknown emotion"):
        emotion_index("bored")
    assert normalize_label(" Fearful ") == "fear"
    assert normalize_label("calm") is None
    assert arousal_of("sad") == "low" and arousal_of("surprise") == "high"
