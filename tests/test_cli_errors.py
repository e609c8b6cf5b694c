"""Common mistakes on the command line: each ends in one line ``mer-ray <command>: error: ...``
(exit 1 for an input or runtime error, 2 for a usage error), no traceback, no Ray started and
no output folder left behind. Plus --version, -v after the command, and --help texts."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from mer_ray.cli import build_parser, main, package_version
from mer_ray.config import EMOTIONS


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (exit code, stdout, stderr); argparse's exits count too."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


RAY_STARTS: list = []
"""Calls of runtime.init_ray (the one way a job starts or joins Ray) in the running test."""


@pytest.fixture(autouse=True)
def count_ray_starts(monkeypatch):
    """Record init_ray calls, so a test can tell a mistake caught before Ray from one caught
    after it, even when an earlier test of the session left Ray running."""
    import mer_ray.runtime

    RAY_STARTS.clear()
    real = mer_ray.runtime.init_ray
    monkeypatch.setattr(mer_ray.runtime, "init_ray",
                        lambda cfg: (RAY_STARTS.append(cfg), real(cfg))[1])


def assert_one_line_error(capsys, argv: list[str], code: int = 1, match: str = "") -> str:
    """The command fails with ``code`` and one stderr line naming it, before Ray is started;
    returns that line."""
    import ray

    was_running = ray.is_initialized()
    got, out, err = run_cli(capsys, argv)
    command = next(a for a in argv if not a.startswith("-"))
    lines = err.strip().splitlines()
    assert got == code, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mer-ray {command}: error: "), err
    assert "Traceback" not in out + err
    assert match.lower() in lines[0].lower(), lines[0]
    assert ray.is_initialized() == was_running
    assert not RAY_STARTS, "the mistake was found only after Ray started"
    return lines[0]


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working folder with empty/ and a_file; the tests run inside it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("not a folder\n")
    return tmp_path


@pytest.fixture
def audio_run(tmp_path) -> str:
    """A run directory holding an audio bundle (bundle.json and a placeholder model file)."""
    from mer_ray.models.bundle import BundleInfo, write_bundle_info

    run = tmp_path / "audio_run"
    run.mkdir()
    (run / "model.skops").write_bytes(b"placeholder")
    write_bundle_info(str(run), BundleInfo(
        kind="audio", classes=list(EMOTIONS), model_file="model.skops", recipe="rich",
        feature_column="audio_rich_features", backbone=None, model_id="", classifier="svm"))
    return str(run)


@pytest.fixture
def frames_shards(tmp_path) -> str:
    """A folder that looks like a preprocess output to the up-front check (frames/*.parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shards = tmp_path / "shards"
    (shards / "frames").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), shards / "frames" / "part-0.parquet")
    return str(shards)


# --- preprocess ----------------------------------------------------------------------------

def test_preprocess_missing_input(place, capsys):
    assert_one_line_error(capsys, ["preprocess", "/nonexistent", "--out", "p"],
                          match="not found: /nonexistent")
    assert not (place / "p").exists()


def test_preprocess_empty_input_is_an_error(place, capsys):
    assert_one_line_error(capsys, ["preprocess", "empty", "--out", "p"],
                          match="--allow-empty")
    assert not (place / "p").exists()


def test_preprocess_empty_input_with_allow_empty(place, capsys):
    code, out, err = run_cli(capsys, ["preprocess", "empty", "--out", "p", "--allow-empty"])
    assert code == 0, err
    assert "0 inputs" in out
    assert json.loads((place / "p" / "summary.json").read_text())["inputs"] == 0


def test_preprocess_out_is_a_file(place, capsys):
    assert_one_line_error(capsys, ["preprocess", "empty", "--out", "a_file"], match="is a file")
    assert_one_line_error(capsys, ["preprocess", "empty", "--out", "a_file/sub"],
                          match="inside a_file")


# --- score ---------------------------------------------------------------------------------

def test_score_empty_input_is_an_error(place, capsys, audio_run):
    assert_one_line_error(capsys, ["score", "empty", "--audio", audio_run, "--out", "s"],
                          match="no inputs in empty")
    assert not (place / "s").exists()


def test_score_missing_input(place, capsys, audio_run):
    assert_one_line_error(capsys, ["score", "/nope", "--audio", audio_run, "--out", "s"],
                          match="not found: /nope")
    assert not (place / "s").exists()


def test_score_out_is_a_file(place, capsys, audio_run):
    assert_one_line_error(capsys, ["score", "empty", "--audio", audio_run, "--out", "a_file"],
                          match="is a file")


def test_score_visual_not_a_bundle(place, capsys):
    assert_one_line_error(capsys, ["score", "empty", "--visual", "empty", "--out", "s"],
                          match="not a model bundle")
    assert_one_line_error(capsys, ["score", "empty", "--visual", "/missing/run", "--out", "s"],
                          match="/missing/run does not exist")
    assert not (place / "s").exists()


def test_score_visual_given_an_audio_run(place, capsys, audio_run):
    line = assert_one_line_error(capsys, ["score", "empty", "--visual", audio_run, "--out", "s"])
    assert "holds an audio model, not a visual one" in line
    assert not (place / "s").exists()


@pytest.mark.parametrize("weights", ["1,x", "0.5", "0,0", "-1,2", "missing.json"])
def test_score_bad_fusion_weights(place, capsys, audio_run, weights):
    assert_one_line_error(capsys, ["score", "empty", "--audio", audio_run, "--out", "s",
                                   "--fusion-weights", weights], code=2,
                          match="--fusion-weights")
    assert not (place / "s").exists()


def test_score_both_models_none_is_a_usage_error(place, capsys):
    assert_one_line_error(capsys, ["score", "empty", "--visual", "none", "--audio", "none",
                                   "--out", "s"], code=2, match="nothing to score")


# --- evaluate, tune-fusion, annotate, evaluate-images, ingest-images ------------------------

def test_evaluate_empty_folder(place, capsys):
    assert_one_line_error(capsys, ["evaluate", "empty"], match="not a `mer-ray score` output")
    assert list((place / "empty").iterdir()) == []      # no report/ folder


def test_evaluate_missing_folder(place, capsys):
    assert_one_line_error(capsys, ["evaluate", "/nope"], match="not found")


def test_tune_fusion_empty_folder(place, capsys):
    assert_one_line_error(capsys, ["tune-fusion", "empty"], match="not a `mer-ray score` output")


def test_annotate_missing_video(place, capsys):
    assert_one_line_error(capsys, ["annotate", "/nope.mp4", "-o", "x.mp4"],
                          match="video not found: /nope.mp4")
    assert not (place / "x.mp4").exists()


def test_annotate_visual_given_an_audio_run(place, capsys, audio_run):
    (place / "clip.mp4").write_bytes(b"")
    assert_one_line_error(capsys, ["annotate", "clip.mp4", "-o", "x.mp4", "--visual", audio_run],
                          match="holds an audio model")


def test_evaluate_images_and_ingest_images_missing_input(place, capsys):
    assert_one_line_error(capsys, ["evaluate-images", "/nope", "--out", "e"], match="not found")
    assert_one_line_error(capsys, ["ingest-images", "/nope", "--out", "i"], match="not found")
    assert not (place / "e").exists() and not (place / "i").exists()


# --- train-audio, train-visual -------------------------------------------------------------

def test_train_audio_empty_input(place, capsys):
    assert_one_line_error(capsys, ["train-audio", "empty", "--out", "run"],
                          match="no Parquet files in empty/clips/")
    assert not (place / "run").exists()


def test_train_audio_missing_input(place, capsys):
    assert_one_line_error(capsys, ["train-audio", "/nope", "--out", "run"],
                          match="SHARDS not found")
    assert not (place / "run").exists()


def test_train_audio_settings_that_contradict(place, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (place / "sh" / "clips").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), place / "sh" / "clips" / "part-0.parquet")
    assert_one_line_error(capsys, ["train-audio", "sh", "--out", "run", "--protocol", "loso"],
                          code=2, match="--protocol loso needs --fold")
    assert not (place / "run").exists()


@pytest.mark.parametrize("extra", [["--backbone", "tiny", "--init", "none"],
                                   ["--backbone", "tiny"], []])
def test_train_visual_empty_input_before_weights(place, capsys, extra):
    assert_one_line_error(capsys, ["train-visual", "empty", "--out", "run", *extra],
                          match="no Parquet files in empty/frames/")
    assert not (place / "run").exists()


def test_train_visual_defaults_without_imagenet_weights(place, capsys, monkeypatch,
                                                        frames_shards):
    import mer_ray.models.visual as visual

    monkeypatch.setenv("KERAS_HOME", str(place / "keras_home"))
    monkeypatch.setattr(visual, "download_imagenet_weights",
                        lambda backbone, timeout_s=0: "no network in this test")
    assert_one_line_error(capsys, ["train-visual", frames_shards, "--out", "run"],
                          match="ImageNet weights for efficientnetb0")
    assert not (place / "run").exists()


# --- the error funnel, --verbose, --version, --help ----------------------------------------

def test_usage_error_is_one_line(place, capsys):
    assert_one_line_error(capsys, ["score", "empty"], code=2, match="--out")
    assert_one_line_error(capsys, ["train-visual", "empty", "--out", "r", "--case", "x"],
                          code=2, match="invalid choice")


def test_unexpected_error_one_line_and_traceback_with_verbose(place, capsys, monkeypatch):
    from mer_ray.commands import models

    def boom(args):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(models, "run", boom)
    line = assert_one_line_error(capsys, ["models"], match="RuntimeError: something broke")
    assert line.endswith("(run with --verbose for the traceback)")
    code, _, err = run_cli(capsys, ["models", "-v"])
    assert code == 1
    assert "Traceback" in err and err.strip().splitlines()[-1] == (
        "mer-ray models: error: RuntimeError: something broke")


def test_an_error_inside_a_ray_task_reads_as_the_task_raised_it(place, capsys, monkeypatch):
    import ray

    from mer_ray.commands import models

    def fails_remotely(args):
        raise ray.exceptions.RayTaskError(
            "extract", "Traceback (most recent call last):\n  ...\nValueError: bad clip",
            ValueError("bad clip")).as_instanceof_cause()

    monkeypatch.setattr(models, "run", fails_remotely)
    assert assert_one_line_error(capsys, ["models"]) == "mer-ray models: error: bad clip"


def test_failed_command_removes_the_empty_folders_it_made(tmp_path):
    from mer_ray.commands.checks import no_empty_output_left

    with pytest.raises(ValueError):
        with no_empty_output_left(str(tmp_path / "a" / "b")):
            (tmp_path / "a" / "b" / "c").mkdir(parents=True)
            raise ValueError("failed")
    assert not (tmp_path / "a").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(ValueError):
        with no_empty_output_left(str(tmp_path / "kept")):   # it was there before
            raise ValueError("failed")
    assert (tmp_path / "kept").is_dir()
    with pytest.raises(ValueError):
        with no_empty_output_left(str(tmp_path / "partial")):  # holds a file: kept
            (tmp_path / "partial").mkdir()
            (tmp_path / "partial" / "log.txt").write_text("x")
            raise ValueError("failed")
    assert (tmp_path / "partial" / "log.txt").is_file()


def test_version(capsys):
    code, out, _ = run_cli(capsys, ["--version"])
    assert code == 0
    assert out.strip() == f"mer-ray {package_version()}"
    assert package_version() != "unknown"


def test_verbose_before_or_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["-v", "models"]).verbose is True
    assert parser.parse_args(["models", "-v"]).verbose is True
    assert parser.parse_args(["models", "--verbose"]).verbose is True
    assert parser.parse_args(["models"]).verbose is False


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


NO_DEFAULT_SHOWN = (argparse._StoreTrueAction, argparse._StoreFalseAction,
                    argparse._HelpAction, argparse._VersionAction)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_flag_has_help_and_shows_its_default(command, capsys):
    import re

    parser = _subcommands()[command]
    texts = [parser.description or ""]
    for action in parser._actions:
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"{command} {name}: no help text"
        text = action.help % {**vars(action), "default": action.default, "prog": parser.prog}
        if (action.default not in (None, argparse.SUPPRESS)
                and not isinstance(action, NO_DEFAULT_SHOWN)):
            assert "default" in text.lower(), f"{command} {name}: default not shown"
        texts.append(text)
    for text in texts:   # a thesis reference says whose it is: "(thesis Alg. 3.9)", not "Alg. 3.9"
        for ref in re.finditer(r"(Alg\.|Table) \d", text):
            assert text[max(0, ref.start() - 7):ref.start()] == "thesis ", \
                f"{command}: bare thesis reference in {text!r}"
    parser.print_help()                      # the help renders (no bad % formats)
    assert capsys.readouterr().out
