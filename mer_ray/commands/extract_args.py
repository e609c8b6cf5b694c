"""The extraction flags of `preprocess`, `score` and `annotate`, generated from ExtractOptions.

Each ExtractOptions field with ``help`` metadata becomes one flag whose destination is the
field's name; its default comes from the dataclass and is shown in ``--help``.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import MISSING, Field, fields

from mer_ray.media.options import ExtractOptions


def extract_fields(only: Iterable[str] | None = None) -> list[Field]:
    """The ExtractOptions fields that are flags (all of them, or those named in ``only``)."""
    flags = [f for f in fields(ExtractOptions) if "help" in f.metadata]
    if only is None:
        return flags
    wanted = set(only)
    unknown = wanted - {f.name for f in flags}
    if unknown:
        raise ValueError(f"not extraction flags: {sorted(unknown)}")
    return [f for f in flags if f.name in wanted]


def flag_name(f: Field) -> str:
    """``--max-keyframes`` for ``max_keyframes``, or the field's ``flag`` metadata."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_extract_arguments(parser: argparse.ArgumentParser,
                          only: Iterable[str] | None = None) -> None:
    """Add the extraction flags (those of ``only``, by field name, or all) to ``parser``."""
    group = parser.add_argument_group("extraction")
    for f in extract_fields(only):
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        if isinstance(default, bool):
            if default is not True:
                raise TypeError(f"{f.name}: only True-by-default switches (--no-...) are supported")
            group.add_argument(flag_name(f), dest=f.name, action="store_false", help=f.metadata["help"])
        else:
            group.add_argument(flag_name(f), dest=f.name, type=type(default), default=default,
                               metavar=flag_name(f)[2:].replace("-", "_").upper(), help=f.metadata["help"] + " (default: %(default)s)")


def extract_options_from_args(args: argparse.Namespace, **overrides) -> ExtractOptions:
    """ExtractOptions from the extraction flags present in ``args`` (others keep their
    defaults), then ``overrides``."""
    given = {f.name: getattr(args, f.name) for f in extract_fields() if hasattr(args, f.name)}
    return ExtractOptions(**{**given, **overrides})
