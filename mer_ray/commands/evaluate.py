"""`mer-ray evaluate SCORES`: metrics.json + report.html + confusion PNGs from a score output."""
from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = "metrics (per path and fused), confusion pictures and an HTML report for a score output"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scores", help="output folder of `mer-ray score`")
    p.add_argument("--labels", default="auto",
                   help="auto (labels stored when scoring), ravdess (parse file names), "
                        "or a CSV manifest with path,label columns (default: %(default)s)")
    p.add_argument("--out", default=None, help="report folder (default: SCORES/report)")


def skipped_line(paths: list[str]) -> str:
    """What evaluate says about damaged shards it left out of the metrics."""
    n = len(paths)
    return (f"skipped {n} damaged shard{'s' if n != 1 else ''} (rows not counted; the next "
            f"`mer-ray score` into this folder redoes them): {', '.join(paths)}")


def run(args: argparse.Namespace) -> int:
    from mer_ray.commands import checks
    from mer_ray.config import EvaluateConfig
    from mer_ray.score.evaluate import evaluate
    from mer_ray.score.results import damaged_shards

    checks.score_output(args.scores)
    checks.out_folder(args.out)
    metrics = evaluate(EvaluateConfig(scores=args.scores, out=args.out, labels=args.labels))
    skipped = metrics.get("skipped_shards")
    skipped = damaged_shards(args.scores) if skipped is None else skipped
    if skipped:
        print(skipped_line(skipped))
    for name, m in metrics["sections"].items():
        print(f"{m['title']:<52} n={m['n']:<6} accuracy {m['accuracy']:.3f}  "
              f"macro F1 {m['macro']['f1']:.3f}")
    if not metrics["sections"]:
        print("no labelled rows: nothing to evaluate (try --labels ravdess or a manifest)")
    print(f"report: {metrics['report']}")
    return 0
