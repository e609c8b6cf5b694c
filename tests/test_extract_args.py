"""The extraction flags: generated once from ExtractOptions, shared by three commands."""
from __future__ import annotations

import argparse
import ast
from dataclasses import fields
from pathlib import Path

import pytest

from mer_ray.commands import annotate, preprocess, score
from mer_ray.commands.extract_args import (add_extract_arguments, extract_fields,
                                           extract_options_from_args, flag_name)
from mer_ray.media.options import ExtractOptions

FLAGS = {
    preprocess: ["--skip", "--max-keyframes", "--max-audio-s", "--detect-width",
                 "--redetect-every", "--aug-copies", "--no-rich-audio", "--max-file-mb", "--seed"],
    score: ["--skip", "--max-keyframes", "--max-audio-s", "--detect-width", "--redetect-every",
            "--max-file-mb"],
    annotate: ["--skip", "--max-keyframes", "--detect-width"],
}


def _parser(command) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    command.add_arguments(p)
    return p


@pytest.mark.parametrize("command", list(FLAGS), ids=lambda c: c.NAME)
def test_each_command_keeps_its_extraction_flags(command):
    options = {s for a in _parser(command)._actions for s in a.option_strings}
    wanted = set(FLAGS[command])
    assert wanted <= options
    others = {flag_name(f) for f in extract_fields()} - wanted
    assert not others & options, others & options


def test_help_shows_the_dataclass_defaults():
    text = _parser(preprocess).format_help()
    for f in extract_fields():
        if not isinstance(f.default, bool):
            assert f"(default: {f.default})" in " ".join(text.split()), f.name
    assert "(default: 512)" in text and "(default: 320)" in " ".join(text.split())


def test_flags_map_to_extract_options_fields():
    p = argparse.ArgumentParser()
    add_extract_arguments(p)
    assert extract_options_from_args(p.parse_args([])) == ExtractOptions()
    args = p.parse_args(["--skip", "5", "--max-keyframes", "7", "--max-audio-s", "1.5",
                         "--detect-width", "0", "--redetect-every", "1", "--aug-copies", "0",
                         "--no-rich-audio", "--max-file-mb", "2", "--seed", "3"])
    opts = extract_options_from_args(args, faces=False)
    assert opts == ExtractOptions(skip=5, max_keyframes=7, max_audio_s=1.5, detect_width=None,
                                  redetect_every=1, audio_aug_copies=0, rich_audio=False,
                                  max_file_mb=2.0, seed=3, faces=False)
    flagged = {f.name for f in extract_fields()}
    # set by score's own flags (--faces, --segments, --hop, --max-faces), not extraction flags
    not_flags = {"faces", "audio", "audio_columns", "decode_threads", "face_mode", "max_faces",
                 "segment_s", "hop_s"}
    assert flagged == {f.name for f in fields(ExtractOptions)} - not_flags


def test_a_subset_leaves_the_rest_at_defaults():
    p = argparse.ArgumentParser()
    add_extract_arguments(p, only=["skip"])
    opts = extract_options_from_args(p.parse_args(["--skip", "3"]))
    assert opts == ExtractOptions(skip=3)
    with pytest.raises(ValueError, match="not extraction flags"):
        add_extract_arguments(argparse.ArgumentParser(), only=["faces"])


def test_commands_build_nested_configs():
    args = _parser(score).parse_args(["arch", "--out", "o", "--audio", "a", "--skip", "4",
                                      "--detect-width", "0"])
    cfg = score.config_from_args(args)
    assert cfg.extract.skip == 4 and cfg.extract.detect_width is None
    args = _parser(preprocess).parse_args(["d", "--out", "o", "--aug-copies", "1", "--no-rich-audio"])
    cfg = preprocess.config_from_args(args)
    assert (cfg.extract.audio_aug_copies, cfg.extract.rich_audio) == (1, False)
    assert cfg.to_dict()["extract"]["audio_aug_copies"] == 1


def test_media_imports_no_job_config():
    """mer_ray.media never imports mer_ray.config (which holds the job configs), at any depth."""
    media = Path(__file__).resolve().parents[1] / "mer_ray" / "media"
    for path in sorted(media.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith("mer_ray.config"), f"{path.name} imports {name}"
                assert not name.startswith(("mer_ray.score", "mer_ray.data", "mer_ray.train",
                                            "mer_ray.commands")), f"{path.name} imports {name}"
