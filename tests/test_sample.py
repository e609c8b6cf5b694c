"""mer_ray.sample and `mer-ray make-sample`: layout, names, determinism, audio, bad inputs."""
from __future__ import annotations

import argparse
import subprocess
import wave

import numpy as np
import pytest

from mer_ray import cli
from mer_ray.commands import make_sample as make_sample_command
from mer_ray.config import ACTOR_FOLDS, EMOTIONS
from mer_ray.labels import parse_ravdess_name
from mer_ray.media.video import read_keyframes
from mer_ray.sample import (ACTOR_ORDER, SampleConfig, clip_specs, ffmpeg_exe, make_sample,
                            synth_voice)

CFG = SampleConfig(actors=2, clips_per_emotion=1, seconds=1.0, width=320, height=240)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> list:
    return make_sample(tmp_path_factory.mktemp("sample"), CFG)


def _decode_audio(path, rate: int = 16000) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-vn", "-ac", "1",
                          "-ar", str(rate), "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32)


def _f0(y: np.ndarray, rate: int) -> float:
    """Median autocorrelation pitch (60-400 Hz) over the loudest 50 ms windows."""
    win = int(0.05 * rate)
    frames = [y[i:i + win] for i in range(0, len(y) - win, win)]
    loud = sorted(frames, key=lambda f: -np.sum(f ** 2))[:6]
    lags = np.arange(rate // 400, rate // 60)
    pitches = []
    for f in loud:
        f = f - f.mean()
        ac = np.correlate(f, f, "full")[win - 1:]
        pitches.append(rate / lags[np.argmax(ac[lags])])
    return float(np.median(pitches))


def test_clip_specs_names_are_unique_and_parse():
    cfg = SampleConfig(actors=3, clips_per_emotion=8)
    specs = clip_specs(cfg)
    assert len(specs) == 3 * 7 * 8
    assert len({(s.actor, s.name) for s in specs}) == len(specs)
    for s in specs:
        parsed = parse_ravdess_name(s.name)
        assert parsed is not None and parsed.emotion == s.emotion and parsed.actor == s.actor
        assert (parsed.modality, parsed.vocal_channel) == (1, 1)
        if s.emotion == "neutral":
            assert parsed.intensity == 1


def test_actor_order_covers_every_fold_and_both_sexes():
    assert sorted(ACTOR_ORDER) == list(range(1, 25))
    first5 = set(ACTOR_ORDER[:5])
    assert all(first5 & set(fold) for fold in ACTOR_FOLDS)
    default = ACTOR_ORDER[:SampleConfig().actors]
    assert sum(a % 2 for a in default) == len(default) // 2      # as many male as female


def test_layout_names_video_and_audio(sample):
    assert len(sample) == 2 * 7
    actors = ACTOR_ORDER[:2]
    seen = set()
    for path in sample:
        parsed = parse_ravdess_name(path)
        assert path.parent.name == f"Actor_{parsed.actor:02d}" and parsed.actor in actors
        seen.add((parsed.actor, parsed.emotion))
    assert seen == {(a, e) for a in actors for e in EMOTIONS}
    info, keyframes = read_keyframes(str(sample[0]), skip=10)
    assert (info.width, info.height, info.frame_count) == (320, 240, 30)
    assert len(keyframes) == 3
    y = _decode_audio(sample[0])
    assert len(y) == pytest.approx(16000, rel=0.05)              # 1 s of audio
    assert np.sqrt(np.mean(y ** 2)) > 0.01


def test_same_seed_same_bytes_other_seed_differs(sample, tmp_path):
    again = make_sample(tmp_path / "a", SampleConfig(actors=1, clips_per_emotion=1, seconds=1.0,
                                                     width=320, height=240, workers=1))
    originals = {p.name: p for p in sample if p.parent.name == again[0].parent.name}
    assert len(again) == 7
    for path in again:
        assert path.read_bytes() == originals[path.name].read_bytes()
    other = make_sample(tmp_path / "b", SampleConfig(actors=1, clips_per_emotion=1, seconds=0.2,
                                                     width=320, height=240, seed=1))
    same = make_sample(tmp_path / "c", SampleConfig(actors=1, clips_per_emotion=1, seconds=0.2,
                                                    width=320, height=240, seed=0))
    _, frames_other = read_keyframes(str(other[0]))
    _, frames_same = read_keyframes(str(same[0]))
    assert not np.array_equal(frames_other[0].image, frames_same[0].image)


def test_voice_prosody_follows_emotion_and_actor():
    rate = 16000
    male = synth_voice("neutral", 1, 1.5, rate)
    female = synth_voice("neutral", 2, 1.5, rate)
    assert male.dtype == np.float32 and len(male) == int(1.5 * rate)
    assert np.isfinite(male).all() and np.abs(male).max() <= 1.0
    assert _f0(male, rate) < 160 < _f0(female, rate)
    rms = {e: float(np.sqrt(np.mean(synth_voice(e, 1, 1.5, rate) ** 2))) for e in ("angry", "sad")}
    assert rms["angry"] > 2 * rms["sad"]
    surprise = synth_voice("surprise", 2, 2.0, rate)
    assert _f0(surprise[-rate // 2:], rate) > 1.2 * _f0(surprise[: rate // 2], rate)
    assert not np.array_equal(synth_voice("happy", 1, 0.5, rate, clip=0),
                              synth_voice("happy", 1, 0.5, rate, clip=1))


def test_bad_inputs(mixed_archive):
    bad = mixed_archive["bad"]
    assert set(bad) >= {"zero_byte", "truncated", "text_as_mp4", "no_audio", "video_only",
                        "audio_only", "no_face", "calm"}
    assert bad["zero_byte"].stat().st_size == 0
    assert 0 < bad["truncated"].stat().st_size < bad["calm"].stat().st_size
    assert parse_ravdess_name(bad["calm"]).emotion_code == 2
    assert parse_ravdess_name(bad["calm"]).emotion is None
    assert parse_ravdess_name(bad["audio_only"]).modality == 3
    assert parse_ravdess_name(bad["video_only"]).modality == 2
    assert parse_ravdess_name(bad["no_audio"]).modality == 1
    with wave.open(str(bad["audio_only"])) as wav:
        assert wav.getnframes() > 0 and wav.getnchannels() == 1
    assert len(_decode_audio(bad["no_face"])) > 0
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(bad["no_audio"])],
                           capture_output=True, text=True).stderr
    assert "Video:" in probe and "Audio:" not in probe


def test_config_validation():
    for bad in (SampleConfig(actors=0), SampleConfig(actors=25), SampleConfig(width=321),
                SampleConfig(clips_per_emotion=0), SampleConfig(seconds=0)):
        with pytest.raises(ValueError):
            bad.validate()


def _run_command(argv: list[str]) -> int:
    """Run the make-sample command alone (the full CLI imports every other command too)."""
    parser = argparse.ArgumentParser()
    make_sample_command.add_arguments(parser)
    return make_sample_command.run(parser.parse_args(argv))


def test_make_sample_command(tmp_path, capsys):
    assert make_sample_command.NAME == "make-sample" and "make_sample" in cli.COMMANDS
    out = tmp_path / "cli"
    code = _run_command([str(out), "--actors", "1", "--clips-per-emotion", "1", "--seconds", "0.2",
                         "--size", "160x120", "--fps", "10", "--seed", "3"])
    assert code == 0
    files = sorted(out.glob("Actor_*/*.mp4"))
    assert len(files) == 7
    assert "wrote 7 clips" in capsys.readouterr().out
    info, _ = read_keyframes(str(files[0]))
    assert (info.width, info.height, info.frame_count) == (160, 120, 2)
    assert _run_command([str(tmp_path / "x"), "--size", "161x120"]) == 2
    with pytest.raises(SystemExit):
        _run_command([str(tmp_path / "x"), "--size", "big"])
