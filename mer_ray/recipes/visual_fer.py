"""The bundled face model: the compact CNN trained on FER2013 ``train/``, in-process.

Hyper-parameters live in ``FerRecipe``; the code below only follows them. The whole train set
is 66 MB at 48x48 grey, so it is held in memory and fed to ``model.fit`` on one process (no Ray:
on 2 CPU cores the data pipeline would cost more than it gives). A fixed cosine schedule runs
to the end and the last epoch is shipped, so ``validation/`` chooses nothing and its figures are
held-out figures. Classes are weighted by the square root of inverse frequency: disgust has 436
images against happy's 7,215, and full inverse weights cost accuracy on the common classes.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mer_ray.config import EMOTIONS, FACE_SIZE, NUM_CLASSES

HAAR_FRAMING = 1.2
"""FER2013 faces are framed looser than a Haar box: OpenCV's Haar cascade on FER2013
validation images finds a box 0.83 of the image wide (median), centred, so a score crop (the
Haar box) is the FER2013 framing zoomed in by about 1.2."""


@dataclass(frozen=True)
class FerRecipe:
    """Hyper-parameters of the bundled visual model."""

    epochs: int = 30
    batch_size: int = 64
    peak_lr: float = 2e-3
    warmup_epochs: int = 1
    label_smoothing: float = 0.1
    class_weight_power: float = 0.5     # weight_c = (N / (K n_c)) ** power
    dropout: float = 0.4
    seed: int = 0


def class_weights(labels: np.ndarray, power: float) -> dict[int, float]:
    """(N / (K n_c)) ** power per class present; absent classes get 0."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    base = np.divide(len(labels), NUM_CLASSES * counts, out=np.zeros_like(counts),
                     where=counts > 0)
    return {c: float(w ** power) for c, w in enumerate(base)}


def haar_framed(images: np.ndarray, zoom: float = HAAR_FRAMING) -> np.ndarray:
    """Centre crops of (N, H, W, C) images zoomed in by ``zoom`` (a Haar-box framing),
    resized back to H x W."""
    import cv2

    n, h, w = images.shape[:3]
    ch, cw = round(h / zoom), round(w / zoom)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    out = [cv2.resize(img[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR)
           for img in images]
    return np.stack(out).reshape(images.shape) if out else images


def to_face_crops(images: np.ndarray) -> np.ndarray:
    """48x48 RGB faces -> 200x200x3 uint8 crops, resized as ingest-images and score do."""
    import cv2

    return np.stack([cv2.resize(img, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_LINEAR)
                     for img in images])


def train_visual(data_dir: str, run_dir: str, recipe: FerRecipe = FerRecipe(),
                 log: Callable[[str], None] = print, limit_per_class: int | None = None) -> dict:
    """Train on ``data_dir/fer2013/train``, evaluate on ``.../validation``, write a bundle to
    ``run_dir``; returns the metrics written to metrics.json. ``limit_per_class`` reads a
    subset (smoke tests)."""
    import keras

    from mer_ray.data.image_folders import read_image_folder
    from mer_ray.models.bundle import save_bundle
    from mer_ray.models.face_cnn import augmenter, build_compact_model, build_core

    keras.utils.set_random_seed(recipe.seed)
    root = Path(data_dir) / "fer2013"
    t0 = time.perf_counter()
    train = read_image_folder(str(root / "train"), limit_per_class=limit_per_class)
    val = read_image_folder(str(root / "validation"), limit_per_class=limit_per_class)
    log(f"read {len(train.labels)} train and {len(val.labels)} validation faces "
        f"in {time.perf_counter() - t0:.1f} s")
    x_train, x_val = train.grey(), val.grey()
    y_train = keras.utils.to_categorical(train.labels, NUM_CLASSES)
    y_val = keras.utils.to_categorical(val.labels, NUM_CLASSES)

    core = build_core(dropout=recipe.dropout)
    steps = int(np.ceil(len(x_train) / recipe.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        recipe.peak_lr / 20, decay_steps=max(1, steps * (recipe.epochs - recipe.warmup_epochs)),
        warmup_target=recipe.peak_lr, warmup_steps=steps * recipe.warmup_epochs)
    trainer = keras.Sequential([keras.Input(x_train.shape[1:]), augmenter(recipe.seed), core])
    trainer.compile(keras.optimizers.Adam(schedule),
                    keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
                    metrics=["accuracy"])
    weights = class_weights(train.labels, recipe.class_weight_power)
    log("class weights: " + ", ".join(f"{EMOTIONS[c]} {w:.2f}" for c, w in weights.items()))
    history = trainer.fit(x_train, y_train, batch_size=recipe.batch_size, epochs=recipe.epochs,
                          validation_data=(x_val, y_val), class_weight=weights, verbose=0,
                          callbacks=[_EpochLog(log, recipe.epochs)], shuffle=True)
    model = build_compact_model(core)
    metrics = evaluate_bundle_faces(model, val.images, val.labels, log)
    save_bundle(run_dir, model, bundle_info())
    _write_run_files(Path(run_dir), recipe, history.history, metrics, len(train.labels))
    log(f"visual bundle written to {run_dir} in {time.perf_counter() - t0:.0f} s")
    return metrics


def bundle_info():
    """bundle.json of the bundled face model: the compact CNN, each face averaged with its
    mirror image (trained with random flips, it should see both alike)."""
    from mer_ray.models.bundle import BundleInfo

    return BundleInfo(kind="visual", classes=list(EMOTIONS), model_file="model.keras",
                      recipe="face48grey", feature_column=None, backbone="compact", model_id="",
                      classifier="cnn", mirror=True)


FRAMINGS = ("fer_framing", "haar_framing")


def evaluate_bundle_faces(model, images: np.ndarray, labels: np.ndarray,
                          log: Callable[[str], None] = print) -> dict:
    """Metrics of the full 200-px model on FER-framed and Haar-framed crops of ``images``, as
    score runs it (each face averaged with its mirror), plus the accuracy of the face alone."""
    from mer_ray.models.bundle import mirror_average
    from mer_ray.report.metrics import classification_metrics

    out: dict = {"mirror": True, "face_alone": {}}
    for name, faces in zip(FRAMINGS, (images, haar_framed(images))):
        crops = to_face_crops(faces)
        alone = np.asarray(model.predict(crops, batch_size=256, verbose=0))
        both = mirror_average(lambda x: model.predict(x, batch_size=256, verbose=0), crops)
        out[name] = classification_metrics(labels, both.argmax(1))
        alone_metrics = classification_metrics(labels, alone.argmax(1))
        out["face_alone"][name] = {"accuracy": alone_metrics["accuracy"],
                                   "macro_f1": alone_metrics["macro"]["f1"]}
        log(f"validation ({name.replace('_', ' ')}): accuracy {out[name]['accuracy']:.4f}, "
            f"macro F1 {out[name]['macro']['f1']:.4f} (face alone, without its mirror: "
            f"{alone_metrics['accuracy']:.4f})")
    return out


def reevaluate_visual(data_dir: str, run_dir: str, log: Callable[[str], None] = print) -> dict:
    """Evaluate the face model already in ``run_dir`` again, as ``train_visual`` does after
    training, and rewrite its bundle.json, metrics.json and confusion matrices (the model
    file and its training history stay); returns the new metrics."""
    from mer_ray.data.image_folders import read_image_folder
    import keras

    import mer_ray.models.layers  # noqa: F401  (registers FacePreprocess)
    from mer_ray.models.bundle import load_bundle_info, write_bundle_info

    old = load_bundle_info(run_dir)
    val = read_image_folder(str(Path(data_dir) / "fer2013" / "validation"))
    model = keras.saving.load_model(str(Path(run_dir) / old.model_file), compile=False)
    metrics = evaluate_bundle_faces(model, val.images, val.labels, log)
    info = write_bundle_info(run_dir, bundle_info())
    n_train = json.loads((Path(run_dir) / "metrics.json").read_text())["train_images"]
    _write_metrics(Path(run_dir), metrics, n_train)
    log(f"{run_dir} evaluated again: model id {old.model_id} -> {info.model_id}")
    return metrics


class _EpochLog:
    """A Keras callback printing one line per epoch (created lazily: keras imported inside)."""

    def __new__(cls, log: Callable[[str], None], epochs: int):
        import keras

        class EpochLog(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                log(f"epoch {epoch + 1}/{epochs}: loss {logs.get('loss', 0):.4f} "
                    f"acc {logs.get('accuracy', 0):.4f} val_acc {logs.get('val_accuracy', 0):.4f} "
                    f"({time.perf_counter() - self.t0:.0f} s)")

        return EpochLog()


def _write_metrics(run_dir: Path, metrics: dict, n_train: int) -> None:
    """metrics.json and a confusion matrix per framing."""
    from mer_ray.report.plots import save_confusion_png

    for name in FRAMINGS:
        save_confusion_png(metrics[name]["confusion_matrix"], EMOTIONS,
                           str(run_dir / f"confusion_{name}.png"),
                           title=f"FER2013 validation, {name.replace('_', ' ')}")
    (run_dir / "metrics.json").write_text(json.dumps(
        {"data": "FER2013 validation (PublicTest), 3,589 images, never used for a choice",
         "train_images": n_train, **metrics}, indent=2) + "\n")


def _write_run_files(run_dir: Path, recipe: FerRecipe, history: dict, metrics: dict,
                     n_train: int) -> None:
    from mer_ray.report.plots import save_curves_png
    from mer_ray.train.rundir import write_history_csv, write_labels

    rows = [{"epoch": e, "train_loss": history["loss"][e], "train_acc": history["accuracy"][e],
             "val_loss": history["val_loss"][e], "val_acc": history["val_accuracy"][e]}
            for e in range(len(history["loss"]))]
    write_history_csv(rows, run_dir / "history.csv")
    save_curves_png(rows, str(run_dir / "curves.png"),
                    title=f"compact CNN on FER2013 (last epoch {len(rows)} shipped)")
    write_labels(run_dir)
    _write_metrics(run_dir, metrics, n_train)
    (run_dir / "config.json").write_text(json.dumps(
        {"recipe": "mer_ray.recipes.visual_fer", **asdict(recipe)}, indent=2) + "\n")
