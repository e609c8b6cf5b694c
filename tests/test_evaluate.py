"""evaluate and tune-fusion on hand-made score rows (no Ray, no models)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mer_ray.config import EMOTIONS, EvaluateConfig, TuneFusionConfig
from mer_ray.data.schema import to_table
from mer_ray.score.fusion import FusionWeights, fuse
from mer_ray.score.schema import PROB_COLUMNS, SCORES_DIR, SCORES_SCHEMA, scores_store


def onehot(name: str, value: float = 1.0) -> list[float]:
    p = np.full(7, (1 - value) / 6)
    p[EMOTIONS.index(name)] = value
    return p.tolist()


def row(path: str, label: str | None, visual, audio, status: str = "ok") -> dict:
    r = fuse(None if visual is None else [visual], audio, FusionWeights())
    out = {"path": path, "video_id": path, "label": label, "status": status,
           "label_index": None if label is None else EMOTIONS.index(label), "speaker": "01",
           "fusion_mode": r.mode, "emotion": r.emotion, "arousal": r.arousal,
           "confidence": r.confidence, "visual_probs": visual, "audio_probs": audio,
           "w_visual": 0.5, "w_audio": 0.5, "visual_model_id": "visual:t:1", "audio_model_id": "audio:t:2"}
    for c, p in zip(PROB_COLUMNS, r.probs if r.probs is not None else [None] * 7):
        out[c] = p
    return out


def write_scores(out, rows) -> str:
    scores_store(str(out)).write_shard("s1", {SCORES_DIR: to_table(rows, SCORES_SCHEMA)})
    return str(out)


# RAVDESS names: 03 happy, 04 sad, 05 angry, 06 fear
ROWS = [
    # visual right, audio wrong, fused right (visual more confident)
    row("/a/01-01-03-01-01-01-01.mp4", "happy", onehot("happy", .9), onehot("sad", .5)),
    # visual right, audio right
    row("/a/01-01-04-01-01-01-01.mp4", "sad", onehot("sad", .6), onehot("sad", .6)),
    # visual wrong, audio right, fused right (audio more confident)
    row("/a/01-01-05-01-01-01-01.mp4", "angry", onehot("fear", .4), onehot("angry", .95)),
    # no face: audio only, wrong
    row("/a/01-01-06-01-01-01-01.mp4", "fear", None, onehot("happy", .8), status="no_face"),
    # failed input: not scored, lowers coverage
    row("/a/01-01-06-01-01-02-01.mp4", "fear", None, None, status="truncated"),
    # no true class (calm): not in the metrics
    row("/a/01-01-02-01-01-01-01.mp4", None, onehot("happy"), onehot("happy")),
]


@pytest.fixture(scope="module")
def scores_dir(tmp_path_factory):
    return write_scores(tmp_path_factory.mktemp("scores"), ROWS)


@pytest.fixture(scope="module")
def evaluated(scores_dir):
    return evaluate_dir(scores_dir)


def test_evaluate_sections_by_hand(evaluated):
    m = evaluated
    s = m["sections"]
    assert m["rows"] == 6 and m["labelled"] == 5
    assert (s["fused"]["n"], s["fused"]["accuracy"]) == (4, pytest.approx(3 / 4))
    assert s["fused"]["coverage"] == pytest.approx(4 / 5)
    assert (s["visual"]["n"], s["visual"]["accuracy"]) == (3, pytest.approx(2 / 3))
    assert (s["audio"]["n"], s["audio"]["accuracy"]) == (4, pytest.approx(2 / 4))
    assert (s["both_fused"]["n"], s["both_fused"]["accuracy"]) == (3, pytest.approx(1.0))
    assert s["both_audio"]["accuracy"] == pytest.approx(2 / 3)
    cm = np.array(s["fused"]["confusion_matrix"])
    assert cm[EMOTIONS.index("fear"), EMOTIONS.index("happy")] == 1 and cm.trace() == 3
    assert m["status"] == {"no_face": 1, "ok": 4, "truncated": 1}


def evaluate_dir(scores_dir, labels="auto", out=None):
    from mer_ray.score.evaluate import evaluate

    return evaluate(EvaluateConfig(scores=scores_dir, labels=labels, out=out))


def test_evaluate_writes_report_files(scores_dir, evaluated):
    from pathlib import Path

    m = evaluated
    report = Path(scores_dir) / "report"
    saved = json.loads((report / "metrics.json").read_text())
    assert saved["sections"]["fused"]["accuracy"] == pytest.approx(0.75)
    for name in ("fused", "visual", "audio"):
        png = report / f"confusion_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (report / "report.html").read_text()
    assert "75.0 %" in html and "truncated" in html
    assert "data:image/png;base64," in html and "src='confusion_" not in html   # embedded
    assert m["report"] == str(report / "report.html")


def test_labels_from_names_and_manifest(scores_dir, tmp_path):
    m = evaluate_dir(scores_dir, "ravdess", str(tmp_path / "r1"))        # same labels as stored, calm has none
    assert m["labelled"] == 5 and m["sections"]["fused"]["accuracy"] == pytest.approx(0.75)
    manifest = tmp_path / "labels.csv"
    manifest.write_text("path,label\n" + "".join(f"{r['path']},happy\n" for r in ROWS))
    m = evaluate_dir(scores_dir, str(manifest), str(tmp_path / "r2"))  # all labelled happy now
    fused = m["sections"]["fused"]
    assert m["labelled"] == 6 and fused["n"] == 5
    assert fused["accuracy"] == pytest.approx(3 / 5)   # rows 1, 4 and 6 predict happy


def test_no_labels_gives_empty_report(tmp_path):
    d = write_scores(tmp_path / "s", [row("/x/clip.mp4", None, onehot("sad"), onehot("sad"))])
    m = evaluate_dir(d)
    assert m["labelled"] == 0 and m["sections"] == {}
    assert "nothing to evaluate" in (tmp_path / "s" / "report" / "report.html").read_text()


def tune_rows() -> list[dict]:
    # A (x3, angry): visual right 0.6/0.4, audio sure of disgust -> right only if w_v > 0.833
    # B (x2, fear): visual sure of angry, audio sure of fear   -> right only if w_v < 0.5
    a_v = [0.6, 0.4, 0, 0, 0, 0, 0]
    a_a = [0, 1.0, 0, 0, 0, 0, 0]
    b_v = [1.0, 0, 0, 0, 0, 0, 0]
    b_a = [0, 0, 1.0, 0, 0, 0, 0]
    rows = [row(f"/t/a{i}.mp4", "angry", a_v, a_a) for i in range(3)]
    rows += [row(f"/t/b{i}.mp4", "fear", b_v, b_a) for i in range(2)]
    rows[0]["speaker"] = "07"
    return rows


def test_tune_fusion_picks_the_hand_computed_weight(tmp_path):
    from mer_ray.score.tune import tune_fusion

    d = write_scores(tmp_path / "s", tune_rows())
    result = tune_fusion(TuneFusionConfig(scores=d, step=0.05))
    # accuracy 3/5 for w_v in {0.85, 0.9, 0.95, 1.0}; ties go to the weight nearest 0.5
    assert result["weights"] == {"visual": 0.85, "audio": 0.15}
    assert result["accuracy"] == pytest.approx(0.6)
    assert result["thesis_weights"]["accuracy"] == pytest.approx(0.0)
    grid = {g["w_visual"]: g["accuracy"] for g in result["grid"]}
    assert grid[0.0] == pytest.approx(0.4) and grid[0.6] == pytest.approx(0.0)
    saved = json.loads((tmp_path / "s" / "fusion_weights.json").read_text())
    assert FusionWeights.parse(str(tmp_path / "s" / "fusion_weights.json")) == FusionWeights(0.85, 0.15)
    assert saved["n_rows"] == 5


def test_tune_fusion_on_chosen_speakers(tmp_path):
    from mer_ray.score.tune import tune_fusion

    d = write_scores(tmp_path / "s", tune_rows())
    result = tune_fusion(TuneFusionConfig(scores=d, speakers=("01",), out=str(tmp_path / "w.json")))
    # without speaker 07's A row: A x2 (w_v > 0.833) vs B x2 (w_v < 0.5) tie at 2/4;
    # the weight nearest 0.5 among the best is 0.45 (B side)
    assert result["n_rows"] == 4 and result["accuracy"] == pytest.approx(0.5)
    assert result["weights"]["visual"] == pytest.approx(0.45)
    with pytest.raises(ValueError, match="no labelled rows"):
        tune_fusion(TuneFusionConfig(scores=d, speakers=("99",)))
