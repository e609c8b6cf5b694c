"""A trained run directory ("bundle"): model.keras + bundle.json, and predictors over it.

The score job loads bundles through VisualPredictor / AudioPredictor only; both take raw inputs
(0..255 RGB faces, raw audio features) because preprocessing and standardisation live inside
the saved model. An audio bundle is a Keras MLP (model.keras) or a scikit-learn SVM pipeline
(model.skops, loaded without pickle); bundle.json says which recipe (feature column, length)
it needs and whether features are speaker-normalised first (models/speaker_norm.py).
A bundle may be a local directory or a URI (s3://, gs://, file://): predictors load it from a
node-local cached copy (local_bundle_dir).

A bundle is trusted by its content, not its name: ``model_file`` must be a plain file name in
the bundle's own directory, and ``model_id`` ends with the first 12 hex digits of the model
file's sha256, which every load recomputes (verify_model_file). A model file replaced under
an unchanged bundle.json therefore does not load, so it cannot score rows under the old id.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from mer_ray.config import EMOTIONS, FACE_SIZE, NUM_CLASSES
from mer_ray.models.numpy_mlp import NumpyMLP, load_numpy_mlp

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
    feature_column: str | None   # audio: its recipe's clips column; visual: None
    backbone: str | None         # visual backbone name
    model_id: str                # "<kind>:<backbone or recipe>:<first 12 hex of sha256(model)>"
    classifier: str = "mlp"      # audio: "mlp" (Keras) | "svm" (skops); visual: "mlp" (head)
    speaker_norm: bool = False   # audio: features z-scored per speaker before the model
    mirror: bool = False         # visual: each face's probabilities averaged with its mirror's


BUNDLE_DEFAULTS = {"classifier": "mlp", "speaker_norm": False, "mirror": False}
"""Fields added after the first bundles were written (older bundle.json files lack them)."""


def file_sha256(path: str | os.PathLike, length: int = 12) -> str:
    """First ``length`` hex digits of a file's sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def make_model_id(kind: str, name: str, model_path: str | os.PathLike) -> str:
    """``<kind>:<name>:<first 12 hex of the model file's sha256>``."""
    return f"{kind}:{name}:{file_sha256(model_path)}"


_HASHES: dict[tuple, str] = {}
"""This process's model-file hashes, by (real path, inode, size, mtime): one hash per file."""


def _model_hash(path: str, length: int) -> str:
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns, length)
    if key not in _HASHES:
        _HASHES[key] = file_sha256(path, length)
    return _HASHES[key]


def check_model_file_name(name: object, where: str) -> None:
    """``model_file`` must name a file inside the bundle's own directory: ValueError for a
    path (a '/' or '\\'), '.', '..', an absolute or empty name."""
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name
            or "\\" in name or os.path.isabs(name) or "\0" in name):
        raise ValueError(f"{where}: model_file {name!r} must be a plain file name inside the "
                         "bundle directory (no path, no '..')")


def verify_model_file(local_dir: str, info: BundleInfo) -> None:
    """Recompute the model file's hash and compare it with the one ``info.model_id`` ends
    with; ValueError when they differ (the file was replaced after bundle.json was written)."""
    want = info.model_id.rsplit(":", 1)[-1] if isinstance(info.model_id, str) else ""
    if len(want) < 8 or any(c not in "0123456789abcdef" for c in want):
        raise ValueError(f"{local_dir}: model_id {info.model_id!r} does not end with the model "
                         "file's sha256 prefix; rewrite the bundle with train-visual / train-audio")
    got = _model_hash(os.path.join(local_dir, info.model_file), len(want))
    if got != want:
        raise ValueError(f"{local_dir}: model file {info.model_file} changed since bundle.json "
                         f"was written (id {info.model_id}, file hashes to {got})")


def save_bundle(run_dir: str, model, info: BundleInfo) -> None:
    """Save ``model`` as run_dir/info.model_file and write bundle.json (``info.model_id`` is
    set from the saved file's hash)."""
    check_model_file_name(info.model_file, run_dir)
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / info.model_file
    model.save(model_path)
    write_bundle_info(run_dir, info)


def write_bundle_info(run_dir: str, info: BundleInfo) -> BundleInfo:
    """Write bundle.json for a model file already in run_dir (model_id from its hash)."""
    check_model_file_name(info.model_file, run_dir)
    model_path = Path(run_dir) / info.model_file
    name = (info.backbone if info.kind == "visual" else info.recipe) or info.kind
    info.model_id = make_model_id(info.kind, name + "+mirror" * info.mirror, model_path)
    (Path(run_dir) / BUNDLE_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n")
    return info


def load_bundle_info(run_dir: str, verify: bool = True) -> BundleInfo:
    """Read run_dir/bundle.json (a local path or URI); ValueError with the reason if run_dir
    is not a bundle, its model_file is not a plain name, or (``verify``) the model file does
    not hash to its model_id. A URI is verified on this node's cached copy (local_bundle_dir,
    which downloads it once); ``verify=False`` reads bundle.json only."""
    from mer_ray.storage import is_uri, join, read_bytes

    path = join(run_dir, BUNDLE_FILE)
    if not _is_file(path):
        raise ValueError(f"{run_dir} is not a model bundle: {BUNDLE_FILE} missing "
                         "(expected a run directory written by train-visual / train-audio)")
    try:
        data = json.loads(read_bytes(path).decode())
        info = BundleInfo(**{f.name: data[f.name] if f.name not in BUNDLE_DEFAULTS
                             else data.get(f.name, BUNDLE_DEFAULTS[f.name])
                             for f in fields(BundleInfo)})
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a valid bundle file: {err}") from None
    if info.kind not in ("visual", "audio"):
        raise ValueError(f"{path}: unknown kind {info.kind!r}")
    if list(info.classes) != list(EMOTIONS):
        raise ValueError(f"{path}: classes {info.classes} differ from {list(EMOTIONS)}")
    check_model_file_name(info.model_file, path)
    if not _is_file(join(run_dir, info.model_file)):
        raise ValueError(f"{run_dir}: model file {info.model_file} missing")
    if verify:
        verify_model_file(local_bundle_dir(run_dir) if is_uri(run_dir) else run_dir, info)
    return info


def _is_file(path: str) -> bool:
    import pyarrow.fs as pafs

    from mer_ray.storage import file_info

    return file_info(path).type == pafs.FileType.File


SMALL_FILE_BYTES = 1 << 20


def local_bundle_dir(run_dir: str) -> str:
    """A local directory holding the bundle: ``run_dir`` itself if local; for a URI, a copy of
    bundle.json, the model file and the small JSON files in this node's cache
    (storage.cache_root, ``$MER_RAY_CACHE``), downloaded once per node and model version."""
    from mer_ray.storage import cache_root, fetch_dir, is_uri

    if not is_uri(run_dir):
        return run_dir
    info = load_bundle_info(run_dir, verify=False)
    return fetch_dir(run_dir, cache_root("bundles"), want=lambda f: (
        f.base_name in (BUNDLE_FILE, info.model_file)
        or (f.base_name.endswith(".json") and (f.size or 0) <= SMALL_FILE_BYTES)))


MIN_PADDED_BATCH = 16
"""The smallest batch a model call is padded to."""


def padded_size(n: int, batch: int) -> int:
    """The batch ``n`` rows are padded to: the next power of two from MIN_PADDED_BATCH, at most
    ``batch``. Every call then has one of a few shapes (a traced graph each, as ``_call``
    keeps them), and a call of 120 faces costs 128 rows of compute, not ``batch`` (256)."""
    size = MIN_PADDED_BATCH
    while size < n:
        size *= 2
    return min(size, batch)


class _Predictor:
    kind = ""

    def __init__(self, run_dir: str, local_dir: str | None = None,
                 info: BundleInfo | None = None):
        """``info``: the bundle's BundleInfo when the caller has read (and verified) it."""
        import keras

        import mer_ray.models.layers  # noqa: F401  (registers the custom layers)

        self.run_dir = run_dir
        local_dir = local_dir or local_bundle_dir(run_dir)
        self.info = info or load_bundle_info(local_dir)
        if self.info.kind != self.kind:
            raise ValueError(f"{run_dir} holds a {self.info.kind} model, not {self.kind}")
        self.model = keras.saving.load_model(os.path.join(local_dir, self.info.model_file),
                                             compile=False)
        self.input_shape = tuple(self.model.inputs[0].shape[1:])
        self._forward = None

    predict_batch = PREDICT_BATCH

    def _call(self, batch: np.ndarray):
        """The model on one fixed-size batch, as one traced graph (``tf.function``): an eager
        Keras call keeps about 1 GB more per process (measured: a visual actor's PSS 1.58 GiB
        eager, 0.61 GiB traced) and runs about 1.3x slower on CPU."""
        if self._forward is None:
            import tensorflow as tf

            model = self.model
            self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return self._forward(batch)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        n, batch = len(x), self.predict_batch
        out = np.zeros((n, NUM_CLASSES), np.float32)
        for start in range(0, n, batch):
            chunk = x[start:start + batch]
            rows = len(chunk)
            pad = padded_size(rows, batch) - rows
            if pad:  # a few fixed batch shapes: a few traced graphs for every call
                chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
            out[start:start + rows] = np.asarray(self._call(chunk), np.float32)[:rows]
        return out


class VisualPredictor(_Predictor):
    """Loads a visual bundle once; predict((N,200,200,3) uint8 RGB) -> (N,7) float32.

    ``engine``: ``auto`` runs a compact face CNN (the bundled model's shape) with OpenCV's DNN
    module (models/opencv_cnn.py: no TensorFlow in the process, faster on CPU) and any other
    model with Keras; ``keras`` always uses Keras (a GPU, or to compare)."""

    kind = "visual"
    ENGINES = ("auto", "keras")

    def __init__(self, run_dir: str, local_dir: str | None = None, engine: str = "auto"):
        from mer_ray.models.backbones import BACKBONES

        if engine not in self.ENGINES:
            raise ValueError(f"engine must be one of {self.ENGINES}, not {engine!r}")
        local_dir = local_dir or local_bundle_dir(run_dir)
        info = load_bundle_info(local_dir)
        if engine == "auto" and info.kind == "visual" and info.model_file.endswith(".keras"):
            from mer_ray.models.opencv_cnn import load_opencv_cnn

            self.model = load_opencv_cnn(os.path.join(local_dir, info.model_file))
            if self.model is not None:
                self.run_dir, self.info, self.engine = run_dir, info, "opencv"
                self.input_shape = (FACE_SIZE, FACE_SIZE, 3)
                return
        super().__init__(run_dir, local_dir, info)
        self.engine = "keras"                  # what runs the model: "opencv" or "keras"
        spec = BACKBONES.get(self.info.backbone or "")
        self.predict_batch = spec.predict_batch if spec else 16

    def predict(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.size == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        if faces.shape[1:] != (FACE_SIZE, FACE_SIZE, 3):
            raise ValueError(f"faces must be (N,{FACE_SIZE},{FACE_SIZE},3), got {faces.shape}")
        run = self.model.predict if self.engine == "opencv" else (
            lambda x: self._predict(x.astype(np.float32, copy=False)))
        return mirror_average(run, faces) if self.info.mirror else run(faces)


def mirror_average(predict, faces: np.ndarray) -> np.ndarray:
    """Mean of ``predict`` on the faces and on their left-right mirror images, in one call: a
    model trained with random flips sees both as the same face, and averaging the two halves
    the noise of one view (the bundled face model's card gives the gain)."""
    mirrored = np.ascontiguousarray(faces[:, :, ::-1])
    probs = np.asarray(predict(np.concatenate([faces, mirrored])))
    return ((probs[:len(faces)] + probs[len(faces):]) / 2).astype(np.float32)


class AudioPredictor(_Predictor):
    """Loads an audio bundle (Keras MLP or skops SVM) once;
    predict((N,D) raw features of the bundle's recipe) -> (N,7) float32. An MLP runs in
    numpy (models/numpy_mlp.py) when it is a plain Dense chain, as every audio MLP trained
    here is, so the process imports no TensorFlow; any other model goes through Keras. An SVM
    of audio_svm.build_svm's shape runs in numpy too (models/numpy_svm.py: no scikit-learn
    import), any other through skops.

    ``info.feature_column`` names the clips column to feed; ``info.speaker_norm`` says the
    features are z-scored per speaker first, which ``predict`` does given ``speakers`` (and
    optionally ``stats`` accumulated over every scored clip of those speakers)."""

    kind = "audio"

    def __init__(self, run_dir: str):
        local_dir = local_bundle_dir(run_dir)
        info = load_bundle_info(local_dir)
        if info.kind == "audio" and info.classifier == "svm":
            from mer_ray.models.numpy_svm import load_numpy_svm

            self.run_dir, self.info = run_dir, info
            path = os.path.join(local_dir, info.model_file)
            self.model = load_numpy_svm(path)
            if self.model is None:
                from mer_ray.models.audio_svm import load_svm

                self.model = load_svm(path)
            self.input_shape = (int(self.model.n_features_in_),)
            return
        if info.kind == "audio" and info.model_file.endswith(".keras"):
            self.model = load_numpy_mlp(os.path.join(local_dir, info.model_file))
            if self.model is not None:
                self.run_dir, self.info, self.input_shape = run_dir, info, (self.model.input_dim,)
                return
        super().__init__(run_dir, local_dir, info)

    @property
    def n_features(self) -> int:
        return int(self.input_shape[0])

    def predict(self, features: np.ndarray, speakers=None, stats=None) -> np.ndarray:
        """Probabilities per row. With a speaker-normalised bundle (``info.speaker_norm``),
        ``speakers`` is required: the rows' speaker ids (speaker_norm.speaker_keys; None
        entries -> one pooled unknown speaker), and ``stats`` a SpeakerStats over all scored
        clips of those speakers (None -> statistics of the rows given here, so pass all of a
        speaker's clips in one call). Both are ignored for other bundles."""
        x = np.asarray(features, np.float32)
        if x.size == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        if x.ndim != 2 or x.shape[1:] != self.input_shape:
            raise ValueError(self._shape_error(x.shape))
        if self.info.speaker_norm:
            from mer_ray.models.speaker_norm import speaker_normalize

            if speakers is None:
                raise ValueError(f"{self.run_dir} was trained with --speaker-norm: pass "
                                 "speakers= (speaker_norm.speaker_keys(actor, speaker); None "
                                 "entries for unknown speakers) and stats= over all scored clips")
            x = (stats.normalize(x, speakers) if stats is not None
                 else speaker_normalize(x, speakers))
        if self.info.classifier == "svm":
            from mer_ray.models.audio_svm import predict_proba

            return predict_proba(self.model, x)
        if isinstance(self.model, NumpyMLP):
            return self.model.predict(x)
        return self._predict(x)

    def _shape_error(self, shape: tuple) -> str:
        """What went wrong, naming the recipe whose vectors were fed when the length says so."""
        from mer_ray.media.audio_recipes import recipe_for_length

        text = (f"{self.run_dir}: this audio model was trained on the {self.info.recipe!r} "
                f"recipe and expects (N, {self.n_features}) features from column "
                f"'{self.info.feature_column}'; got {shape}")
        if len(shape) == 2:
            for recipe in recipe_for_length(shape[1]):
                if recipe.name != self.info.recipe:
                    text += (f". {shape[1]} columns is the {recipe.name!r} recipe "
                             f"('{recipe.column}'): score with a model trained with --recipe "
                             f"{recipe.name}, or feed '{self.info.feature_column}'")
        return text
