"""Real-data figure: the audio MLP on RAVDESS speech, leave-one-actor-out over the actors present.

    mer-ray preprocess ../shared/data/ravdess-speech --out /tmp/ravdess_shards
    python benchmarks/audio_ravdess.py /tmp/ravdess_shards --out /tmp/ravdess_runs

Trains one run per held-out actor (thesis settings unless changed: 800 epochs, batch 32,
Adam 1e-3, augmented copies for training rows only, standardisation on training rows only) and
prints per-fold test accuracy, chance level (majority class of the test actor) and the mean.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MER_RAY_PROGRESS", "0")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("shards")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=800)
    p.add_argument("--val", default="group", choices=["group", "rows", "none"])
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-augmented", action="store_true")
    args = p.parse_args()

    import numpy as np

    from mer_ray.config import TrainAudioConfig
    from mer_ray.train.data import load_metadata
    from mer_ray.train.runner import train

    actors = sorted({a for a in load_metadata(args.shards, "audio")["actor"].to_pylist()
                     if a is not None})
    folds = []
    for actor in actors:
        cfg = TrainAudioConfig(shards=args.shards, out=f"{args.out}/loso-actor{actor:02d}",
                               protocol="loso", fold=str(actor), val=args.val,
                               epochs=args.epochs, workers=args.workers,
                               use_augmented=not args.no_augmented, checkpoint_every=50)
        m = train(cfg).metrics
        folds.append({"actor": actor, "accuracy": m["accuracy"], "chance": m["chance_level"],
                      "macro_f1": m["macro"]["f1"], "n_test": m["n"],
                      "n_train_rows": m["counts"]["train"]["rows_with_augmented"],
                      "best_epoch": m["best_epoch"]})
        print(json.dumps(folds[-1]), flush=True)
    summary = {"protocol": "loso", "val": args.val, "epochs": args.epochs, "folds": folds,
               "mean_accuracy": float(np.mean([f["accuracy"] for f in folds])),
               "mean_chance": float(np.mean([f["chance"] for f in folds])),
               "mean_macro_f1": float(np.mean([f["macro_f1"] for f in folds]))}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "loso_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"mean accuracy {summary['mean_accuracy']:.3f} (chance {summary['mean_chance']:.3f}, "
          f"macro F1 {summary['mean_macro_f1']:.3f}) over {len(folds)} held-out actors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
