"""Console output: the progress line, the quiet / verbose set-up, and a small job's console."""
from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mer_ray import console

from support.quiet import KEYS, assert_quiet, newcomer_env


@pytest.fixture
def clean_console(monkeypatch):
    """No console variables set; the root logger restored afterwards, and the console's
    import quieting removed (importers that imports added, such as six's, stay)."""
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(console, "_set_by_us", {})
    root = logging.getLogger()
    handlers, level, meta = list(root.handlers), root.level, list(sys.meta_path)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.meta_path[:] = [f for f in sys.meta_path
                        if f in meta or not isinstance(f, console._QuietImport)]


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_progress_line_not_a_tty_prints_each_10_percent(clean_console):
    out, clock = io.StringIO(), Clock()
    with console.ProgressLine("scored", 50, stream=out, tty=False, clock=clock) as line:
        for done in range(1, 51):
            clock.t += 1.0
            line.update(done)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10                    # 10 %, 20 %, ... 100 %, nothing in between
    assert lines[0] == "scored 5/50 (10%), 1.0 videos/s, ETA 45 s"
    assert lines[4] == "scored 25/50 (50%), 1.0 videos/s, ETA 25 s"
    assert lines[-1] == "scored 50/50 (100%), 1.0 videos/s, in 50 s"
    assert "\r" not in out.getvalue()


def test_progress_line_on_a_tty_redraws_one_line(clean_console):
    out, clock = io.StringIO(), Clock()
    with console.ProgressLine("scored", 500, already=20, stream=out, tty=True,
                              clock=clock) as line:
        clock.t += 40
        line.update(140)                       # 120 new in 40 s
        assert "\n" not in out.getvalue()
        clock.t += 10
        line.update(150)
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    draws = text.rstrip("\n").split("\r")[1:]
    assert draws[0].strip() == "scored 20/500 (4%)"
    assert draws[1].strip() == "scored 140/500 (28%), 3.0 videos/s, ETA 2 min"
    assert draws[2].strip() == "scored 150/500 (30%), 2.6 videos/s, ETA 2 min"


def test_a_log_line_clears_the_progress_line_first(clean_console):
    out = io.StringIO()
    console.setup(console.NORMAL)
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_mer_ray", False))
    handler.setStream(out)
    with console.ProgressLine("preprocessed", 10, stream=out, tty=True) as line:
        line.update(3)
        logging.getLogger("mer_ray.test").warning("a warning")
    assert "\r" + " " * len("preprocessed 3/10 (30%)") in out.getvalue()
    assert "warning: a warning\n" in out.getvalue()


def test_quiet_and_progress_switch(clean_console, monkeypatch):
    console.setup(console.QUIET)
    assert not console.ProgressLine("scored", 10, stream=io.StringIO()).enabled
    monkeypatch.setenv("MER_RAY_PROGRESS", "1")
    assert console.ProgressLine("scored", 10, stream=io.StringIO()).enabled
    console.setup(console.NORMAL)
    monkeypatch.setenv("MER_RAY_PROGRESS", "0")
    assert not console.ProgressLine("scored", 10, stream=io.StringIO()).enabled


def test_setup_sets_the_environment_of_every_process(clean_console, monkeypatch):
    console.setup(console.NORMAL)
    assert os.environ["MER_RAY_CONSOLE"] == "normal"
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert os.environ["RAY_DATA_DISABLE_PROGRESS_BARS"] == "1"
    assert logging.getLogger().level == logging.INFO
    from mer_ray.runtime import worker_env

    env = worker_env()                         # what cluster workers get in runtime_env
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "3" and env["MER_RAY_CONSOLE"] == "normal"
    console.setup(console.VERBOSE)             # ours are taken back; Ray / TF as they are
    assert "RAY_DATA_DISABLE_PROGRESS_BARS" not in os.environ
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    assert logging.getLogger().level == logging.DEBUG
    console.setup(console.QUIET)
    assert os.environ["MER_RAY_CONSOLE"] == "quiet" and console.level() == console.QUIET
    assert logging.getLogger().level == logging.ERROR
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")       # the user's own setting wins
    console.setup(console.NORMAL)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


def test_quiet_ray_sets_the_ray_data_context_and_loggers(clean_console):
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.enable_operator_progress_bars,
             ctx.print_on_execution_start, logging.getLogger("ray").level)
    try:
        console.setup(console.NORMAL)
        console.quiet_ray()                     # Ray not started: no worker-output filter
        assert not ctx.enable_progress_bars and not ctx.enable_operator_progress_bars
        assert not ctx.print_on_execution_start
        assert logging.getLogger("ray").level == logging.ERROR
        console.setup(console.VERBOSE)
        console.quiet_ray()
        assert ctx.enable_progress_bars and ctx.print_on_execution_start
    finally:
        (ctx.enable_progress_bars, ctx.enable_operator_progress_bars,
         ctx.print_on_execution_start) = saved[:3]
        logging.getLogger("ray").setLevel(saved[3])


def _shard_job(tmp_path, total: int, already: int, before: int, during: int) -> list[str]:
    """A ShardProgress over a folder with ``before`` committed rows, around a job that commits
    ``during`` more; the lines it printed."""
    from types import SimpleNamespace

    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    (tmp_path / "clips").mkdir(parents=True)
    rows = lambda n: pa.table({"path": [f"v{i}" for i in range(n)]})  # noqa: E731
    pq.write_table(rows(before), tmp_path / "clips" / "part-a.parquet")
    store = SimpleNamespace(fs=pafs.LocalFileSystem(), dir=lambda table: str(tmp_path / table))
    out = io.StringIO()
    line = console.ProgressLine("preprocessed", total, already, stream=out, tty=False,
                                enabled=True)
    with console.ShardProgress(store, "clips", total, already, every_s=3600, line=line):
        pq.write_table(rows(during), tmp_path / "clips" / "part-b.parquet")
    return out.getvalue().splitlines()


def test_shard_progress_ends_at_its_total(clean_console, tmp_path):
    """A finished job's last line is total/total: when a killed run's late shard, rewritten
    by this run under the same name, leaves fewer rows than planned, and when the shard
    files hold more rows than planned (never past 100 %)."""
    assert _shard_job(tmp_path / "short", total=5, already=2, before=3, during=1)[-1] \
        .startswith("preprocessed 5/5 (100%)")
    lines = _shard_job(tmp_path / "over", total=4, already=2, before=3, during=3)
    assert lines[-1].startswith("preprocessed 4/4 (100%)") and len(lines) == 1


def test_ray_data_warnings_dropped_unless_verbose(clean_console):
    """A Ray Data tuning hint (warnings.warn in a ray.data module) is off the quiet console
    and back with -v; a warning of another module still shows."""
    def warn_from(module: str) -> list:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")          # below the console's own filter
            console.quiet_ray()
            exec("import warnings; warnings.warn('hint', UserWarning)", {"__name__": module})
        return [w for w in seen if str(w.message) == "hint"]

    saved = warnings.filters[:]
    try:
        console.setup(console.NORMAL)
        assert warn_from("ray.data._internal.execution.operators.task_pool_map_operator") == []
        assert len(warn_from("mer_ray.score.job")) == 1
        console.setup(console.VERBOSE)
        assert len(warn_from("ray.data._internal.execution.operators.task_pool_map_operator")) == 1
    finally:
        warnings.filters[:] = saved


def test_only_marked_worker_lines_pass():
    lines = ["\x1b[36m(TrainController pid=7)\x1b[0m [mer_ray] epoch 1/8 loss 1.9",
             "(pid=9) - ReadFilesParquetV2: 100%|##########| 1/1",
             "(RayTrainWorker pid=8) I0000 cudart_stub.cc:31] Could not find cuda drivers"]
    assert console.marked_lines(lines) == ["epoch 1/8 loss 1.9"]


def test_raylet_warnings_are_dropped_errors_kept_as_one_line():
    assert console.raylet_message(["WARNING: 8 PYTHON worker processes have been started"]) is None
    assert console.raylet_message(["Task was killed due to the node running low on memory.",
                                   "Memory on the node was 7.8GB / 8GB"]) == \
        "ray: Task was killed due to the node running low on memory."


def test_driver_core_worker_log_level_only_while_connecting(clean_console, monkeypatch):
    from ray._private import worker

    seen = []
    monkeypatch.setattr(worker, "connect", lambda *a, **k: seen.append(
        os.environ.get("RAY_BACKEND_LOG_LEVEL")))
    monkeypatch.delenv("RAY_BACKEND_LOG_LEVEL", raising=False)
    original = worker.connect
    console.setup(console.NORMAL)
    with console.quiet_driver_core_worker():
        worker.connect()
    assert seen == ["fatal"] and "RAY_BACKEND_LOG_LEVEL" not in os.environ
    assert worker.connect is original
    console.setup(console.VERBOSE)
    with console.quiet_driver_core_worker():
        worker.connect()
    assert seen == ["fatal", None]


def test_first_import_of_a_noisy_module_is_quiet(clean_console, tmp_path, monkeypatch, capfd):
    (tmp_path / "noisy_mod.py").write_text("import os\nos.write(2, b'cuInit noise\\n')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(console._QuietImport, "names", ("noisy_mod",))
    monkeypatch.delitem(sys.modules, "noisy_mod", raising=False)
    console.quiet_tf_import()
    import noisy_mod  # noqa: F401

    err = capfd.readouterr().err
    assert "cuInit noise" not in err
    assert not any(isinstance(f, console._QuietImport) for f in sys.meta_path)
    os.write(2, b"after\n")                      # fd 2 is back
    assert "after" in capfd.readouterr().err


@pytest.mark.slow
def test_small_job_console_is_quiet(tmp_path, tiny_bundles):
    """score (Keras models: TF in the actors) on a tiny sample: the progress line and the
    summary, no Ray bars, no TF start-up lines, no worker logs. (preprocess's console is
    checked on the resumed run of test_preprocess::test_killed_run_resumes_to_exact_rows.)"""
    env = newcomer_env()

    def mer_ray(*argv: str) -> str:
        done = subprocess.run([sys.executable, "-m", "mer_ray.cli", *argv, "--num-cpus", "2"],
                              env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    sample = tmp_path / "sample"
    subprocess.run([sys.executable, "-m", "mer_ray.cli", "make-sample", str(sample),
                    "--actors", "1", "--clips-per-emotion", "1", "--seconds", "1"],
                   env=env, check=True, capture_output=True)
    n = sum(1 for p in sample.rglob("*") if p.is_file())
    models = ["--visual", tiny_bundles["visual"], "--audio", tiny_bundles["audio"]]
    score = mer_ray("score", str(sample), "--out", str(tmp_path / "scores"), *models)
    assert_quiet(score)
    assert f"scored {n}/{n} (100%)" in score and "this run:" in score
    # -q: only the final line (a re-run over the finished output: nothing left, no Ray start)
    quiet = mer_ray("-q", "score", str(sample), "--out", str(tmp_path / "scores"), *models)
    assert "scored" not in quiet.split("this run")[0] and "rows for" in quiet
    assert "already scored" not in quiet, quiet           # the stage lines are gone too

