"""`mer-ray plot-timeline SCORES VIDEO -o timeline.png`: one video's emotion over time."""
from __future__ import annotations

import argparse
import os

NAME = "plot-timeline"
HELP = ("draw one video's emotion over time as a picture: face probabilities per track, voice "
        "probabilities and the fused label as a band (from `score --segments`)")
FORMATS = (".png", ".svg", ".pdf")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scores", help="a `mer-ray score --segments` output folder")
    p.add_argument("video", metavar="VIDEO_ID",
                   help="the video: its video_id, its path as given to score, or its file name")
    p.add_argument("-o", "--out", required=True,
                   help="picture to write (.png; .svg and .pdf work too)")


def check_out(out: str) -> None:
    """``-o`` names a picture file in a folder that exists or can be made."""
    from mer_ray.commands import checks

    checks.out_file(out, "-o")
    if os.path.splitext(out)[1].lower() not in FORMATS:
        raise checks.UsageError(f"-o {out}: give a file name ending in {', '.join(FORMATS)}")
    folder = os.path.dirname(os.path.abspath(out))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise checks.InputError(f"-o {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise checks.InputError(f"-o {out}: cannot write in {existing}")


def keyframes_of(scores: str, segments) -> object | None:
    """The timeline rows (per keyframe) of the plotted video, or None without a timeline."""
    from mer_ray.api import load_timeline

    path = segments["path"].iloc[0]
    timeline = load_timeline(scores)
    rows = timeline[timeline["path"] == path] if path is not None else timeline.iloc[:0]
    return rows.reset_index(drop=True) if len(rows) else None


def run(args: argparse.Namespace) -> int:
    from mer_ray.api import load_segments
    from mer_ray.commands import checks
    from mer_ray.report.timeline_plot import plot_timeline

    checks.score_output(args.scores)
    check_out(args.out)
    segments = load_segments(args.scores, video_id=args.video)
    keyframes = keyframes_of(args.scores, segments)
    video_id = str(segments["video_id"].iloc[0])
    name = segments["path"].iloc[0] or video_id
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    plot_timeline(segments, video_id, args.out, keyframes=keyframes,
                  title=f"{os.path.basename(str(name))} ({video_id})")
    tracks = sorted({int(t) for t in segments["track_id"] if t >= 0})
    print(f"{name}: {segments['segment_index'].nunique()} "
          f"segments, {len(tracks)} face track(s)"
          f"{', keyframe dots' if keyframes is not None else ''}; wrote {args.out}")
    return 0
