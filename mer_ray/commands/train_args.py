"""Command-line options shared by train-visual and train-audio, and their closing summary text."""
from __future__ import annotations

import argparse

from mer_ray.config import PROTOCOLS, RayConfig

VAL_CHOICES = ("group", "rows", "none")


def add_common_arguments(p: argparse.ArgumentParser, *, epochs: int, batch_size: int,
                         checkpoint_every: int) -> None:
    from mer_ray.commands.preprocess import add_ray_arguments

    p.add_argument("shards", help="a `mer-ray preprocess` / `ingest-images` output directory (path or URI)")
    p.add_argument("--out", required=True, help="run directory (model.keras, metrics.json, ...); a URI is written "
                        "locally and uploaded at the end, bundle.json last")
    p.add_argument("--protocol", default="actor5fold", choices=PROTOCOLS,
                   help="actor5fold (default, actor-independent), loso (leave one actor out), "
                        "thesis (random 80/20 over rows: leaky, for reproducing the thesis)")
    p.add_argument("--fold", default=None,
                   help="actor5fold: test fold 0..4 (default 0); loso: the held-out actor number "
                        "or speaker id")
    p.add_argument("--val", default="group", choices=VAL_CHOICES,
                   help="validation for best-epoch selection: group (other actors, default), "
                        "rows (10%% of training clips), none (keep the last epoch)")
    p.add_argument("--epochs", type=int, default=epochs,
                   help=f"training epochs (default {epochs}, the thesis's)")
    p.add_argument("--batch-size", type=int, default=batch_size,
                   help=f"global batch, split over workers (default {batch_size}, thesis)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 0.001)")
    p.add_argument("--workers", type=int, default=1, help="Ray Train workers (default 1)")
    p.add_argument("--gpu", action="store_true", help="one GPU per worker")
    p.add_argument("--cpus-per-worker", type=float, default=None,
                   help="default: 1, or less on a small machine so Ray Data keeps a CPU")
    p.add_argument("--max-failures", type=int, default=2,
                   help="worker failures Ray Train recovers from, resuming from the last "
                        "checkpoint (default: %(default)s)")
    p.add_argument("--checkpoint-every", type=int, default=checkpoint_every,
                   help=f"epochs between checkpoints (default {checkpoint_every})")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep the last Ray Train checkpoint (OUT/_ray) after success")
    p.add_argument("--storage", default=None,
                   help="Ray Train storage path or URI (default OUT/_ray; use shared storage on a "
                        "cluster)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the split, the shuffling and the model's starting "
                        "weights (default: %(default)s)")
    add_ray_arguments(p)


def common_kwargs(args: argparse.Namespace) -> dict:
    fold = args.fold
    if fold is None:
        fold = "0" if args.protocol == "actor5fold" else None
    if args.protocol == "loso" and fold is None:
        from mer_ray.commands.checks import UsageError

        raise UsageError("--protocol loso needs --fold ACTOR (the held-out actor or speaker)")
    return dict(shards=args.shards, out=args.out, protocol=args.protocol, fold=fold, val=args.val,
                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, workers=args.workers,
                gpu=args.gpu, cpus_per_worker=args.cpus_per_worker,
                max_failures=args.max_failures, checkpoint_every=args.checkpoint_every,
                keep_checkpoints=args.keep_checkpoints, storage=args.storage, seed=args.seed,
                ray=RayConfig(address=args.address, num_cpus=args.num_cpus,
                              host=args.host))


def _protocol_text(m: dict) -> str:
    """``protocol actor5fold fold 0`` (and the leaky warning for a random split)."""
    fold = "" if m["fold"] is None else f" fold {m['fold']}"
    leaky = "  [LEAKY: random split over rows]" if m["leaky"] else ""
    return f"protocol {m['protocol']}{fold}{leaky}"


def _test_text(m: dict) -> str:
    """Test accuracy vs chance and macro F1, ending in ``; ``."""
    return (f"test accuracy {m['accuracy']:.3f} (chance {m['chance_level']:.3f}, n={m['n']}), "
            f"macro F1 {m['macro']['f1']:.3f}; ")


def format_summary(outcome) -> str:
    """A few lines: test accuracy vs chance, protocol (and the leaky warning), run directory."""
    from mer_ray.report.plots import best_epoch_text

    m = outcome.metrics
    lines = [f"{m['kind']} model, {_protocol_text(m)}",
             f"{_test_text(m)}{best_epoch_text(m['best_epoch'], m['epochs_run'])}"
             f"{' (resumed after a failure)' if m['resumed'] else ''}"]
    if "video_level" in m:
        v = m["video_level"]
        lines.append(f"per video (mean of frames): accuracy {v['accuracy']:.3f} "
                     f"(chance {v['chance_level']:.3f}, n={v['n']})")
    lines.append(f"run directory: {outcome.run_dir}")
    return "\n".join(lines)


def format_outcome(outcome) -> str:
    """The train-audio CLI's closing lines (either classifier)."""
    m = outcome.metrics
    norm = ", speaker-normalised" if m.get("speaker_norm") else ""
    if m.get("classifier") != "svm":
        return f"{m.get('recipe', 'thesis')} recipe, MLP{norm}\n" + format_summary(outcome)
    return "\n".join([
        f"audio model ({m['recipe']} recipe, SVM{norm}), {_protocol_text(m)}",
        f"{_test_text(m)}fitted in {m['fit_s']:.1f} s",
        f"run directory: {outcome.run_dir}"])
