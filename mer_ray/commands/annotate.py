"""`mer-ray annotate VIDEO --visual RUN --audio RUN -o OUT.mp4`: draw boxes and emotions."""
from __future__ import annotations

import argparse

from mer_ray.config import DETECT_WIDTH, SKIP_NO

NAME = "annotate"
HELP = "write a copy of a video with face boxes, per-keyframe and fused emotions drawn (audio kept)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="input video")
    p.add_argument("-o", "--out", required=True, help="output .mp4")
    p.add_argument("--visual", help="visual model run directory (path or URI)")
    p.add_argument("--audio", help="audio model run directory (path or URI)")
    p.add_argument("--fusion-weights", default="0.5,0.5",
                   help="'w_visual,w_audio' or a JSON file from tune-fusion")
    p.add_argument("--skip", type=int, default=SKIP_NO, help="keep every SKIP-th frame (thesis: 10)")
    p.add_argument("--max-keyframes", type=int, default=512)
    p.add_argument("--detect-width", type=int, default=DETECT_WIDTH,
                   help="face detection runs on a grey frame scaled to this width")


def run(args: argparse.Namespace) -> int:
    from mer_ray.config import AnnotateConfig
    from mer_ray.runtime import configure_process
    from mer_ray.score.annotate import annotate
    from mer_ray.score.fusion import FusionWeights

    if not args.visual and not args.audio:
        raise SystemExit("annotate: give --visual RUN_DIR and/or --audio RUN_DIR")
    configure_process()
    w = FusionWeights.parse(args.fusion_weights)
    result = annotate(AnnotateConfig(video=args.video, out=args.out, visual=args.visual,
                                     audio=args.audio, w_visual=w.visual, w_audio=w.audio,
                                     skip=args.skip, max_keyframes=args.max_keyframes,
                                     detect_width=args.detect_width or None))
    print(f"{result.emotion} ({result.arousal} arousal, {result.fusion_mode}); "
          f"{result.faces}/{result.keyframes} keyframes with a face; wrote {result.out}")
    return 0
