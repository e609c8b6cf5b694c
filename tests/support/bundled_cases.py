"""The real inputs whose bundled-model predictions are recorded in tests/data/bundled_predictions.json.

    python tests/support/bundled_cases.py       # re-record after re-making the bundled models

Faces: the first FER2013 validation image of each class, as 200x200 crops (the way
ingest-images and score feed them). Voices: three RAVDESS speech clips of actor 01.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
RECORD = REPO / "tests" / "data" / "bundled_predictions.json"
VOICES = ("03-01-01-01-01-01-01.wav", "03-01-05-02-01-01-01.wav", "03-01-03-02-02-01-01.wav")


def face_paths(shared_data: Path) -> list[Path]:
    from mer_ray.config import EMOTIONS

    root = shared_data / "fer2013" / "validation"
    return [sorted((root / name).glob("*.jpg"))[0] for name in EMOTIONS]


def voice_paths(shared_data: Path) -> list[Path]:
    return [shared_data / "ravdess-speech" / "Actor_01" / name for name in VOICES]


def visual_probs(shared_data: Path) -> np.ndarray:
    from mer_ray.config import FACE_SIZE
    from mer_ray.data.image_folders import load_faces
    from mer_ray.models.bundle import VisualPredictor
    from mer_ray.models.bundled import bundled_dir

    faces, ok = load_faces([str(p) for p in face_paths(shared_data)], FACE_SIZE)
    assert ok.all()
    return VisualPredictor(bundled_dir("visual")).predict(faces)


def audio_probs(shared_data: Path) -> np.ndarray:
    from mer_ray.media.audio_recipes import RICH_COLUMN
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.media.options import ExtractOptions
    from mer_ray.models.bundle import AudioPredictor
    from mer_ray.models.bundled import bundled_dir

    extractor = ClipExtractor(ExtractOptions(audio_aug_copies=0, faces=False))
    x = np.asarray([extractor.extract(str(p)).clip[RICH_COLUMN] for p in voice_paths(shared_data)],
                   np.float32)
    return AudioPredictor(bundled_dir("audio")).predict(x)


def record(shared_data: Path) -> dict:
    from mer_ray.models.bundled import list_bundled

    ids = {e["name"]: e["bundle"]["model_id"] for e in list_bundled()}
    data = {"model_ids": ids,
            "faces": [p.relative_to(shared_data).as_posix() for p in face_paths(shared_data)],
            "visual": np.round(visual_probs(shared_data), 6).tolist(),
            "voices": [p.relative_to(shared_data).as_posix() for p in voice_paths(shared_data)],
            "audio": np.round(audio_probs(shared_data), 6).tolist()}
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(data, indent=1) + "\n")
    return data


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    print(json.dumps(record(REPO.parent / "shared" / "data")["model_ids"]))
