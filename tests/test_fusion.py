"""Alg. 3.9 fusion against hand-computed values, including missing modalities."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mer_ray.score.fusion import (AUDIO_ONLY, AUDIO_VISUAL, NONE, VISUAL_ONLY, FusionWeights, fuse,
                                  fuse_arrays, mean_frame_probs)

#           angry disgust fear happy neutral sad surprise
FRAMES = [[0.6, 0.1, 0.1, 0.1, 0.1, 0.0, 0.0],
          [0.2, 0.1, 0.1, 0.5, 0.1, 0.0, 0.0]]
AUDIO = [0.1, 0.0, 0.0, 0.7, 0.1, 0.1, 0.0]


def test_mean_of_frames():
    np.testing.assert_allclose(mean_frame_probs(FRAMES), [0.4, 0.1, 0.1, 0.3, 0.1, 0.0, 0.0])
    assert mean_frame_probs([]) is None
    assert mean_frame_probs(np.zeros((0, 7))) is None


def test_thesis_weights_by_hand():
    r = fuse(FRAMES, AUDIO)
    # 0.5 * [0.4 .1 .1 .3 .1 0 0] + 0.5 * [.1 0 0 .7 .1 .1 0]
    np.testing.assert_allclose(r.probs, [0.25, 0.05, 0.05, 0.5, 0.1, 0.05, 0.0])
    assert (r.mode, r.emotion, r.arousal) == (AUDIO_VISUAL, "happy", "high")
    assert r.confidence == pytest.approx(0.5)
    assert r.probs.sum() == pytest.approx(1.0)


def test_weights_change_the_decision():
    r = fuse(FRAMES, AUDIO, FusionWeights(0.9, 0.1))
    # 0.9 * 0.4 + 0.1 * 0.1 = 0.37 (angry) beats 0.9 * 0.3 + 0.1 * 0.7 = 0.34 (happy)
    np.testing.assert_allclose(r.probs[:4], [0.37, 0.09, 0.09, 0.34])
    assert (r.emotion, r.arousal) == ("angry", "high")


def test_weights_are_normalised():
    np.testing.assert_allclose(fuse(FRAMES, AUDIO, FusionWeights(2, 2)).probs, fuse(FRAMES, AUDIO).probs)


def test_no_face_uses_audio_alone():
    r = fuse([], AUDIO, FusionWeights(0.9, 0.1))
    assert r.mode == AUDIO_ONLY and r.visual_probs is None
    np.testing.assert_allclose(r.probs, AUDIO)
    assert (r.emotion, r.confidence) == ("happy", pytest.approx(0.7))


def test_no_audio_uses_faces_alone():
    r = fuse(FRAMES, None)
    assert r.mode == VISUAL_ONLY and r.audio_probs is None
    np.testing.assert_allclose(r.probs, [0.4, 0.1, 0.1, 0.3, 0.1, 0.0, 0.0])
    assert (r.emotion, r.arousal) == ("angry", "high")


def test_neither_modality():
    r = fuse(None, None)
    assert r.mode == NONE
    assert r.probs is None and r.emotion is None and r.arousal is None and r.confidence is None


@pytest.mark.parametrize("label,arousal", [("sad", "low"), ("disgust", "low"), ("neutral", "neutral"),
                                           ("surprise", "high"), ("fear", "high")])
def test_arousal_groups(label, arousal):
    from mer_ray.config import EMOTIONS

    onehot = np.eye(7)[EMOTIONS.index(label)]
    assert fuse([onehot], onehot).arousal == arousal


def test_fuse_arrays_matches_fuse():
    rng = np.random.default_rng(0)
    visual = rng.dirichlet(np.ones(7), size=5)
    audio = rng.dirichlet(np.ones(7), size=5)
    visual[1] = np.nan
    audio[2] = np.nan
    w = FusionWeights(0.3, 0.7)
    out = fuse_arrays(visual, audio, w)
    for i in range(5):
        v = None if np.isnan(visual[i]).any() else visual[i:i + 1]
        a = None if np.isnan(audio[i]).any() else audio[i]
        np.testing.assert_allclose(out[i], fuse(v, a, w).probs)


def test_bad_shapes_and_weights():
    with pytest.raises(ValueError):
        fuse([[0.5, 0.5]], None)
    with pytest.raises(ValueError):
        fuse(None, [0.1] * 6)
    with pytest.raises(ValueError):
        FusionWeights(0, 0)
    with pytest.raises(ValueError):
        FusionWeights(-0.1, 1)


def test_parse_weights(tmp_path):
    assert FusionWeights.parse(None) == FusionWeights(0.5, 0.5)
    assert FusionWeights.parse("0.7, 0.3") == FusionWeights(0.7, 0.3)
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"weights": {"visual": 0.2, "audio": 0.8}, "accuracy": 0.9}))
    assert FusionWeights.parse(str(path)) == FusionWeights(0.2, 0.8)
    with pytest.raises(ValueError):
        FusionWeights.parse("0.5")


def test_partial_row_is_not_scored_as_whole():
    """A damaged file's row keeps its decoded faces' count but gets no label."""
    from mer_ray.score.rows import fuse_row

    row = {"path": "cut.mp4", "status": "partial", "keyframes": 3, "faces": 3,
           "error": "decoding stopped at 21 of ~60 frames (damaged or cut file)",
           "_face_probs": FRAMES, "_audio_probs": AUDIO, "_kf_index": [], "_kf_time": [],
           "_kf_face": [], "_boxes": []}
    out = fuse_row(row, FusionWeights(), {"visual": "v", "audio": "a"}, False)
    assert (out["status"], out["fusion_mode"], out["emotion"]) == ("partial", NONE, None)
    assert out["confidence"] is None and out["faces"] == 3 and "damaged" in out["error"]
