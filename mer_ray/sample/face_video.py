"""The picture of a sample clip: a real face photo, animated per emotion, varied per actor.

The head of ``skimage.data.astronaut()`` is cut out (studio wall removed) and drawn on a
per-actor background. Each emotion changes every frame (colour tint, local warps of the
eyes / brows / mouth, tilt, stretch) and moves over time (shake, bounce, tremble, droop,
zoom); actors differ in face size, position, mirroring, skin tone, brightness and background.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np

from mer_ray.labels import EMOTION_CODES
from mer_ray.sample.spec import ClipSpec, SampleConfig, actor_traits, n_frames

_HEAD_ROWS, _HEAD_COLS = (0, 210), (130, 320)       # astronaut() region holding the head
_HEAD_CENTRE, _HEAD_AXES = (96, 100), (72, 90)      # ellipse (x, y) / (rx, ry) in the crop
_FACE_TO_SPRITE = 0.45                              # Haar face-box height / sprite height
# feature positions in crop coordinates (x, y)
_EYES, _BROWS, _MOUTH = (95, 103), (95, 88), (94, 146)


@lru_cache(maxsize=1)
def _head() -> tuple[np.ndarray, np.ndarray]:
    """The head crop (RGB float32 0..1) and its soft elliptical alpha mask."""
    import cv2
    from skimage import data

    head = np.ascontiguousarray(data.astronaut()[slice(*_HEAD_ROWS), slice(*_HEAD_COLS)])
    hsv = cv2.cvtColor(head, cv2.COLOR_RGB2HSV)
    wall = ((hsv[..., 1] < 60) & (hsv[..., 2] > 150)).astype(np.uint8)   # the grey studio wall
    _, labels = cv2.connectedComponents(wall)
    border = set(np.unique(np.concatenate([labels[0], labels[:, 0], labels[:, -1]]))) - {0}
    keep = np.zeros(head.shape[:2], np.uint8)
    cv2.ellipse(keep, _HEAD_CENTRE, _HEAD_AXES, 0, 0, 360, 1, -1)
    keep[np.isin(labels, list(border))] = 0
    keep[160:][hsv[160:, :, 2] < 90] = 0                                 # the suit's collar
    keep = cv2.morphologyEx(keep, cv2.MORPH_OPEN, np.ones((7, 7), np.uint8))
    count, parts, stats, _ = cv2.connectedComponentsWithStats(keep)
    if count > 2:                                                        # keep the head only
        keep = (parts == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    alpha = cv2.GaussianBlur(keep.astype(np.float32), (0, 0), 1.5)
    return head.astype(np.float32) / 255.0, alpha


def _gauss(shape: tuple[int, int], centre: tuple[float, float], sx: float, sy: float) -> np.ndarray:
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    return np.exp(-(((xs - centre[0]) / sx) ** 2 + ((ys - centre[1]) / sy) ** 2) / 2)


@lru_cache(maxsize=1)
def _warp_basis() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Unit displacement fields (dx, dy) of the local expression warps, in sprite pixels.

    A field gives, for each output pixel, the offset of the source pixel it samples
    (remap convention), so a positive ``scale`` field widens / opens a feature.
    """
    rgb, _ = _head()
    shape = rgb.shape[:2]
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    zero = np.zeros(shape, np.float32)
    eyes = _gauss(shape, _EYES, 40, 10)
    brows = _gauss(shape, _BROWS, 38, 7)
    mouth = _gauss(shape, _MOUTH, 30, 12)
    mx = (xs - _MOUTH[0]) / 25.0
    return {
        "eyes_open": (zero, -(ys - _EYES[1]) * eyes * 0.5),          # vertical stretch of the eyes
        "brows_up": (zero, 6.0 * brows),                              # brows move up
        "brows_in": (-(xs - _BROWS[0]) * brows * 0.15, zero),         # brows pulled together
        "mouth_wide": (-(xs - _MOUTH[0]) * mouth * 0.4, zero),        # horizontal stretch
        "mouth_open": (zero, -(ys - _MOUTH[1]) * mouth * 0.8),        # vertical stretch
        "mouth_frown": (zero, -6.0 * np.clip(mx ** 2, 0, 2) * mouth),  # corners pulled down
        "mouth_sneer": (zero, 5.0 * np.clip(mx, 0, 1.5) * mouth),     # one corner raised
    }


@dataclass(frozen=True)
class _Look:
    """Per-emotion appearance: colour, local warps, pose, motion."""

    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    saturation: float = 1.0
    brightness: float = 1.0
    warps: tuple[tuple[str, float], ...] = ()
    brow_dark: float = 0.0        # darken the brows (frown lines)
    tilt_deg: float = 0.0
    stretch: tuple[float, float] = (1.0, 1.0)   # (sx, sy) of the whole head
    motion: str = "still"


LOOKS: dict[str, _Look] = {
    "angry": _Look((1.18, 0.88, 0.84), 1.1, 1.0, (("eyes_open", -0.6), ("brows_in", 1.0),
                   ("brows_up", -0.8), ("mouth_wide", -0.3)), 0.35, 0.0, (1.06, 0.97), "shake"),
    "disgust": _Look((0.92, 1.1, 0.82), 0.9, 0.97, (("eyes_open", -0.35), ("mouth_sneer", 1.0),
                     ("brows_in", 0.5)), 0.15, -6.0, (0.92, 1.0), "recoil"),
    "fear": _Look((0.9, 0.98, 1.16), 0.6, 1.08, (("eyes_open", 0.7), ("brows_up", 1.0),
                  ("mouth_open", 0.4), ("mouth_wide", -0.3)), 0.0, 0.0, (0.96, 1.04), "tremble"),
    "happy": _Look((1.1, 1.05, 0.88), 1.2, 1.06, (("mouth_wide", 0.6), ("eyes_open", -0.25),
                   ("brows_up", 0.3)), 0.0, 3.0, (1.03, 0.98), "bounce"),
    "neutral": _Look(motion="breathe"),
    "sad": _Look((0.95, 0.97, 1.05), 0.45, 0.84, (("mouth_frown", 1.0), ("brows_in", 0.6),
                 ("brows_up", 0.5), ("mouth_wide", -0.25)), 0.0, 5.0, (1.0, 0.95), "droop"),
    "surprise": _Look((1.06, 0.95, 1.1), 1.0, 1.05, (("eyes_open", 0.9), ("brows_up", 1.5),
                      ("mouth_open", 1.0)), 0.0, 0.0, (0.97, 1.07), "zoom"),
}
"""Per-emotion appearance. Every frame shows the expression (>= 65 % strength at t = 0)."""


def _background(width: int, height: int, colour: tuple[float, float, float],
                rng: np.random.Generator) -> np.ndarray:
    """A soft vertical gradient with a few low-contrast blobs (RGB float32)."""
    import cv2

    ramp = np.linspace(0.85, 1.1, height, dtype=np.float32)[:, None, None]
    bg = np.clip(np.asarray(colour, np.float32)[None, None, :] * ramp, 0, 1)
    bg = np.repeat(bg, width, axis=1)
    for _ in range(4):
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        radius = int(rng.uniform(0.1, 0.3) * min(width, height))
        shade = tuple(float(v) for v in np.clip(np.asarray(colour) + rng.uniform(-0.12, 0.12, 3), 0, 1))
        cv2.circle(bg, centre, radius, shade, -1, lineType=cv2.LINE_AA)
    return cv2.GaussianBlur(bg, (0, 0), max(1.0, min(width, height) / 60))


def _motion(kind: str, t: float, seconds: float, phase: float, rng: np.random.Generator
            ) -> tuple[float, float, float, float]:
    """(dx, dy) in face heights, extra tilt degrees, extra scale at time t."""
    two_pi = 2 * math.pi
    if kind == "shake":
        return 0.06 * math.sin(two_pi * 6 * t + phase), 0.0, 1.5 * math.sin(two_pi * 3 * t), 0.0
    if kind == "recoil":
        return -0.12 * min(1.0, t / 0.8), -0.03 * min(1.0, t / 0.8), 0.0, -0.04 * min(1.0, t / 0.8)
    if kind == "tremble":
        return (0.02 * float(rng.normal()), 0.02 * float(rng.normal()), 1.5 * float(rng.normal()),
                -0.06)
    if kind == "bounce":
        return 0.0, -0.1 * abs(math.sin(two_pi * 2 * t + phase)), 2.0 * math.sin(two_pi * t), 0.0
    if kind == "droop":
        return 0.0, 0.12 * min(1.0, t / seconds), 0.0, -0.02
    if kind == "zoom":
        return 0.0, 0.0, 0.0, 0.12 * min(1.0, t / 0.6)
    return 0.0, 0.01 * math.sin(two_pi * 0.5 * t + phase), 0.0, 0.0      # still / breathe


def _colour(rgb: np.ndarray, gains, saturation: float, brightness: float) -> np.ndarray:
    """Scale saturation about the channel mean, then per-channel gains x brightness; clip."""
    import cv2

    mix = saturation * np.eye(3) + (1 - saturation) / 3.0
    matrix = (np.asarray(gains)[:, None] * brightness * mix).astype(np.float32)
    out = cv2.transform(np.ascontiguousarray(rgb, np.float32), matrix)
    return np.clip(out, 0, 1, out=out)


def _expression_field(look: _Look, mirror: bool) -> tuple[np.ndarray, np.ndarray]:
    """The emotion's full-strength displacement field (dx, dy) on the (mirrored) sprite."""
    basis = _warp_basis()
    shape = basis["eyes_open"][0].shape
    dx = sum((w * basis[n][0] for n, w in look.warps), np.zeros(shape, np.float32))
    dy = sum((w * basis[n][1] for n, w in look.warps), np.zeros(shape, np.float32))
    if mirror:
        dx, dy = -dx[:, ::-1], dy[:, ::-1]
    return np.ascontiguousarray(dx, np.float32), np.ascontiguousarray(dy, np.float32)


class FaceRenderer:
    """Draws the frames of one clip (RGB uint8)."""

    def __init__(self, spec: ClipSpec, cfg: SampleConfig):
        import cv2

        self.cfg, self.look = cfg, LOOKS[spec.emotion]
        self.actor = actor_traits(spec.actor, cfg.seed)
        self.rng = np.random.default_rng([cfg.seed, spec.actor, EMOTION_CODES[spec.emotion],
                                          spec.clip, 0xF])
        self.strength = (1.0 if spec.intensity == 1 else 1.35) * float(self.rng.uniform(0.9, 1.1))
        self.phase = float(self.rng.uniform(0, 2 * math.pi))
        rgb, alpha = _head()
        a = self.actor
        rgb = _colour(rgb, a.skin, 1.0, a.brightness)
        if a.mirror:
            rgb, alpha = rgb[:, ::-1].copy(), alpha[:, ::-1].copy()
        self.rgb, self.alpha = rgb, alpha
        self.mirror_sign = -1.0 if a.mirror else 1.0
        shape = rgb.shape[:2]
        ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
        self.grid = (xs, ys)
        self.field = _expression_field(self.look, a.mirror)
        brows_x = shape[1] - 1 - _BROWS[0] if a.mirror else _BROWS[0]
        self.brow_mask = _gauss(shape, (brows_x, _BROWS[1] - 2), 34, 6)[..., None]
        self.bg = _background(cfg.width, cfg.height, a.background, self.rng)
        self.bg_u8 = (self.bg * 255.0 + 0.5).astype(np.uint8)
        jitter = self.rng.uniform(-0.02, 0.02, 2)
        self.centre = (cfg.width * (a.centre[0] + jitter[0]), cfg.height * (a.centre[1] + jitter[1]))
        self.sprite_scale = a.face_frac * cfg.height / _FACE_TO_SPRITE / shape[0]
        self._cv2 = cv2

    def _sprite(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        cv2, look = self._cv2, self.look
        map_x = self.grid[0] + level * self.field[0]
        map_y = self.grid[1] + level * self.field[1]
        rgb = cv2.remap(self.rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        alpha = cv2.remap(self.alpha, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if look.brow_dark:
            rgb = rgb * (1.0 - look.brow_dark * min(level, 1.3) * self.brow_mask)
        mix = min(level, 1.3)
        gains = tuple(1 + (g - 1) * mix for g in look.gains)
        rgb = _colour(rgb, gains, 1 + (look.saturation - 1) * mix, 1 + (look.brightness - 1) * mix)
        return rgb, alpha

    def frame(self, index: int) -> np.ndarray:
        cfg, look = self.cfg, self.look
        t = index / cfg.fps
        ramp = 0.65 + 0.35 * min(1.0, t / 0.5)
        level = self.strength * ramp * (1 + 0.08 * math.sin(2 * math.pi * 0.7 * t + self.phase))
        rgb, alpha = self._sprite(level)
        dx, dy, tilt, zoom = _motion(look.motion, t, cfg.seconds, self.phase, self.rng)
        face_px = self.actor.face_frac * cfg.height
        angle = self.mirror_sign * look.tilt_deg * min(level, 1.2) + tilt + self.actor.tilt_deg
        sx = self.sprite_scale * (1 + (look.stretch[0] - 1) * level) * (1 + zoom)
        sy = self.sprite_scale * (1 + (look.stretch[1] - 1) * level) * (1 + zoom)
        h, w = rgb.shape[:2]
        cx, cy = self.centre[0] + self.mirror_sign * dx * face_px, self.centre[1] + dy * face_px
        rad = math.radians(angle)
        cos, sin = math.cos(rad), math.sin(rad)
        # output = R(angle) . S(sx, sy) . (p - sprite centre) + (cx, cy)
        m = np.array([[sx * cos, -sy * sin, 0.0], [sx * sin, sy * cos, 0.0]], np.float32)
        m[:, 2] = np.array([cx, cy]) - m[:, :2] @ np.array([w / 2, h / 2])
        return self._paste(rgb, alpha, m)

    def _paste(self, rgb: np.ndarray, alpha: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Warp the sprite with ``m`` and alpha-blend it over the background, in its box only."""
        cv2, (h, w) = self._cv2, rgb.shape[:2]
        corners = m[:, :2] @ np.array([[0, w, 0, w], [0, 0, h, h]], np.float32) + m[:, 2:]
        x0, y0 = (max(0, int(math.floor(v)) - 1) for v in corners.min(axis=1))
        x1 = min(self.cfg.width, int(math.ceil(corners[0].max())) + 1)
        y1 = min(self.cfg.height, int(math.ceil(corners[1].max())) + 1)
        out = self.bg_u8.copy()
        if x1 <= x0 or y1 <= y0:
            return out
        m = m.copy()
        m[:, 2] -= (x0, y0)
        size = (x1 - x0, y1 - y0)
        fg = cv2.warpAffine(rgb, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        a = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        roi = cv2.blendLinear(fg, self.bg[y0:y1, x0:x1], a, 1.0 - a)
        out[y0:y1, x0:x1] = cv2.convertScaleAbs(roi, alpha=255.0)
        return out

    def frames(self) -> Iterator[np.ndarray]:
        for i in range(n_frames(self.cfg)):
            yield self.frame(i)


def warm_up() -> None:
    """Build the cached sprite and warp fields (call once before starting threads)."""
    _head()
    _warp_basis()


def clip_frames(spec: ClipSpec, cfg: SampleConfig) -> Iterator[np.ndarray]:
    """The RGB uint8 frames of one clip, generated one at a time (no encoding)."""
    return FaceRenderer(spec, cfg).frames()


def shapes_frames(cfg: SampleConfig, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Frames without a face: coloured shapes moving over a background."""
    import cv2

    bg = _background(cfg.width, cfg.height, tuple(rng.uniform(0.2, 0.8, 3)), rng)
    shapes = [(rng.uniform(0, 1, 2), rng.uniform(-0.3, 0.3, 2), rng.uniform(0.05, 0.15),
               tuple(float(c) for c in rng.uniform(0, 1, 3))) for _ in range(5)]
    for i in range(n_frames(cfg)):
        img = bg.copy()
        t = i / cfg.fps
        for k, (pos, vel, size, colour) in enumerate(shapes):
            x, y = (pos + vel * t) % 1.0
            r = int(size * cfg.height)
            p = (int(x * cfg.width), int(y * cfg.height))
            if k % 2:
                cv2.circle(img, p, r, colour, -1, lineType=cv2.LINE_AA)
            else:
                cv2.rectangle(img, (p[0] - r, p[1] - r), (p[0] + r, p[1] + r), colour, -1)
        yield (img * 255.0 + 0.5).astype(np.uint8)
