"""The Python API (mer_ray.score_videos, load_scores, load_timeline, load_model)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

import mer_ray
from mer_ray.config import EMOTIONS
from mer_ray.score.schema import PROB_COLUMNS


def test_import_is_light_and_api_is_exported():
    code = ("import sys, mer_ray; heavy = [m for m in ('tensorflow', 'keras', 'ray') "
            "if m in sys.modules]; print(heavy, callable(mer_ray.load_scores))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True"
    assert {"score_videos", "load_scores", "load_timeline", "load_model"} <= set(dir(mer_ray))
    with pytest.raises(AttributeError):
        mer_ray.no_such_function


def test_load_model_registers_the_custom_layers_itself(tiny_bundles):
    """A fresh process: no `import mer_ray.models.layers` before loading (the keras error
    'Could not locate class ImagePreprocess' without it)."""
    code = ("import mer_ray, numpy as np; m = mer_ray.load_model(%r); "
            "print(m.predict(np.zeros((1, 200, 200, 3), np.float32), verbose=0).shape)"
            % tiny_bundles["visual"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "(1, 7)"


def test_load_model_kinds_and_the_bundled_voice_model(tiny_bundles):
    audio = mer_ray.load_model(tiny_bundles["audio"], kind="audio")
    assert tuple(audio.output_shape) == (None, len(EMOTIONS))
    with pytest.raises(ValueError, match="holds a audio model, not visual"):
        mer_ray.load_model(tiny_bundles["audio"], kind="visual")
    with pytest.raises(ValueError, match="needs kind="):
        mer_ray.load_model("default")
    svm = mer_ray.load_model("default", kind="audio")                  # bundled: skops SVM
    probs = svm.predict_proba(np.zeros((1, svm.n_features_in_), np.float32))
    assert probs.shape == (1, len(EMOTIONS))


@pytest.fixture(scope="module")
def two_clips(mixed_archive, tmp_path_factory):
    root = tmp_path_factory.mktemp("api_in")
    for clip in mixed_archive["good"][:2]:
        shutil.copy(clip, root / clip.name)
    return root


def test_score_videos_in_process(two_clips, tiny_bundles, tmp_path):
    df = mer_ray.score_videos(two_clips, **tiny_bundles)
    paths = sorted(str(p) for p in two_clips.iterdir())
    assert list(df.path) == paths and list(df.status) == ["ok", "ok"]
    assert set(df.fusion_mode) == {"audio_visual"}
    assert np.allclose(df[list(PROB_COLUMNS)].sum(axis=1), 1.0, atol=1e-4)
    assert df.label.notna().all()                               # from the RAVDESS names
    # a list of files, the given order kept, a timeline, and an output folder kept
    scores, timeline = mer_ray.score_videos(paths[::-1], out=tmp_path / "s", timeline=True,
                                            visual=tiny_bundles["visual"], audio="none")
    assert list(scores.path) == paths[::-1] and set(scores.fusion_mode) == {"visual_only"}
    assert set(timeline.path) == set(paths) and timeline.has_face.any()
    again = mer_ray.load_scores(tmp_path / "s")
    assert sorted(again.path) == paths
    assert np.allclose(np.stack(again.sort_values("path").visual_probs),
                       np.stack(scores.sort_values("path").visual_probs))
    assert len(mer_ray.load_timeline(tmp_path / "s")) == len(timeline)
    with pytest.raises(ValueError, match="both 'none'"):
        mer_ray.score_videos(paths, visual="none", audio=None)


def test_load_scores_errors_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no score output"):
        mer_ray.load_scores(tmp_path)


@pytest.mark.slow
def test_score_videos_on_ray_for_many_inputs(ray_local, two_clips, tiny_bundles, tmp_path):
    local = mer_ray.score_videos(two_clips, audio=tiny_bundles["audio"], visual="none")
    on_ray = mer_ray.score_videos(sorted(two_clips.iterdir()), audio=tiny_bundles["audio"],
                                  visual="none", local_below=0, num_cpus=2)
    assert list(on_ray.path) == list(local.path)
    assert np.allclose(np.stack(on_ray.audio_probs), np.stack(local.audio_probs), atol=1e-5)
