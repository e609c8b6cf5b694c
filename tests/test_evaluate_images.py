"""evaluate-images on a tiny folder, with a visual model whose answers are known by construction."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from mer_ray.config import EMOTIONS


def brightness_bundle(run_dir) -> str:
    """A visual bundle that says 'angry' for bright faces and 'disgust' for dark ones."""
    import keras

    from mer_ray.models.bundle import BundleInfo, save_bundle
    from mer_ray.models.face_cnn import FacePreprocess

    inputs = keras.Input((200, 200, 3))
    x = keras.layers.GlobalAveragePooling2D()(FacePreprocess(48)(inputs))
    dense = keras.layers.Dense(len(EMOTIONS), activation="softmax")
    model = keras.Model(inputs, dense(x), name="visual_tiny")
    kernel, bias = np.zeros((1, 7), np.float32), np.zeros(7, np.float32)
    kernel[0, 0], bias[0] = 20.0, -10.0      # angry: 20 m - 10
    kernel[0, 1], bias[1] = -20.0, 10.0      # disgust: 10 - 20 m
    dense.set_weights([kernel, bias])
    save_bundle(str(run_dir), model, BundleInfo(
        kind="visual", classes=list(EMOTIONS), model_file="model.keras", recipe="test",
        feature_column=None, backbone="tiny", model_id=""))
    return str(run_dir)


def write_image(path, value: int, size: int = 48) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size, size), value, np.uint8))


def test_evaluate_images_metrics_by_hand(tmp_path):
    from mer_ray.score.evaluate_images import evaluate_images

    images = tmp_path / "faces"
    write_image(images / "anger" / "a1.png", 240)            # angry -> angry
    write_image(images / "anger" / "a2.png", 250, size=64)   # angry -> angry (resized)
    write_image(images / "disgust" / "d1.png", 10)           # disgust -> disgust
    write_image(images / "disgust" / "d2.png", 230)          # disgust -> angry
    write_image(images / "contempt" / "c1.png", 128)         # no project class: skipped
    (images / "disgust" / "broken.png").write_bytes(b"not an image")
    m = evaluate_images(str(images), brightness_bundle(tmp_path / "run"), str(tmp_path / "out"))
    assert m["n"] == 4 and m["accuracy"] == pytest.approx(0.75)
    assert m["skipped"] == {"no project class (contempt)": 1, "unreadable image": 1}
    cm = np.asarray(m["confusion_matrix"])
    assert cm[0, 0] == 2 and cm[1, 1] == 1 and cm[1, 0] == 1 and cm.sum() == 4
    assert m["per_class"]["angry"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["disgust"]["recall"] == pytest.approx(0.5)
    assert m["macro"]["recall"] == pytest.approx(0.75)     # over the 2 classes present
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["n"] == 4
    assert (tmp_path / "out" / "confusion.png").stat().st_size > 0
    import pyarrow.parquet as pq

    preds = pq.read_table(tmp_path / "out" / "predictions.parquet").to_pylist()
    assert sorted(p["predicted"] for p in preds) == ["angry", "angry", "angry", "disgust"]


def test_evaluate_images_cli_errors_on_a_folder_without_classes(tmp_path, capsys):
    from mer_ray.cli import main

    write_image(tmp_path / "faces" / "misc" / "x.png", 100)
    assert main(["evaluate-images", str(tmp_path / "faces"), "--visual",
                 brightness_bundle(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 1
    assert "mer-ray evaluate-images: error: " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
