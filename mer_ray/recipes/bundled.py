"""Make the bundled models: ``python -m mer_ray.recipes.bundled --data DATA --out DIR``.

``DATA`` holds ``fer2013/{train,validation}`` and ``ravdess-speech/Actor_XX``. Each model is
written to ``DIR/<name>/`` as a normal run directory (bundle.json, model file, metrics.json,
history, pictures) with its run log (``run_log.txt``) beside it; the model cards
(``MODEL_CARD.md``) are written by hand from those figures.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


class RunLog:
    """Prints a line and appends it, time-stamped, to a run_log.txt."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.path.write_text("")

    def __call__(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(line, flush=True)
        with self.path.open("a") as fh:
            fh.write(f"{stamp} {line}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mer_ray.recipes.bundled",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder with fer2013/ and ravdess-speech/")
    parser.add_argument("--out", required=True, help="where the model folders are written")
    parser.add_argument("--only", choices=["visual", "audio"], help="make one model only")
    parser.add_argument("--epochs", type=int, default=None, help="visual epochs (default: recipe's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.only in (None, "visual"):
        from dataclasses import replace

        from mer_ray.recipes.visual_fer import FerRecipe, train_visual

        recipe = FerRecipe(seed=args.seed)
        if args.epochs:
            recipe = replace(recipe, epochs=args.epochs)
        log = RunLog(out / "visual" / "run_log.txt")
        log(f"visual recipe: {recipe}")
        train_visual(args.data, str(out / "visual"), recipe, log)
    if args.only in (None, "audio"):
        from mer_ray.recipes.audio_ravdess import make_audio_bundles

        make_audio_bundles(args.data, out, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
