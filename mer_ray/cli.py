"""`mer-ray` command line: argument parsing only; each subcommand lives in mer_ray.commands."""
from __future__ import annotations

import argparse
import importlib
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
    "plot_timeline",
    "tune_fusion",
    "annotate",
    "evaluate_images",
    "export",
    "models",
]
"""Modules in mer_ray.commands; each defines NAME, HELP, add_arguments(p) and run(args) -> int.
They import heavy libraries (TF, Ray) inside run(), so --help stays fast."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``mer-ray <command>: error: <message>``
    (exit code 2), with a pointer to --help instead of the whole usage text."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def package_version() -> str:
    """The installed mer_ray version (package metadata), or 'unknown' outside an install."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mer_ray")
    except PackageNotFoundError:
        return "unknown"


def add_verbose(p: argparse.ArgumentParser, default=False) -> None:
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="debug logging, and the full traceback when a command fails; also "
                        "Ray's and TensorFlow's own console output (progress bars, worker logs)")
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="print only errors and the final summary (no stage lines, no "
                        "progress line)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mer-ray", description=__doc__.split(":")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="print the mer_ray version and exit")
    add_verbose(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"mer_ray.commands.{name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        add_verbose(p, default=argparse.SUPPRESS)  # -v / -q after the command; keeps one before
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _unwrap_ray(err: BaseException) -> BaseException:
    """The exception a Ray task or Ray Data stage raised, out of Ray's wrappers (whose text
    is the whole remote traceback)."""
    seen = 0
    while type(err).__module__.startswith("ray.") and seen < 10:
        inner = getattr(err, "cause", None) or err.__cause__
        if not isinstance(inner, BaseException):
            break
        err, seen = inner, seen + 1
    return err


def _disk_full(err: BaseException) -> bool:
    """A write refused by the disk (full, over quota, read-only): the message says it all."""
    import errno

    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def report_error(command: str, err: BaseException, verbose: bool) -> int:
    """Print a failed command's error as one line (and the traceback with --verbose); return
    the exit code: 2 for usage errors, 1 for everything else."""
    import traceback

    from mer_ray.commands.checks import CliError

    if verbose:
        traceback.print_exception(err, file=sys.stderr)
    err = _unwrap_ray(err)
    lines = str(err).strip().splitlines()
    text = " ".join(" ".join(lines).split()) if len(lines) <= 3 else lines[0].strip()
    if isinstance(err, (CliError, ValueError, FileNotFoundError, NotADirectoryError,
                        IsADirectoryError, PermissionError, FileExistsError)) or _disk_full(err):
        message = text or type(err).__name__
    else:
        first = lines[0].strip() if lines else ""
        message = f"{type(err).__name__}: {first}" if first else type(err).__name__
        if not verbose:
            message += " (run with --verbose for the traceback)"
    print(f"mer-ray {command}: error: {message}", file=sys.stderr, flush=True)
    return getattr(err, "exit_code", 1)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (0 ok, 1 runtime or input error, 2 usage error;
    argparse's own usage errors exit 2 through SystemExit)."""
    from mer_ray.commands.checks import no_empty_output_left

    from mer_ray import console

    args = build_parser().parse_args(argv)
    console.setup(console.VERBOSE if args.verbose else console.QUIET if args.quiet
                  else console.NORMAL)
    out = getattr(args, "out", None)
    try:
        with no_empty_output_left(out if isinstance(out, str) else None):
            return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"mer-ray {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every failure ends as one line (see report_error)
        return report_error(args.command, err, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
