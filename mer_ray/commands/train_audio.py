"""`mer-ray train-audio SHARDS --out RUN`: the Table 4.4 MLP on 162-D audio features (Ray Train)."""
from __future__ import annotations

import argparse

NAME = "train-audio"
HELP = "train the audio MLP (thesis Table 4.4) on the clips' audio features on Ray Train"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mer_ray.train.options import add_common_arguments

    add_common_arguments(p, epochs=800, batch_size=32, checkpoint_every=10)
    p.add_argument("--feature-column", default="audio_features",
                   help="clips column with the feature vectors (default audio_features)")
    p.add_argument("--no-augmented", action="store_true",
                   help="train on original vectors only (thesis: 38 %% without augmentation)")


def config_from_args(args: argparse.Namespace):
    from mer_ray.config import TrainAudioConfig
    from mer_ray.train.options import common_kwargs

    return TrainAudioConfig(**common_kwargs(args), feature_column=args.feature_column,
                            use_augmented=not args.no_augmented)


def run(args: argparse.Namespace) -> int:
    from mer_ray.train.options import format_summary
    from mer_ray.train.runner import train

    outcome = train(config_from_args(args), progress=True)
    print(format_summary(outcome))
    return 0
