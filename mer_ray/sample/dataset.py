"""Writing the sample set and the bad inputs to disk."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mer_ray.sample.face_video import FaceRenderer, clip_frames, shapes_frames, warm_up
from mer_ray.sample.mux import write_clip, write_wav
from mer_ray.sample.spec import (BAD_ACTOR, BAD_REPETITION, ClipSpec, SampleConfig, clip_specs,
                                 n_frames)
from mer_ray.sample.voice import synth_voice

def clip_audio(spec: ClipSpec, cfg: SampleConfig) -> np.ndarray:
    """The mono float32 audio of one clip, as long as its video."""
    return synth_voice(spec.emotion, spec.actor, n_frames(cfg) / cfg.fps, cfg.audio_rate,
                       cfg.seed, spec.clip, spec.intensity)


def clip_path(out_dir: str | Path, spec: ClipSpec) -> Path:
    """Where make_sample writes a clip: ``out_dir/Actor_XX/<RAVDESS name>.mp4``."""
    return Path(out_dir) / f"Actor_{spec.actor:02d}" / spec.name


def _write_spec(out_dir: Path, spec: ClipSpec, cfg: SampleConfig) -> Path:
    return write_clip(clip_path(out_dir, spec), clip_frames(spec, cfg), clip_audio(spec, cfg),
                      cfg.fps, cfg.audio_rate)


def make_sample(out_dir: str | Path, cfg: SampleConfig = SampleConfig()) -> list[Path]:
    """Write every clip of ``cfg`` under ``out_dir/Actor_XX/``; return the paths (sorted)."""
    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    warm_up()                                    # build the shared caches once, before threads
    specs = clip_specs(cfg)
    workers = cfg.workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(specs)))) as pool:
        paths = list(pool.map(lambda s: _write_spec(out, s, cfg), specs))
    return sorted(paths)


def make_bad_inputs(out_dir: str | Path, cfg: SampleConfig | None = None) -> dict[str, Path]:
    """Inputs every job must survive, RAVDESS-named (actor 24, repetition 09) where a label
    makes sense. Keys: zero_byte, truncated (a real clip cut to 40 % of its bytes: the moov
    index is lost), text_as_mp4, no_audio (face video, modality 01, no audio stream),
    video_only (face video named modality 02), audio_only (a modality-03 .wav), no_face
    (video + audio, moving shapes), calm (a valid clip, RAVDESS emotion 02)."""
    cfg = cfg or SampleConfig(seconds=1.0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def name(emotion_code: int, modality: int = 1, ext: str = ".mp4") -> Path:
        fields = (modality, 1, emotion_code, 1, 1, BAD_REPETITION, BAD_ACTOR)
        return out / ("-".join(f"{f:02d}" for f in fields) + ext)

    def face(emotion: str) -> FaceRenderer:
        return FaceRenderer(ClipSpec(emotion, BAD_ACTOR, 0, 1, BAD_REPETITION, 1), cfg)

    seconds = n_frames(cfg) / cfg.fps
    voice = synth_voice("neutral", BAD_ACTOR, seconds, cfg.audio_rate, cfg.seed)
    paths = {"zero_byte": name(5), "truncated": name(3), "text_as_mp4": name(4),
             "no_audio": name(6), "video_only": name(1, modality=2),
             "audio_only": name(7, modality=3, ext=".wav"), "no_face": name(8), "calm": name(2)}
    paths["zero_byte"].write_bytes(b"")
    full = write_clip(paths["truncated"], face("happy").frames(), voice, cfg.fps, cfg.audio_rate)
    data = full.read_bytes()
    full.write_bytes(data[: int(len(data) * 0.4)])
    paths["text_as_mp4"].write_text("This is a text file, not a video.\n" * 20)
    write_clip(paths["no_audio"], face("fear").frames(), None, cfg.fps, cfg.audio_rate)
    write_clip(paths["video_only"], face("neutral").frames(), None, cfg.fps, cfg.audio_rate)
    write_wav(paths["audio_only"], synth_voice("disgust", BAD_ACTOR, seconds, cfg.audio_rate, cfg.seed),
              cfg.audio_rate)
    rng = np.random.default_rng([cfg.seed, 0xBAD])
    write_clip(paths["no_face"], shapes_frames(cfg, rng),
               synth_voice("surprise", BAD_ACTOR, seconds, cfg.audio_rate, cfg.seed), cfg.fps, cfg.audio_rate)
    write_clip(paths["calm"], face("neutral").frames(), voice, cfg.fps, cfg.audio_rate)
    return paths
