"""`mer-ray train-audio SHARDS --out RUN [--recipe rich|thesis] [--classifier svm|mlp]
[--speaker-norm]`: an audio emotion model on the clips' stored feature vectors.

--recipe rich (default): the 735-D utterance statistics + prosody (media/audio_rich.py), RBF
SVM by default (fitted on the driver). --recipe thesis: the 162-D features + Table 4.4 MLP on
Ray Train, exactly as the thesis (with augmented copies)."""
from __future__ import annotations

import argparse

NAME = "train-audio"
HELP = ("train an audio emotion model: --recipe rich (default, 735 features + SVM) or thesis "
        "(the thesis's 162 features + its MLP, thesis Table 4.4, on Ray Train)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mer_ray.media.audio_recipes import AUDIO_RECIPES
    from mer_ray.commands.train_args import add_common_arguments
    from mer_ray.train.tasks import AUDIO_CLASSIFIERS

    add_common_arguments(p, epochs=800, batch_size=32, checkpoint_every=10)
    p.add_argument("--recipe", default="rich", choices=list(AUDIO_RECIPES),
                   help="rich (default): 735-D utterance statistics + prosody, generalises "
                        "better to unseen speakers; thesis: the thesis' 162-D features")
    p.add_argument("--classifier", default=None, choices=list(AUDIO_CLASSIFIERS),
                   help="svm (RBF kernel, fitted on the driver; default for rich) or mlp (the "
                        "thesis's MLP, layer sizes of thesis Table 4.4, on Ray Train; default "
                        "for thesis). --epochs etc. apply to mlp only")
    p.add_argument("--speaker-norm", action="store_true",
                   help="z-score each speaker's clips with that speaker's own (unlabeled) clip "
                        "statistics. Helps only with many emotionally varied clips per "
                        "speaker; off by default. `mer-ray score` scores such models in two "
                        "passes (statistics over every scored clip of each speaker); "
                        "`annotate` (one video) cannot")
    p.add_argument("--feature-column", default=None,
                   help="clips column with the feature vectors (default: the recipe's, "
                        "audio_rich_features / audio_features)")
    p.add_argument("--no-augmented", action="store_true",
                   help="thesis recipe: train on original vectors only (thesis: 38 %% without "
                        "augmentation); the rich recipe never has augmented copies")


def config_from_args(args: argparse.Namespace):
    """The resolved TrainAudioConfig (recipe defaults filled in); UsageError for settings
    that contradict each other."""
    from mer_ray.commands.checks import UsageError
    from mer_ray.config import TrainAudioConfig
    from mer_ray.commands.train_args import common_kwargs
    from mer_ray.train.tasks import task_for

    try:
        cfg = TrainAudioConfig(**common_kwargs(args), feature_column=args.feature_column,
                               use_augmented=False if args.no_augmented else None,
                               recipe=args.recipe, classifier=args.classifier,
                               speaker_norm=args.speaker_norm)
        return task_for(cfg).cfg
    except ValueError as err:
        raise UsageError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    from mer_ray.commands import checks
    from mer_ray.commands.train_args import format_outcome
    from mer_ray.data.schema import CLIPS_DIR
    from mer_ray.train.runner import train

    checks.shards(args.shards, CLIPS_DIR)
    checks.out_folder(args.out)
    outcome = train(config_from_args(args), progress=True)
    print(format_outcome(outcome))
    return 0
