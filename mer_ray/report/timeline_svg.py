"""Emotion over time for one video as a small inline SVG (no matplotlib: a few KB of text).

One line per class through the keyframes that had a face (the visual model's probabilities);
keyframes without a face break the lines and get a grey tick on the time axis.
"""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

PALETTE = ("#d62728", "#8c564b", "#9467bd", "#2ca02c", "#7f7f7f", "#1f77b4", "#ff7f0e")
"""One colour per class, in EMOTIONS order (angry, disgust, fear, happy, neutral, sad, surprise)."""

WIDTH, HEIGHT = 336, 120
_LEFT, _RIGHT, _TOP, _BOTTOM = 30, 8, 6, 20


def class_colours(classes: Sequence[str]) -> dict[str, str]:
    """class -> colour, the same in every plot and the legend."""
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(classes)}


def legend_html(classes: Sequence[str]) -> str:
    """Colour keys for the plots, shown once above them."""
    return "<p class=legend>" + " ".join(
        f"<span><i style='background:{col}'></i>{escape(c)}</span>"
        for c, col in class_colours(classes).items()) + "</p>"


def _scale(times: np.ndarray) -> tuple[float, float]:
    t0, t1 = float(times.min()), float(times.max())
    return t0, (t1 - t0) or 1.0


def _segments(xs: np.ndarray, ys: np.ndarray, face: np.ndarray) -> list[str]:
    """Polyline point lists, broken where a keyframe had no face."""
    out, current = [], []
    for x, y, f in zip(xs, ys, face):
        if f:
            current.append(f"{x:.1f},{y:.1f}")
        elif current:
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out


def _mark(points: str, colour: str) -> str:
    """A polyline, or a dot for a run of one keyframe."""
    if " " in points:
        return f"<polyline points='{points}' stroke='{colour}' />"
    x, y = points.split(",")
    return f"<circle cx={x} cy={y} r=2 fill='{colour}' />"


def _axes(t0: float, span: float) -> str:
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    parts = []
    for v in (0.0, 0.5, 1.0):
        y = _TOP + plot_h * (1 - v)
        parts.append(f"<line x1={_LEFT} y1={y:.1f} x2={WIDTH - _RIGHT} y2={y:.1f} class=grid />"
                     f"<text x={_LEFT - 4} y={y + 3:.1f} text-anchor=end>{v:g}</text>")
    for frac, anchor in ((0.0, "start"), (1.0, "end")):
        x = _LEFT + plot_w * frac
        parts.append(f"<text x={x:.1f} y={HEIGHT - 6} text-anchor={anchor}>"
                     f"{t0 + span * frac:.1f} s</text>")
    return "".join(parts)


def timeline_svg(times: Sequence[float], probs: Sequence[Sequence[float] | None],
                 classes: Sequence[str], title: str = "") -> str:
    """An SVG of per-keyframe class probabilities over ``times`` (seconds); ``probs[i]`` is
    None for a keyframe without a face."""
    t = np.asarray(times, dtype=float)
    if not len(t):
        return ""
    face = np.array([p is not None for p in probs])
    p = np.array([p if p is not None else [np.nan] * len(classes) for p in probs], dtype=float)
    t0, span = _scale(t)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    xs = _LEFT + plot_w * (t - t0) / span if len(t) > 1 else np.full(1, _LEFT + plot_w / 2)
    lines = []
    for k, (name, colour) in enumerate(class_colours(classes).items()):
        ys = _TOP + plot_h * (1 - np.nan_to_num(p[:, k]))
        lines += [_mark(pts, colour) for pts in _segments(xs, ys, face)]
    ticks = "".join(f"<line x1={x:.1f} y1={HEIGHT - _BOTTOM} x2={x:.1f} y2={HEIGHT - _BOTTOM + 4} "
                    f"class=noface />" for x, f in zip(xs, face) if not f)
    return (f"<svg class=tl width={WIDTH} height={HEIGHT} "
            f"viewBox='0 0 {WIDTH} {HEIGHT}' role=img><title>{escape(title)}</title>"
            f"{_axes(t0, span)}{''.join(lines)}{ticks}</svg>")
