"""A self-contained HTML page for `evaluate` (metrics tables + confusion pictures beside it)."""
from __future__ import annotations

from html import escape

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.note{color:#666;font-size:.9em} img{max-width:36em;margin:.5em 1em .5em 0}
"""


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


def render_evaluation(metrics: dict) -> str:
    """The report page for a metrics dict written by :func:`mer_ray.score.evaluate.evaluate`."""
    sections = metrics.get("sections", {})
    parts = ["<h1>Emotion recognition report</h1>",
             f"<p>Scores: <code>{escape(str(metrics['scores']))}</code>; labels: "
             f"{escape(str(metrics['labels']))}; {metrics['rows']} rows, {metrics['labelled']} "
             f"with a true class; speakers: {escape(', '.join(map(str, metrics['speakers'])) or '-')}.</p>",
             f"<p>Models: visual <code>{escape(str(metrics['models']['visual']))}</code>, audio "
             f"<code>{escape(str(metrics['models']['audio']))}</code>; fusion weights "
             f"w_visual={metrics['weights']['visual']}, w_audio={metrics['weights']['audio']}.</p>"]
    if not sections:
        parts.append("<p><b>No labelled rows: nothing to evaluate.</b> Give --labels ravdess or "
                     "a manifest with a label column.</p>")
    else:
        parts += ["<h2>Summary</h2>", _summary_table(sections),
                  f"<p class=note>Coverage: share of labelled videos the section could score. "
                  f"Chance: always predicting the most frequent true class. For reference, the "
                  f"thesis reports fused {_pct(metrics['thesis']['fused'])}, visual "
                  f"{_pct(metrics['thesis']['visual'])}, audio {_pct(metrics['thesis']['audio'])} "
                  f"({escape(metrics['thesis']['note'])}).</p>"]
        images = metrics.get("images", {})
        parts.append("<h2>Confusion matrices</h2><div>" + "".join(
            f"<img src='{escape(f)}' alt='{escape(n)}'>" for n, f in images.items()) + "</div>")
        parts.append("<h2>Per class</h2>")
        for name, m in sections.items():
            if m["n"]:
                parts += [f"<h3>{escape(m['title'])}</h3>", _per_class_table(m)]
    parts += ["<h2>Inputs</h2>", _counts("Status", metrics["status"]),
              _counts("Fusion mode", metrics["fusion_mode"])]
    body = "\n".join(parts)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>mer_ray report</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>\n")
