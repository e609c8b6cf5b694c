"""Checks the commands run before any work (and before Ray starts), and the errors the CLI
turns into one line ``mer-ray <command>: error: <message>``.

UsageError (exit 2) is a flag value or a combination of flags that cannot work; InputError
(exit 1) is an input, output or model folder that is missing or is the wrong thing. Only light
imports here: every command imports this module while --help is built.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


class CliError(Exception):
    """An error the CLI reports as one line (no traceback unless --verbose)."""

    exit_code = 1


class UsageError(CliError):
    """A flag value or combination of flags that cannot work (exit code 2, like argparse)."""

    exit_code = 2


class InputError(CliError):
    """A missing or wrong input, output or model folder (exit code 1)."""

    exit_code = 1


def _is_uri(path: str) -> bool:
    return "://" in str(path)


def input_path(path: str, what: str = "input") -> None:
    """``path`` (local; a URI or a glob is left to the job) exists."""
    if _is_uri(path) or any(ch in str(path) for ch in "*?["):
        return
    if not os.path.exists(path):
        raise InputError(f"{what} not found: {path}")


def input_folder(path: str, what: str) -> None:
    """``path`` (local; URIs are left to the job) is an existing folder."""
    input_path(path, what)
    if not _is_uri(path) and not os.path.isdir(path):
        raise InputError(f"{what} {path} is a file; expected a folder")


def out_folder(out: str | None, flag: str = "--out") -> None:
    """``out`` (an output folder) is not an existing file, nor inside one."""
    if out is None or _is_uri(out):
        return
    for p in (Path(out), *Path(out).parents):
        if p.exists():
            if not p.is_dir():
                where = "is" if p == Path(out) else f"is inside {p}, which is"
                raise InputError(f"{flag} {out} {where} a file; give a folder (new or existing)")
            return


def out_file(out: str, flag: str = "--out") -> None:
    """``out`` (an output file) is not an existing folder."""
    if not _is_uri(out) and os.path.isdir(out):
        raise InputError(f"{flag} {out} is a folder; give a file name")


def shards(path: str, table: str, what: str = "SHARDS") -> None:
    """``path`` is a preprocess / ingest-images output holding Parquet files in ``table``/."""
    input_path(path, what)
    from mer_ray.train.data import parquet_files

    try:
        parquet_files(path, table)
    except FileNotFoundError as err:
        raise InputError(str(err)) from None


def model_dir(value: str | None, kind: str, flag: str | None = None) -> None:
    """A ``--visual`` / ``--audio`` value is ``default`` (the bundled model is installed),
    ``none`` / None, or a run directory holding a bundle of ``kind`` (bundle.json only)."""
    from mer_ray.models.bundle import load_bundle_info
    from mer_ray.models.bundled import DEFAULT, NONE, bundled_dir

    flag = flag or f"--{kind}"
    if value is None or value == NONE:
        return
    if value == DEFAULT:
        try:
            bundled_dir(kind)
        except ValueError as err:
            raise InputError(f"{flag} default: {err}") from None
        return
    if not _is_uri(value) and not os.path.isdir(value):
        what = "is a file" if os.path.exists(value) else "does not exist"
        raise InputError(f"{flag} {value} {what}; expected a train-{kind} run directory, "
                         "'default' or 'none'")
    try:
        info = load_bundle_info(value)
    except ValueError as err:
        raise InputError(f"{flag}: {err}") from None
    if info.kind != kind:
        raise InputError(f"{flag} {value} holds {_a(info.kind)} {info.kind} model, not "
                         f"{_a(kind)} {kind} one (a train-{kind} run directory goes here)")


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def fusion_weights(text: str):
    """``--fusion-weights`` parsed (FusionWeights); UsageError with what it expects."""
    from mer_ray.score.fusion import FusionWeights

    expected = ("expected 'w_visual,w_audio' (two numbers, e.g. 0.5,0.5) or a JSON file "
                "written by tune-fusion")
    try:
        return FusionWeights.parse(text)
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as err:
        why = str(err) if str(err).startswith("fusion weights") else expected
        if os.path.isfile(text) and why == expected:
            why = f"{expected} ({type(err).__name__}: {err})"
        raise UsageError(f"--fusion-weights {text!r}: {why}") from None


def _first_missing(path: Path) -> Path | None:
    """The highest folder among ``path`` and its parents that does not exist yet."""
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


def _holds_no_files(path: Path) -> bool:
    return path.is_dir() and not any(p.is_file() or p.is_symlink() for p in path.rglob("*"))


@contextlib.contextmanager
def no_empty_output_left(out: str | None) -> Iterator[None]:
    """If the block fails, remove the output folder (and the parents it made) when this run
    created it and nothing but empty folders are in it."""
    created = None if out is None or _is_uri(out) else _first_missing(Path(out).absolute())
    try:
        yield
    except BaseException:
        if created is not None and _holds_no_files(created):
            shutil.rmtree(created, ignore_errors=True)
        raise


def score_output(path: str, what: str = "SCORES") -> None:
    """``path`` (local; URIs are left to the command) is an output folder of `mer-ray score`."""
    from mer_ray.score.schema import SCORES_DIR

    input_folder(path, what)
    if not _is_uri(path) and not os.path.isdir(os.path.join(path, SCORES_DIR)):
        raise InputError(f"{path} is not a `mer-ray score` output: no {SCORES_DIR}/ folder in it")
