"""The evaluate report page: per-video table, failed inputs, timelines, face thumbnails, run
metadata, self-contained; and the page in a real headless browser (script runs, sorts, no
console errors). Hand-made score rows, a tiny generated video; no Ray, no models."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mer_ray
from mer_ray.config import EMOTIONS, EvaluateConfig
from mer_ray.data.schema import to_table
from mer_ray.score.fusion import FusionWeights, fuse
from mer_ray.score.schema import (PROB_COLUMNS, RUN_FILE, SCORES_DIR, SCORES_SCHEMA, TIMELINE_DIR,
                                  TIMELINE_SCHEMA, scores_store)

FACE_BOX = [40, 20, 40, 40]   # x, y, w, h of the bright square in frame BRIGHT of the video
BRIGHT = 10


def probs(name: str, value: float) -> list[float]:
    p = np.full(7, (1 - value) / 6)
    p[EMOTIONS.index(name)] = value
    return p.tolist()


def score_row(path: str, label: str | None, visual, audio, status: str = "ok",
              error: str | None = None) -> dict:
    r = fuse(None if visual is None else [visual], audio, FusionWeights())
    out = {"path": path, "video_id": path, "label": label, "status": status, "error": error,
           "label_index": None if label is None else EMOTIONS.index(label), "speaker": "01",
           "fusion_mode": r.mode, "emotion": r.emotion, "arousal": r.arousal,
           "confidence": r.confidence, "visual_probs": visual, "audio_probs": audio,
           "visual_emotion": None if visual is None else EMOTIONS[int(np.argmax(visual))],
           "audio_emotion": None if audio is None else EMOTIONS[int(np.argmax(audio))],
           "w_visual": 0.5, "w_audio": 0.5, "visual_model_id": "visual:t:1",
           "audio_model_id": "audio:t:2"}
    out.update(zip(PROB_COLUMNS, r.probs if r.probs is not None else [None] * 7))
    return out


def keyframe(path: str, index: int, p: list[float] | None, box=None) -> dict:
    return {"path": path, "video_id": path, "frame_index": index, "timestamp_s": index / 10,
            "has_face": p is not None, "box": box if p is not None else None,
            "emotion": None if p is None else EMOTIONS[int(np.argmax(p))],
            "confidence": None if p is None else max(p), "probs": p}


def write_video(path: Path) -> str:
    """20 frames, 10 fps: a grey square at FACE_BOX, white in frame BRIGHT only."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    x, y, w, h = FACE_BOX
    for i in range(20):
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[y:y + h, x:x + w] = 255 if i == BRIGHT else 80
        writer.write(frame)
    writer.release()
    return str(path)


def make_output(root: Path, labelled: bool = True) -> tuple[str, list[dict]]:
    """A score output folder: four inputs (one readable video, one moved away, two failed
    or partial), a timeline for the first two."""
    video = write_video(root / "clip_a.mp4")
    gone = str(root / "moved" / "clip_b.mp4")
    lab = (lambda name: name) if labelled else (lambda name: None)
    rows = [
        score_row(video, lab("happy"), probs("happy", .9), probs("happy", .6)),
        score_row(gone, lab("angry"), probs("angry", .8), probs("sad", .5)),
        score_row(str(root / "broken.mp4"), lab("fear"), None, None, "truncated",
                  "decoding stopped at frame 3 of ~50"),
        score_row(str(root / "silent.mp4"), lab("sad"), None, probs("sad", .7), "no_face",
                  "no face in any of 6 keyframes"),
    ]
    frames = [keyframe(video, 0, probs("sad", .6), FACE_BOX),
              keyframe(video, BRIGHT, probs("happy", .9), FACE_BOX),
              keyframe(video, 15, None),
              keyframe(gone, 0, probs("angry", .95), FACE_BOX)]
    out = root / "scores"
    store = scores_store(str(out))
    store.write_shard("s1", {SCORES_DIR: to_table(rows, SCORES_SCHEMA),
                             TIMELINE_DIR: to_table(frames, TIMELINE_SCHEMA)})
    store.write_json(RUN_FILE, {"timeline": True})
    return str(out), rows


class Page(HTMLParser):
    """The parts of the report the tests read: element ids, the body rows of each table (and
    the <h2> section it is under), links, image sources, the <body> attributes."""

    def __init__(self, html: str):
        super().__init__()
        self.ids, self.tables, self.hrefs, self.srcs = set(), [], [], []
        self._section, self._row, self._cell, self._in_body = None, None, None, False
        self.body: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "h2":
            self._section = a.get("id")
        if tag == "body":
            self.body = a
        if tag == "table":
            self.tables.append({"id": a.get("id"), "section": self._section, "rows": []})
        if tag == "tbody":
            self._in_body = True
        if tag == "tr" and self._in_body:
            self._row = {"attrs": a, "cells": [], "values": []}
        if tag in ("td", "th") and self._row is not None:
            self._cell = ""
            self._row["values"].append(a.get("data-v"))
        if "href" in a:
            self.hrefs.append(a["href"])
        if "src" in a:
            self.srcs.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        if tag in ("td", "th") and self._row is not None:
            self._row["cells"].append(self._cell.strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.tables[-1]["rows"].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def table(self, ident: str | None = None, section: str | None = None) -> list[dict]:
        """The <tbody> rows of the table with that id, or of the first under that section."""
        return next(t for t in self.tables if (ident and t["id"] == ident)
                    or (section and t["section"] == section))["rows"]


def evaluate(scores: str, out: str, labels: str = "auto") -> dict:
    from mer_ray.score.evaluate import evaluate as run

    return run(EvaluateConfig(scores=scores, out=out, labels=labels))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    scores, rows = make_output(root)
    metrics = evaluate(scores, str(root / "report"))
    html = Path(metrics["report"]).read_text(encoding="utf-8")
    return {"html": html, "page": Page(html), "rows": rows, "metrics": metrics,
            "path": metrics["report"], "root": root}


def test_table_has_one_row_per_input(report):
    rows = report["page"].table(ident="video-table")
    assert sorted(r["values"][0] for r in rows) == sorted(r["path"] for r in report["rows"])
    assert [r["attrs"]["data-status"] for r in rows].count("ok") == 2
    happy = next(r for r in rows if r["values"][0].endswith("clip_a.mp4"))
    assert happy["cells"][1:8] == ["happy", f"{report['rows'][0]['confidence']:.3f}",
                                   "audio_visual", "happy", "happy", "happy", "ok"]


def test_failed_inputs_listed_with_their_reason(report):
    failed = report["page"].table(section="failed")
    by_status = {r["cells"][1]: r for r in failed}
    assert set(by_status) == {"truncated", "no_face"}            # every non-ok row, no ok row
    assert by_status["truncated"]["cells"][2] == "decoding stopped at frame 3 of ~50"
    assert by_status["truncated"]["cells"][4] == "not scored"
    assert by_status["no_face"]["cells"][2:] == ["no face in any of 6 keyframes", "audio_only",
                                                 "sad"]


def test_page_is_self_contained(report):
    page = report["page"]
    assert not [u for u in page.hrefs + page.srcs if re.match(r"\s*(https?:)?//", u)]
    assert page.srcs and all(s.startswith("data:image/") for s in page.srcs)
    assert "<link" not in report["html"] and "<script src" not in report["html"]
    assert all(h.startswith("#") for h in page.hrefs)             # in-page links only


def test_metadata_names_version_models_weights_and_date(report):
    head = report["html"].split("<nav>")[0]
    assert f"<dt>mer_ray version</dt><dd>{mer_ray.__version__}</dd>" in head
    assert "visual:t:1" in head and "audio:t:2" in head and "w_visual=0.5" in head
    assert re.search(r"<dt>generated</dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</dd>", head)
    assert "no_face 1, ok 2, truncated 1" in head
    saved = json.loads((Path(report["path"]).parent / "metrics.json").read_text())
    assert saved["run"]["mer_ray_version"] == mer_ray.__version__ and saved["run"]["timeline"]


def test_confusion_pictures_embedded_and_still_written(report):
    out = Path(report["path"]).parent
    for name in ("fused", "visual", "audio"):
        png = (out / f"confusion_{name}.png").read_bytes()
        assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in report["html"]


def test_table_links_to_each_plotted_video(report):
    page = report["page"]
    plots = [h[1:] for h in page.hrefs if h.startswith("#tl-")]
    assert len(plots) == 2 and all(p in page.ids for p in plots)   # the two videos with keyframes
    cards = re.findall(r"<div class=card id=(tl-\d+)>(.*?)</div>", report["html"], re.S)
    assert [c for c, _ in cards] == sorted(plots)
    first = dict(cards)["tl-0"]
    assert "clip_a.mp4" in first and "<polyline" in first and "class=noface" in first


def decode(uri: str) -> np.ndarray:
    import cv2

    data = base64.b64decode(uri.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)


def face_images(html: str) -> dict[str, list[np.ndarray]]:
    """class -> decoded thumbnails of the faces section."""
    faces = html.split("<h2 id=faces>")[1].split("<h2")[0]
    return {name: [decode(u) for u in re.findall(r"src='(data:image/jpeg;[^']+)'", block)]
            for name, block in re.findall(r"<div class=faceclass><b>(\w+)</b>(.*?)</div></div>",
                                          faces, re.S)}


def test_face_thumbnails_are_cut_from_the_keyframe(report):
    faces = face_images(report["html"])
    assert len(faces["happy"]) == 1 and len(faces["sad"]) == 1
    assert faces["happy"][0].mean() > 200                  # frame BRIGHT's white square
    assert 50 < faces["sad"][0].mean() < 110                # frame 0's grey square
    assert faces["angry"] == []                             # its video was moved away
    assert "1 source video(s) could not be read" in report["html"]


def test_report_without_labels_still_lists_everything(tmp_path):
    scores, rows = make_output(tmp_path, labelled=False)
    metrics = evaluate(scores, str(tmp_path / "r"))
    html = Path(metrics["report"]).read_text(encoding="utf-8")
    page = Page(html)
    assert metrics["sections"] == {} and "nothing to evaluate" in html
    videos = page.table(ident="video-table")
    assert len(videos) == len(rows) and "true label" not in html
    assert len(page.table(section="failed")) == 2
    assert len(re.findall(r"<div class=card id=tl-\d+>", html)) == 2
    assert "confusion" not in page.ids


def test_table_cap_says_how_many_were_left_out():
    from mer_ray.report.table import video_table

    rows = pd.DataFrame([score_row(f"/v/{i:03d}.mp4", None, probs("sad", .7), None)
                         for i in range(7)])
    html = video_table(rows.iloc[::-1], {}, cap=3)
    page = Page(html)
    assert [r["values"][0] for r in page.table(ident="video-table")] == \
        ["/v/000.mp4", "/v/001.mp4", "/v/002.mp4"]
    assert "first 3 of 7 inputs" in html


def test_plots_for_all_videos_up_to_the_limit_else_a_sample():
    from mer_ray.report.html import PLOT_ALL_MAX, PLOT_SAMPLE, plotted_paths

    def frames(n):
        return pd.DataFrame({"path": [f"/v/{i:04d}.mp4" for i in range(n)][::-1]})

    assert plotted_paths(frames(PLOT_ALL_MAX)) == sorted(frames(PLOT_ALL_MAX)["path"])
    first = [f"/v/{i:04d}.mp4" for i in range(PLOT_SAMPLE)]
    assert plotted_paths(frames(PLOT_ALL_MAX + 1)) == first
    assert plotted_paths(pd.DataFrame({"path": []})) == []


def chromium(*args: str, url: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium not installed: the browser check needs it")
    return subprocess.run([exe, "--headless=new", "--disable-gpu", "--no-sandbox",
                           "--enable-logging=stderr", "--v=0", *args, url],
                          capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line and ("Uncaught" in line or "Error" in line)]


@pytest.mark.slow   # a real browser start: over the 2 s a fast test may take
def test_page_in_a_browser_runs_its_script_sorts_and_logs_no_errors(report, tmp_path):
    """One chromium run: the screenshot is a drawn page, the script ran (data-ready) and
    honoured #sort=-confidence, and the console shows no error."""
    from PIL import Image

    shot = tmp_path / "report.png"
    done = chromium("--dump-dom", f"--screenshot={shot}", "--window-size=1280,2000",
                    url=Path(report["path"]).as_uri() + "#sort=-confidence")
    assert console_errors(done.stderr) == []
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        assert len(im.convert("L").getcolors(1 << 16)) > 20         # text and pictures, not blank
    page = Page(done.stdout)
    assert page.body.get("data-ready") == "1" and page.body.get("data-sorted") == "-confidence"
    shown = [r["cells"][2] for r in page.table(ident="video-table")]
    expected = sorted((r["confidence"] for r in report["rows"] if r["confidence"] is not None),
                      reverse=True)
    assert shown == [f"{c:.3f}" for c in expected] + ["-"]   # the unscored row last


def test_damaged_shard_is_named_in_metrics_and_page(tmp_path):
    """A committed scores shard that does not read: evaluate still writes the page from the
    other shards, and both metrics.json and the page name the damaged file."""
    scores, rows = make_output(tmp_path)
    store = scores_store(scores)
    store.write_shard("s2", {SCORES_DIR: to_table([score_row(str(tmp_path / "x.mp4"), "sad",
                                                             probs("sad", .8), None)], SCORES_SCHEMA)})
    damaged = Path(scores) / SCORES_DIR / "part-s2.parquet"
    damaged.write_bytes(damaged.read_bytes()[:40])
    metrics = evaluate(scores, str(tmp_path / "report"))
    assert metrics["rows"] == len(rows)
    assert [Path(p).name for p in metrics["skipped_shards"]] == ["part-s2.parquet"]
    html = Path(metrics["report"]).read_text(encoding="utf-8")
    assert "1 damaged shard(s) did not read" in html and "part-s2.parquet" in html
