"""How face crops are stored: bytes, encode/decode time and accuracy of raw vs PNG vs JPEG.

    python benchmarks/crop_codec.py               # ~2 min on 2 cores
    python benchmarks/crop_codec.py --no-write

Crops: every FER2013 validation image (3,589) made into the 200x200 RGB crop ingest-images
stores (48x48 grey enlarged linearly), and every frame's face crop of the real RAVDESS
audio-visual clip (the crop preprocess and score make from a video). For each codec setting:
bytes per crop (mean, and the ratio to the 120,000 raw bytes), milliseconds to encode and to
decode one crop (one OpenCV thread, as in a Ray worker), and the bundled visual model's
accuracy on FER2013 validation after the round trip, with the share of its predictions that
differ from those on the raw crops. Writes the "crop-codec" section of BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.common import machine, write_section  # noqa: E402

SETTINGS = [("PNG level 1", "png", 1), ("PNG level 3", "png", 3),
            ("JPEG quality 90", "jpeg", 90), ("JPEG quality 95", "jpeg", 95)]
DATA = REPO.parent / "shared/data"


def fer_crops(folder: Path):
    """(crops (N,200,200,3) uint8 RGB, labels) of every FER2013 image, as ingest-images
    makes them."""
    import numpy as np

    from mer_ray.config import EMOTION_INDEX, FACE_SIZE
    from mer_ray.data.image_folders import list_labelled_images, load_faces

    rows, _ = list_labelled_images(str(folder))
    crops, ok = load_faces([r["path"] for r in rows], FACE_SIZE)
    labels = np.asarray([EMOTION_INDEX[r["label"]] for r, good in zip(rows, ok) if good])
    return crops, labels


def video_crops(path: Path):
    """The face crop of every frame of one video, as preprocess and score make them."""
    import numpy as np

    from mer_ray.media.extract import ClipExtractor
    from mer_ray.media.options import ExtractOptions

    ext = ClipExtractor(ExtractOptions(skip=1, audio=False)).extract(str(path))
    if not ext.frames:
        raise SystemExit(f"{path}: no face found ({ext.clip['status']}: {ext.clip['error']})")
    return np.stack([f["face"] for f in ext.frames])


def measure(crops, fmt: str, level: int) -> dict:
    """Mean bytes per crop, ms per crop to encode and to decode, and the decoded crops."""
    from mer_ray.media.crop_codec import decode_crops, encode_crop

    t0 = time.perf_counter()
    blobs = [encode_crop(c, fmt, level) for c in crops]
    t1 = time.perf_counter()
    decoded = decode_crops(blobs)
    t2 = time.perf_counter()
    n = len(crops)
    return {"bytes": sum(map(len, blobs)) / n, "enc_ms": 1e3 * (t1 - t0) / n,
            "dec_ms": 1e3 * (t2 - t1) / n, "decoded": decoded}


def predict(predictor, crops, chunk: int = 512):
    import numpy as np

    return np.concatenate([predictor.predict(crops[i:i + chunk])
                           for i in range(0, len(crops), chunk)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fer", default=str(DATA / "fer2013/validation"))
    p.add_argument("--video", default=str(DATA / "ravdess-video/01-01-07-02-02-01-01_1.mp4"))
    p.add_argument("--visual", default="default", help="visual bundle (default: the bundled one)")
    p.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = p.parse_args(argv)

    import cv2
    import numpy as np

    from mer_ray.media.crop_codec import CROP_FORMAT, FACE_NBYTES, JPEG_QUALITY, PNG_LEVEL
    from mer_ray.models.bundle import VisualPredictor
    from mer_ray.models.bundled import resolve_model

    cv2.setNumThreads(1)
    fer, labels = fer_crops(Path(args.fer))
    video = video_crops(Path(args.video))
    predictor = VisualPredictor(resolve_model(args.visual, "visual"))
    raw_pred = predict(predictor, fer).argmax(1)
    raw_acc = float((raw_pred == labels).mean())
    raw_video = predict(predictor, video).argmax(1)

    rows = []
    for name, fmt, level in SETTINGS:
        on_fer, on_video = measure(fer, fmt, level), measure(video, fmt, level)
        if fmt == "png":      # lossless: the model sees exactly the raw crops
            assert np.array_equal(on_fer["decoded"], fer), "PNG round trip is not bit-exact"
            assert np.array_equal(on_video["decoded"], video), "PNG round trip is not bit-exact"
            pred, video_pred = raw_pred, raw_video
        else:
            pred = predict(predictor, on_fer["decoded"]).argmax(1)
            video_pred = predict(predictor, on_video["decoded"]).argmax(1)
        err = np.abs(on_video["decoded"].astype(np.int16) - video).mean()
        rows.append({"name": name, "fer": on_fer, "video": on_video,
                     "acc": float((pred == labels).mean()),
                     "changed": float((pred != raw_pred).mean()), "video_err": float(err),
                     "video_changed": int((video_pred != raw_video).sum())})
        print(f"{name}: FER {on_fer['bytes']:.0f} B, video {on_video['bytes']:.0f} B, "
              f"acc {rows[-1]['acc']:.4f}", flush=True)

    lines = ["| format | bytes/crop FER2013 (vs raw) | bytes/crop video (vs raw) | encode ms "
             "FER / video | decode ms FER / video | video mean abs error | FER2013 accuracy | "
             "predictions changed FER / video |", "|---|---|---|---|---|---|---|---|"]
    lines.append(f"| raw | {FACE_NBYTES:,} (1) | {FACE_NBYTES:,} (1) | - | - | 0 | "
                 f"{raw_acc:.4f} | - |")
    for r in rows:
        f, v = r["fer"], r["video"]
        lines.append(
            f"| {r['name']} | {f['bytes']:,.0f} (1/{FACE_NBYTES / f['bytes']:.0f}) | "
            f"{v['bytes']:,.0f} (1/{FACE_NBYTES / v['bytes']:.1f}) | "
            f"{f['enc_ms']:.2f} / {v['enc_ms']:.2f} | {f['dec_ms']:.2f} / {v['dec_ms']:.2f} | "
            f"{r['video_err']:.2f} | {r['acc']:.4f} ({100 * (r['acc'] - raw_acc):+.2f} points) | "
            f"{100 * r['changed']:.2f} % / {r['video_changed']} of {len(video)} |")
    by_name = {r["name"]: r for r in rows}
    default = by_name[f"PNG level {PNG_LEVEL}" if CROP_FORMAT == "png"
                      else f"JPEG quality {JPEG_QUALITY}"]
    png = by_name[f"PNG level {PNG_LEVEL}"]
    text = (
        "## Face crop storage (benchmarks/crop_codec.py)\n\n"
        f"`python benchmarks/crop_codec.py` on {machine()}.\n\n"
        f"Crops: the {len(fer):,} FER2013 validation images as ingest-images stores them "
        f"(48x48 grey enlarged to 200x200, stored as one channel since the three are equal) and "
        f"the {len(video)} face crops of every frame of the RAVDESS audio-visual clip "
        f"(`{Path(args.video).name}`, colour, as preprocess and score cut them). Times per crop, "
        "one OpenCV thread. Accuracy: the bundled visual model on FER2013 validation after the "
        "round trip; *predictions changed*: images whose predicted class differs from the raw "
        "crops' (FER2013 share, video count). PNG's round trip is checked bit-exact on every "
        "crop.\n\n"
        + "\n".join(lines) + "\n\n"
        f"Default: **{default['name']}** (`mer_ray/media/crop_codec.py`, CROP_FORMAT). The rule: "
        "PNG (lossless) unless JPEG changes FER2013 validation accuracy by at most 0.3 points "
        f"and is much smaller. {default['name']}: {100 * (default['acc'] - raw_acc):+.2f} "
        f"points, {png['video']['bytes'] / default['video']['bytes']:.1f}x smaller than "
        f"PNG level {PNG_LEVEL} on video crops "
        f"({png['fer']['bytes'] / default['fer']['bytes']:.1f}x on FER2013) and {FACE_NBYTES / default['video']['bytes']:.1f}x smaller than raw. "
        f"FER2013 validation: {len(fer) * FACE_NBYTES / 1e6:,.0f} MB of raw crops, "
        f"{len(fer) * default['fer']['bytes'] / 1e6:,.1f} MB stored. Shards written with raw "
        "crops still read (a blob of exactly 120,000 bytes without a PNG/JPEG signature is raw "
        "RGB).\n")
    print(text)
    if not args.no_write:
        write_section("crop-codec", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
