"""`mer-ray export SCORES --csv OUT.csv [--timeline]`: a score output as one flat CSV table."""
from __future__ import annotations

import argparse

NAME = "export"
HELP = ("write a score output (the --out folder of score) as a flat CSV for spreadsheets: one "
        "row per input, or per keyframe with --timeline; probabilities one column per class")

LIST_COLUMNS = {
    # column of 7 probabilities -> prefix of its per-class columns
    "visual_probs": "visual_p_",
    "audio_probs": "audio_p_",
    "probs": "p_",
}
BOX_COLUMNS = ("box_x", "box_y", "box_w", "box_h")
DROPPED = ("audio_input",)
"""Not exported: the raw audio vector a speaker-normalised model is fed (hundreds of numbers)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scores", metavar="SCORES", help="a score output folder (or URI): the --out "
                   "of mer-ray score")
    p.add_argument("--csv", required=True, metavar="OUT.csv",
                   help="the CSV file to write ('-' for standard output)")
    p.add_argument("--timeline", action="store_true",
                   help="export the per-keyframe timeline (score --timeline) instead of the "
                        "one-row-per-input scores")


def flatten(df):
    """A copy of a scores or timeline DataFrame without list columns: each 7-probability list
    becomes one column per class (``visual_probs`` -> ``visual_p_angry`` ...; the timeline's
    ``probs`` -> ``p_angry`` ...), ``box`` becomes box_x, box_y, box_w, box_h, and the raw
    ``audio_input`` vector is left out. Empty cells where the list was null."""
    import pandas as pd

    from mer_ray.config import EMOTIONS

    out = df.drop(columns=[c for c in DROPPED if c in df.columns])
    for column in list(out.columns):
        if column in LIST_COLUMNS:
            names = [f"{LIST_COLUMNS[column]}{e}" for e in EMOTIONS]
        elif column == "box":
            names = list(BOX_COLUMNS)
        else:
            continue
        values = [list(v) if v is not None and len(v) == len(names) else [None] * len(names)
                  for v in out[column]]
        wide = pd.DataFrame(values, columns=names, index=out.index)
        at = out.columns.get_loc(column)
        out = pd.concat([out.iloc[:, :at], wide, out.iloc[:, at + 1:]], axis=1)
    return out


def run(args: argparse.Namespace) -> int:
    import sys

    from mer_ray.api import load_scores, load_timeline
    from mer_ray.commands import checks

    checks.input_path(args.scores, "SCORES")
    if args.csv != "-":
        checks.out_file(args.csv, "--csv")
    if args.timeline:
        df = load_timeline(args.scores)
        df = df.sort_values(["path", "frame_index"], kind="stable")
    else:
        df = load_scores(args.scores).sort_values("path", kind="stable")
    table = flatten(df.reset_index(drop=True))
    if args.csv == "-":
        table.to_csv(sys.stdout, index=False)
    else:
        from pathlib import Path

        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)
        what = "keyframes" if args.timeline else "inputs"
        print(f"{len(table)} {what}, {len(table.columns)} columns -> {args.csv}")
    return 0
