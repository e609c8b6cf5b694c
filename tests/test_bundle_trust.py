"""Bundles are trusted by content: model_file stays inside the bundle directory, and the model
file must hash to the id bundle.json gives it, on every load (so also on resume)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mer_ray.config import EMOTIONS
from mer_ray.models.bundle import BundleInfo, load_bundle_info, write_bundle_info
from mer_ray.models.bundled import BUNDLED, bundled_dir


def _fake_bundle(run: Path, content: bytes = b"weights v1") -> BundleInfo:
    run.mkdir(parents=True, exist_ok=True)
    (run / "model.keras").write_bytes(content)
    return write_bundle_info(str(run), BundleInfo("audio", list(EMOTIONS), "model.keras", "thesis",
                                                  "audio_features", None, ""))


def test_replaced_model_file_does_not_load_under_the_old_id(tmp_path):
    info = _fake_bundle(tmp_path / "run")
    assert load_bundle_info(str(tmp_path / "run")).model_id == info.model_id
    (tmp_path / "run" / "model.keras").write_bytes(b"weights v2")     # bundle.json unchanged
    with pytest.raises(ValueError, match="changed since bundle.json was written") as err:
        load_bundle_info(str(tmp_path / "run"))
    assert info.model_id in str(err.value)
    assert load_bundle_info(str(tmp_path / "run"), verify=False).model_id == info.model_id


def test_resolve_plan_refuses_a_replaced_model(tmp_path):
    """The score job's plan (whose model ids the resume check compares) is made from verified
    bundles only."""
    from mer_ray.config import ScoreConfig
    from mer_ray.score.plan import resolve_plan

    _fake_bundle(tmp_path / "run")
    cfg = ScoreConfig(source=str(tmp_path), out=str(tmp_path / "out"), audio=str(tmp_path / "run"))
    assert resolve_plan(cfg).model_ids["audio"].startswith("audio:thesis:")
    (tmp_path / "run" / "model.keras").write_bytes(b"other weights")
    with pytest.raises(ValueError, match="changed since bundle.json"):
        resolve_plan(cfg)


@pytest.mark.parametrize("model_file", ["../outside.keras", "../../outside.keras", "sub/model.keras",
                                        "ABSOLUTE", "..", ""])
def test_model_file_must_be_a_plain_name_in_the_bundle(tmp_path, model_file):
    run = tmp_path / "a" / "run"
    info = _fake_bundle(run)
    outside = tmp_path / "a" / "outside.keras"
    outside.write_bytes(b"weights v1")                 # exists: an unchecked loader would follow
    (tmp_path / "outside.keras").write_bytes(b"weights v1")
    (run / "sub").mkdir()
    (run / "sub" / "model.keras").write_bytes(b"weights v1")
    data = json.loads((run / "bundle.json").read_text())
    data["model_file"] = str(outside) if model_file == "ABSOLUTE" else model_file
    (run / "bundle.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="must be a plain file name inside the bundle"):
        load_bundle_info(str(run))
    with pytest.raises(ValueError, match="plain file name"):
        write_bundle_info(str(tmp_path), BundleInfo(**{**data, "model_id": info.model_id}))


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_models_pass_the_check(name):
    info = load_bundle_info(bundled_dir(name))
    assert info.model_file == Path(info.model_file).name


def test_predictor_refuses_a_swapped_model(tmp_path):
    """The bundled voice model's folder with the other bundled voice model's file under the same
    bundle.json: a valid model, but not the one the id names."""
    from mer_ray.models.bundle import AudioPredictor

    run = tmp_path / "audio"
    shutil.copytree(bundled_dir("audio"), run)
    shutil.copy(Path(bundled_dir("audio_speaker_norm")) / "model.skops", run / "model.skops")
    with pytest.raises(ValueError, match="changed since bundle.json"):
        AudioPredictor(str(run))


def test_score_cli_names_the_changed_model_in_one_line(tmp_path, capsys):
    from mer_ray.cli import main
    from mer_ray.sample.mux import write_wav

    _fake_bundle(tmp_path / "run")
    (tmp_path / "run" / "model.keras").write_bytes(b"replaced")
    (tmp_path / "in").mkdir()
    write_wav(tmp_path / "in" / "a.wav", np.zeros(2205, np.float32), 22050)
    code = main(["score", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                 "--audio", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("mer-ray score: error: ") and "changed since bundle.json" in err[0]
    assert not (tmp_path / "out").exists()
