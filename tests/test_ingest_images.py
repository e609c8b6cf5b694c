"""data/ingest_images.py: class folders / AffectNet CSV -> balanced FRAMES Parquet."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from mer_ray.config import EMOTIONS, IngestImagesConfig, RayConfig
from mer_ray.data.ingest_images import balance, label_of, list_csv_images, list_folder_images
from mer_ray.data.schema import FRAMES_SCHEMA
from mer_ray.media.crop_codec import CROP_FORMAT, crop_format, decode_crops

cv2 = pytest.importorskip("cv2")

FOLDERS = {"anger": 4, "Disgust": 3, "fear": 5, "happy": 4, "neutral": 6, "sad": 3,
           "surprised": 4, "contempt": 2}


def _make_folder(root):
    rng = np.random.default_rng(0)
    for i, (name, n) in enumerate(FOLDERS.items()):
        d = root / "train" / name
        d.mkdir(parents=True)
        for k in range(n):
            h, w = (48, 64) if k % 2 else (300, 260)
            img = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)
            if k == 0 and name == "sad":
                cv2.imwrite(str(d / f"{k}.png"), img[:, :, 0])    # grey image
            else:
                cv2.imwrite(str(d / f"{k}.jpg"), img)
    (root / "train" / "Disgust" / "broken.jpg").write_bytes(b"not an image")
    (root / "notes.txt").write_text("ignored")
    return root


def test_label_names_and_affectnet_codes():
    assert label_of("Anger") == "angry" and label_of("surprised") == "surprise"
    assert label_of("6") == "angry" and label_of("0") == "neutral" and label_of("5") == "disgust"
    assert label_of("contempt") is None and label_of("7") is None
    with pytest.raises(KeyError):
        label_of("train")


def test_balance_is_seeded_and_equal():
    rows = [{"label": e, "i": i} for e in EMOTIONS for i in range(3 + EMOTIONS.index(e))]
    a, b = balance(rows, 1), balance(rows, 1)
    assert a == b
    counts = {e: sum(r["label"] == e for r in a) for e in EMOTIONS}
    assert set(counts.values()) == {3}


def test_csv_layout(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "labels.csv").write_text(
        "subDirectory_filePath,face_x,expression\n1/a.jpg,0,6\n1/b.jpg,0,7\n1/c.jpg,0,1\n1/d.jpg,0,9\n")
    rows, dropped = list_csv_images(str(tmp_path / "labels.csv"))
    assert [r["label"] for r in rows] == ["angry", "happy"]
    assert dropped == {"7": 1, "9": 1}
    assert rows[0]["path"] == str(tmp_path / "1" / "a.jpg")
    (tmp_path / "plain.csv").write_text("x/1.png,fear,alice\nx/2.png,Contempt,bob\n")
    rows, dropped = list_csv_images(str(tmp_path / "plain.csv"))
    assert rows[0]["label"] == "fear" and rows[0]["speaker"] == "alice" and dropped == {"contempt": 1}


@pytest.mark.slow
def test_ingest_folder_writes_balanced_frames(tmp_path, ray_local):
    from mer_ray.data.ingest_images import run_ingest_images
    from mer_ray.train.data import plan_data
    from mer_ray.data.splits import make_plan

    src = _make_folder(tmp_path / "affectnet")
    rows, dropped = list_folder_images(str(src))
    assert dropped == {"contempt": 2}
    out = tmp_path / "shards"
    s = run_ingest_images(IngestImagesConfig(data_dir=str(src), out=str(out), balance=True,
                                             ray=RayConfig(num_cpus=2)))
    smallest = min(n for name, n in FOLDERS.items() if name != "contempt")
    assert set(s["chosen_per_class"].values()) == {smallest}
    table = pq.read_table(out / "frames")
    assert table.schema.equals(FRAMES_SCHEMA, check_metadata=False)
    assert s["unreadable"] == s["chosen_per_class"]["disgust"] - s["written_per_class"]["disgust"]
    assert s["written"] == table.num_rows == 7 * smallest - s["unreadable"]
    faces = table["face"].to_pylist()
    assert {crop_format(f) for f in faces} == {CROP_FORMAT}
    assert decode_crops(faces).shape == (table.num_rows, 200, 200, 3)
    assert set(table["frame_index"].to_pylist()) == {0}
    assert len(set(table["video_id"].to_pylist())) == table.num_rows
    assert json.loads((out / "summary.json").read_text())["written"] == table.num_rows
    # train-visual reads it like preprocess output: one group per image
    plan, data = plan_data(str(out), "visual", lambda g: make_plan(g, "actor5fold", 0))
    assert len(data.split) == table.num_rows
    assert all(g.startswith("video:") for g in data.groups)
    with pytest.raises(FileExistsError):
        run_ingest_images(IngestImagesConfig(data_dir=str(src), out=str(out)))


@pytest.mark.slow
@pytest.mark.real_data
def test_ingest_fer_folder_keeps_every_image_by_default(tmp_path, ray_local, fer_validation):
    """FER2013-style folders (48x48 grey JPEG): every image is kept unless --balance."""
    from mer_ray.data.ingest_images import run_ingest_images

    src = tmp_path / "fer"
    per_class = {"anger": 3, "disgust": 1, "fearful": 2, "happy": 4}
    for folder, n in per_class.items():
        target = src / folder
        target.mkdir(parents=True)
        label = label_of(folder)
        for image in sorted((fer_validation / label).glob("*.jpg"))[:n]:
            (target / image.name).write_bytes(image.read_bytes())
    s = run_ingest_images(IngestImagesConfig(data_dir=str(src), out=str(tmp_path / "out"),
                                             ray=RayConfig(num_cpus=2)))
    assert s["written"] == sum(per_class.values()) and s["balanced"] is False
    assert s["written_per_class"]["fear"] == 2 and s["written_per_class"]["angry"] == 3
