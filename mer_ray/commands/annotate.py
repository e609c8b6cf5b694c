"""`mer-ray annotate VIDEO --visual RUN --audio RUN -o OUT.mp4`: draw boxes and emotions;
`mer-ray annotate VIDEO --scores SCORES -o OUT.mp4`: draw that video's scored segments."""
from __future__ import annotations

import argparse

from mer_ray.commands.extract_args import add_extract_arguments, extract_options_from_args

NAME = "annotate"
HELP = "write a copy of a video with face boxes, per-keyframe and fused emotions drawn (audio kept)"
ANNOTATE_EXTRACT_FLAGS = ("skip", "max_keyframes", "detect_width")
"""ExtractOptions fields that are flags here (one video: the limits keep their defaults)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="input video")
    p.add_argument("-o", "--out", required=True, help="output .mp4")
    p.add_argument("--scores", default=None,
                   help="a `mer-ray score --segments` output holding this video: draw its "
                        "segments as the video plays (fused label per face track, modality, "
                        "voice) and, when scored with --timeline, a box and label per face "
                        "track; nothing is scored again (no --visual / --audio)")
    from mer_ray.models.bundled import MODEL_HELP

    p.add_argument("--visual", help=MODEL_HELP.format(kind="visual"))
    p.add_argument("--audio", help=MODEL_HELP.format(kind="audio"))
    p.add_argument("--fusion-weights", default="0.5,0.5",
                   help="weights of the visual and audio predictions in the fused decision: "
                        "'w_visual,w_audio' or a JSON file from tune-fusion (default: %(default)s)")
    add_extract_arguments(p, only=ANNOTATE_EXTRACT_FLAGS)


def run(args: argparse.Namespace) -> int:
    from mer_ray.config import AnnotateConfig
    from mer_ray.runtime import configure_process
    from mer_ray.score.annotate import annotate

    from mer_ray.commands import checks
    from mer_ray.models.bundled import resolve_model, resolve_pair

    checks.input_path(args.video, "video")
    checks.out_file(args.out, "-o")
    if args.scores is not None:
        return run_from_scores(args)
    w = checks.fusion_weights(args.fusion_weights)
    try:
        pair = resolve_pair(args.visual, args.audio)
    except ValueError as err:
        raise checks.UsageError(str(err)) from None
    for value, kind in zip(pair, ("visual", "audio")):
        checks.model_dir(value, kind)
    visual, audio = (resolve_model(v, kind) if v else None for v, kind in
                     zip(pair, ("visual", "audio")))
    configure_process()
    result = annotate(AnnotateConfig(video=args.video, out=args.out, visual=visual,
                                     audio=audio, w_visual=w.visual, w_audio=w.audio,
                                     extract=extract_options_from_args(args)))
    print(f"{result.emotion} ({result.arousal} arousal, {result.fusion_mode}); "
          f"{result.faces}/{result.keyframes} keyframes with a face; wrote {result.out}")
    return 0


def run_from_scores(args: argparse.Namespace) -> int:
    """annotate --scores: the video's segment rows (and timeline boxes) drawn on it."""
    from mer_ray.api import load_segments, load_timeline
    from mer_ray.commands import checks
    from mer_ray.score.annotate import annotate_segments

    if args.visual is not None or args.audio is not None:
        raise checks.UsageError("--scores draws the labels already scored; it takes no "
                                "--visual / --audio")
    checks.score_output(args.scores, "--scores")
    segments = load_segments(args.scores, video_id=args.video)
    path = segments["path"].iloc[0]
    timeline = load_timeline(args.scores)
    keyframes = timeline[timeline["path"] == path] if path is not None else timeline.iloc[:0]
    result = annotate_segments(args.video, args.out, segments.to_dict("records"),
                               keyframes.to_dict("records"))
    boxes = "" if result.boxes else " (no face boxes: score with --timeline to draw them)"
    print(f"{result.segments} segments, {result.tracks} face track(s), mostly "
          f"{result.dominant_emotion or 'no emotion'}; wrote {result.out}{boxes}")
    return 0
