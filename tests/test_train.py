"""Ray Train jobs end to end on a tiny separable synthetic shard set (local Ray, CPU)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mer_ray.config import EMOTIONS, RayConfig, TrainAudioConfig
from mer_ray.data.splits import TEST
from support.synthetic import write_synthetic_shards

# before the session's Ray starts: report/checkpoint every epoch without Ray Train's 2 s poll
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")

pytestmark = pytest.mark.slow          # every test here trains on local Ray

RUN_FILES = {"model.keras", "bundle.json", "labels.json", "config.json", "history.csv",
             "metrics.json", "confusion.png", "curves.png"}


@pytest.fixture(scope="session")
def synthetic_shards(tmp_path_factory):
    return write_synthetic_shards(tmp_path_factory.mktemp("synthetic"), clips_per_class=2,
                                  frames_per_clip=3)


@pytest.fixture(scope="session")
def audio_run(synthetic_shards, ray_local, tmp_path_factory):
    """The MLP, 1 worker, actor5fold fold 0, every clip z-scored per speaker (--speaker-norm),
    shards read from and the run directory written to file:// URIs (the local folder is
    tmp / "run")."""
    from mer_ray.train.runner import train

    tmp = tmp_path_factory.mktemp("audio")
    cfg = TrainAudioConfig(shards=uri(synthetic_shards), out=uri(tmp / "run"), epochs=4,
                           workers=1, checkpoint_every=2, speaker_norm=True,
                           ray=RayConfig(num_cpus=2))
    return train(cfg), tmp


def uri(path) -> str:
    return Path(path).resolve().as_uri()


@pytest.fixture(scope="session")
def visual_cli_run(synthetic_shards, ray_local, tmp_path_factory):
    """The train-visual command with 2 workers, thesis protocol, balanced class weights;
    rank 1 crashes once at epoch 2 (a CrashOnce hook) and Ray Train restarts the group from
    the last checkpoint (--max-failures 1)."""
    from mer_ray.cli import build_parser
    from mer_ray.commands import train_visual
    from mer_ray.train.loop import TrainHooks
    from support.train_hooks import CrashOnce

    tmp = tmp_path_factory.mktemp("visual")
    out = tmp / "run"
    marker = tmp / "failed-once"
    args = build_parser().parse_args([
        "train-visual", str(synthetic_shards), "--backbone", "tiny", "--case", "unfrozen",
        "--init", "none", "--protocol", "thesis", "--epochs", "3", "--batch-size", "8",
        "--lr", "0.003", "--workers", "2", "--max-failures", "1", "--class-weight",
        "balanced", "--out", str(out)])
    rc = train_visual.run(args, hooks=TrainHooks(on_epoch_start=CrashOnce(2, str(marker))))
    return rc, out, marker


def test_visual_run_resumes_from_the_checkpoint_after_a_worker_crash(visual_cli_run):
    from mer_ray.train.rundir import read_history_csv

    rc, out, marker = visual_cli_run
    assert rc == 0 and marker.exists()                  # the crash did happen
    rows = read_history_csv(out / "history.csv")
    assert [r["epoch"] for r in rows] == list(range(3))  # every epoch once, none redone
    attempts = [r["attempt"] for r in rows]
    # resumed from a checkpoint, not from scratch: attempt 0 kept its first epoch(s). Which
    # checkpoint (epoch 1 or 2) depends on whether Ray Train had registered the last report
    # when the crash came, so the test does not pin it.
    assert attempts == sorted(attempts) and attempts[0] == 0 and attempts[-1] == 1
    assert json.loads((out / "metrics.json").read_text())["resumed"] is True
    assert json.loads((out / "config.json").read_text())["class_weight"] == "balanced"


def test_audio_run_learns_and_writes_the_run_directory(audio_run, synthetic_shards):
    """... and the file:// URIs: read from, written to, and recorded as given."""
    from mer_ray.train.rundir import read_history_csv

    from mer_ray.models.bundle import load_bundle_info

    outcome, tmp = audio_run
    run = tmp / "run"
    names = {p.name for p in run.iterdir()}
    assert RUN_FILES <= names
    assert "_ray" not in names and not any(n.startswith("_tmp") for n in names)
    config = json.loads((run / "config.json").read_text())
    assert config["out"] == outcome.run_dir == uri(run)
    assert config["shards"] == uri(synthetic_shards)
    assert load_bundle_info(outcome.run_dir).model_id == json.loads(
        (run / "metrics.json").read_text())["model_id"]
    rows = read_history_csv(f"{run}/history.csv")
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    m = json.loads(open(f"{run}/metrics.json").read())
    assert m["protocol"] == "actor5fold" and m["fold"] == "0" and m["leaky"] is False
    assert m["accuracy"] > m["chance_level"] + 0.2
    assert m["n"] == m["counts"]["test"]["rows"] and m["classes"] == list(EMOTIONS)
    assert set(m["counts"]["test"]["groups"]) == {"actor:2"}          # ACTOR_FOLDS[0] ∩ actors
    assert not set(m["counts"]["train"]["groups"]) & set(m["counts"]["test"]["groups"])
    # augmented copies were used for training rows only
    assert m["counts"]["train"]["rows_with_augmented"] == 3 * m["counts"]["train"]["rows"]
    assert json.loads(open(f"{run}/labels.json").read())["classes"] == list(EMOTIONS)


def test_saved_audio_model_reloads_and_reproduces_the_reported_metrics(audio_run):
    from mer_ray.models.bundle import AudioPredictor
    from mer_ray.report.metrics import classification_metrics
    from mer_ray.train.data import iter_split_local

    from mer_ray.train.data import plan_data, speaker_stats
    from mer_ray.train.runner import resolve_plan

    outcome, tmp = audio_run
    pred = AudioPredictor(outcome.run_dir)                  # a file:// URI
    assert pred.info.kind == "audio" and pred.info.feature_column == "audio_features"
    assert pred.info.speaker_norm is True
    cfg = TrainAudioConfig(shards=json.loads((tmp / "run" / "config.json").read_text())["shards"])
    plan, data = plan_data(cfg.shards, "audio", resolve_plan(cfg))
    batches = list(iter_split_local(data, plan, TEST))
    x = np.concatenate([b["x"] for b in batches])
    y = np.concatenate([b["y"] for b in batches])
    speakers = [s for b in batches for s in b["speaker"]]
    stats = speaker_stats(cfg.shards, "audio_features")       # every clip, as training used
    p1 = pred.predict(x, speakers=speakers, stats=stats)
    p2 = AudioPredictor(outcome.run_dir).predict(x, speakers=speakers, stats=stats)
    assert np.array_equal(p1, p2)
    assert classification_metrics(y, p1.argmax(1))["accuracy"] == outcome.metrics["accuracy"]


def test_visual_cli_run_thesis_protocol_is_labelled_leaky(visual_cli_run):
    from mer_ray.models.bundle import VisualPredictor
    from mer_ray.train.rundir import read_history_csv

    rc, out, _ = visual_cli_run
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    assert not (out / "_ray").exists()
    m = json.loads((out / "metrics.json").read_text())
    assert m["leaky"] is True and "leaky" in m["note"] and m["protocol"] == "thesis"
    assert m["accuracy"] > m["chance_level"]
    assert "video_level" in m
    pred = VisualPredictor(str(out))
    assert pred.info.backbone == "tiny" and pred.info.recipe == "face200"
    rows = read_history_csv(out / "history.csv")
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_balanced_class_weights_are_n_over_k_times_n_c():
    from mer_ray.train.tasks import balanced_class_weights

    labels = np.array([0] * 6 + [1] * 3 + [3] * 1)           # N=10, K=3 classes present
    w = balanced_class_weights(labels)
    np.testing.assert_allclose(w, [10 / 18, 10 / 9, 0, 10 / 3, 0, 0, 0])
    assert np.isclose((w[labels]).sum(), len(labels))          # every class weighs N / K
    np.testing.assert_allclose(balanced_class_weights(np.arange(7).repeat(2)), np.ones(7))


def test_weighted_loss_scales_each_example_by_its_class_weight():
    import tensorflow as tf

    from mer_ray.train.loop import per_example_loss

    y = tf.constant([0, 1, 1], tf.int32)
    probs = tf.constant([[0.5, 0.5] + [0.0] * 5, [0.2, 0.8] + [0.0] * 5,
                         [0.9, 0.1] + [0.0] * 5], tf.float32)
    plain = per_example_loss(y, probs).numpy()
    np.testing.assert_allclose(plain, -np.log([0.5, 0.8, 0.1]), rtol=1e-5)
    weights = tf.constant([2.0, 0.5, 1, 1, 1, 1, 1], tf.float32)
    np.testing.assert_allclose(per_example_loss(y, probs, weights).numpy(),
                               plain * [2.0, 0.5, 0.5], rtol=1e-5)


def test_audio_mlp_with_speaker_norm_trains_on_normalised_rows(audio_run):
    """The MLP sees every clip z-scored per speaker (in the Ray Data map, no copied shards):
    the standardisation stored in the model is that of the normalised training rows."""
    import keras

    from mer_ray.models.bundle import load_bundle_info
    from mer_ray.models.speaker_norm import SpeakerStats
    from mer_ray.train.data import iter_split_local, plan_data, read_clip_rows
    from mer_ray.train.runner import resolve_plan

    outcome, tmp = audio_run
    assert not (tmp / "run" / "_speaker_norm").exists()
    info = load_bundle_info(outcome.run_dir)
    assert (info.classifier, info.speaker_norm) == ("mlp", True)
    assert outcome.metrics["speaker_norm"] is True
    shards = json.loads((tmp / "run" / "config.json").read_text())["shards"]
    rows = read_clip_rows(shards, "audio_features")
    stats = SpeakerStats().update(rows.x, rows.speakers)
    cfg = TrainAudioConfig(shards=shards, speaker_norm=True)
    plan, data = plan_data(shards, "audio", resolve_plan(cfg))
    raw = list(iter_split_local(data, plan, "train", augmented=True))
    x = np.concatenate([stats.normalize(b["x"], b["speaker"]) for b in raw])
    layer = keras.saving.load_model(tmp / "run" / "model.keras").get_layer("standardise")
    np.testing.assert_allclose(np.asarray(layer.mean).ravel(), x.mean(0), rtol=1e-4, atol=1e-4)


def test_train_honours_the_recipe_classifier_and_refuses_contradictions(synthetic_shards,
                                                                         tmp_path):
    from mer_ray.train.runner import train
    from mer_ray.train.tasks import resolve_audio

    cfg = TrainAudioConfig(shards=str(synthetic_shards), out=str(tmp_path / "svm"),
                           feature_column="audio_features", recipe="thesis", classifier="svm")
    outcome = train(cfg)                                   # no Ray: fitted on the driver
    assert outcome.metrics["classifier"] == "svm"
    assert json.loads((tmp_path / "svm" / "config.json").read_text())["use_augmented"] is False
    assert (tmp_path / "svm" / "model.skops").exists()
    assert resolve_audio(TrainAudioConfig(recipe="rich")).classifier == "svm"
    with pytest.raises(ValueError, match="original clips"):
        train(TrainAudioConfig(shards=str(synthetic_shards), out=str(tmp_path / "bad"),
                               classifier="svm", use_augmented=True))
    from mer_ray.config import TrainVisualConfig

    with pytest.raises(ValueError, match="class_weight"):
        train(TrainVisualConfig(shards=str(synthetic_shards), out=str(tmp_path / "bad"),
                                class_weight="inverse"))
