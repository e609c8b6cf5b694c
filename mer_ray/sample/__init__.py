"""A deterministic, offline, RAVDESS-layout sample set: ``Actor_XX/01-01-EE-II-SS-RR-AA.mp4``.

Each clip is H.264 + AAC in an .mp4, written by the ffmpeg binary bundled with imageio-ffmpeg
(raw RGB frames piped to stdin, audio from a temporary wav, one encoder thread, bit-exact
flags: the same config gives the same bytes). The picture is a real face photo animated per
emotion (``face_video``), the sound a voice-like signal with per-emotion prosody (``voice``);
``spec`` says which clips exist, ``mux`` writes one, ``dataset`` writes them all.

    make_sample("sample", SampleConfig(actors=8, clips_per_emotion=2))
    make_bad_inputs("sample/bad_inputs")
"""
from mer_ray.sample.dataset import clip_audio, clip_path, make_bad_inputs, make_sample
from mer_ray.sample.face_video import LOOKS, clip_frames
from mer_ray.sample.mux import ffmpeg_exe, write_clip, write_wav
from mer_ray.sample.spec import (ACTOR_ORDER, BAD_ACTOR, BAD_REPETITION, ClipSpec, SampleConfig,
                                 actor_traits, clip_specs, n_frames)
from mer_ray.sample.voice import VOICES, synth_voice

__all__ = [
    "ACTOR_ORDER", "BAD_ACTOR", "BAD_REPETITION", "LOOKS", "VOICES", "ClipSpec", "SampleConfig",
    "actor_traits", "clip_audio", "clip_frames", "clip_path", "clip_specs", "ffmpeg_exe",
    "make_bad_inputs", "make_sample", "n_frames", "synth_voice", "write_clip", "write_wav",
]
