"""`mer-ray make-sample OUT`: write the synthetic RAVDESS-layout sample set."""
from __future__ import annotations

import argparse
import sys
import time

NAME = "make-sample"
HELP = "write a deterministic synthetic RAVDESS-layout sample set (Actor_XX/*.mp4), offline"


def parse_size(text: str) -> tuple[int, int]:
    """'480x360' -> (480, 360)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 480x360, got {text!r}") from None
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mer_ray.sample import SampleConfig

    d = SampleConfig()
    parser.add_argument("out", help="output folder (Actor_XX/ sub-folders are created)")
    parser.add_argument("--actors", type=int, default=d.actors,
                        help=f"number of actors, 1-24; the first 5 cover all 5 actor folds (default {d.actors})")
    parser.add_argument("--clips-per-emotion", type=int, default=d.clips_per_emotion,
                        help=f"clips per actor and emotion (default {d.clips_per_emotion})")
    parser.add_argument("--seconds", type=float, default=d.seconds, help=f"clip length (default {d.seconds})")
    parser.add_argument("--size", type=parse_size, default=(d.width, d.height), metavar="WxH",
                        help=f"frame size, even numbers (default {d.width}x{d.height}; 1280x720 like RAVDESS)")
    parser.add_argument("--fps", type=float, default=d.fps, help=f"frame rate (default {d.fps:g})")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    parser.add_argument("--workers", type=int, default=None, help="clips written in parallel (default: CPU count)")
    parser.add_argument("--bad-inputs", action="store_true",
                        help="also write broken / edge-case inputs to OUT/bad_inputs/")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mer_ray.sample import SampleConfig, make_bad_inputs, make_sample

    from mer_ray.commands import checks

    checks.out_folder(args.out, "OUT")
    width, height = args.size
    cfg = SampleConfig(actors=args.actors, clips_per_emotion=args.clips_per_emotion,
                       seconds=args.seconds, width=width, height=height, fps=args.fps,
                       seed=args.seed, workers=args.workers)
    try:
        cfg.validate()
    except ValueError as exc:
        print(f"mer-ray make-sample: error: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    paths = make_sample(args.out, cfg)
    extra = ""
    if args.bad_inputs:
        bad = make_bad_inputs(Path(args.out) / "bad_inputs", cfg)
        extra = f" + {len(bad)} bad inputs in {Path(args.out) / 'bad_inputs'}"
    size_mb = sum(p.stat().st_size for p in paths) / 2**20
    print(f"wrote {len(paths)} clips ({cfg.actors} actors x 7 emotions x {cfg.clips_per_emotion}, "
          f"{cfg.seconds:g} s, {width}x{height} @ {cfg.fps:g} fps, {size_mb:.1f} MiB) to {args.out}"
          f"{extra} in {time.perf_counter() - start:.1f} s")
    return 0
