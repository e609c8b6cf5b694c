"""The emotion timeline of one video as a PNG: face (per track) and voice over time.

One panel per face track and one for the voice, each with the 7 class probabilities per
segment (plotted at the segment centres, broken where there is no value); windows without an
audio vote are shaded. Below them, the fused label of every segment as a coloured band, one
lane per track (plus "no face" for windows in which no face was seen). matplotlib, Agg.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mer_ray.config import EMOTIONS
from mer_ray.report.plots import _pyplot

EMOTION_COLOURS: dict[str, str] = {
    "angry": "#d62728", "disgust": "#2ca02c", "fear": "#9467bd", "happy": "#e6b400",
    "neutral": "#7f7f7f", "sad": "#1f77b4", "surprise": "#ff7f0e",
}
"""One colour per class, the same in the probability lines and the fused band."""

WIDTH_IN, DPI = 12.0, 100
PANEL_IN, LANE_IN, FRAME_IN = 1.7, 0.32, 1.3
"""Figure width, a probability panel's height, a band lane's height, title + axis + legend."""

REQUIRED = ("video_id", "segment_index", "start_s", "end_s", "track_id", "visual_probs",
            "audio_probs", "emotion")
NO_VOICE = "#d9d9d9"
TICK_STEPS_S = (30, 60, 120, 300, 600, 900, 1800, 3600)


def figure_size(n_tracks: int, n_lanes: int) -> tuple[float, float]:
    """(width, height) in inches for ``n_tracks`` face panels (one saying "no face" when 0),
    the voice panel and a band of ``n_lanes`` lanes."""
    return WIDTH_IN, FRAME_IN + PANEL_IN * (max(1, n_tracks) + 1) + LANE_IN * max(1, n_lanes) + 0.3


def _probs_matrix(values: Sequence) -> np.ndarray:
    """A column of 7-lists (None / NaN for missing) as an (n, 7) float array with NaN rows."""
    out = np.full((len(values), len(EMOTIONS)), np.nan)
    for i, v in enumerate(values):
        if v is not None and not (np.isscalar(v) and v != v):
            out[i] = np.asarray(v, dtype=np.float64)
    return out


def _broken(centres: np.ndarray, index: np.ndarray, probs: np.ndarray):
    """Insert a NaN point wherever consecutive segments are not neighbours, so lines break."""
    xs, ys = [], []
    for i, (x, p) in enumerate(zip(centres, probs)):
        if i and index[i] != index[i - 1] + 1:
            xs.append(np.nan)
            ys.append(np.full(len(EMOTIONS), np.nan))
        xs.append(x)
        ys.append(p)
    return np.asarray(xs), np.asarray(ys).reshape(-1, len(EMOTIONS))


def _prob_panel(ax, rows, title: str, empty_text: str) -> None:
    """Class probability lines of ``rows`` (one per segment) on ``ax``."""
    ax.set_ylim(0, 1.02)
    ax.set_ylabel(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    if rows is None or not len(rows) or np.isnan(rows[2]).all():
        ax.text(0.5, 0.5, empty_text, transform=ax.transAxes, ha="center", va="center",
                color="0.4", fontsize=11)
        return
    centres, index, probs = rows
    xs, ys = _broken(centres, index, probs)
    marker = "." if len(centres) <= 80 else None
    for c, emotion in enumerate(EMOTIONS):
        ax.plot(xs, ys[:, c], color=EMOTION_COLOURS[emotion], linewidth=1.4, marker=marker,
                markersize=4)


def _keyframe_dots(ax, keyframes, track: int, n_tracks: int) -> None:
    """Per-keyframe visual probabilities as faint dots (``keyframes``: timeline rows)."""
    rows = keyframes
    if "track_id" in rows.columns:
        rows = rows[rows["track_id"] == track]
    elif track != 0 or n_tracks != 1:
        return
    probs = _probs_matrix(list(rows["probs"]))
    for c, emotion in enumerate(EMOTIONS):
        ax.scatter(rows["timestamp_s"], probs[:, c], s=6, color=EMOTION_COLOURS[emotion],
                   alpha=0.35, linewidths=0)


def _band(ax, lanes: list[tuple[str, list]], spans: dict[int, tuple[float, float]]) -> None:
    """The fused label per segment, one lane per (name, rows)."""
    for lane, (_, rows) in enumerate(lanes):
        for k, emotion in rows:
            lo, hi = spans[k]
            emotion = emotion if isinstance(emotion, str) else None
            colour = EMOTION_COLOURS.get(emotion, "white")
            ax.broken_barh([(lo, hi - lo)], (lane + 0.1, 0.8), facecolors=colour,
                           edgecolors="none" if emotion else "0.7", hatch=None if emotion else "//")
    ax.set_ylim(0, max(1, len(lanes)))
    ax.set_yticks([i + 0.5 for i in range(len(lanes))], labels=[n for n, _ in lanes], fontsize=8)
    ax.invert_yaxis()
    ax.set_title("fused label", fontsize=9, loc="left")


def _band_spans(windows: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Where each window's band is drawn: the window, less half of its overlap with each
    neighbour (the rule of ``score.windows.owned_spans``), so overlapping windows tile."""
    out = []
    for k, (start, end) in enumerate(windows):
        lo = (start + windows[k - 1][1]) / 2 if k and start < windows[k - 1][1] else start
        following = windows[k + 1][0] if k + 1 < len(windows) else end
        hi = (following + end) / 2 if following < end else end
        out.append((lo, max(lo, hi)))
    return out


def _min_sec(value: float, _pos) -> str:
    return f"{int(value // 60)}:{int(value % 60):02d}"


def _time_axis(ax, end: float) -> None:
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    ax.set_xlim(0, max(end, 1e-3))
    if end >= 120:
        step = next((s for s in TICK_STEPS_S if end / s <= 12), TICK_STEPS_S[-1])
        ax.xaxis.set_major_locator(MultipleLocator(step))
        ax.xaxis.set_major_formatter(FuncFormatter(_min_sec))
        ax.set_xlabel("time (min:s)")
    else:
        ax.set_xlabel("time (s)")


def _video_rows(segments, video_id: str):
    missing = [c for c in REQUIRED if c not in segments.columns]
    if missing:
        raise ValueError(f"segments lack the columns {', '.join(missing)}")
    rows = segments[segments["video_id"] == video_id]
    if rows.empty:
        known = segments["video_id"].nunique()
        raise ValueError(f"no segments for video {video_id!r} ({known} other videos in the scores)")
    return rows.sort_values(["segment_index", "track_id"])


def _series(rows, column: str):
    """(centres, segment_index, probs) of ``rows`` for one panel."""
    centres = ((rows["start_s"] + rows["end_s"]) / 2).to_numpy(dtype=np.float64)
    return centres, rows["segment_index"].to_numpy(), _probs_matrix(list(rows[column]))


def plot_timeline(segments, video_id: str, out_png: str, keyframes=None,
                  title: str | None = None) -> str:
    """Draw ``video_id``'s segment rows (a DataFrame with the SEGMENTS_SCHEMA columns) to
    ``out_png``; ``keyframes`` (timeline rows: timestamp_s, probs, optional track_id) adds
    the per-keyframe probabilities as dots; ``title`` names the video (default: its id).
    Returns ``out_png``."""
    from matplotlib.patches import Patch

    rows = _video_rows(segments, video_id)
    windows = rows.drop_duplicates("segment_index")
    spans = dict(zip(windows["segment_index"],
                     _band_spans(list(zip(windows["start_s"], windows["end_s"])))))
    tracks = sorted(int(t) for t in rows["track_id"].unique() if t >= 0)
    lanes = [(f"track {t}", list(zip(r["segment_index"], r["emotion"])))
             for t in tracks for r in [rows[rows["track_id"] == t]]]
    faceless = rows[rows["track_id"] < 0]
    if not faceless.empty:
        lanes.append(("no face", list(zip(faceless["segment_index"], faceless["emotion"]))))
    plt = _pyplot()
    size = figure_size(len(tracks), len(lanes))
    n_face = max(1, len(tracks))
    heights = [PANEL_IN] * (n_face + 1) + [LANE_IN * max(1, len(lanes)) + 0.3]
    fig, axes = plt.subplots(len(heights), 1, figsize=size, dpi=DPI, sharex=True,
                             gridspec_kw={"height_ratios": heights})
    for ax, track in zip(axes, tracks):
        _prob_panel(ax, _series(rows[rows["track_id"] == track], "visual_probs"),
                    f"face, track {track}", "no face")
        if keyframes is not None and len(keyframes):
            _keyframe_dots(ax, keyframes, track, len(tracks))
    if not tracks:
        _prob_panel(axes[0], None, "face", "no face detected")
    voice_ax = axes[n_face]
    _prob_panel(voice_ax, _series(windows, "audio_probs"), "voice", "no audio")
    for k, audio in zip(windows["segment_index"], windows["audio_probs"]):
        if audio is None or (np.isscalar(audio) and audio != audio):
            voice_ax.axvspan(*spans[k], color=NO_VOICE, alpha=0.6, linewidth=0)
    _band(axes[-1], lanes, spans)
    _time_axis(axes[-1], float(rows["end_s"].max()))
    handles = [Patch(color=EMOTION_COLOURS[e], label=e) for e in EMOTIONS]
    handles.append(Patch(color=NO_VOICE, label="no voice"))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False,
               fontsize=9, bbox_to_anchor=(0.5, 1 - 0.35 / size[1]))
    fig.suptitle(f"{title or video_id}: emotion over time", y=1 - 0.08 / size[1], fontsize=11)
    fig.subplots_adjust(left=0.09, right=0.98, top=1 - FRAME_IN * 0.6 / size[1],
                        bottom=FRAME_IN * 0.4 / size[1], hspace=0.25)
    fig.savefig(out_png, dpi=DPI)
    plt.close(fig)
    return out_png
