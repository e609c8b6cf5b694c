"""models/: visual model structure, audio MLP (Table 4.4), augmentation, bundles."""
from __future__ import annotations

import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from mer_ray.config import EMOTIONS  # noqa: E402
from mer_ray.models import visual  # noqa: E402
from mer_ray.models.audio_mlp import build_audio_mlp, dense_param_counts, standardisation  # noqa: E402
from mer_ray.models.augment import augment_batch  # noqa: E402
from mer_ray.models.bundle import (AudioPredictor, BundleInfo, VisualPredictor,  # noqa: E402
                                   load_bundle_info, save_bundle)


def test_audio_mlp_matches_table_4_4():
    model = build_audio_mlp(162)
    assert dense_param_counts(model) == [41_728, 32_896, 16_512, 8_256, 2_080, 231]
    assert model.output_shape == (None, 7)
    dropouts = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == [0.2, 0.2]


def test_standardisation_is_inside_the_model():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 1, (50, 162)) * np.linspace(1, 1000, 162)
    x[:, 3] = 7.0                                      # a constant feature must not blow up
    mean, var = standardisation(x)
    model = build_audio_mlp(162, mean, var)
    norm = model.get_layer("standardise")
    z = np.asarray(norm(x.astype(np.float32)))
    assert np.allclose(z[:, [0, 100]].mean(axis=0), 0, atol=1e-3)
    assert np.allclose(z[:, [0, 100]].std(axis=0), 1, atol=1e-2)
    assert np.isfinite(z).all() and np.allclose(z[:, 3], 0)
    with pytest.raises(ValueError):
        standardisation(np.zeros((0, 162)))


def test_efficientnetb0_build_structure():
    model = visual.build_visual_model("efficientnetb0", "frozen", weights=None)
    assert model.input_shape == (None, 200, 200, 3) and model.output_shape == (None, 7)
    names = [layer.name for layer in model.layers]
    assert names[:3] == ["image", "preprocess", "backbone"]
    assert [model.get_layer(n).units for n in ("dense_2048", "dense_1024", "emotion")] == [2048, 1024, 7]
    assert [model.get_layer(f"dropout_{i}").rate for i in (1, 2, 3)] == [0.2, 0.2, 0.2]
    assert model.get_layer("emotion").activation.__name__ == "softmax"
    head_weights = 6   # kernel + bias of the three Dense layers
    assert len(model.trainable_weights) == head_weights
    visual.set_case(model, "unfrozen")
    assert len(model.trainable_weights) > 100
    assert visual.backbone_of(model) == "efficientnetb0"


def test_preprocess_layer_matches_keras_preprocess_input():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    tf_mode = np.asarray(visual.ImagePreprocess("tf")(x))
    caffe = np.asarray(visual.ImagePreprocess("caffe")(x))
    assert np.allclose(tf_mode, keras.applications.mobilenet_v2.preprocess_input(x.copy()), atol=1e-5)
    assert np.allclose(caffe, keras.applications.resnet50.preprocess_input(x.copy()), atol=1e-4)
    assert np.allclose(np.asarray(visual.ImagePreprocess("none")(x)), x)


def test_cli_backbone_choices_match_models():
    from mer_ray.commands.train_visual import BACKBONE_CHOICES, CASE_CHOICES

    assert set(BACKBONE_CHOICES) == set(visual.BACKBONES)
    assert set(CASE_CHOICES) == set(visual.CASES)


def test_missing_imagenet_weights_name_the_expected_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    tried = []

    def offline(backbone, weights=None):   # what keras.applications does without a network
        tried.append((backbone, weights))
        raise OSError("URL fetch failure: no route to host")

    monkeypatch.setattr(visual, "build_backbone", offline)
    with pytest.raises(FileNotFoundError, match="efficientnetb0_notop.h5"):
        visual.init_visual_model("efficientnetb0", "frozen", "imagenet")
    with pytest.raises(FileNotFoundError, match="resnet50_weights_tf_dim_ordering_tf_kernels_notop"):
        visual.imagenet_weights_path("resnet50")
    with pytest.raises(FileNotFoundError, match="expected imagenet, none"):
        visual.init_visual_model("tiny", "frozen", str(tmp_path / "nope.keras"))
    assert ("efficientnetb0", "imagenet") in tried       # Keras's own download was tried
    with pytest.raises(FileNotFoundError, match="OSError: URL fetch failure") as err:
        visual.imagenet_weights_path("mobilenetv2")
    assert "machine" not in str(err.value) and "--init none" in str(err.value)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5").write_bytes(b"x")
    tried.clear()
    assert visual.imagenet_weights_path("mobilenetv2").startswith(str(tmp_path))
    assert tried == []                                   # the cache comes first


def test_imagenet_download_lands_in_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = visual.BACKBONES["resnet50"]

    def fetch(backbone, weights=None):       # Keras's download writes the cache file
        (tmp_path / "models").mkdir(exist_ok=True)
        (tmp_path / "models" / spec.weights_file).write_bytes(b"h5")

    monkeypatch.setattr(visual, "build_backbone", fetch)
    assert visual.imagenet_weights_path("resnet50") == str(tmp_path / "models" / spec.weights_file)


def test_augmentation_alg_3_1():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 255, (32, 200, 200, 3)).astype(np.uint8)
    same = augment_batch(x, p=0.0).numpy()
    assert same.dtype == np.float32 and np.array_equal(same, x.astype(np.float32))
    flipped = augment_batch(x, p=1.0, max_shift=0, max_rotate_deg=0, zoom_range=(1, 1)).numpy()
    assert np.allclose(flipped, x[:, :, ::-1].astype(np.float32), atol=1e-3)
    out = augment_batch(x, seed=3).numpy()
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    changed = [not np.allclose(o, i) for o, i in zip(out, x.astype(np.float32))]
    assert 0 < sum(changed) < len(changed)    # each step has p = 0.5: some images untouched


def _tiny_visual_bundle(tmp_path):
    model = visual.build_visual_model("tiny", "unfrozen", weights=None)
    info = BundleInfo("visual", list(EMOTIONS), "model.keras", "face200", None, "tiny", "")
    save_bundle(str(tmp_path), model, info)
    return model


def test_visual_bundle_reloads_and_predicts_the_same(tmp_path):
    model = _tiny_visual_bundle(tmp_path)
    info = load_bundle_info(str(tmp_path))
    assert info.model_id.startswith("visual:tiny:") and len(info.model_id.split(":")[2]) == 12
    faces = np.random.default_rng(4).integers(0, 255, (70, 200, 200, 3)).astype(np.uint8)
    pred = VisualPredictor(str(tmp_path))
    probs = pred.predict(faces)
    assert probs.shape == (70, 7) and probs.dtype == np.float32
    assert np.allclose(probs, np.asarray(model(faces.astype(np.float32), training=False)), atol=1e-5)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert pred.predict(np.zeros((0, 200, 200, 3), np.uint8)).shape == (0, 7)
    with pytest.raises(ValueError):
        pred.predict(np.zeros((2, 100, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="not audio"):
        AudioPredictor(str(tmp_path))
    again = visual.init_visual_model("tiny", "frozen", str(tmp_path / "model.keras"))
    assert np.allclose(np.asarray(again(faces[:4].astype(np.float32))), probs[:4], atol=1e-5)
    assert not again.get_layer("backbone").trainable


def test_a_mirror_bundle_scores_a_face_and_its_mirror_image_alike(tmp_path):
    """bundle.json "mirror": the mean of the face's and its mirror image's probabilities (so
    both views score the same); its model_id says so; bundles without the field do not."""
    import json
    import shutil

    from mer_ray.models.bundle import write_bundle_info
    from mer_ray.models.bundled import bundled_dir

    for name, mirror in (("alone", False), ("mirror", True)):     # the bundled face CNN
        (tmp_path / name).mkdir()
        shutil.copy(os.path.join(bundled_dir("visual"), "model.keras"), tmp_path / name)
        write_bundle_info(str(tmp_path / name), BundleInfo(
            "visual", list(EMOTIONS), "model.keras", "face48grey", None, "compact", "",
            classifier="cnn", mirror=mirror))
    assert load_bundle_info(str(tmp_path / "mirror")).model_id.startswith("visual:compact+mirror:")
    rng = np.random.default_rng(6)
    ramp = np.linspace(0, 255, 200)[None, None, :, None]            # left dark, right bright
    faces = np.clip(ramp + rng.normal(0, 40, (6, 200, 200, 3)), 0, 255).astype(np.uint8)
    mirrored = np.ascontiguousarray(faces[:, :, ::-1])
    alone = VisualPredictor(str(tmp_path / "alone"))
    views = alone.predict(faces), alone.predict(mirrored)
    assert np.abs(views[0] - views[1]).max() > 0.01               # the model tells them apart
    both = VisualPredictor(str(tmp_path / "mirror"))
    np.testing.assert_allclose(both.predict(faces), (views[0] + views[1]) / 2, atol=1e-6)
    np.testing.assert_allclose(both.predict(mirrored), both.predict(faces), atol=1e-6)
    written = json.loads((tmp_path / "mirror" / "bundle.json").read_text())
    del written["mirror"]                                         # a bundle from before the field
    (tmp_path / "mirror" / "bundle.json").write_text(json.dumps(written))
    assert load_bundle_info(str(tmp_path / "mirror")).mirror is False


def test_a_row_gets_the_same_probabilities_whatever_batch_it_is_padded_in(tmp_path):
    from mer_ray.models.bundle import padded_size

    assert [padded_size(n, 256) for n in (1, 16, 17, 120, 129, 256)] == [16, 16, 32, 128, 256, 256]
    assert padded_size(5, 8) == 8                           # never past the backbone's batch
    _tiny_visual_bundle(tmp_path)
    pred = VisualPredictor(str(tmp_path))
    pred.predict_batch = 256                                # as the bundled CNN's
    faces = np.random.default_rng(5).integers(0, 255, (40, 200, 200, 3)).astype(np.uint8)
    alone = np.concatenate([pred.predict(faces[i:i + 1]) for i in range(3)])    # padded to 16
    np.testing.assert_allclose(pred.predict(faces)[:3], alone, atol=1e-5)      # padded to 64


def test_audio_bundle_takes_raw_features(tmp_path):
    rng = np.random.default_rng(5)
    x = (rng.normal(0, 1, (40, 162)) * 100 + 50).astype(np.float32)
    mean, var = standardisation(x)
    model = build_audio_mlp(162, mean, var)
    save_bundle(str(tmp_path), model, BundleInfo("audio", list(EMOTIONS), "model.keras", "thesis",
                                                 "audio_features", None, ""))
    pred = AudioPredictor(str(tmp_path))
    assert pred.info.model_id.startswith("audio:thesis:")
    assert np.allclose(pred.predict(x), np.asarray(model(x, training=False)), atol=1e-5)
    assert pred.predict(np.zeros((0, 162))).shape == (0, 7)
    with pytest.raises(ValueError):
        pred.predict(np.zeros((3, 10)))


def test_not_a_bundle(tmp_path):
    with pytest.raises(ValueError, match="not a model bundle"):
        load_bundle_info(str(tmp_path))
    (tmp_path / "bundle.json").write_text("{}")
    with pytest.raises(ValueError, match="not a valid bundle"):
        load_bundle_info(str(tmp_path))
