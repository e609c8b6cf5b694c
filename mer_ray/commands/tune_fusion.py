"""`mer-ray tune-fusion SCORES`: choose Alg. 3.9's weights on labelled validation rows."""
from __future__ import annotations

import argparse

NAME = "tune-fusion"
HELP = ("pick the fusion weights (w_visual, w_audio: how much each model counts in the fused "
        "decision) on a grid, using labelled validation rows")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scores", help="output folder of `mer-ray score` over validation videos")
    p.add_argument("--labels", default="auto",
                   help="auto (labels stored when scoring), ravdess (parse file names), or a CSV "
                        "manifest with path,label columns (default: %(default)s)")
    p.add_argument("--step", type=float, default=0.05, help="grid step for w_visual (default 0.05)")
    p.add_argument("--speakers", default=None,
                   help="comma-separated speakers/actors (e.g. 01,02) to tune on; default all rows")
    p.add_argument("--out", default=None, help="JSON file (default: SCORES/fusion_weights.json)")


def run(args: argparse.Namespace) -> int:
    from mer_ray.commands import checks
    from mer_ray.config import TuneFusionConfig
    from mer_ray.score.tune import tune_fusion

    checks.score_output(args.scores)
    if args.out is not None:
        checks.out_file(args.out)
    speakers = tuple(s.strip() for s in args.speakers.split(",")) if args.speakers else None
    result = tune_fusion(TuneFusionConfig(scores=args.scores, out=args.out, labels=args.labels,
                                          step=args.step, speakers=speakers))
    w, base = result["weights"], result["thesis_weights"]
    print(f"best on {result['n_rows']} rows: w_visual={w['visual']:.2f} w_audio={w['audio']:.2f} "
          f"accuracy {result['accuracy']:.3f} (thesis 0.5/0.5: {base['accuracy']:.3f})")
    print(f"weights: {result['path']}  (use: mer-ray score ... --fusion-weights {result['path']})")
    return 0
