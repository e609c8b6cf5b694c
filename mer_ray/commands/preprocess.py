"""`mer-ray preprocess DATA --out SHARDS`: videos -> face crops + audio features -> Parquet."""
from __future__ import annotations

import argparse
import logging

from mer_ray.commands.extract_args import add_extract_arguments, extract_options_from_args
from mer_ray.config import PreprocessConfig, RayConfig

NAME = "preprocess"
HELP = "decode videos, crop faces from keyframes, extract audio features, write Parquet shards"
log = logging.getLogger(__name__)


def add_ray_arguments(p: argparse.ArgumentParser) -> None:
    """--address / --num-cpus / --host, shared by every Ray job."""
    p.add_argument("--address", default=None,
                   help="Ray cluster address (e.g. 'auto'); default: $RAY_ADDRESS or embedded local Ray")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for embedded local Ray (default: all)")
    p.add_argument("--host", default=None, help="IP address embedded local Ray listens on (default: "
                   "$MER_RAY_HOST or 127.0.0.1, this machine only)")


def add_allow_empty(p: argparse.ArgumentParser, source: str = "DATA") -> None:
    """--allow-empty, shared by preprocess and score (``source``: the input's name in --help)."""
    p.add_argument("--allow-empty", action="store_true",
                   help=f"finish with an empty output when {source} holds no inputs (default: "
                        "that is an error)")


def add_dry_run(p: argparse.ArgumentParser, verb: str) -> None:
    """--dry-run, shared by preprocess and score (``verb``: what the job does to an input)."""
    p.add_argument("--dry-run", action="store_true",
                   help=f"list the inputs, check which are already done in --out and print how "
                        f"many are left to {verb} and the actor plan; runs nothing, starts no Ray "
                        "and writes nothing")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", help="RAVDESS tree, any folder of videos/audio, a glob, or a CSV manifest; "
                        "local or a URI (s3://, gs://, file://)")
    p.add_argument("--out", required=True, help="output folder (or URI) for the Parquet shards")
    p.add_argument("--corpus", default="auto", choices=["auto", "ravdess", "manifest", "folder"],
                   help="where labels come from: auto (default) takes them from RAVDESS file names "
                        "where those parse, ravdess requires RAVDESS names (others are dropped), "
                        "manifest reads a CSV with path,label[,speaker], folder gives no labels")
    p.add_argument("--videos-per-shard", type=int, default=16,
                   help="input files per Parquet shard at most; fewer on small jobs and towards "
                        "the end of a job, to spread the load (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None,
                   help="extraction actors at most (default: the cluster's CPUs at start; set it "
                        "on an autoscaling cluster)")
    p.add_argument("--strict", action="store_true", help="exit non-zero if any input failed")
    add_allow_empty(p)
    add_dry_run(p, "process")
    add_extract_arguments(p)
    add_ray_arguments(p)


def config_from_args(args: argparse.Namespace) -> PreprocessConfig:
    return PreprocessConfig(
        data_dir=args.data_dir, out=args.out, corpus=args.corpus,
        extract=extract_options_from_args(args), strict=args.strict,
        videos_per_shard=args.videos_per_shard, workers=args.workers,
        allow_empty=args.allow_empty, ray=RayConfig(address=args.address, num_cpus=args.num_cpus,
                                                    host=args.host))


def format_summary(summary: dict) -> str:
    """A few human lines from summary.json."""
    status = ", ".join(f"{k} {v}" for k, v in summary["status"].items())
    run = summary["this_run"]
    speed = f"{run['videos_per_s']} videos/s" if run["videos_per_s"] else "-"
    orphans = summary.get("rows_without_input")
    orphan_line = (f"\n{orphans} committed rows have no input in this listing (kept; delete "
                   "the output to drop them)" if orphans else "")
    return (f"{summary['inputs']} inputs ({status}); {summary['face_crops']} face crops from "
            f"{summary['keyframes']} keyframes{orphan_line}\nthis run: {run['processed']} processed in "
            f"{run['seconds']} s ({speed}); summary: {summary['out']}/summary.json")


def run(args: argparse.Namespace) -> int:
    from mer_ray.commands import checks
    from mer_ray.data.preprocess import dry_run_preprocess, format_preprocess_dry_run, run_preprocess

    checks.input_path(args.data_dir, "DATA")
    checks.out_folder(args.out)
    cfg = config_from_args(args)
    if args.dry_run:
        print(format_preprocess_dry_run(dry_run_preprocess(cfg)))
        return 0
    summary = run_preprocess(cfg)
    print(format_summary(summary))
    if cfg.strict and summary["failed"]:
        log.error("--strict: %d input(s) failed; see the status/error columns in %s/clips",
                  summary["failed"], cfg.out)
        return 1
    return 0
