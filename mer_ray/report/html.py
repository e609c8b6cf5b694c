"""The self-contained HTML page of `evaluate`: run metadata, metrics, the per-video table,
failed inputs, emotion over time and face thumbnails.

One file that opens from disk: CSS and the table script inline, pictures as data: URIs, no
external URL. Sections that need labels (metrics, confusion) or a ``--timeline`` score run
(plots, thumbnails) say so when there is nothing to show.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path, PurePath

import pandas as pd

from mer_ray.config import EMOTIONS
from mer_ray.report.table import SCRIPT, failed_table, video_table
from mer_ray.report.timeline_svg import legend_html, timeline_svg

PLOT_ALL_MAX = 100
"""With keyframe rows for at most this many videos, every one gets a plot."""
PLOT_SAMPLE = 12
"""Otherwise the first this-many videos by path do."""

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;max-width:90em;color:#222}
h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right;vertical-align:top}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
table.data td,table.data th{text-align:left;font-size:.9em}
table.data td.num{text-align:right;font-variant-numeric:tabular-nums}
#video-table th{cursor:pointer;user-select:none;position:sticky;top:0}
#video-table th[aria-sort=ascending]::after{content:' \\25B2'}
#video-table th[aria-sort=descending]::after{content:' \\25BC'}
td.path{min-width:16em;max-width:30em;overflow-wrap:anywhere} td.path small{color:#777}
td.err{max-width:28em;overflow-wrap:anywhere}
td.right{color:#11751c;font-weight:600} td.wrong{color:#b3261e;font-weight:600}
.note{color:#666;font-size:.9em} .warn{background:#fff4d6;padding:.4em .6em}
img.cm{max-width:30em;margin:.5em 1em .5em 0}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.15em 1em}
dl.meta dt{font-weight:600} dl.meta dd{margin:0}
nav a{margin-right:1em} .controls label{margin-right:1em}
.cards{display:flex;flex-wrap:wrap;gap:1em}
.card{border:1px solid #ddd;padding:.4em .6em;width:360px;box-sizing:border-box}
.card h4{margin:.1em 0;font-size:.95em;word-break:break-all}
svg.tl text{font-size:9px;fill:#555} svg.tl polyline{fill:none;stroke-width:1.5}
svg.tl line.grid{stroke:#e4e4e4} svg.tl line.noface{stroke:#999;stroke-width:2}
.legend span{margin-right:1em} .legend i{display:inline-block;width:1.2em;height:.4em;
margin-right:.3em;vertical-align:middle}
.faces{display:flex;flex-wrap:wrap;gap:.4em;align-items:flex-start}
.faces figure{margin:0;text-align:center;font-size:.75em;color:#555;width:80px}
.faces img{width:72px;height:72px;display:block;margin:0 auto}
.faceclass{margin:.4em 0;display:flex;gap:1em;align-items:center}
.faceclass b{width:5.5em}
"""


@dataclass(frozen=True)
class ReportInputs:
    """What the page shows beyond the metrics dict: every score row (labels attached), the
    keyframe rows (empty without ``score --timeline``) and the folder holding the PNGs named
    in ``metrics["images"]``."""

    rows: pd.DataFrame
    timeline: pd.DataFrame | None = None
    images_dir: str | None = None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _summary_table(sections: dict) -> str:
    rows = [[m["title"], m["n"], _pct(m["coverage"]), _pct(m["accuracy"]), _pct(m["chance"]),
             _pct(m["macro"]["precision"]), _pct(m["macro"]["recall"]),
             _pct(m["macro"]["specificity"]), _pct(m["macro"]["f1"])]
            for m in sections.values()]
    return _table(["section", "videos", "coverage", "accuracy", "chance", "macro precision",
                   "macro recall", "macro specificity", "macro F1"], rows)


def _per_class_table(m: dict) -> str:
    rows = [[name, v["support"], _pct(v["precision"]), _pct(v["recall"]), _pct(v["specificity"]),
             _pct(v["f1"])] for name, v in m["per_class"].items()]
    return _table(["class", "support", "precision", "recall", "specificity", "F1"], rows)


def _counts(title: str, counts: dict) -> str:
    return f"<h3>{escape(title)}</h3>" + _table(["value", "rows"], [[k, v] for k, v in counts.items()])


def _data_uri(path: Path, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def _metadata(metrics: dict) -> str:
    run = metrics.get("run", {})
    status = ", ".join(f"{k} {v}" for k, v in metrics["status"].items()) or "-"
    items = [
        ("generated", run.get("generated", "-")),
        ("mer_ray version", run.get("mer_ray_version", "-")),
        ("scores", f"<code>{escape(str(metrics['scores']))}</code>"),
        ("labels", f"{escape(str(metrics['labels']))}: {metrics['labelled']} of "
                   f"{metrics['rows']} rows have a true class"),
        ("visual model", f"<code>{escape(str(metrics['models']['visual']))}</code>"),
        ("audio model", f"<code>{escape(str(metrics['models']['audio']))}</code>"),
        ("fusion weights", f"w_visual={metrics['weights']['visual']}, "
                           f"w_audio={metrics['weights']['audio']}"),
        ("inputs per status", escape(status)),
        ("keyframe timeline", "yes" if run.get("timeline") else "no (score without --timeline)"),
        ("speakers", escape(", ".join(map(str, metrics["speakers"])) or "-")),
    ]
    return "<dl class=meta>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _metrics_summary(metrics: dict) -> list[str]:
    sections = metrics.get("sections", {})
    if not sections:
        return ["<p><b>No labelled rows: nothing to evaluate.</b> Give --labels ravdess or a "
                "manifest with a label column. Every input is still listed below.</p>"]
    thesis = metrics["thesis"]
    return [_summary_table(sections),
            f"<p class=note>Coverage: share of labelled videos the section could score. "
            f"Chance: always predicting the most frequent true class. For reference, the "
            f"thesis reports fused {_pct(thesis['fused'])}, visual {_pct(thesis['visual'])}, "
            f"audio {_pct(thesis['audio'])} ({escape(thesis['note'])}).</p>"]


def _confusion(metrics: dict, images_dir: str | None) -> list[str]:
    images = metrics.get("images", {})
    if not images:
        return []
    pics = []
    for name, f in images.items():
        src = _data_uri(Path(images_dir) / f) if images_dir else f
        pics.append(f"<img class=cm src='{escape(src)}' alt='confusion matrix: {escape(name)}' "
                    f"title='{escape(f)}'>")
    return ["<h2 id=confusion>Confusion matrices</h2><div>" + "".join(pics) + "</div>"]


def _per_class(metrics: dict) -> list[str]:
    parts = []
    for m in metrics.get("sections", {}).values():
        if m["n"]:
            parts += [f"<h3>{escape(m['title'])}</h3>", _per_class_table(m)]
    return ["<h2 id=per-class>Per class</h2>", *parts] if parts else []


def plotted_paths(timeline: pd.DataFrame | None) -> list[str]:
    """The videos that get an emotion-over-time plot: all when the timeline covers at most
    PLOT_ALL_MAX videos, else the first PLOT_SAMPLE by path."""
    if timeline is None or not len(timeline):
        return []
    paths = sorted(timeline["path"].unique())
    return paths if len(paths) <= PLOT_ALL_MAX else paths[:PLOT_SAMPLE]


def _verdict(r: dict) -> str:
    def val(k):
        v = r.get(k)
        return "-" if v is None or (isinstance(v, float) and v != v) else escape(str(v))

    conf = r.get("confidence")
    conf = f" {conf:.2f}" if isinstance(conf, float) and conf == conf else ""
    true = f" &middot; true {val('label')}" if val("label") != "-" else ""
    return (f"<p class=note>fused <b>{val('emotion')}</b>{conf} ({val('fusion_mode')}) &middot; "
            f"visual {val('visual_emotion')} &middot; audio {val('audio_emotion')}{true}</p>")


def _timelines(rows: pd.DataFrame, timeline: pd.DataFrame | None,
               anchors: dict[str, str]) -> list[str]:
    head = ["<h2 id=timelines>Emotion over time</h2>"]
    paths = list(anchors)
    if not paths:
        return head + ["<p>No keyframe rows: score with <code>mer-ray score ... --timeline</code> "
                       "to see each video's face probabilities over time.</p>"]
    n_videos = timeline["path"].nunique()
    scope = (f"all {n_videos} videos with keyframes" if len(paths) == n_videos else
             f"the first {len(paths)} of {n_videos} videos by path (every video is plotted "
             f"when there are at most {PLOT_ALL_MAX})")
    by_path = {r["path"]: r for r in rows.to_dict("records")}
    frames = timeline[timeline["path"].isin(set(paths))].sort_values(["path", "timestamp_s"])
    cards = []
    for i, (path, g) in enumerate(frames.groupby("path", sort=True)):
        probs = [None if p is None else list(p) for p in g["probs"]]
        svg = timeline_svg(g["timestamp_s"].tolist(), probs, EMOTIONS, PurePath(path).name)
        if not any(p is not None for p in probs):
            svg = f"<p class=note>no face in any of its {len(probs)} keyframes</p>{svg}"
        cards.append(f"<div class=card id={anchors[path]}><h4 title='{escape(path)}'>"
                     f"{escape(PurePath(path).name)}</h4>{_verdict(by_path.get(path, {}))}{svg}"
                     "</div>")
    return head + [f"<p class=note>Visual model's probabilities per keyframe, for {scope}; a "
                   "grey tick on the time axis is a keyframe without a face.</p>",
                   legend_html(EMOTIONS), "<div class=cards>" + "".join(cards) + "</div>"]


def _faces(timeline: pd.DataFrame | None) -> list[str]:
    from mer_ray.report.thumbnails import PER_CLASS, face_thumbnails

    head = ["<h2 id=faces>Faces per predicted class</h2>"]
    if timeline is None or not timeline["box"].notna().any():
        return head + ["<p>No face boxes: score with <code>--timeline</code> to see the faces "
                       "the model saw.</p>"]
    thumbs, missed = face_thumbnails(timeline, EMOTIONS)
    lines = [f"<p class=note>The visual model's most confident keyframes per class (up to "
             f"{PER_CLASS}, distinct videos first), cut from the source videos now.</p>"]
    if missed:
        lines.append(f"<p class=note>{missed} source video(s) could not be read any more "
                     "(moved, remote or unreadable): their faces are left out.</p>")
    for name in EMOTIONS:
        figs = "".join(f"<figure><img src='{t.uri}' alt='{escape(name)} face' "
                       f"title='{escape(t.path)} at {t.timestamp_s:.1f} s'>"
                       f"{t.confidence:.2f}</figure>" for t in thumbs.get(name, []))
        lines.append(f"<div class=faceclass><b>{escape(name)}</b><div class=faces>"
                     f"{figs or '<span class=note>none</span>'}</div></div>")
    return head + lines


def _skipped(metrics: dict) -> str:
    """A warning naming committed shards that did not read (their rows are not in this page)."""
    paths = metrics.get("skipped_shards") or []
    if not paths:
        return ""
    items = "".join(f"<li><code>{escape(str(p))}</code></li>" for p in paths)
    return (f"<p class=warn>{len(paths)} damaged shard(s) did not read; their rows are not in "
            f"this report (the next score run moves them aside and redoes their inputs):</p>"
            f"<ul>{items}</ul>")


def _nav(parts: list[str]) -> str:
    """Links to the page's sections (every <h2> with an id)."""
    found = re.findall(r"<h2 id=([\w-]+)>([^<]+)</h2>", "\n".join(parts))
    return "<nav>" + "".join(f"<a href='#{a}'>{t}</a>" for a, t in found) + "</nav>"


def render_evaluation(metrics: dict, inputs: ReportInputs | None = None) -> str:
    """The report page for a metrics dict written by :func:`mer_ray.score.evaluate.evaluate`;
    ``inputs`` adds the per-video sections."""
    parts = ["<h2 id=summary>Summary</h2>", *_metrics_summary(metrics)]
    if inputs is not None:
        paths = plotted_paths(inputs.timeline)
        anchors = {p: f"tl-{i}" for i, p in enumerate(paths)}
        parts += ["<h2 id=videos>Videos</h2>", video_table(inputs.rows, anchors),
                  "<h2 id=failed>Failed inputs</h2>", _skipped(metrics), failed_table(inputs.rows),
                  *_timelines(inputs.rows, inputs.timeline, anchors), *_faces(inputs.timeline)]
    parts += _confusion(metrics, inputs.images_dir if inputs else None)
    parts += _per_class(metrics)
    emotions = metrics.get("emotion", {})
    parts += ["<h2 id=counts>Counts</h2>", _counts("Status", metrics["status"]),
              _counts("Fusion mode", metrics["fusion_mode"])]
    if emotions:
        parts.append(_counts("Predicted emotion", emotions))
    body = "\n".join(["<h1>Emotion recognition report</h1>", _metadata(metrics), _nav(parts),
                      *parts])
    return (f"<!doctype html><html lang=en><head><meta charset='utf-8'>"
            f"<title>mer_ray report</title><style>{_STYLE}</style></head><body>{body}"
            f"<script>{SCRIPT}</script></body></html>\n")
