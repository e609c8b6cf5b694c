"""Damaged media for the fuzz test: whole files in five containers, then cut, flipped and
header-broken copies made with fixed seeds (test support).

``make_corpus`` writes the originals (mp4, mkv, webm with a face and a voice; wav, mp3) and
``damage`` derives copies from each: cut at random points, random bytes flipped, the first
bytes overwritten, a middle stretch zeroed. The same seed gives the same bytes.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

CONTAINERS = {                 # suffix -> ffmpeg codec arguments (re-encoded from the mp4)
    ".mkv": ["-c", "copy"],
    ".webm": ["-c:v", "libvpx", "-b:v", "200k", "-c:a", "libopus"],
    ".mp3": ["-vn", "-c:a", "libmp3lame", "-b:a", "64k"],
}


def make_originals(root: Path, seconds: float = 1.0) -> list[Path]:
    """One whole file per container: the sample clip as .mp4 / .mkv / .webm, its voice as .wav
    / .mp3."""
    from mer_ray.sample import SampleConfig, make_sample
    from mer_ray.sample.mux import ffmpeg_exe

    root.mkdir(parents=True, exist_ok=True)
    mp4 = make_sample(root / "whole", SampleConfig(actors=1, clips_per_emotion=1, seconds=seconds,
                                                   width=160, height=120))[0]
    base = root / "clip.mp4"
    base.write_bytes(Path(mp4).read_bytes())
    out = [base]
    for suffix, codec in CONTAINERS.items():
        target = root / f"clip{suffix}"
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(base),
                        *codec, str(target)], check=True)
        out.append(target)
    wav = root / "clip.wav"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(base),
                    "-vn", "-c:a", "pcm_s16le", str(wav)], check=True)
    return [*out, wav]


def damage(original: Path, out_dir: Path, seed: int, copies: int = 4) -> list[Path]:
    """``copies`` damaged versions of ``original`` (cycling cut / flip / header / zeroed)."""
    rng = np.random.default_rng(seed)
    data = original.read_bytes()
    made = []
    for i in range(copies):
        kind = ("cut", "flip", "header", "zeroed")[i % 4]
        buf = bytearray(data)
        if kind == "cut":
            buf = buf[: int(len(buf) * rng.uniform(0.05, 0.95))]
        elif kind == "flip":
            for pos in rng.integers(0, len(buf), size=max(1, len(buf) // 500)):
                buf[pos] ^= int(rng.integers(1, 256))
        elif kind == "header":
            n = min(len(buf), 64)
            buf[:n] = rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()
        else:
            start = int(len(buf) * rng.uniform(0.2, 0.6))
            end = min(len(buf), start + len(buf) // 4)
            buf[start:end] = bytes(end - start)
        target = out_dir / f"{original.stem}-{kind}-{seed}-{i}{original.suffix}"
        target.write_bytes(bytes(buf))
        made.append(target)
    return made


def make_corpus(root: Path, seed: int = 7, copies: int = 4) -> tuple[list[Path], list[Path]]:
    """(originals, damaged copies) under ``root``: the damaged ones in ``root/damaged``."""
    originals = make_originals(root / "originals")
    damaged_dir = root / "damaged"
    damaged_dir.mkdir(parents=True, exist_ok=True)
    damaged = [p for i, orig in enumerate(originals)
               for p in damage(orig, damaged_dir, seed + i, copies)]
    return originals, damaged
