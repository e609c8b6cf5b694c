"""`mer-ray train-visual SHARDS --out RUN`: backbone + thesis head on face crops (Ray Train)."""
from __future__ import annotations

import argparse

from mer_ray.models.backbones import BACKBONES

NAME = "train-visual"
HELP = "train the visual model (EfficientNetB0 / MobileNetV2 / ResNet50 + thesis head) on Ray Train"
BACKBONE_CHOICES = tuple(BACKBONES)   # models/backbones.py imports no Keras: --help stays fast
CASE_CHOICES = ("frozen", "unfrozen")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mer_ray.commands.train_args import add_common_arguments

    add_common_arguments(p, epochs=50, batch_size=16, checkpoint_every=1)
    p.add_argument("--backbone", default="efficientnetb0", choices=BACKBONE_CHOICES,
                   help="keras.applications backbone, or 'compact' (the 48 px grey face CNN, "
                        "--init none or a .keras file) or 'tiny' (a small test/smoke-run "
                        "network) (default: %(default)s)")
    p.add_argument("--case", default="frozen", choices=CASE_CHOICES,
                   help="frozen: train the head only; unfrozen: train everything (default: "
                        "%(default)s)")
    p.add_argument("--init", default="imagenet",
                   help="imagenet (weights from the keras cache or --weights-file), none, or "
                        "PATH.keras / a run directory, local or a URI (e.g. the AffectNet stage) "
                        "(default: %(default)s)")
    p.add_argument("--weights-file", default=None,
                   help="ImageNet .h5 weights to use instead of the Keras cache or a download "
                        "(default: none)")
    p.add_argument("--no-augment", action="store_true",
                   help="train on the face crops as they are, without random flips, shifts, "
                        "rotations and zooms (thesis Alg. 3.1)")
    p.add_argument("--class-weight", default="none", choices=("none", "balanced"),
                   help="none (default): every face counts the same in the loss; balanced: "
                        "each face of class c counts N / (K * n_c), where the training split "
                        "has N faces, K classes and n_c faces of class c, so rare emotions "
                        "weigh as much as common ones")


def config_from_args(args: argparse.Namespace):
    from mer_ray.config import TrainVisualConfig
    from mer_ray.commands.train_args import common_kwargs

    return TrainVisualConfig(**common_kwargs(args), backbone=args.backbone, case=args.case,
                             init=args.init, weights_file=args.weights_file,
                             augment=not args.no_augment, class_weight=args.class_weight)


def run(args: argparse.Namespace, hooks=None) -> int:
    """Train and print the summary; ``hooks`` (loop.TrainHooks) are for tests."""
    from mer_ray.commands import checks
    from mer_ray.commands.train_args import format_summary
    from mer_ray.data.schema import FRAMES_DIR
    from mer_ray.train.runner import train

    checks.shards(args.shards, FRAMES_DIR)       # the input first, then the weights
    checks.out_folder(args.out)
    cfg = config_from_args(args)
    if cfg.init == "imagenet":
        from mer_ray.models.visual import imagenet_weights_path

        try:                                     # fail fast, before Ray starts
            imagenet_weights_path(cfg.backbone, cfg.weights_file)
        except (FileNotFoundError, ValueError) as err:
            raise checks.InputError(str(err)) from None
    elif cfg.init != "none":
        checks.input_path(cfg.init, "--init")
    outcome = train(cfg, progress=True, hooks=hooks)
    print(format_summary(outcome))
    return 0
