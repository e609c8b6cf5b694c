"""The models shipped in the package: found through importlib.resources, listed by `mer-ray
models`, their predictions on real faces and voices unchanged, and used by score by default."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mer_ray.models import bundled
from mer_ray.models.bundle import load_bundle_info

from support import bundled_cases

REPO = Path(__file__).resolve().parents[1]


def test_model_arguments_pair_rule():
    assert bundled.resolve_pair(None, None) == ("default", "default")
    assert bundled.resolve_pair("runs/v", None) == ("runs/v", None)
    assert bundled.resolve_pair(None, "default") == (None, "default")
    assert bundled.resolve_pair("none", "runs/a") == (None, "runs/a")
    with pytest.raises(ValueError, match="nothing to score"):
        bundled.resolve_pair("none", "none")
    assert bundled.resolve_model("none", "audio") is None
    assert bundled.resolve_model("runs/a", "audio") == "runs/a"
    with pytest.raises(ValueError, match="unknown model kind"):
        bundled.resolve_model("default", "face")


def test_speaker_norm_only_for_known_speakers_with_enough_clips():
    n = bundled.SPEAKER_NORM_MIN_CLIPS
    assert bundled.speaker_norm_suits(["actor:1"] * n + ["actor:2"] * n)
    assert not bundled.speaker_norm_suits(["actor:1"] * n + ["actor:2"] * (n - 1))
    assert not bundled.speaker_norm_suits(["actor:1"] * n + [None])
    assert not bundled.speaker_norm_suits([])


def test_bundles_come_from_the_installed_package():
    from importlib import resources

    root = Path(str(resources.files("mer_ray.models") / "pretrained"))
    assert bundled.pretrained_root() == root
    names = {e["name"] for e in bundled.list_bundled()}
    assert names == set(bundled.BUNDLED)
    for name in bundled.BUNDLED:
        path = Path(bundled.bundled_dir(name))
        assert path.parent == root and (path / "MODEL_CARD.md").is_file()
        info = load_bundle_info(str(path))
        card = json.loads((path / "card.json").read_text())
        assert info.kind == ("visual" if name == "visual" else "audio")
        assert card["held_out"] and card["licence"] and card["limits"]
    sizes = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert sizes <= 25 * 2 ** 20


def test_models_command_lists_accuracy(capsys):
    from mer_ray.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in bundled.BUNDLED:
        assert name in out
    assert out.count("held out: accuracy") == len(bundled.BUNDLED)


@pytest.mark.real_data
def test_predictions_on_real_faces_and_voices_equal_the_record(shared_data):
    record = json.loads(bundled_cases.RECORD.read_text())
    ids = {e["name"]: e["bundle"]["model_id"] for e in bundled.list_bundled()}
    assert ids == record["model_ids"], "bundled models changed: re-record (see bundled_cases.py)"
    assert np.allclose(bundled_cases.visual_probs(shared_data), record["visual"], atol=1e-4)
    assert np.allclose(bundled_cases.audio_probs(shared_data), record["audio"], atol=1e-4)


@pytest.mark.slow
def test_a_built_wheel_carries_and_loads_the_bundles(tmp_path):
    """pip wheel + install into a folder: the bundles load from there, not the source tree."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(wheel_dir), str(REPO)], check=True)
    wheel = next(wheel_dir.glob("mer_ray-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in bundled.BUNDLED:
        assert f"mer_ray/models/pretrained/{name}/bundle.json" in names
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True)
    code = ("import mer_ray.models.bundled as b; from mer_ray.models.bundle import AudioPredictor;"
            "p = b.bundled_dir('audio'); AudioPredictor(p); print(p)")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    assert Path(out).is_relative_to(target)


@pytest.mark.slow
@pytest.mark.real_data
def test_score_without_model_flags_uses_the_bundles(ray_local, real_video, tmp_path):
    import pyarrow.parquet as pq

    from mer_ray.cli import main

    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / real_video.name).symlink_to(real_video)
    assert main(["score", str(archive), "--out", str(tmp_path / "s"), "--num-cpus", "2"]) == 0
    rows = pq.read_table(tmp_path / "s" / "scores").to_pylist()
    ids = {e["name"]: e["bundle"]["model_id"] for e in bundled.list_bundled()}
    assert len(rows) == 1 and rows[0]["fusion_mode"] == "audio_visual"
    assert rows[0]["visual_model_id"] == ids["visual"]
    assert rows[0]["audio_model_id"] == ids["audio"]       # one clip: no speaker statistics


def test_default_voice_model_is_speaker_normalised_only_when_speakers_suit():
    from mer_ray.config import ScoreConfig
    from mer_ray.score.plan import resolve_models

    cfg = ScoreConfig(source="archive", out="scores", visual=None, audio="default")
    many = ["actor:1", "actor:2"] * bundled.SPEAKER_NORM_MIN_CLIPS
    assert resolve_models(cfg, many).audio == bundled.bundled_dir("audio_speaker_norm")
    assert resolve_models(cfg, many[:6]).audio == bundled.bundled_dir("audio")
    assert resolve_models(cfg, many + [None]).audio == bundled.bundled_dir("audio")
    assert resolve_models(cfg, many).visual is None
