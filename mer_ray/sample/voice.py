"""The sound of a sample clip: a voice-like signal whose prosody depends on emotion and actor.

A harmonic source follows an F0 contour, is shaped into syllables, filtered through vowel
formants and mixed with a little noise. Angry is loud / high / fast, sad quiet / low / slow,
surprise has a rising F0, fear a 7 Hz tremolo, disgust is low and creaky, happy high and
bouncy, neutral flat; odd (male) actors sit near 120 Hz, even (female) ones near 210 Hz.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_ray.labels import EMOTION_CODES
from mer_ray.sample.spec import actor_traits

@dataclass(frozen=True)
class _Voice:
    """Per-emotion prosody."""

    f0x: float            # F0 multiplier over the actor's base
    contour: str          # flat | fall | rise | bounce | droop
    rate: float           # syllables per second
    amp: float            # peak amplitude
    tilt: float           # harmonic roll-off exponent (higher = darker)
    noise: float = 0.02   # breathiness (relative to the voiced part)
    tremolo: float = 0.0  # 7 Hz amplitude / F0 modulation depth
    creak: float = 0.0    # sub-harmonic (period doubling) depth
    jitter: float = 0.005


VOICES: dict[str, _Voice] = {
    "angry": _Voice(1.35, "fall", 5.5, 0.9, 0.8, noise=0.05, jitter=0.01),
    "disgust": _Voice(0.8, "fall", 3.0, 0.45, 1.3, creak=0.6, jitter=0.02),
    "fear": _Voice(1.3, "flat", 5.0, 0.45, 1.1, noise=0.15, tremolo=0.35, jitter=0.015),
    "happy": _Voice(1.3, "bounce", 4.5, 0.7, 0.95),
    "neutral": _Voice(1.0, "flat", 4.0, 0.4, 1.2),
    "sad": _Voice(0.85, "droop", 2.5, 0.22, 1.6, noise=0.06),
    "surprise": _Voice(1.05, "rise", 4.0, 0.7, 1.0),
}
"""Per-emotion prosody of the synthetic voice."""

_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480))


def _contour(kind: str, u: np.ndarray, phase: float) -> np.ndarray:
    """Relative F0 over normalised time u in [0, 1]."""
    if kind == "fall":
        return 1.08 - 0.16 * u
    if kind == "rise":
        return 0.9 + 0.7 * u ** 2
    if kind == "bounce":
        return 1.0 + 0.15 * np.sin(2 * np.pi * 2.5 * u * 2 + phase)
    if kind == "droop":
        return 1.04 - 0.12 * u
    return 1.0 + 0.03 * np.sin(2 * np.pi * u + phase) - 0.04 * u


def _smooth_noise(rng: np.random.Generator, n: int, rate: int, hz: float) -> np.ndarray:
    """Band-limited random wiggle (unit std) changing at about ``hz``."""
    knots = max(2, int(n / rate * hz) + 2)
    return np.interp(np.arange(n), np.linspace(0, n - 1, knots), rng.normal(size=knots))


def _syllables(rng: np.random.Generator, n: int, rate: int, syl_rate: float,
               attack: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Amplitude envelope and (start, end) samples of each syllable."""
    env, spans, pos = np.zeros(n, np.float32), [], int(rng.uniform(0.02, 0.08) * rate)
    while pos < n:
        length = int(rate / syl_rate * rng.uniform(0.75, 1.25))
        voiced = int(length * rng.uniform(0.6, 0.8))
        end = min(n, pos + voiced)
        if end - pos > 16:
            x = np.linspace(0, np.pi, voiced, dtype=np.float32)[: end - pos]
            env[pos:end] = np.clip(np.sin(x), 0, None) ** attack * rng.uniform(0.7, 1.0)
            spans.append((pos, end))
        pos += length
    return env, spans


def synth_voice(emotion: str, actor: int, seconds: float, rate: int, seed: int = 0,
                clip: int = 0, intensity: int = 1) -> np.ndarray:
    """A mono float32 voice-like signal in [-1, 1] with emotion- and actor-specific prosody."""
    from scipy.signal import iirpeak, lfilter

    voice, who = VOICES[emotion], actor_traits(actor, seed)
    rng = np.random.default_rng([seed, actor, EMOTION_CODES[emotion], clip, 0xA])
    n = max(1, int(round(seconds * rate)))
    t = np.arange(n) / rate
    u = t / max(seconds, 1e-6)
    k = 1.0 if intensity == 1 else 1.3                       # strong intensity: more of it
    f0 = who.f0 * (1 + (voice.f0x - 1) * k) * _contour(voice.contour, u, rng.uniform(0, 6.28))
    f0 = f0 * (1 + voice.jitter * _smooth_noise(rng, n, rate, 30))
    if voice.tremolo:
        f0 = f0 * (1 + 0.04 * voice.tremolo / 0.35 * np.sin(2 * np.pi * 7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    n_harm = int(min(40, 5000 / f0.max()))
    harm = np.arange(1, n_harm + 1)[:, None]
    source = (np.sin(harm * phase[None, :]) * (harm ** -voice.tilt)).sum(axis=0)
    if voice.creak:
        source *= 1 + voice.creak * np.sin(phase / 2)
    source = source / (np.abs(source).max() + 1e-9)
    env, spans = _syllables(rng, n, rate, voice.rate * (1 + (k - 1) * 0.3), 0.5 if voice.amp > 0.8 else 1.0)
    if voice.tremolo:
        env = env * (1 + voice.tremolo * np.sin(2 * np.pi * 7 * t))
    # vowel formants: filter through each vowel and pick one vowel per syllable
    out = np.zeros(n)
    for s, (start, end) in enumerate(spans):
        vowel = _VOWELS[int(rng.integers(len(_VOWELS)))]
        seg = source[start:end]
        shaped = 0.15 * seg
        for f, gain in zip(vowel, (1.0, 0.6, 0.35)):
            f = min(f * who.formant_scale, rate / 2 * 0.9)
            b, a = iirpeak(f, Q=f / 90.0, fs=rate)
            shaped = shaped + gain * lfilter(b, a, seg)
        out[start:end] = shaped
    out = out * env
    out = out / (np.abs(out).max() + 1e-9)
    breath = rng.normal(size=n) * env * voice.noise
    floor = rng.normal(size=n) * 0.003
    amp = min(0.98, voice.amp * who.loudness * (1 + (k - 1) * 0.5))
    return np.clip(amp * out + amp * breath + floor, -1, 1).astype(np.float32)
