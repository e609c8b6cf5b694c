"""`mer-ray` command line: argument parsing only; each subcommand lives in mer_ray.commands."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS = [
    "demo",
    "make_sample",
    "preprocess",
    "ingest_images",
    "train_visual",
    "train_audio",
    "score",
    "evaluate",
    "tune_fusion",
    "annotate",
    "evaluate_images",
    "models",
]
"""Modules in mer_ray.commands; each defines NAME, HELP, add_arguments(p) and run(args) -> int.
They import heavy libraries (TF, Ray) inside run(), so --help stays fast."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mer-ray", description=__doc__.split(":")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"mer_ray.commands.{name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
