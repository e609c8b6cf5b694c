"""`mer-ray evaluate-images DIR --visual RUN|default --out DIR`: a visual model on labelled faces."""
from __future__ import annotations

import argparse

NAME = "evaluate-images"
HELP = ("score a folder of labelled face images (class folders: angry/, happy/, ...) with a "
        "visual model: accuracy, macro precision/recall/F1, per class, confusion")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", help="folder of class folders (angry/ or anger/, happy/, ...); "
                                  "folders with no project class (contempt) are skipped and counted")
    p.add_argument("--visual", default="default",
                   help="'default' (the bundled face model) or a train-visual run directory "
                        "(default: %(default)s)")
    p.add_argument("--out", required=True, help="folder for metrics.json, confusion.png and "
                                                "predictions.parquet")
    p.add_argument("--batch", type=int, default=512,
                   help="images read and scored at a time (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from mer_ray.commands import checks
    from mer_ray.models.bundled import resolve_model
    from mer_ray.score.evaluate_images import evaluate_images

    checks.input_folder(args.images, "DIR")
    checks.out_folder(args.out)
    if args.visual == "none":
        raise checks.UsageError("--visual none leaves nothing to evaluate")
    checks.model_dir(args.visual, "visual")
    run_dir = resolve_model(args.visual, "visual")
    m = evaluate_images(args.images, run_dir, args.out, batch=args.batch)
    skipped = ", ".join(f"{k} {v}" for k, v in m["skipped"].items()) or "none"
    print(f"{m['n']} images, accuracy {m['accuracy']:.3f}, macro F1 {m['macro']['f1']:.3f} "
          f"(chance {m['chance_level']:.3f}); skipped: {skipped}\n"
          f"metrics: {args.out}/metrics.json  confusion: {args.out}/confusion.png")
    return 0
