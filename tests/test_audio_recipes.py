"""Audio recipes: SVM / rich MLP bundles, speaker normalisation, recipe checks, CLI.

No Ray here: the SVM trains on the driver; the MLP bundle is built directly."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mer_ray.config import EMOTIONS, N_THESIS_FEATURES, TrainAudioConfig
from mer_ray.media.audio_rich import N_RICH_FEATURES
from mer_ray.models import audio_svm
from mer_ray.models.bundle import AudioPredictor, BundleInfo, load_bundle_info, save_bundle
from mer_ray.models.speaker_norm import (UNKNOWN_SPEAKER, SpeakerStats, speaker_keys,
                                         speaker_normalize)
from support.synthetic import write_synthetic_shards

RICH = "audio_rich_features"
SVM_RUN_FILES = {"model.skops", "bundle.json", "labels.json", "config.json", "metrics.json",
                 "confusion.png"}


def _blobs(n_per_class: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (len(EMOTIONS), dim))
    y = np.repeat(np.arange(len(EMOTIONS)), n_per_class)
    x = (centres[y] + rng.normal(0, 1, (len(y), dim))) * 10.0 ** rng.uniform(-2, 3, dim)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def rich_shards(tmp_path_factory) -> Path:
    """Synthetic clips with a 162-D thesis column and a 735-D rich column (same clips)."""
    root = tmp_path_factory.mktemp("rich")
    kw = dict(clips_per_class=3, frames_per_clip=1, aug_copies=1, shards=1, seed=3)
    thesis = write_synthetic_shards(root / "thesis", **kw)
    rich = write_synthetic_shards(root / "rich_src", dim=N_RICH_FEATURES, **kw)
    path = next((thesis / "clips").glob("*.parquet"))
    table = pq.read_table(path)
    rich_table = pq.read_table(next((rich / "clips").glob("*.parquet")))
    assert table["video_id"].to_pylist() == rich_table["video_id"].to_pylist()
    table = table.set_column(table.column_names.index(RICH), RICH,
                             rich_table["audio_features"].cast(table.schema.field(RICH).type))
    pq.write_table(table, path)
    return thesis


def _permute_labels(src: Path, dst: Path, actor: int | None, seed: int = 0) -> Path:
    """Copy ``src``'s clips with the labels of ``actor``'s clips (all when None) shuffled."""
    table = pq.read_table(next((src / "clips").glob("*.parquet")))
    labels = np.asarray(table["label_index"].to_pylist())
    rows = np.flatnonzero(np.asarray(table["actor"].to_pylist()) == actor) if actor \
        else np.arange(len(labels))
    labels[rows] = np.random.default_rng(seed).permutation(labels[rows])
    assert not np.array_equal(labels, table["label_index"].to_pylist())
    table = table.set_column(table.column_names.index("label_index"), "label_index",
                             pa.array(labels, pa.int16()))
    (dst / "clips").mkdir(parents=True)
    pq.write_table(table, dst / "clips" / "part-0000.parquet")
    return dst


def test_config_resolves_the_recipe_and_refuses_mixed_settings():
    from mer_ray.train.tasks import AudioMLPTask, AudioSVMTask, resolve_audio, task_for

    thesis, rich = resolve_audio(TrainAudioConfig()), resolve_audio(TrainAudioConfig(recipe="rich"))
    assert (thesis.feature_column, thesis.use_augmented, thesis.classifier) == \
        ("audio_features", True, "mlp")
    assert (rich.feature_column, rich.use_augmented, rich.classifier) == (RICH, False, "svm")
    assert isinstance(task_for(TrainAudioConfig(recipe="rich")), AudioSVMTask)
    assert isinstance(task_for(TrainAudioConfig(recipe="rich", classifier="mlp")), AudioMLPTask)
    assert resolve_audio(TrainAudioConfig(classifier="svm")).use_augmented is False
    with pytest.raises(ValueError, match="augmented"):
        resolve_audio(TrainAudioConfig(recipe="rich", use_augmented=True))
    with pytest.raises(ValueError, match="reads"):
        resolve_audio(TrainAudioConfig(recipe="rich", feature_column="audio_features"))
    with pytest.raises(ValueError, match="recipe"):
        resolve_audio(TrainAudioConfig(recipe="mfcc"))
    with pytest.raises(ValueError, match="classifier"):
        resolve_audio(TrainAudioConfig(classifier="knn"))


def test_svm_bundle_save_load_predict_gives_the_same_probabilities(tmp_path):
    x, y = _blobs(6, N_RICH_FEATURES, seed=1)
    model = audio_svm.fit_svm(x, y, seed=0)
    audio_svm.save_svm(model, tmp_path / audio_svm.MODEL_FILE)
    from mer_ray.models.bundle import write_bundle_info

    write_bundle_info(str(tmp_path), BundleInfo("audio", list(EMOTIONS), audio_svm.MODEL_FILE,
                                                "rich", RICH, None, "", classifier="svm"))
    pred = AudioPredictor(str(tmp_path))
    probs = pred.predict(x)
    assert probs.shape == (len(x), 7) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, audio_svm.predict_proba(model, x), atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert (probs.argmax(1) == y).mean() > 0.9            # separable blobs, scaler inside
    assert pred.info.model_id.startswith("audio:rich:") and pred.n_features == N_RICH_FEATURES
    with pytest.raises(ValueError, match="'thesis' recipe"):
        pred.predict(np.zeros((2, N_THESIS_FEATURES), np.float32))


def test_svm_probabilities_cover_classes_missing_from_training():
    x, y = _blobs(4, 20, seed=2)
    keep = y != EMOTIONS.index("fear")
    probs = audio_svm.predict_proba(audio_svm.fit_svm(x[keep], y[keep]), x)
    assert probs.shape == (len(x), 7) and np.all(probs[:, EMOTIONS.index("fear")] == 0)
    with pytest.raises(ValueError, match=">= 2 training clips"):
        audio_svm.fit_svm(x[:5], np.array([0, 0, 1, 1, 2]))


def test_skops_loading_refuses_types_outside_the_trusted_list(tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    sio.dump(FunctionTransformer(json.dumps), tmp_path / "evil.skops")  # any function
    assert sio.get_untrusted_types(file=tmp_path / "evil.skops")
    with pytest.raises(ValueError, match="refusing"):
        audio_svm.load_svm(tmp_path / "evil.skops")


def test_rich_mlp_bundle_round_trip_and_recipe_mismatch(tmp_path):
    from mer_ray.models.audio_mlp import build_audio_mlp, standardisation

    x, _ = _blobs(3, N_RICH_FEATURES, seed=4)
    mean, var = standardisation(x)
    model = build_audio_mlp(N_RICH_FEATURES, mean, var)
    save_bundle(str(tmp_path), model, BundleInfo("audio", list(EMOTIONS), "model.keras", "rich",
                                                 RICH, None, ""))
    first = AudioPredictor(str(tmp_path)).predict(x)
    again = AudioPredictor(str(tmp_path)).predict(x)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, np.asarray(model(x, training=False)), atol=1e-5)
    with pytest.raises(ValueError, match="trained on the 'rich' recipe.*'thesis' recipe"):
        AudioPredictor(str(tmp_path)).predict(np.zeros((1, N_THESIS_FEATURES), np.float32))


def test_bundle_files_without_the_new_fields_still_load(tmp_path):
    from mer_ray.models.audio_mlp import build_audio_mlp

    save_bundle(str(tmp_path), build_audio_mlp(), BundleInfo(
        "audio", list(EMOTIONS), "model.keras", "thesis", "audio_features", None, ""))
    data = json.loads((tmp_path / "bundle.json").read_text())
    for key in ("classifier", "speaker_norm"):
        data.pop(key)
    (tmp_path / "bundle.json").write_text(json.dumps(data))
    info = load_bundle_info(str(tmp_path))
    assert (info.classifier, info.speaker_norm) == ("mlp", False)


def test_speaker_normalize_standardises_each_speaker_separately():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(100, 5, (30, 4)), rng.normal(-3, 0.1, (20, 4))])
    speakers = ["actor:1"] * 30 + ["actor:2"] * 20
    z = speaker_normalize(x, speakers)
    for s in set(speakers):
        rows = np.asarray(speakers) == s
        np.testing.assert_allclose(z[rows].mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(z[rows].std(0), 1, atol=1e-4)
    # batch-wise accumulation == statistics over everything at once
    stats = SpeakerStats()
    for part in np.array_split(rng.permutation(len(x)), 4):
        stats.update(x[part], [speakers[i] for i in part])
    np.testing.assert_allclose(stats.normalize(x, speakers), z, atol=1e-4)
    again = SpeakerStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    np.testing.assert_allclose(again.normalize(x, speakers), z, atol=1e-4)
    with pytest.raises(ValueError, match="no speaker statistics"):
        stats.normalize(x[:1], ["actor:9"])
    keys = speaker_keys([3, None, None], [None, "bob", None])
    assert list(keys) == ["actor:3", "speaker:bob", UNKNOWN_SPEAKER]


def test_speaker_normalisation_never_reads_labels(rich_shards, tmp_path):
    """Shuffling every label leaves the normalised training features unchanged, and shuffling
    the held-out actor's labels leaves the SVM's test probabilities unchanged."""
    from mer_ray.data.splits import TRAIN
    from mer_ray.train.data import clips_source, iter_split_local, plan_data, read_clip_rows, \
        speaker_stats
    from mer_ray.train.runner import resolve_plan, train

    shuffled = _permute_labels(rich_shards, tmp_path / "all", actor=None)
    a, b = (read_clip_rows(str(s), RICH) for s in (rich_shards, shuffled))
    assert not np.array_equal(a.labels, b.labels)
    sa, sb = (speaker_stats(str(s), RICH) for s in (rich_shards, shuffled))
    np.testing.assert_array_equal(sa.normalize(a.x, a.speakers), sb.normalize(b.x, b.speakers))
    plan, data = plan_data(str(rich_shards), clips_source(RICH, sa),
                           resolve_plan(TrainAudioConfig(val="none")))

    def train_rows(key: str, raw: bool = False) -> np.ndarray:
        return np.concatenate([b[key] for b in iter_split_local(data, plan, TRAIN, raw=raw)])

    normed, raw = train_rows("x"), train_rows("x", raw=True)
    np.testing.assert_array_equal(normed, sa.normalize(raw, train_rows("speaker")))
    assert not np.allclose(normed, raw)

    test_actor = 2                                        # actor5fold fold 0
    held_out = _permute_labels(rich_shards, tmp_path / "test", actor=test_actor)
    probs = []
    for shards, name in ((rich_shards, "orig"), (held_out, "perm")):
        cfg = TrainAudioConfig(shards=str(shards), out=str(tmp_path / name), recipe="rich",
                               speaker_norm=True, val="none")
        outcome = train(cfg)                              # rich -> the SVM, on the driver
        assert outcome.metrics["classifier"] == "svm"
        assert outcome.metrics["counts"]["test"]["groups"] == [f"actor:{test_actor}"]
        rows = read_clip_rows(str(shards), RICH)
        test = np.asarray([g == f"actor:{test_actor}" for g in rows.groups])
        probs.append(AudioPredictor(outcome.run_dir).predict(rows.x[test], rows.speakers[test]))
    np.testing.assert_array_equal(probs[0], probs[1])


def test_cli_train_audio_rich_svm_writes_the_run_directory(rich_shards, tmp_path, capsys):
    from mer_ray.cli import main

    out = tmp_path / "run"
    assert main(["train-audio", str(rich_shards), "--recipe", "rich", "--classifier", "svm",
                 "--speaker-norm", "--val", "none", "--out", str(out)]) == 0
    assert SVM_RUN_FILES <= {p.name for p in out.iterdir()}
    info = load_bundle_info(str(out))
    assert (info.kind, info.recipe, info.feature_column, info.classifier, info.speaker_norm) == \
        ("audio", "rich", RICH, "svm", True)
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert metrics["model_id"] == info.model_id and metrics["recipe"] == "rich"
    assert config["recipe"] == "rich" and config["speaker_norm"] is True
    assert metrics["counts"]["test"]["rows"] == metrics["n"] > 0
    assert metrics["accuracy"] > metrics["chance_level"]  # separable synthetic blobs
    assert "test accuracy" in capsys.readouterr().out
    from mer_ray.train.data import read_clip_rows

    rows = read_clip_rows(str(rich_shards), RICH)
    pred = AudioPredictor(str(out))
    with pytest.raises(ValueError, match="speaker-norm"):
        pred.predict(rows.x[:3])                          # speaker ids are required
    assert pred.predict(rows.x[:3], rows.speakers[:3]).shape == (3, 7)
    assert main(["train-audio", str(rich_shards), "--recipe", "rich", "--feature-column",
                 "audio_features", "--out", str(tmp_path / "bad")]) == 2   # a usage error
    assert "mer-ray train-audio: error: " in capsys.readouterr().err
