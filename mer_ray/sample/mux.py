"""Writing clips: raw RGB frames (+ mono audio) -> H.264/AAC .mp4 via the bundled ffmpeg."""
from __future__ import annotations

import os
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_wav(path: str | Path, audio: np.ndarray, rate: int) -> Path:
    """16-bit PCM mono wav."""
    pcm = (np.clip(np.asarray(audio, np.float32), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return Path(path)


def write_clip(path: str | Path, frames_rgb_iter: Iterable[np.ndarray], audio: np.ndarray | None,
               fps: float, audio_rate: int, faststart: bool = False) -> Path:
    """Mux RGB uint8 frames (+ optional mono float audio) into an H.264/AAC .mp4, reproducibly.

    Frames are piped to ffmpeg one at a time; the file appears atomically (temp + rename).
    ``faststart`` puts the index (moov) first, as web servers do; the default leaves it at the
    end, so a cut file cannot be opened at all.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames_rgb_iter)
    first = next(frames, None)
    if first is None:
        raise ValueError("write_clip needs at least one frame")
    height, width = first.shape[:2]
    with tempfile.TemporaryDirectory(prefix="mer_ray_clip_") as tmp:
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-framerate", f"{fps:g}", "-i", "pipe:0"]
        if audio is not None:
            cmd += ["-i", str(write_wav(Path(tmp) / "audio.wav", audio, audio_rate)),
                    "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "96k"]
        else:
            cmd += ["-an"]
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                "-threads", "1", "-filter_threads", "1", "-map_metadata", "-1",
                "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
        if faststart:
            cmd += ["-movflags", "+faststart"]
        part = path.with_name(path.name + ".part")
        cmd += ["-f", "mp4", str(part)]
        with open(Path(tmp) / "stderr.txt", "w+b") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err)
            try:
                for frame in _chain(first, frames):
                    if frame.shape[:2] != (height, width) or frame.dtype != np.uint8:
                        raise ValueError(f"all frames must be {width}x{height} uint8 RGB")
                    proc.stdin.write(np.ascontiguousarray(frame).tobytes())
                proc.stdin.close()
            except BrokenPipeError:
                pass
            except BaseException:
                proc.kill()
                proc.wait()
                part.unlink(missing_ok=True)
                raise
            code = proc.wait()
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
        if code != 0:
            part.unlink(missing_ok=True)
            raise RuntimeError(f"ffmpeg failed ({code}) writing {path}: {message[-2000:]}")
    os.replace(part, path)
    return path


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest
