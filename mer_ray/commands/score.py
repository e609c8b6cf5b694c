"""`mer-ray score ARCHIVE --visual RUN --audio RUN --out DIR`: batch inference + Alg. 3.9 fusion."""
from __future__ import annotations

import argparse

from mer_ray.commands.extract_args import add_extract_arguments, extract_options_from_args
from mer_ray.config import RayConfig, ScoreConfig
from mer_ray.media.options import FACE_MODES

MAX_FACES = 4
"""--max-faces default."""

NAME = "score"
HELP = ("score a video archive with both models (Ray Data) and fuse their predictions "
        "(weighted decision fusion, thesis Alg. 3.9): one Parquet row per input")
SCORE_EXTRACT_FLAGS = ("skip", "max_keyframes", "max_audio_s", "detect_width", "redetect_every",
                       "max_file_mb")
"""ExtractOptions fields that are flags here (scoring stores no augmented or extra vectors)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mer_ray.commands.preprocess import add_allow_empty, add_dry_run, add_ray_arguments

    p.add_argument("source", help="folder of videos/audio (recursive), a glob, or a CSV manifest; "
                        "local or a URI (s3://, gs://, file://)")
    from mer_ray.models.bundled import MODEL_HELP

    p.add_argument("--visual", help=MODEL_HELP.format(kind="visual"))
    p.add_argument("--audio", help=MODEL_HELP.format(kind="audio") + ". The bundled voice model "
                   "switches to its speaker-normalised twin when every input has a known speaker "
                   "(RAVDESS actor, a manifest's speaker column) with enough clips")
    p.add_argument("--out", required=True, help="output folder (or URI); re-running resumes")
    p.add_argument("--corpus", default="auto", choices=["auto", "ravdess", "manifest", "folder"],
                   help="where true labels come from, for evaluate: auto (default) takes them "
                        "from RAVDESS file names where those parse, ravdess requires RAVDESS "
                        "names (others are dropped), manifest reads a CSV with "
                        "path,label[,speaker], folder gives no labels")
    p.add_argument("--fusion-weights", default="0.5,0.5",
                   help="weights of the visual and audio predictions in the fused decision: "
                        "'w_visual,w_audio' or a JSON file from tune-fusion (default: "
                        "%(default)s, as in the thesis)")
    p.add_argument("--timeline", action="store_true", help="also write one row per keyframe")
    p.add_argument("--segments", type=float, default=None, metavar="W",
                   help="also score the video in windows of W seconds: one row per (window, "
                        "face track) in OUT/segments/ (mean face probabilities, the window's "
                        "audio, their fusion), and each video's share of time per emotion; the "
                        "whole audio track is decoded")
    p.add_argument("--hop", type=float, default=None, metavar="H",
                   help="with --segments: seconds from one window's start to the next "
                        "(default: W, windows side by side; less than W overlaps them)")
    p.add_argument("--faces", default="largest", choices=list(FACE_MODES),
                   help="largest (default): the largest face of each keyframe; all: every "
                        "face (up to --max-faces), linked across keyframes into face tracks")
    p.add_argument("--max-faces", type=int, default=None, metavar="N",
                   help=f"with --faces all: faces per keyframe at most (default: {MAX_FACES})")
    p.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="GPUs per visual model actor (e.g. 1, or 0.5 to run two per GPU; default: "
                        "%(default)s, CPU only)")
    p.add_argument("--audio-gpus", type=float, default=0.0,
                   help="GPUs per audio model actor (default: %(default)s; the audio models "
                        "are small and run well on CPU)")
    p.add_argument("--visual-workers", type=int, default=1,
                   help="visual model actors, each holding one copy of the model (default: "
                        "%(default)s)")
    p.add_argument("--audio-workers", type=int, default=1,
                   help="audio model actors, each holding one copy of the model (default: "
                        "%(default)s)")
    p.add_argument("--extract-workers", type=int, default=None,
                   help="decode/face/audio-feature actors (default: the CPUs the models leave)")
    p.add_argument("--model-cpus", type=float, default=None,
                   help="CPUs reserved per model actor (default 0.25 on CPU, 1 with a GPU)")
    p.add_argument("--visual-batch", type=int, default=8,
                   help="videos per visual model call (default: %(default)s)")
    p.add_argument("--audio-batch", type=int, default=64,
                   help="videos per audio model call (default: %(default)s)")
    p.add_argument("--videos-per-shard", type=int, default=64,
                   help="output rows per Parquet shard, also the unit a re-run resumes from "
                        "(default: %(default)s)")
    p.add_argument("--in-process-max", type=int, default=ScoreConfig.in_process_max, metavar="N",
                   help="with no cluster address and no GPU asked for, archives with at most N "
                        "inputs left are scored without starting Ray: the same stages, with "
                        "extraction processes and the models in this process (default: "
                        "%(default)s; 0: always Ray)")
    add_allow_empty(p, "ARCHIVE")
    add_dry_run(p, "score")
    add_extract_arguments(p, only=SCORE_EXTRACT_FLAGS)
    add_ray_arguments(p)


def config_from_args(args: argparse.Namespace) -> ScoreConfig:
    from mer_ray.models.bundled import resolve_pair
    from mer_ray.score.fusion import FusionWeights

    weights = FusionWeights.parse(args.fusion_weights)
    visual, audio = resolve_pair(args.visual, args.audio)
    return ScoreConfig(
        source=args.source, out=args.out, visual=visual, audio=audio, corpus=args.corpus,
        w_visual=weights.visual, w_audio=weights.audio, timeline=args.timeline,
        gpus_per_worker=args.gpus_per_worker, audio_gpus=args.audio_gpus,
        visual_workers=args.visual_workers,
        audio_workers=args.audio_workers, model_cpus=args.model_cpus,
        extract_workers=args.extract_workers, visual_batch_videos=args.visual_batch,
        audio_batch_videos=args.audio_batch, videos_per_shard=args.videos_per_shard,
        in_process_max=args.in_process_max,
        extract=extract_options_from_args(
            args, face_mode=args.faces, segment_s=args.segments, hop_s=args.hop,
            max_faces=MAX_FACES if args.max_faces is None else args.max_faces),
        allow_empty=args.allow_empty,
        ray=RayConfig(address=args.address, num_cpus=args.num_cpus, host=args.host))


def check_segment_flags(args: argparse.Namespace) -> None:
    """--segments / --hop / --faces / --max-faces make sense together (UsageError if not)."""
    import math

    from mer_ray.commands.checks import UsageError

    for flag, value in (("--segments", args.segments), ("--hop", args.hop)):
        if value is not None and not (math.isfinite(value) and value >= 0.001):
            raise UsageError(f"{flag} must be a number of seconds >= 0.001, got {value:g}")
    if args.hop is not None and args.segments is None:
        raise UsageError("--hop needs --segments W (the window length)")
    if args.max_faces is not None:
        if args.faces != "all":
            raise UsageError("--max-faces needs --faces all")
        if args.max_faces < 1:
            raise UsageError(f"--max-faces must be at least 1, got {args.max_faces}")


def format_summary(summary: dict) -> str:
    """Human lines from summary.json."""
    status = ", ".join(f"{k} {v}" for k, v in summary["status"].items())
    modes = ", ".join(f"{k} {v}" for k, v in summary["fusion_mode"].items())
    run = summary["this_run"]
    speed = f"{run['videos_per_s']} videos/s" if run["videos_per_s"] else "-"
    if run["scored"] and run.get("on_ray") is False:
        speed += ", without Ray"
    norm = summary.get("speaker_norm")
    norm_line = "" if norm is None else (
        f"speaker-normalised audio: {norm['clips']} clips of {norm['speakers']} speakers "
        f"({len(norm['speakers_with_few_clips'])} with < {norm['min_clips_advised']} clips)\n")
    orphans = summary.get("rows_without_input")
    orphan_line = (f"{orphans} committed rows have no input in this listing (kept; delete "
                   "the output to drop them)\n" if orphans else "")
    moved = (summary.get("damaged_shards") or {}).get("moved_to") or []
    moved_line = (f"moved {len(moved)} damaged shard file(s) aside, their inputs scored again: "
                  f"{', '.join(moved)}\n" if moved else "")
    return (f"{summary['rows']} rows for {summary['inputs_listed']} inputs ({status})\n"
            f"{orphan_line}{moved_line}"
            f"fusion: {modes}\n{norm_line}"
            f"this run: {run['scored']} scored in {run['seconds']} s ({speed})\n"
            f"scores: {summary['out']}/scores/  summary: {summary['out']}/summary.json"
            + (f"\nsegments: {summary['segments']} rows in {summary['out']}/segments/"
               if summary.get("segments") is not None else ""))


def run(args: argparse.Namespace) -> int:
    from mer_ray.commands import checks
    from mer_ray.models.bundled import resolve_pair
    from mer_ray.score.job import run_score

    checks.input_path(args.source, "ARCHIVE")
    checks.out_folder(args.out)
    checks.fusion_weights(args.fusion_weights)
    check_segment_flags(args)
    if args.in_process_max < 0:
        raise checks.UsageError(f"--in-process-max must be 0 or more, got {args.in_process_max}")
    try:
        visual, audio = resolve_pair(args.visual, args.audio)
    except ValueError as err:
        raise checks.UsageError(str(err)) from None
    checks.model_dir(visual, "visual")
    checks.model_dir(audio, "audio")
    cfg = config_from_args(args)
    if args.dry_run:
        from mer_ray.score.dry_run import dry_run_score, format_score_dry_run

        print(format_score_dry_run(dry_run_score(cfg)))
        return 0
    summary = run_score(cfg)
    print(format_summary(summary))
    return 0
