"""A trained run directory ("bundle"): model.keras + bundle.json, and predictors over it.

The score job loads bundles through VisualPredictor / AudioPredictor only; both take raw inputs
(0..255 RGB faces, raw audio features) because preprocessing and standardisation live inside
the saved model.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from mer_ray.config import EMOTIONS, FACE_SIZE, NUM_CLASSES

BUNDLE_FILE = "bundle.json"
MODEL_FILE = "model.keras"
PREDICT_BATCH = 64


@dataclass
class BundleInfo:
    """What a run directory holds and how to feed its model."""

    kind: str                    # "visual" | "audio"
    classes: list[str]           # == list(EMOTIONS)
    model_file: str              # "model.keras"
    recipe: str                  # audio: "thesis" (or "rich"); visual: "face200"
    feature_column: str | None   # audio: "audio_features"; visual: None
    backbone: str | None         # visual backbone name
    model_id: str                # "<kind>:<backbone or recipe>:<first 12 hex of sha256(model)>"


def file_sha256(path: str | os.PathLike, length: int = 12) -> str:
    """First ``length`` hex digits of a file's sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def make_model_id(kind: str, name: str, model_path: str | os.PathLike) -> str:
    return f"{kind}:{name}:{file_sha256(model_path)}"


def save_bundle(run_dir: str, model, info: BundleInfo) -> None:
    """Save ``model`` as run_dir/info.model_file and write bundle.json (``info.model_id`` is
    set from the saved file's hash)."""
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / info.model_file
    model.save(model_path)
    write_bundle_info(run_dir, info)


def write_bundle_info(run_dir: str, info: BundleInfo) -> BundleInfo:
    """Write bundle.json for a model file already in run_dir (model_id from its hash)."""
    model_path = Path(run_dir) / info.model_file
    name = info.backbone if info.kind == "visual" else info.recipe
    info.model_id = make_model_id(info.kind, name or info.kind, model_path)
    (Path(run_dir) / BUNDLE_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n")
    return info


def load_bundle_info(run_dir: str) -> BundleInfo:
    """Read run_dir/bundle.json; ValueError with the reason if run_dir is not a bundle."""
    path = Path(run_dir) / BUNDLE_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a model bundle: {BUNDLE_FILE} missing "
                         "(expected a run directory written by train-visual / train-audio)")
    try:
        data = json.loads(path.read_text())
        info = BundleInfo(**{f.name: data[f.name] for f in fields(BundleInfo)})
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a valid bundle file: {err}") from None
    if info.kind not in ("visual", "audio"):
        raise ValueError(f"{path}: unknown kind {info.kind!r}")
    if list(info.classes) != list(EMOTIONS):
        raise ValueError(f"{path}: classes {info.classes} differ from {list(EMOTIONS)}")
    if not (Path(run_dir) / info.model_file).is_file():
        raise ValueError(f"{run_dir}: model file {info.model_file} missing")
    return info


class _Predictor:
    kind = ""

    def __init__(self, run_dir: str):
        import keras

        import mer_ray.models.visual  # noqa: F401  (registers the ImagePreprocess layer)

        self.run_dir = run_dir
        self.info = load_bundle_info(run_dir)
        if self.info.kind != self.kind:
            raise ValueError(f"{run_dir} holds a {self.info.kind} model, not {self.kind}")
        self.model = keras.saving.load_model(os.path.join(run_dir, self.info.model_file),
                                             compile=False)
        self.input_shape = tuple(self.model.inputs[0].shape[1:])

    def _predict(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        out = np.zeros((n, NUM_CLASSES), np.float32)
        for start in range(0, n, PREDICT_BATCH):
            chunk = x[start:start + PREDICT_BATCH]
            pad = PREDICT_BATCH - len(chunk)
            if pad:  # fixed batch shape: one traced graph for every call
                chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
            probs = np.asarray(self.model(chunk, training=False), np.float32)
            out[start:start + PREDICT_BATCH] = probs[:PREDICT_BATCH - pad]
        return out


class VisualPredictor(_Predictor):
    """Loads a visual bundle once; predict((N,200,200,3) uint8 RGB) -> (N,7) float32."""

    kind = "visual"

    def predict(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.size == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        if faces.shape[1:] != (FACE_SIZE, FACE_SIZE, 3):
            raise ValueError(f"faces must be (N,{FACE_SIZE},{FACE_SIZE},3), got {faces.shape}")
        return self._predict(faces.astype(np.float32, copy=False))


class AudioPredictor(_Predictor):
    """Loads an audio bundle once; predict((N,D) raw features) -> (N,7) float32."""

    kind = "audio"

    def predict(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, np.float32)
        if x.size == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        if x.ndim != 2 or x.shape[1:] != self.input_shape:
            raise ValueError(f"features must be (N,{self.input_shape[0]}), got {x.shape}")
        return self._predict(x)
