"""What `mer-ray` prints: quiet by default, everything with -v, errors only with -q.

One place sets the console mode for the driver and the Ray workers:

- ``setup(level)`` (cli.main, once per command): records the mode in ``$MER_RAY_CONSOLE``
  (Ray workers inherit it, or get it through the runtime_env of init_ray), sets the environment
  TensorFlow and Ray Data read at import (``process_env``) and configures Python logging:
  INFO lines as plain text by default, timestamps and DEBUG with -v, errors only with -q.
- ``quiet_ray()`` (runtime.init_ray, after ray.init): Ray Data progress bars and Python
  warnings off, the ``ray`` loggers and Ray Data's console handler at ERROR, and forwarded
  worker output reduced to the lines workers mark with ``worker_line`` (the training epochs).
- the first ``import tensorflow`` of the driver (wherever it happens) runs with fd 2 sent to
  /dev/null unless verbose: its C++ code prints CUDA / cuInit / oneDNN lines there at import,
  before TF_CPP_MIN_LOG_LEVEL applies (``quiet_tf_import``).
- ``ProgressLine``: one line for a job (done/total, videos/s, ETA), redrawn in place on a
  terminal, printed at every 10 % otherwise.

Every setting only fills a variable the user has not set; ``-v`` leaves Ray and TensorFlow
as they are.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import time
import warnings

QUIET, NORMAL, VERBOSE = -1, 0, 1
ENV = "MER_RAY_CONSOLE"
NAMES = {QUIET: "quiet", NORMAL: "normal", VERBOSE: "verbose"}
PROGRESS_ENV = "MER_RAY_PROGRESS"
"""0: no progress line; 1: the progress line even with -q (default: on unless -q)."""
WORKER_MARK = "[mer_ray] "
"""Prefix of worker lines the driver shows when not verbose (see worker_line)."""

_set_by_us: dict[str, str] = {}
_lock = threading.RLock()
_active: "ProgressLine | None" = None


def level() -> int:
    """The console mode of this process (from $MER_RAY_CONSOLE; NORMAL when unset)."""
    name = os.environ.get(ENV, "normal").strip().lower()
    return {v: k for k, v in NAMES.items()}.get(name, NORMAL)


def process_env(mode: int) -> dict[str, str]:
    """Environment for every process of a job in ``mode``, read before TF / Ray Data import."""
    env = {ENV: NAMES[mode]}
    if mode < VERBOSE:
        env.update({
            "TF_CPP_MIN_LOG_LEVEL": "3",              # TF's C++ INFO / WARNING / ERROR lines
            "RAY_DATA_DISABLE_PROGRESS_BARS": "1",    # Ray Data bars in every worker too
            "GRPC_VERBOSITY": "ERROR",
        })
    return env


def _apply_env(env: dict[str, str]) -> None:
    for key, value in env.items():
        if key in os.environ and _set_by_us.get(key) != os.environ[key]:
            continue                                   # the user's own setting wins
        os.environ[key] = value
        _set_by_us[key] = value
    for key in list(_set_by_us):                       # ours from an earlier, louder mode
        if key not in env and os.environ.get(key) == _set_by_us[key]:
            del os.environ[key], _set_by_us[key]


class _Formatter(logging.Formatter):
    """INFO as the bare message; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        return text


class _Handler(logging.StreamHandler):
    """A handler on the current sys.stderr (or a stream given with setStream) that first
    clears a progress line being redrawn on the terminal."""

    def __init__(self):
        super().__init__(sys.stderr)
        self._fixed = False
        self._mer_ray = True

    def setStream(self, stream):
        self._fixed = True
        return super().setStream(stream)

    def emit(self, record: logging.LogRecord) -> None:
        with _lock:
            if not self._fixed:
                self.stream = sys.stderr
            if _active is not None:
                _active.clear()
            super().emit(record)


def setup(mode: int = NORMAL) -> None:
    """Set the console mode of this process (and of the Ray workers it starts)."""
    _apply_env(process_env(mode))
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_mer_ray", False)]:
        root.removeHandler(h)
    handler = _Handler()
    if mode >= VERBOSE:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_Formatter())
    root.addHandler(handler)
    root.setLevel({QUIET: logging.ERROR, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}[mode])
    for noisy in ("numba", "matplotlib", "PIL", "h5py", "absl", "tensorflow", "filelock"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if mode >= VERBOSE else logging.WARNING)
    if mode >= VERBOSE:
        remove_tf_quieting()
    else:
        quiet_tf_import()
    if "ray" in sys.modules:                            # a second command in the same process
        quiet_ray()


def quiet_ray() -> None:
    """Ray's side of the mode, once Ray is imported / started in this process."""
    mode = level()
    try:
        from ray.data import DataContext

        ctx = DataContext.get_current()
        bars = mode >= VERBOSE
        ctx.enable_progress_bars = bars
        ctx.enable_operator_progress_bars = bars
        ctx.print_on_execution_start = mode >= VERBOSE
        ctx.enable_auto_log_stats = False
    except ImportError:
        pass
    _ray_data_warnings(mode >= VERBOSE)
    if mode >= VERBOSE:
        _filter_worker_output(False)
        return
    quiet_ray_loggers()
    for h in logging.getLogger("ray.data").handlers:   # console only: ray-data.log keeps all
        if type(h).__name__ != "SessionFileHandler" and not hasattr(h, "baseFilename"):
            h.setLevel(logging.ERROR)
    _filter_worker_output(True)


RAY_DATA_MODULES = r"ray\.data(\.|$)"
"""Modules whose Python UserWarnings a quiet console drops: Ray Data's tuning hints, such as
"the operator only received 1 input(s)", which every archive smaller than a batch triggers."""


def _ray_data_warnings(show: bool) -> None:
    """Ray Data's UserWarnings shown (verbose) or dropped, in this process."""
    ours = ("ignore", UserWarning, RAY_DATA_MODULES)
    warnings.filters[:] = [f for f in warnings.filters
                           if (f[0], f[2], getattr(f[3], "pattern", None)) != ours]
    if not show:
        warnings.filterwarnings("ignore", category=UserWarning, module=RAY_DATA_MODULES)


def quiet_ray_loggers() -> None:
    """The ``ray`` loggers at ERROR unless verbose (before ray.init too: its warnings)."""
    if level() < VERBOSE:
        for name in ("ray", "ray.train", "ray.tune", "ray.air", "ray.serve"):
            logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def quiet_driver_core_worker():
    """Around ray.init unless verbose: the driver's own Ray core worker (C++, which logs to
    this process's stderr) gets RAY_BACKEND_LOG_LEVEL=fatal, so its ERROR-level notices
    (e.g. "constructor arguments in the object store and max_restarts > 0") stay off the
    console. Set only while ray.init connects the driver, after it has started the raylet
    and GCS, so their log files and the workers keep Ray's levels."""
    if level() >= VERBOSE or "RAY_BACKEND_LOG_LEVEL" in os.environ:
        yield
        return
    try:
        from ray._private import worker
        original = worker.connect
    except (ImportError, AttributeError):
        yield
        return

    def connect(*args, **kwargs):
        os.environ["RAY_BACKEND_LOG_LEVEL"] = "fatal"
        try:
            with _stderr_to_devnull():      # its "Set ray log level from environment" line
                return original(*args, **kwargs)
        finally:
            os.environ.pop("RAY_BACKEND_LOG_LEVEL", None)

    worker.connect = connect
    try:
        yield
    finally:
        worker.connect = original


def marked_lines(lines: list[str]) -> list[str]:
    """The worker lines marked by worker_line, without the mark (and Ray's pid prefix)."""
    return [line[line.find(WORKER_MARK) + len(WORKER_MARK):]
            for line in lines if WORKER_MARK in line]


_ray_printer: list = []          # Ray's own "ray_print_logs" handler while ours replaces it


def _filter_worker_output(on: bool) -> None:
    """On: of forwarded worker output, show only the lines marked by worker_line (Ray's own
    handler prints every line: progress bars, TF start-up, Ray Train's and Data's logs).
    Off: Ray's handler back. Only while this process is connected to Ray."""
    try:
        import ray
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:                                # a Ray without it: lines stay as they are
        return
    if not ray.is_initialized():
        return
    with dispatcher._lock:
        handlers = dict(dispatcher.handlers)
    _filter_error_messages(on)
    if on:
        if "ray_print_logs" in handlers:
            _ray_printer[:] = [handlers["ray_print_logs"]]
            dispatcher.remove_handler("ray_print_logs")
        if "mer_ray_print_logs" not in handlers:
            dispatcher.add_handler("mer_ray_print_logs", lambda data: [
                print_line(line) for line in marked_lines(data.get("lines") or [])])
    else:
        dispatcher.remove_handler("mer_ray_print_logs")
        if _ray_printer and "ray_print_logs" not in handlers:
            dispatcher.add_handler("ray_print_logs", _ray_printer.pop())


def raylet_message(lines: list[str]) -> str | None:
    """What the driver shows of a message the raylet / GCS pushes (worker pool sizes, a
    worker killed for memory...): nothing for a warning, else its first line."""
    text = "\n".join(lines).strip()
    if not text or text.startswith("WARNING"):
        return None
    return "ray: " + text.splitlines()[0].strip()


_ray_print_to_stdstream: list = []


def _filter_error_messages(on: bool) -> None:
    """Ray's driver prints the messages its error channel pushes with
    ray._private.worker.print_to_stdstream (looked up at each call): swapped for one that
    prints raylet_message() of them, and back."""
    from ray._private import worker

    if on and not _ray_print_to_stdstream:
        original = worker.print_to_stdstream
        _ray_print_to_stdstream.append(original)

        def errors_only(data, ignore_prefix):
            if data.get("pid") != "raylet":
                return original(data, ignore_prefix)
            message = raylet_message(data.get("lines") or [])
            if message:
                print_line(message, file=sys.stderr, error=True)

        worker.print_to_stdstream = errors_only
    elif not on and _ray_print_to_stdstream:
        worker.print_to_stdstream = _ray_print_to_stdstream.pop()


def worker_line(text: str) -> None:
    """Print a line in a Ray worker / actor that the driver shows in every mode but -q."""
    print(f"{WORKER_MARK}{text}", flush=True)


def print_line(text: str, file=None, error: bool = False) -> None:
    """Print a line (not in -q unless ``error``), clearing a progress line being redrawn."""
    if level() <= QUIET and not error:
        return
    with _lock:
        if _active is not None:
            _active.clear()
        print(text, file=file or sys.stdout, flush=True)


@contextlib.contextmanager
def _stderr_to_devnull():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietImport:
    """A one-shot meta-path finder: the first ``import tensorflow`` of this process runs
    with fd 2 sent to /dev/null (TensorFlow's C++ code prints its CUDA / cuInit / oneDNN
    start-up lines there before TF_CPP_MIN_LOG_LEVEL applies). An import error still raises."""

    names = ("tensorflow",)

    def find_spec(self, name, path=None, target=None):
        if name not in self.names:
            return None
        remove_tf_quieting()
        import importlib.util

        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def quiet_exec(module):
            with _stderr_to_devnull():
                exec_module(module)

        loader.exec_module = quiet_exec
        return spec


def quiet_tf_import() -> None:
    """Install _QuietImport unless TensorFlow is imported already (driver, not verbose)."""
    if not any(name in sys.modules for name in _QuietImport.names) and not any(
            isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


def remove_tf_quieting() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietImport)]


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    h, m = divmod(round(seconds / 60), 60)
    return f"{h} h {m:02d} min"


def _rate(rate: float) -> str:
    return f"{rate:.1f}" if rate >= 1 else f"{rate:.2f}"


class ProgressLine:
    """``scored 120/500 (24%), 3.1 videos/s, ETA 2 min``: redrawn in place (``\\r``) on a
    terminal, printed each time another 10 % is done otherwise; nothing with -q (unless
    $MER_RAY_PROGRESS=1) or with $MER_RAY_PROGRESS=0.

    ``done`` counts from the start of the job; ``already`` of them were done before this run
    (the rate and ETA are of this run)."""

    def __init__(self, verb: str, total: int, already: int = 0, unit: str = "videos",
                 stream=None, tty: bool | None = None, clock=time.monotonic,
                 enabled: bool | None = None):
        self.verb, self.total, self.already, self.unit = verb, total, already, unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        if enabled is None:
            setting = os.environ.get(PROGRESS_ENV)
            enabled = setting != "0" and (level() > QUIET or setting == "1")
        self.enabled = enabled
        self.done = already
        self._t0 = clock()
        self._step = int(10 * already / total) if total else 10   # 10 % steps printed
        self._drawn = ""

    def text(self, done: int | None = None) -> str:
        done = self.done if done is None else done
        pct = 100 * done / self.total if self.total else 100.0
        elapsed = self.clock() - self._t0
        new = done - self.already
        parts = [f"{self.verb} {done}/{self.total} ({pct:.0f}%)"]
        if new > 0 and elapsed > 0:
            rate = new / elapsed
            parts.append(f"{_rate(rate)} {self.unit}/s")
            left = self.total - done
            parts.append(f"ETA {_duration(left / rate)}" if left > 0 else
                         f"in {_duration(elapsed)}")
        return ", ".join(parts)

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        with _lock:
            if self.tty:
                self._draw(self.text())
            else:
                step = int(10 * done / self.total) if self.total else 10
                if step > self._step:
                    self._step = step
                    print(self.text(), file=self.stream, flush=True)

    def _draw(self, text: str) -> None:
        pad = max(0, len(self._drawn) - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._drawn = text

    def clear(self) -> None:
        """Wipe the line being redrawn (another line is about to be printed)."""
        if self.tty and self._drawn:
            self.stream.write("\r" + " " * len(self._drawn) + "\r")
            self.stream.flush()
            self._drawn = ""

    def __enter__(self) -> "ProgressLine":
        global _active
        self._t0 = self.clock()
        if self.enabled and self.tty:
            with _lock:
                _active = self
                self._draw(self.text())
        return self

    def __exit__(self, *exc) -> None:
        global _active
        with _lock:
            if _active is self:
                _active = None
            if self.enabled and self.tty and self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = ""


class ShardProgress:
    """The ProgressLine of a job that commits Parquet shards (preprocess, score): a thread
    counts the rows of committed shards of ``table`` in ``store`` (a ShardStore: ``.fs``,
    ``.dir(table)``) every ``every_s`` seconds. Use as a context manager around the job."""

    def __init__(self, store, table: str, total: int, already: int, every_s: float = 2.0,
                 verb: str = "done", line: "ProgressLine | None" = None):
        self.store, self.table, self.total, self.already = store, table, total, already
        self.every_s = every_s
        self.done = already
        self.progress_line = line or ProgressLine(verb, total, already)
        self._rows: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{verb}-progress", daemon=True)

    @classmethod
    def of_new_rows(cls, store, table: str, todo: int, verb: str,
                    unit: str = "videos") -> "ShardProgress":
        """``todo`` rows (of ``unit``) to come on top of what ``table`` holds now."""
        progress = cls(store, table, total=0, already=0, verb=verb)
        already = progress.count()
        progress.total, progress.already = already + todo, already
        progress.progress_line = ProgressLine(verb, already + todo, already, unit=unit)
        return progress

    def count(self) -> int:
        """Rows in committed shards (new files' footers read once)."""
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq

        selector = pafs.FileSelector(self.store.dir(self.table), allow_not_found=True)
        for info in self.store.fs.get_file_info(selector):
            if info.base_name.startswith("part-") and info.path not in self._rows:
                try:
                    with self.store.fs.open_input_file(info.path) as fh:
                        self._rows[info.path] = pq.ParquetFile(fh).metadata.num_rows
                except OSError:
                    continue
        self.done = sum(self._rows.values())
        return self.done

    def line(self) -> str:
        """The progress line for what is committed now."""
        return self.progress_line.text(self.count())

    def _tick(self) -> None:
        try:            # a killed run's late shard may hold rows this run also writes: <= total
            self.progress_line.update(min(self.count(), self.total))
        except Exception as err:  # noqa: BLE001 - progress must never break the job
            logging.getLogger(__name__).debug("progress: %s", err)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._tick()

    def __enter__(self) -> "ShardProgress":
        self.progress_line.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if exc[0] is None:            # the job wrote every row it had to: the line says so
            self._tick()               # even where a rewritten shard kept the count below
            self.progress_line.update(self.total)
        self.progress_line.__exit__(*exc)
